"""What is shown: the shown list's hysteresis, ranking and label filter (display/shown.py)."""

from __future__ import annotations

import numpy as np

from movinet_pi.display.shown import LabelFilter, ShownList
from movinet_pi.model.labels import Labels


def _probs(**scores: float) -> np.ndarray:
    probs = np.zeros(600, dtype=np.float32)
    for name, score in scores.items():
        probs[int(name[1:])] = score
    return probs


def test_shown_list_hysteresis_enters_high_and_leaves_low() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=3, enter=0.3, leave=0.1)
    names = lambda probs: [p.label for p in shown.update(probs)]  # noqa: E731
    assert names(_probs(c1=0.25)) == []  # "no action": nothing reached 0.3
    assert names(_probs(c1=0.35)) == ["c1"]  # enters
    assert names(_probs(c1=0.12)) == ["c1"]  # below enter, above leave: stays
    assert names(_probs(c1=0.09)) == []  # leaves
    assert names(_probs(c1=0.2)) == []  # and needs 0.3 again to come back


def test_shown_list_ranks_stayers_and_newcomers_and_keeps_k() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=2, enter=0.3)  # leave defaults to half: 0.15
    shown.update(_probs(c1=0.4, c2=0.35))
    top = shown.update(_probs(c1=0.16, c2=0.2, c3=0.5))
    assert [p.label for p in top] == ["c3", "c2"]  # the best two of stayers and newcomers
    shown.reset()
    assert shown.update(_probs(c1=0.2)) == []


def test_shown_list_applies_the_label_filter() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    deny = LabelFilter(labels, deny=["c1"])
    shown = ShownList(labels, k=3, enter=0.1, label_filter=deny)
    assert [p.label for p in shown.update(_probs(c1=0.9, c2=0.05, c3=0.11))] == ["c3"]


def test_a_tie_does_not_swap_the_labels_shown() -> None:
    # The int8 model's logits lie on a grid: equal probabilities happen (yoga's clip has
    # "yoga" and "standing on hands" at 0.448 each for a step).
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    for leader, other in (("c7", "c3"), ("c3", "c7")):
        shown = ShownList(labels, k=3, enter=0.1)
        shown.update(_probs(**{leader: 0.49, other: 0.41}))
        tied = shown.update(_probs(**{leader: 0.448, other: 0.448}))
        assert [p.label for p in tied] == [leader, other]
        assert [p.label for p in shown.update(_probs(**{leader: 0.4, other: 0.5}))] == [
            other, leader]  # a real lead still reorders at once


def test_the_top_label_keeps_its_place_until_another_leads_by_two_steps_of_the_grid() -> None:
    # The int8 A0's logits lie on a grid of 0.19: a lead of one step can be the rounding of
    # almost none (playing tennis: two wrong actions swapped on it every few steps).
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    step = 0.19
    shown = ShownList(labels, k=3, enter=0.1, logit_step=step)
    shown.update(_probs(c1=0.40, c2=0.30))
    one_step = 0.30 * np.exp(step)
    assert [p.label for p in shown.update(_probs(c1=0.30, c2=one_step))] == ["c1", "c2"]
    two_steps = 0.30 * np.exp(2 * step)
    assert [p.label for p in shown.update(_probs(c1=0.30, c2=two_steps))] == ["c2", "c1"]
    # without a grid (a float model) a lead of one step swaps at once, as before
    plain = ShownList(labels, k=3, enter=0.1)
    plain.update(_probs(c1=0.40, c2=0.30))
    assert [p.label for p in plain.update(_probs(c1=0.30, c2=one_step))] == ["c2", "c1"]


def test_a_top_label_that_left_the_list_is_not_held() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=2, enter=0.3, leave=0.2, logit_step=0.19)
    shown.update(_probs(c1=0.5))
    assert [p.label for p in shown.update(_probs(c1=0.19, c2=0.21))] == []  # c2 under enter
    shown.update(_probs(c1=0.5))
    assert [p.label for p in shown.update(_probs(c1=0.15, c2=0.35))] == ["c2"]


def test_the_hold_works_with_a_list_of_one() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=1, enter=0.1, logit_step=0.19)
    shown.update(_probs(c1=0.40, c2=0.30))
    assert [p.label for p in shown.update(_probs(c1=0.30, c2=0.36))] == ["c1"]  # one step
    assert [p.label for p in shown.update(_probs(c1=0.30, c2=0.45))] == ["c2"]  # two steps


def test_enter_and_leave_thresholds_are_reached_at_their_values() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=3, enter=0.25, leave=0.125)  # (exact in float32)
    assert [p.label for p in shown.update(_probs(c1=0.25))] == ["c1"]  # reaches enter
    assert [p.label for p in shown.update(_probs(c1=0.125))] == ["c1"]  # not under leave
    assert ShownList(labels, k=3, enter=0.3, leave=0.5).leave == 0.3  # leave never above enter


def test_a_tie_below_the_top_keeps_the_order_shown() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=3, enter=0.1)
    shown.update(_probs(c9=0.6, c7=0.3, c3=0.2))
    assert [p.label for p in shown.update(_probs(c9=0.6, c7=0.25, c3=0.25))] == [
        "c9", "c7", "c3"]


def test_a_top_label_under_leave_is_not_held_however_close() -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    shown = ShownList(labels, k=2, enter=0.3, leave=0.28, logit_step=0.19)
    shown.update(_probs(c1=0.5))
    assert [p.label for p in shown.update(_probs(c1=0.27, c2=0.32))] == ["c2"]
