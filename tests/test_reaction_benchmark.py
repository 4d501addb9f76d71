"""``benchmarks/reaction.py``'s bookkeeping (``reaction_figures.py``): its out-of-fold
figures take each fold's items from the setting chosen without them, and a reaction is timed
as the app shows it.

(The settings of ``--history auto`` were once tuned on the same clips they were scored on;
issue 26's fifth failure. These tests keep the benchmark's cross-validation honest.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
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


# -- the scoring itself (a mutation check found it untested) ---------------------------------
class _Labels:
    names = ("zero", "one", "two", "three")


def _figures(rf, run, plain=None, window=None):  # type: ignore[no-untyped-def]
    clips = {n: rf.Clip(n, "one", 1.0, []) for n in run.single}
    every = set(clips)
    return rf.figures(run, plain or run, window or run, rf.Oracle({}, {}, {}), _Labels(),
                      clips, every, every, every)


def _outcome(rf, single, flicker=None, held=None):  # type: ignore[no-untyped-def]
    out = rf.Outcome()
    for name, answer in single.items():
        out.single[name], out.first_pass[name] = answer, 0
        out.flicker[name] = (flicker or {}).get(name, 0)
        out.held_60s[name] = (held or {}).get(name, False)
    return out


def test_changes_within_1_s_and_over_3_s_are_counted_as_the_goals_say(reaction) -> None:  # type: ignore[no-untyped-def]
    assert reaction.changes([1, 2, 1, 1, 2]) == 3 and reaction.changes([]) == 0
    figures = reaction.Figures()
    assert figures.within([1.0, 1.2, None, -0.4]) == 2  # 1 s itself is within
    assert figures.over([None, 4.0, 3.0, 1.0]) == 2  # never is over 3 s; 3 s itself is not


def test_a_clip_is_kept_with_the_same_top1_and_a_score_within_002(reaction) -> None:  # type: ignore[no-untyped-def]
    plain = _outcome(reaction, {"x": (1, 0.90), "y": (1, 0.90), "z": (1, 0.90)})
    run = _outcome(reaction, {"x": (1, 0.89), "y": (2, 0.90), "z": (1, 0.87)})
    figures = _figures(reaction, run, plain, plain)
    assert (figures.kept, figures.clips) == (1, 3)  # y: another top-1; z: 0.03 lower
    assert figures.made_wrong == 1 and figures.worst_drop == pytest.approx(0.03)


def test_flicker_limits_come_from_the_plain_model_and_the_window(reaction) -> None:  # type: ignore[no-untyped-def]
    answers = {"held": (1, .9), "lower": (1, .9), "ok": (1, .9)}
    plain = _outcome(reaction, answers, {"held": 0, "lower": 5, "ok": 5}, {"held": True})
    window = _outcome(reaction, answers, {"held": 0, "lower": 2, "ok": 2})
    run = _outcome(reaction, answers, {"held": 1, "lower": 3, "ok": 2})  # its own held: none
    figures = _figures(reaction, run, plain, window)
    assert figures.unsteady == ["held"]  # held by the plain model: must not change at all
    assert figures.over_limit == ["lower"]  # 3 > the lower of 5 and 2


def test_the_objective_puts_flicker_and_wrong_clips_before_speed(reaction) -> None:  # type: ignore[no-untyped-def]
    fast = dict(kept=4, clips=4, reaction={60.0: [0.0] * 10})
    slow = reaction.Figures(kept=4, clips=4, reaction={60.0: [2.0] * 10})
    assert slow.objective() < reaction.Figures(over_limit=["x"], **fast).objective()
    assert slow.objective() < reaction.Figures(unsteady=["x"], **fast).objective()
    assert slow.objective() < reaction.Figures(made_wrong=1, **fast).objective()
    assert (reaction.Figures(reaction={60.0: [0.0, 2.0]}).objective()
            < reaction.Figures(reaction={60.0: [0.0, None]}).objective())


def test_a_pairs_excess_is_over_its_oracle_and_an_unheld_b_is_reported_apart(reaction) -> None:  # type: ignore[no-untyped-def]
    run = reaction.Outcome()
    run.pairs = {("a", "b", 60.0): 3.0, ("c", "b", 60.0): None, ("a", "d", 60.0): 0.4,
                 ("a", "b", 5.0): 0.8}
    oracle = reaction.Oracle({"b": 1.0, "d": None}, {}, {"b": True, "d": False})
    clips = {n: reaction.Clip(n, "one", 1.0, []) for n in "abcd"}
    figures = reaction.figures(run, run, run, oracle, _Labels(), clips, set(), set(clips), set())
    assert figures.reaction == {60.0: [2.0, None], 5.0: [pytest.approx(-0.2)]}
    assert figures.apart == {60.0: [0.4]}


def test_a_three_action_runs_change_to_c_counts_when_b_never_settles(reaction) -> None:  # type: ignore[no-untyped-def]
    run = reaction.Outcome()
    run.triples = {("a", "b", "c"): (None, 1.5)}
    oracle = reaction.Oracle({"b": 0.0, "c": 0.5}, {"b": None, "c": 0.5},
                             {"b": True, "c": True})
    clips = {n: reaction.Clip(n, "one", 1.0, []) for n in "abc"}
    figures = reaction.figures(run, run, run, oracle, _Labels(), clips, set(), set(), set(clips))
    assert figures.triples == [1.0]


class _ShowsItsFrames:
    """A stream whose frames are the top-1 it shows (no model)."""

    def __init__(self, *args: object) -> None:
        self.step_ms: list[float] = []
        self.probs = np.zeros(4, np.float32)

    def reset(self) -> None:
        pass

    def save(self) -> None:
        pass

    def restore(self, saved: object) -> None:
        pass

    def run(self, frames):  # type: ignore[no-untyped-def]
        shown = list(frames)
        self.step_ms += [1.0] * len(shown)
        self.probs = np.full(4, 0.1, np.float32)
        self.probs[shown[-1]] = 0.6
        return shown


@pytest.fixture()
def script(reaction, monkeypatch):  # type: ignore[no-untyped-def]
    """reaction.py with a stream that shows its frames, over five made-up clips."""
    module = sys.modules["reaction"]
    monkeypatch.setattr(module, "Stream", _ShowsItsFrames)
    clips = {
        "a": reaction.Clip("a", "one", 2.0, [0] * 15 + [1] * 285),  # 60 s, on top from 3 s
        "b": reaction.Clip("b", "two", 0.0, [2] * 50),
        "c": reaction.Clip("c", "one", 0.0, [1] * 50),  # a's label: no pair with a
        "d": reaction.Clip("d", "three", 0.0, [3] * 49 + [0]),
        "e": reaction.Clip("e", "two", 0.0, [2, 0] * 25),
    }
    monkeypatch.setattr(module, "_WORKER", {"model": None, "labels": _Labels(), "roi": False,
                                            "clips": clips})
    return module


def test_a_clips_flicker_pairs_and_one_pass_score_are_measured_as_the_app_shows_them(
        script) -> None:  # type: ignore[no-untyped-def]
    out = script._measure_a((None, script.Protocol((10.0,), 2.0, False), "a"))
    # two minutes of a: changes after settle + 2 s (step 20) are at steps 300 and 315
    assert out.flicker == {"a": 2} and out.held_60s == {"a": False} and out.first_pass == {"a": 1}
    assert set(out.pairs) == {("a", "b", 10.0), ("a", "d", 10.0), ("a", "e", 10.0)}
    assert out.pairs[("a", "b", 10.0)] == 0.0 and out.pairs[("a", "d", 10.0)] is None
    d = script._measure_a((None, script.Protocol((10.0,), 2.0, False), "d"))
    assert d.single["d"] == (0, pytest.approx(0.1))  # the score of d's own label, not the top's


def test_an_oracle_holds_b_only_if_every_step_of_its_last_10_s_shows_it(script) -> None:  # type: ignore[no-untyped-def]
    assert script._oracle_of("b") == (0.0, 0.0, True)
    assert script._oracle_of("e") == (None, 4.8, False)


def test_a_dump_reads_back_whole_with_a_space_in_a_clips_name(reaction, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def outcome():  # type: ignore[no-untyped-def]
        out = _outcome(reaction, {"tai chi": (0, .5), "b": (0, .5)}, held={"tai chi": True})
        out.pairs[("tai chi", "b", 60.0)] = 1.0
        out.triples[("tai chi", "b", "tai chi")] = (1.0, 2.0)
        return out

    oracle = reaction.Oracle({"tai chi": .2, "b": .2}, {"tai chi": .2, "b": .2},
                             {"tai chi": True, "b": True})
    run = reaction.Run((60.0,), {"auto": outcome()}, "auto", {}, {"tai chi": 0, "b": 1},
                       outcome(), outcome(), oracle)
    reaction.dump(tmp_path / "run.json", run)
    assert reaction.load(tmp_path / "run.json") == run


def test_a_folder_of_clips_the_benchmark_cannot_score_is_refused_before_decoding(
        reaction) -> None:  # type: ignore[no-untyped-def]
    problem = sys.modules["reaction"].manifest_problem
    clip = reaction.Clip
    good = [clip("a", "one", 0.0, [], "a.mp4"), clip("b", "two", 0.0, [], "b.mkv")]
    assert problem(good, _Labels(), None) is None
    assert "b.mkv ('twice')" in problem([good[0], clip("b", "twice", 0.0, [], "b.mkv")],
                                        _Labels(), None)
    assert "two clips named a" in problem([*good, clip("a", "one", 0.0, [], "a.webm")],
                                          _Labels(), None)
    assert "2 clips for 4 folds" in problem(good, _Labels(), 4)
