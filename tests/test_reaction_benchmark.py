"""``benchmarks/reaction.py``'s bookkeeping (``reaction_figures.py``): its out-of-fold
figures take each fold's items from the setting chosen without them, and a reaction is timed
as the app shows it.

(The settings of ``--history auto`` were once tuned on the same clips they were scored on;
issue 26's fifth failure. These tests keep the benchmark's cross-validation honest.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reaction():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("reaction", ROOT / "benchmarks" / "reaction.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))  # as when run: its helpers beside it
    sys.modules["reaction"] = module
    spec.loader.exec_module(module)
    return sys.modules["reaction_figures"]  # its bookkeeping, as reaction.py imported it


def test_a_reaction_is_when_the_label_comes_on_top_to_stay(reaction) -> None:  # type: ignore[no-untyped-def]
    fps = reaction.FPS
    assert reaction.settled_at([7, 7, 7], 7) == 0.0
    assert reaction.settled_at([1, 7, 1, 7, 7], 7) == 3 / fps  # the last wrong step counts
    assert reaction.settled_at([7, 7, 1], 7) is None  # not on top at the end: never


def test_out_of_fold_takes_each_folds_items_from_the_setting_chosen_without_it(
        reaction) -> None:  # type: ignore[no-untyped-def]
    def outcome(tag: float) -> object:
        out = reaction.Outcome()
        for clip in ("a", "b", "c", "d"):
            out.single[clip] = (0, tag)
            out.first_pass[clip] = int(tag)
            out.flicker[clip] = int(tag)
            out.held_60s[clip] = True
        for a, b in (("a", "b"), ("b", "a"), ("c", "d"), ("d", "a")):
            out.pairs[(a, b, 60.0)] = tag
        out.triples[("a", "b", "c")] = (tag, tag)
        out.triples[("a", "c", "d")] = (tag, tag)
        return out

    runs = {"one": outcome(1.0), "two": outcome(2.0)}
    fold_of = {"a": 0, "b": 0, "c": 1, "d": 1}
    got = reaction.out_of_fold(runs, {0: "one", 1: "two"}, fold_of)
    assert {k: v[1] for k, v in got.single.items()} == {"a": 1.0, "b": 1.0, "c": 2.0, "d": 2.0}
    assert got.flicker == {"a": 1, "b": 1, "c": 2, "d": 2}
    assert got.first_pass == {"a": 1, "b": 1, "c": 2, "d": 2}
    # a pair belongs to the fold of its B, the clip whose reaction it times
    assert got.pairs == {("a", "b", 60.0): 1.0, ("b", "a", 60.0): 1.0,
                         ("c", "d", 60.0): 2.0, ("d", "a", 60.0): 1.0}
    # a three-action run: its change to B from B's fold's setting, to C from C's
    assert got.triples == {("a", "b", "c"): (1.0, 2.0), ("a", "c", "d"): (2.0, 2.0)}


def test_the_objective_puts_accuracy_and_steadiness_before_speed(reaction) -> None:  # type: ignore[no-untyped-def]
    fast_but_wrong = reaction.Figures(kept=3, clips=4, reaction={60.0: [0.0] * 10})
    slow_but_right = reaction.Figures(kept=4, clips=4, reaction={60.0: [2.0] * 10})
    assert slow_but_right.objective() < fast_but_wrong.objective()
    faster = reaction.Figures(kept=4, clips=4, reaction={60.0: [0.0] * 9 + [None]})
    assert faster.objective() < slow_but_right.objective()


def test_a_first_pass_changing_its_label_more_often_than_the_plain_models_is_restless(
        reaction) -> None:  # type: ignore[no-untyped-def]
    # Cartwheeling at sudden=0.35: its first pass forked at its own cuts and named three other
    # actions on the way (6 changes of the shown top-1, the plain model 4); loops did not see it.
    labels = type("Labels", (), {"names": ["cartwheeling", "tiptoeing"]})()
    clips = {n: reaction.Clip(n, "cartwheeling", 8.0, []) for n in ("fork", "calm", "same")}

    def outcome(first_pass: dict[str, int]) -> object:
        out = reaction.Outcome()
        for name in clips:
            out.single[name], out.flicker[name], out.held_60s[name] = (0, 0.9), 0, True
        out.first_pass.update(first_pass)
        return out

    plain = outcome({"fork": 4, "calm": 4, "same": 4})
    run = outcome({"fork": 6, "calm": 3, "same": 4})
    orc = reaction.Oracle({}, {}, {})
    names = set(clips)
    f = reaction.figures(run, plain, plain, orc, labels, clips, names, names, names)
    assert f.restless == ["fork"]
    steady = reaction.figures(plain, plain, plain, orc, labels, clips, names, names, names)
    assert steady.restless == []
    # and it weighs with accuracy and steadiness, before any reaction time
    assert steady.objective() < f.objective()
    quick_but_restless = reaction.Figures(kept=4, clips=4, restless=["fork"],
                                          reaction={60.0: [0.0] * 10})
    slow = reaction.Figures(kept=4, clips=4, reaction={60.0: [2.0] * 10})
    assert slow.objective() < quick_but_restless.objective()


def test_a_dumped_run_reads_back_as_it_was_and_reports_the_same(
        reaction, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # --dump, then --from-dump: a two-hour run's report made again without measuring again.
    def outcome(tag: float) -> object:
        out = reaction.Outcome()
        for clip in ("a", "b"):
            out.single[clip], out.first_pass[clip] = (1, tag), 2
            out.flicker[clip], out.held_60s[clip] = 0, True
        out.pairs[("a", "b", 60.0)] = tag
        out.pairs[("b", "a", 5.0)] = None
        out.triples[("a", "b", "a")] = (tag, None)
        return out

    run = reaction.Run((5.0, 60.0), {"auto": outcome(0.4), "auto (sudden=0.35)": outcome(0.2)},
                       "auto", {0: "auto (sudden=0.35)", 1: "auto"}, {"a": 0, "b": 1},
                       outcome(9.0), outcome(7.0),
                       reaction.Oracle({"a": 0.2, "b": None}, {"a": 0.2, "b": 1.0},
                                       {"a": True, "b": False}), "step wall clock: -")
    reaction.dump(tmp_path / "run.json", run)
    assert reaction.load(tmp_path / "run.json") == run


def test_a_three_action_runs_change_to_b_counts_once_for_each_a_and_b(
        reaction) -> None:  # type: ignore[no-untyped-def]
    # A -> B is run once and then continued into several Cs: its change to B is one change.
    labels = type("Labels", (), {"names": ["x"]})()
    clips = {n: reaction.Clip(n, "x", 1.0, []) for n in ("a", "b", "c", "d")}
    run = reaction.Outcome()
    run.triples = {("a", "b", "c"): (4.6, 0.2), ("a", "b", "d"): (4.6, 0.4)}
    orc = reaction.Oracle({n: 0.0 for n in clips}, {n: 0.2 for n in clips},
                          {n: True for n in clips})
    f = reaction.figures(run, run, run, orc, labels, clips, set(), set(), set(clips))
    assert sorted(f.triples) == pytest.approx([0.2, 0.4, 4.4])  # B's 4.4 s once, not twice
