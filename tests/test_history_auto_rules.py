"""``--history auto``'s rules one by one, on a synthetic stream (``memory_sim.Sim``): the new
view's fork, a box move and a cut together, what a fork shows and folds back, the same-place
question, the colour and feature tests, the moving average's weight and fed count, and the
head's rounding. (A mutation check found these untested by the tests on real clips.)"""
from __future__ import annotations

import numpy as np
import pytest
from memory_sim import OTHER, ROOM, THIRD, Sim, action

from movinet_pi.model.adaptive import AutoSettings
from movinet_pi.model.change import ColourMemory
from movinet_pi.model.history import ExponentialHistory, Grid
from movinet_pi.model.pools import FeatureTensor, PoolSlot

UNSURE = action(2, 0.5) + action(3, 0.5)  # an answer split between two actions: 0.497 each


def _view_fork(sim: Sim, memory: int = 20) -> None:
    sim.run(ROOM, action(0), memory)
    assert sim.policy.new_view()


# --- another view -----------------------------------------------------------------------------

def test_a_views_fork_is_not_folded_back_while_a_late_sure_disagreement_goes_on() -> None:
    # The fresh view names the old action for 4 frames, then surely another from frame 9:
    # at fold_s (frame 10) it is disagreeing, so no fold; 8 in a row (frame 16) drop the old.
    sim = Sim()
    _view_fork(sim)
    sim.run(ROOM, action(0), 4)
    sim.run(ROOM, action(1), 8)  # frames 5-12: sure of 1 from frame 9
    assert sim.policy.folds == 0 and sim.policy._fork is not None
    sim.run(ROOM, action(1), 6)
    assert sim.policy.changes == 1 and sim.policy.folds == 0


def test_a_views_fork_is_folded_back_at_question_s_at_the_latest() -> None:
    # A disagreement that would take longer than question_s to count as sure (same_place_s 20 s)
    # is folded back at question_s (10 s = 50 frames), never kept.
    sim = Sim(AutoSettings(same_place_s=20.0))
    _view_fork(sim)
    sim.run(ROOM, action(1), 49)
    assert sim.policy._fork is not None and sim.policy.folds == 0
    sim.step(ROOM, action(1))
    assert sim.policy._fork is None and sim.policy.folds == 1 and sim.policy.changes == 0


def test_an_unsure_answer_of_another_action_does_not_end_a_views_memory() -> None:
    # A view's fresh answer agrees little with the old (0.03) but is sure of nothing: folded back.
    sim = Sim()
    _view_fork(sim)
    sim.run(ROOM, UNSURE, 12)
    assert sim.policy.folds == 1 and sim.policy.changes == 0


def test_a_second_box_move_during_a_views_fork_is_a_fork_of_its_own() -> None:
    # Not a restart of the first fork's fresh stream (that is for a box following a *cut*):
    # the undecided fork becomes part of the old memory.
    sim = Sim()
    _view_fork(sim)
    sim.run(ROOM, action(0), 4)
    sim.policy.new_view()
    sim.step(ROOM, action(0))
    assert sim.policy.forks == 2 and sim.policy._fork.view
    assert sim.policy.memory_steps == 20 + 4 + 1


# --- a cut and a box move a few frames apart ---------------------------------------------------

def test_a_box_move_five_frames_after_a_cut_restarts_its_fresh_stream_and_forgets_its_start(
) -> None:
    # The box follows a cut 5 frames late (after its settle, before fold_s): one fork, started
    # again; when the same action folds back, only the restarted stream's first 3 frames are
    # left out (not those of the stream before the box moved).
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.run(OTHER, action(0), 5)
    assert sim.policy.forks == 1 and sim.policy._fork.frames == 5
    sim.policy.new_view()
    sim.step(OTHER, action(0))
    assert sim.policy.forks == 1 and sim.policy._fork.frames == 1 and not sim.policy._fork.view
    assert sim.zeroed[-1]  # the fresh stream started again on this frame
    sim.run(OTHER, action(0), 9)
    assert sim.policy.folds == 1 and sim.policy.changes == 0
    assert sim.policy.memory_steps == 20 + 10 - 3


def test_a_second_box_move_compares_with_what_was_shown_not_with_the_fresh_frames() -> None:
    # A box move, then another 2 frames later (inside the first view's settle): what was shown
    # was the old memory alone (action 0), though the fresh frames were strongly of action 1.
    # The second view's fresh stream, surely action 1, ends the old memory.
    sim = Sim()
    _view_fork(sim)
    sim.run(ROOM, action(1, 30.0), 2)
    sim.policy.new_view()
    sim.run(ROOM, action(1), 12)
    assert sim.policy.forks == 2 and sim.policy.changes == 1 and sim.policy.folds == 0


