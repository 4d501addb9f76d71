"""``--history auto``: long while the scene stays, restarted when it changes.

The change test on synthetic features, then the behaviour the issue asks for on the
real A0 and the shared clips: a change is caught within a second and the new action
shown no later than a reset at the change would show it plus a second; a steady loop
never changes what is shown; the memory shown to the user follows.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared
from reference_loop import sampled_rgb_frames

from movinet_pi.display.shown import ShownList
from movinet_pi.model.change import NoveltyDetector, scene_start
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.history import AdaptiveHistory, PlainHistory
from movinet_pi.model.labels import Labels

FPS = 5


def _scene(rng: np.random.Generator, centre: np.ndarray, n: int) -> list[np.ndarray]:
    return [np.clip(centre + 0.05 * rng.standard_normal(centre.size), 0, None) for _ in range(n)]


def test_a_steady_scene_is_not_novel_and_a_new_one_is() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(480), rng.random(480)
    b[:240] = 0.0  # a different pattern of active features
    detector = NoveltyDetector(window=3, horizon=50)
    steady = [detector.add(f) for f in _scene(rng, a, 40)]
    assert steady[:6] == [None] * 6  # a window, then one earlier window that does not overlap
    assert max(v for v in steady if v is not None) < 0.05
    after = [detector.add(f) for f in _scene(rng, b, 3)]
    assert after[-1] > 0.2
    assert detector.new_frames() == 3  # all three frames of the window belong to b


def test_the_change_point_is_where_the_frames_stop_resembling_the_past() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(480), rng.random(480)
    b[240:] = 0.0
    detector = NoveltyDetector(window=3, horizon=50)
    for f in _scene(rng, a, 20) + _scene(rng, b, 2):
        detector.add(f)
    assert detector.new_frames() == 2  # the oldest frame of the window is still a's


def test_a_reset_detector_behaves_as_a_new_one() -> None:
    rng = np.random.default_rng(4)
    frames = _scene(rng, rng.random(480), 12) + _scene(rng, rng.random(480), 6)
    used, new = NoveltyDetector(window=3, horizon=50), NoveltyDetector(window=3, horizon=50)
    for f in _scene(rng, rng.random(480), 30):
        used.add(f)
    used.reset()
    assert [used.add(f) for f in frames] == [new.add(f) for f in frames]


def test_forgetting_the_past_keeps_the_frames_but_compares_with_nothing() -> None:
    rng = np.random.default_rng(3)
    detector = NoveltyDetector(window=3, horizon=50)
    for f in _scene(rng, rng.random(480), 10):
        detector.add(f)
    detector.forget_past()
    assert detector.add(rng.random(480)) is None


# --- on the real model and clips ------------------------------------------------------------

def _pictures(levels: list[float]) -> list[np.ndarray]:
    """Tiny model inputs whose consecutive jumps are the steps between ``levels``."""
    return [np.full((4, 4, 3), level, np.float32) for level in levels]


def test_a_cut_the_features_place_late_is_moved_back_to_the_jump_in_the_pictures() -> None:
    # old scene (busy: jumps of 40), a cut of 80, new scene (jumps of 5); the features
    # gave only the last two of the new scene's three frames
    inputs = _pictures([0, 40, 0, 40, 120, 125, 120])
    assert scene_start(inputs, new=2, lookback=3) == 3


def test_one_odd_frame_in_the_old_scene_does_not_draw_the_start_to_it() -> None:
    inputs = _pictures([0, 0, 0, 150, 0, 0, 80, 82, 80])  # a flash, then a cut
    assert scene_start(inputs, new=2, lookback=3) == 3


def test_without_a_cut_the_start_stays_near_where_the_features_put_it() -> None:
    assert scene_start(_pictures([30] * 7), new=2, lookback=3) == 2  # nothing moves
    ramp = _pictures([0, 10, 20, 30, 40, 50, 60])  # a gradual change
    assert 2 <= scene_start(ramp, new=2, lookback=3) <= 5
    assert scene_start(ramp[:2], new=5, lookback=3) == 2  # never more than there are


CLIPS = {"carving_ice": "carving ice", "arm_wrestling": "arm wrestling",
         "clean_and_jerk": "clean and jerk", "reading_book": "reading book"}


@pytest.fixture(scope="module")
def frames() -> dict[str, list[np.ndarray]]:
    return {name: list(sampled_rgb_frames(require_shared("videos", f"{name}.mp4")))
            for name in CLIPS}


def _looped(clip: list[np.ndarray], seconds: float) -> list[np.ndarray]:
    return list(itertools.islice(itertools.cycle(clip), int(seconds * FPS)))


def _shown(clf: StreamingClassifier, labels: Labels, clip: list[np.ndarray]) -> list[str]:
    shown = ShownList(labels, 3, 0.1)
    out = []
    for rgb in clip:
        top = shown.update(clf.step(rgb))
        out.append(top[0].label if top else "none")
    return out


def _settled_at(shown: list[str], label: str) -> float | None:
    """Seconds until ``label`` is shown on top and stays to the end (None: never)."""
    wrong = [i for i, s in enumerate(shown) if s != label]
    if wrong and wrong[-1] == len(shown) - 1:
        return None
    return (wrong[-1] + 1) / FPS if wrong else 0.0


@pytest.mark.parametrize(("a", "b"), [("carving_ice", "arm_wrestling"),
                                      ("arm_wrestling", "carving_ice"),
                                      ("reading_book", "clean_and_jerk"),
                                      # the features place this cut a frame late
                                      ("arm_wrestling", "reading_book")])
def test_after_a_minute_of_one_action_the_next_is_shown_as_fast_as_after_a_reset(
    a0_model: Path, kinetics_labels: Labels, frames: dict, a: str, b: str
) -> None:
    plain = StreamingClassifier.from_file(a0_model, kinetics_labels, history=PlainHistory())
    oracle = _settled_at(_shown(plain, kinetics_labels, _looped(frames[b], 20)), CLIPS[b])
    assert oracle is not None

    policy = AdaptiveHistory(FPS)
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, history=policy)
    _shown(clf, kinetics_labels, _looped(frames[a], 60))
    before = policy.changes
    after = _shown(clf, kinetics_labels, _looped(frames[b], 20))
    reaction = _settled_at(after, CLIPS[b])
    assert policy.changes > before, "the change of action must be detected"
    assert reaction is not None and reaction <= oracle + 1.0, (reaction, oracle)
    # The plain model, for comparison, is still showing the old action 20 s later.
    plain.reset()
    _shown(plain, kinetics_labels, _looped(frames[a], 60))
    assert _settled_at(_shown(plain, kinetics_labels, _looped(frames[b], 20)), CLIPS[b]) is None


@pytest.mark.parametrize("name", ["carving_ice", "arm_wrestling"])
def test_a_steady_loop_never_changes_what_is_shown(
    a0_model: Path, kinetics_labels: Labels, frames: dict, name: str
) -> None:
    # Loop cuts and the clips' own camera cuts are not changes of action.
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, history=AdaptiveHistory(FPS))
    shown = _shown(clf, kinetics_labels, _looped(frames[name], 120))
    settled = shown[3 * FPS:]
    assert set(settled) == {CLIPS[name]}


def test_the_memory_restarts_at_a_change_and_grows_to_its_cap(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    policy = AdaptiveHistory(FPS)
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, history=policy)
    memory = []
    for rgb in _looped(frames["carving_ice"], 40) + _looped(frames["arm_wrestling"], 4):
        clf.step(rgb)
        memory.append(policy.memory_steps)
    assert memory[:5] == [1, 2, 3, 4, 5]
    assert max(memory[:200]) == 150  # 30 s, then a moving average
    restart = next(i for i in range(200, 210) if memory[i] < 150)
    assert restart < 205  # the change is found within a second of the new action
    assert memory[restart] == restart - 199  # and restarted on its first frame exactly
    assert memory[-1] < 25


def test_a_snapshot_branches_the_stream_exactly(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, history=AdaptiveHistory(FPS))
    _shown(clf, kinetics_labels, _looped(frames["carving_ice"], 12))
    saved = clf.snapshot()
    ending = _looped(frames["arm_wrestling"], 4)
    first = [clf.step(rgb).copy() for rgb in ending]
    changes = clf.history.changes
    _shown(clf, kinetics_labels, _looped(frames["reading_book"], 12))  # go elsewhere
    clf.restore(saved)
    again = [clf.step(rgb).copy() for rgb in ending]
    np.testing.assert_array_equal(np.array(first), np.array(again))
    assert clf.history.changes == changes


@pytest.mark.parametrize(("name", "label"), [("playing_ukulele", "playing ukulele"),
                                             ("playing_drums", "playing drums")])
def test_a_clip_longer_than_the_plain_phase_scores_as_the_plain_model_does(
    a0_model: Path, kinetics_labels: Labels, name: str, label: str
) -> None:
    # The two shared clips that run past 30 s, where the moving average takes over: one
    # pass keeps the plain model's top-1 and its score to within 0.02 (the goal).
    clip = list(sampled_rgb_frames(require_shared("videos", f"{name}.mp4")))
    assert len(clip) > 30 * FPS
    scores = {}
    for policy in (PlainHistory(), AdaptiveHistory(FPS)):
        clf = StreamingClassifier.from_file(a0_model, kinetics_labels, history=policy)
        for rgb in clip:
            probs = clf.step(rgb)
        assert kinetics_labels[int(probs.argmax())] == label
        scores[policy.label] = float(probs[kinetics_labels.names.index(label)])
    assert scores["auto"] >= scores["inf"] - 0.02, scores