def test_a_box_move_after_a_restart_compares_with_what_was_shown_then() -> None:
    # A same-place change restarts the memory (shown at once from the question's frames); the box
    # moves at the very next frame. The view's fork compares with what was shown (the new
    # action), not with the pools' mean of that step (still the old action): the same action in
    # the new view folds back.
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    for _ in range(30):
        sim.step(ROOM, action(1))
        if sim.policy.changes:
            break
    assert sim.policy.changes == 1
    sim.policy.new_view()
    sim.run(ROOM, action(1), 12)
    assert sim.policy.folds == 1 and sim.policy.changes == 1


# --- a cut while a fork is undecided -----------------------------------------------------------

def test_a_cut_during_an_undecided_fork_keeps_that_fork_in_the_old_memory() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.run(OTHER, action(0), 5)  # a cut; undecided (the same action, not yet folded back)
    sim.run(THIRD, action(0), 10)  # another cut: a fork whose old memory is 20 + 5
    assert sim.policy.forks == 2 and sim.policy.folds == 1
    assert sim.policy.memory_steps == 20 + 5 + 10 - 3


def test_a_cut_inside_a_forks_settle_is_not_another_fork() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.step(OTHER, action(0))
    sim.step(THIRD, action(0))  # a cut one frame after a cut: the first one's fresh stream
    assert sim.policy.forks == 1 and sim.zeroed[-2:] == [True, False]


# --- folding back, what is shown during a fork ------------------------------------------------

@pytest.mark.parametrize("exposed", [True, False])
def test_folding_back_leaves_out_the_fresh_streams_first_frames_sums_too(exposed: bool) -> None:
    # (exposed=False: a model whose frame features are known only as its sum's change)
    sim = Sim(exposed=exposed)
    sim.run(ROOM, action(0), 20)
    sim.run(OTHER, action(0, 3.0), 3)  # the first frames (their sums unlike the rest)
    sim.run(OTHER, action(0), 7)
    assert sim.policy.folds == 1
    head = sim.slots[-1]
    np.testing.assert_allclose(head.buffer_in, action(0) * 27)
    assert int(head.count_in[0]) == 27


def test_folding_back_leaves_out_the_first_frames_of_the_head_pool_only() -> None:
    # A float model's other pools (squeeze-excitation context) add every fresh frame.
    sim = Sim(block_pool=True)
    sim.run(ROOM, action(0), 20, block=action(1))
    sim.run(OTHER, action(0), 10, block=action(2))
    assert sim.policy.folds == 1
    block, head = sim.slots
    np.testing.assert_allclose(block.buffer_in, 20 * action(1) + 10 * action(2))
    assert int(block.count_in[0]) == 30 and int(head.count_in[0]) == 27


def test_during_a_fork_the_old_memory_and_the_fresh_frames_but_the_first_are_shown() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.run(OTHER, action(0, 3.0), 3)
    for i in range(1, 5):
        sim.step(OTHER, action(0, 2.0))
        expected = (20 * action(0) + i * action(0, 2.0)) / (20 + i)
        np.testing.assert_allclose(sim.policy.shown_mean, expected, rtol=1e-6)


# --- the same place, another action ------------------------------------------------------------

def test_no_question_is_asked_by_the_features_a_cut_already_found() -> None:
    # After a cut decided at once, the fresh features stay new against the old scene's windows
    # for a few steps: that change was found, no question opens.
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    for _ in range(10):
        sim.step(OTHER, action(1))
        assert sim.policy._question is None
    assert sim.policy.changes == 1


def test_a_question_compares_with_what_was_shown_before_its_frames() -> None:
    # Strong frames of action 1 at the same place (features dominated by a pose both share, so
    # that the first is not yet new enough): the question opens at the 2nd, its first frame
    # back, and must compare with the answer of before them (action 0), not with that of its
    # previous step (20 x action 0 + 1 x 30 x action 1: already action 1).
    a, b = action(0, pose=0, pose_strength=10.0), action(1, 30.0, pose=0, pose_strength=10.0)
    sim = Sim()
    sim.run(ROOM, a, 20)
    sim.step(ROOM, b)
    assert sim.policy._question is None
    sim.step(ROOM, b)
    assert sim.policy._question is not None and int(sim.policy._question.before.argmax()) == 0
    sim.run(ROOM, b, 10)
    assert sim.policy.changes == 1


def _restart(sim: Sim, frames: int = 30, **kw) -> int:
    """Feed action 1 at the same place until the memory restarts; how many frames it took."""
    for i in range(1, frames + 1):
        sim.step(ROOM, action(1), **kw)
        if sim.policy.changes:
            return i
    raise AssertionError("no restart")


def test_a_restart_holds_every_frame_since_the_change_and_only_those() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    took = _restart(sim)
    head = sim.slots[-1]
    assert int(head.count_in[0]) == took  # every frame of action 1, the first included
    np.testing.assert_allclose(head.buffer_in, took * action(1))


def test_a_restart_holds_the_frames_as_the_int8_model_adds_them() -> None:
    # On a grid of 0.5 a feature of 0.8 adds 1.0, as the plain model adds it: the restarted sum
    # is of those, not of the features themselves.
    sim = Sim(grid=Grid(scale=0.5, zero_point=-128, qmin=-128, qmax=127))
    sim.run(ROOM, action(0), 20)
    for took in range(1, 31):  # noqa: B007 (how many it took, after the loop)
        sim.step(ROOM, action(1, 0.8))
        if sim.policy.changes:
            break
    head = sim.slots[-1]
    assert int(head.count_in[0]) == took
    np.testing.assert_allclose(head.buffer_in[1], 1.0 * took)


def test_the_other_pools_keep_their_means_at_a_restart() -> None:
    sim = Sim(block_pool=True)
    sim.run(ROOM, action(0), 20, block=action(2))
    took = _restart(sim, block=action(3))
    block = sim.slots[0]
    mean = (20 * action(2) + took * action(3)) / (20 + took)
    np.testing.assert_allclose(block.buffer_in, mean * took, rtol=1e-6)
    assert int(block.count_in[0]) == took


def test_a_disagreeing_question_is_not_replaced_by_a_new_change() -> None:
    # Action 1 opens a question that disagrees surely; action 2 comes 6 frames in: the question
    # goes on (its answer still surely not action 0) and restarts at its 11th frame, not later.
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.run(ROOM, action(1), 6)
    sim.run(ROOM, action(2), 5)
    assert sim.policy.changes == 1


def test_an_unsure_disagreement_at_the_same_place_does_not_restart_the_memory() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.run(ROOM, UNSURE, 60)
    assert sim.policy.changes == 0


def test_a_question_that_agrees_is_dropped_after_question_s() -> None:
    # A new pose of the same action: features new (the head ignores them), answer the same.
    sim = Sim()
    sim.run(ROOM, action(0), 20)
    sim.run(ROOM, action(0, pose=1), 3)
    assert sim.policy._question is not None
    sim.run(ROOM, action(0, pose=1), 46)
    assert sim.policy._question is not None  # 49 frames since the change
    sim.step(ROOM, action(0, pose=1))
    assert sim.policy._question is None and sim.policy.changes == 0


# --- the colours: forgetting at a change, sudden AND novel --------------------------------------

def test_the_colours_forget_only_the_pictures_before_the_change_began() -> None:
    # 60 frames of one action, then a cut decided at the fork's 3rd frame (OTHER, THIRD, THIRD:
    # the cut to THIRD falls in the fork's settle). The pictures since the cut stay: OTHER is
    # no news after it.
    sim = Sim()
    sim.run(ROOM, action(0), 60)
    sim.step(OTHER, action(1))
    sim.run(THIRD, action(1), 2)
    assert sim.policy.changes == 1 and sim.policy.forks == 1
    sim.step(OTHER, action(1))
    assert sim.policy.forks == 1


def test_after_a_cut_ends_a_long_memory_going_back_to_its_place_is_a_cut() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 60)  # over question_s
    sim.run(OTHER, action(1), 5)  # a cut, decided at its 3rd frame: another action
    assert sim.policy.changes == 1
    sim.step(ROOM, action(0))  # back: the room's pictures were forgotten at the change
    assert sim.policy.forks == 2


def test_a_picture_new_but_no_jump_is_not_another_place() -> None:
    # 60 % of the room's rows and 40 % of another's: ~40 % of the mass is new (over `novel`),
    # but that is no jump (under `sudden`).
    colours = ColourMemory(horizon=50, sudden=0.45, novel=0.3)
    mixed = ROOM.copy()
    rows = int(0.4 * ROOM.shape[0])
    mixed[:rows] = OTHER[:rows]
    hist = [colours.histogram(p) for p in (ROOM, mixed)]
    lost = 1 - float(np.minimum(*hist).sum())
    assert 0.3 <= lost < 0.45  # the premise
    colours.add(ROOM)
    assert not colours.add(mixed)


def test_the_novelty_of_features_is_against_the_nearest_past_window() -> None:
    from movinet_pi.model.change import NoveltyDetector
    a, b = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    detector = NoveltyDetector(window=3, horizon=50)
    for f in [a] * 12 + [b] * 12:
        detector.add(f)
    novelty = [detector.add(a) for _ in range(3)]
    assert novelty[-1] < 0.05  # back to a: as seen before, though half the past is b


# --- memory_steps -------------------------------------------------------------------------------

def test_memory_steps_during_a_fork_is_at_most_the_long_memory() -> None:
    sim = Sim()
    sim.run(ROOM, action(0), 160)
    sim.step(OTHER, action(0))
    assert sim.policy.memory_steps == 150


# --- ExponentialHistory ------------------------------------------------------------------------

def _float_slot(size: int = 4) -> PoolSlot:
    z = lambda: np.zeros(size, np.float32)  # noqa: E731
    return PoolSlot("head_pool", z(), z(), np.zeros(1, np.int32), np.zeros(1, np.int32), None)


def _model_step(slot: PoolSlot, features: np.ndarray) -> None:
    """A plain model's step: the sum (snapped on an int8 grid) plus the frame's features."""
    if slot.feature is not None:
        slot.feature[:] = features
    total = slot.buffer_in.astype(np.float64) + features
    if slot.grid is not None:
        total = slot.grid.snap(total)
    slot.buffer_out[:] = total
    slot.count_out[:] = slot.count_in + 1


def test_each_frame_weighs_one_in_n_plus_one_of_the_moving_average() -> None:
    policy = ExponentialHistory(4)
    slot = _float_slot()
    policy.attach([slot])
    x, y = np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])
    for f in [x] * 4 + [y]:
        _model_step(slot, f)
        policy.carry()
    fed = slot.buffer_in / slot.count_in[0]
    np.testing.assert_allclose(fed, (4 * x + y) / 5, rtol=1e-6)
    assert int(slot.count_in[0]) == 4


def _int8_slot() -> PoolSlot:
    grid = Grid(scale=0.5, zero_point=-128, qmin=-128, qmax=127)  # tops at 127.5
    z = lambda: np.zeros(4, np.float32)  # noqa: E731
    return PoolSlot("head_pool", z(), z(), np.zeros(1, np.int32), np.zeros(1, np.int32), grid,
                    feature=z(), feature_grid=FeatureTensor(0, 0.0, 0))


def test_the_moving_average_is_fed_with_a_count_lowered_below_the_grids_top() -> None:
    policy = ExponentialHistory(10)
    slot = _int8_slot()
    policy.attach([slot])
    for _ in range(10):
        _model_step(slot, np.array([15.0, 0, 0, 0]))
        policy.carry()  # the plain phase: the model's own sum, saturated at 127.5
    _model_step(slot, np.array([15.0, 0, 0, 0]))
    policy.carry()
    mean = (10 * 12.75 + 15.0) / 11
    assert int(slot.count_in[0]) == 9  # 10 frames of the mean would be clipped at the top
    assert slot.buffer_in[0] / slot.count_in[0] == pytest.approx(mean, abs=0.06)


def test_a_memory_loaded_past_the_grids_top_is_fed_with_a_lower_count() -> None:
    policy = ExponentialHistory(10)
    slot = _int8_slot()
    policy.attach([slot])
    policy.load([(np.array([200.0, 0, 0, 0]), 10)])  # a mean of 20: 10 frames would clip
    assert int(slot.count_in[0]) == 6
    assert slot.buffer_in[0] / slot.count_in[0] == pytest.approx(20.0)
    assert policy.memory_steps == 10


# --- HeadScorer: an int8 mean rounds to the nearest step -----------------------------------------

def test_an_int8_head_input_rounds_the_mean_to_the_nearest_step(a2_model) -> None:
    from test_head import _scorer
    scorer = _scorer(a2_model)
    scale, _ = scorer._grid
    steps = np.random.default_rng(0).integers(0, 40, scorer.size)
    on = (steps * scale).astype(np.float64)
    np.testing.assert_array_equal(scorer.logits(on + 0.4 * scale), scorer.logits(on))
    np.testing.assert_array_equal(scorer.logits(on - 0.4 * scale), scorer.logits(on))
