"""``--history auto``: a 30 s memory that starts afresh when the action changes, and only then.

The scene tests on synthetic pictures and features first; then, on the real A0 and the
shared clips, the five ways the last design failed on footage it had not seen
(docs/live-fidelity.md): shot changes inside one action, slow settlers, short clips
looped, a change right after a change, and the new action shown no later than a reset
at the change would show it plus a second.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from camera_footage import in_a_dim_room, while_exposure_hunts
from conftest import require_shared
from reference_loop import sampled_rgb_frames

from movinet_pi.display.shown import ShownList
from movinet_pi.model.adaptive import AdaptiveHistory, AutoSettings
from movinet_pi.model.change import ColourMemory, NoveltyDetector, agreement
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.history import ExponentialHistory, HistoryPolicy, PlainHistory
from movinet_pi.model.labels import Labels

FPS = 5


# --- the tests of a scene, on synthetic pictures and features --------------------------------

def test_agreement_is_one_for_the_same_answer_and_near_zero_for_two_sure_different_ones() -> None:
    p = np.array([0.97, 0.01, 0.01, 0.01])
    q = np.array([0.01, 0.97, 0.01, 0.01])
    assert agreement(p, p) == pytest.approx(1.0)
    assert agreement(p, q) < 0.25
    assert agreement(np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])) == 0.0


def _room(seed: int, size: int = 96) -> np.ndarray:
    """A picture of a 'place': blocks of a few colours of its own, with some grain."""
    rng = np.random.default_rng(seed)
    palette = rng.integers(40, 216, (5, 3))
    blocks = rng.integers(0, 5, (size // 8, size // 8))
    picture = palette[np.kron(blocks, np.ones((8, 8), int))]
    return np.clip(picture + rng.integers(-24, 25, picture.shape), 0, 255).astype(np.uint8)


def test_colour_memory_tells_another_place_from_another_angle_of_the_same_one() -> None:
    colours = ColourMemory(horizon=50, sudden=0.45, novel=0.3)
    room, other = _room(1), _room(2)
    assert not colours.add(room)  # the first picture has nothing to be new against
    assert not colours.add(np.fliplr(room))  # same colours, elsewhere in the picture
    assert not colours.add(np.roll(room, 20, axis=0))  # the camera moved
    assert colours.add(other)  # another place
    assert not colours.add(other)
    assert not colours.add(room)  # back to a place of the last horizon: not news


def test_after_a_change_the_place_of_what_came_before_it_is_news_again() -> None:
    colours = ColourMemory(horizon=50, sudden=0.45, novel=0.3)
    room, other = _room(1), _room(2)
    for _ in range(10):
        colours.add(room)
    assert colours.add(other)
    colours.add(other)
    assert not colours.add(room)  # a cut back: the room is among the last pictures
    assert not colours.add(other)
    colours.add(other)
    colours.changed(2)  # the action changed at the last two pictures (both of `other`)
    assert colours.add(room)  # back to the room after a short interruption: news
    colours.changed(1)  # ... and a change again: the room is what the memory holds
    assert colours.add(other)
    assert not colours.add(room)  # the room since the change: not news


def test_the_colour_histogram_counts_every_fourth_pixel_each_way() -> None:
    # The model's input, sampled: 172x172 -> 43x43 pixels, each bin a share of them.
    picture = np.zeros((172, 172, 3), np.uint8)
    picture[..., 2] = 255  # blue everywhere...
    picture[::4, ::4] = (255, 0, 0)  # ...but on the pixels sampled, red
    picture[::4, ::8] = (0, 255, 0)  # and half of those green
    hist = ColourMemory(horizon=5, sudden=0.45, novel=0.3).histogram(picture)
    red, green = 7 * 64, 7 * 8  # bins of (r, g, b) at 8 levels a channel
    assert hist.sum() == pytest.approx(1.0)
    assert hist[green] == pytest.approx(22 / 43) and hist[red] == pytest.approx(21 / 43)


@pytest.mark.parametrize("shape", [(172, 172), (224, 224), (170, 174), (173, 171)])
def test_the_colour_histogram_is_the_same_whether_the_sides_divide_by_four_or_not(
    shape: tuple[int, int]
) -> None:
    # Sides that divide by the step take a nearest-neighbour shrink, the others a strided
    # copy: both must count exactly every fourth pixel each way.
    picture = np.random.default_rng(7).integers(0, 256, (*shape, 3), np.uint8)
    sampled = np.ascontiguousarray(picture[::4, ::4])
    expected = np.histogramdd(sampled.reshape(-1, 3) // 32, bins=[np.arange(9)] * 3)[0]
    hist = ColourMemory(horizon=5, sudden=0.45, novel=0.3).histogram(picture)
    np.testing.assert_allclose(hist, expected.reshape(-1) / sampled.shape[0] / sampled.shape[1],
                               rtol=1e-6)


def test_a_gradual_change_of_light_is_not_a_new_place_but_a_place_unseen_for_long_is() -> None:
    colours = ColourMemory(horizon=10, sudden=0.45, novel=0.3)
    room = _room(3).astype(np.int16)
    steps = [colours.add(np.clip(room + 6 * i, 0, 255).astype(np.uint8)) for i in range(20)]
    assert not any(steps)  # brighter and brighter, never a jump
    for _ in range(12):
        colours.add(_room(4))
    assert colours.add(room.astype(np.uint8))  # last seen more than `horizon` pictures ago


def _dimmed(picture: np.ndarray, light: float) -> np.ndarray:
    return (picture * light).astype(np.uint8)


def test_a_cut_between_two_dim_places_is_a_new_place() -> None:
    # In a dim room every colour falls into the lowest levels, where two places share
    # most of their mass: brightened first, as auto-exposure would, they do not.
    for seed in (1, 3, 5, 7):
        colours = ColourMemory(horizon=50, sudden=0.45, novel=0.3)
        room, other = _dimmed(_room(seed), 0.2), _dimmed(_room(seed + 1), 0.2)
        for _ in range(5):
            assert not colours.add(room)
        assert colours.add(other)


def test_dimming_the_light_of_a_place_is_not_a_new_place() -> None:
    # Below EXPOSURE_TARGET, as a camera's auto-exposure would, but before it has caught up.
    colours = ColourMemory(horizon=50, sudden=0.45, novel=0.3)
    room = _dimmed(_room(1), 0.85)
    for _ in range(5):
        colours.add(room)
    assert not colours.add(_dimmed(room, 0.5))  # a lamp switched off: the same place
    assert not colours.add(_dimmed(room, 0.3))


def test_an_int8_models_flipped_picture_has_the_histogram_of_the_picture() -> None:
    # The int8 models read v ^ 0x80; a dark picture flipped looks bright unless unflipped.
    picture = _dimmed(_room(5), 0.4)
    plain = ColourMemory(horizon=5, sudden=0.45, novel=0.3).histogram(picture)
    flipped = ColourMemory(horizon=5, sudden=0.45, novel=0.3, flip=0x80).histogram(picture ^ 0x80)
    np.testing.assert_array_equal(plain, flipped)


def test_a_dark_picture_is_brightened_before_its_colours_are_counted() -> None:
    # Mean 55 of 255: brought up to EXPOSURE_TARGET, every level twice as bright.
    picture = np.full((172, 172, 3), 55, np.uint8)
    hist = ColourMemory(horizon=5, sudden=0.45, novel=0.3).histogram(picture)
    assert int(np.argmax(hist)) == 3 * 64 + 3 * 8 + 3  # 110 is in level 3 of 8 (96-127)
    black = ColourMemory(horizon=5, sudden=0.45, novel=0.3).histogram(np.zeros_like(picture))
    assert hist.sum() == pytest.approx(1.0) and black[0] == pytest.approx(1.0)


def test_a_dark_picture_is_brightened_by_two_stops_at_most() -> None:
    # Mean 8 of 255 (nearly black): brought up 4 times, to 32 (level 1 of 8), not to 110; a
    # black frame stays nearly black, and its sensor noise is not made into colours.
    picture = np.full((172, 172, 3), 8, np.uint8)
    hist = ColourMemory(horizon=5, sudden=0.45, novel=0.3).histogram(picture)
    assert int(np.argmax(hist)) == 1 * 64 + 1 * 8 + 1 and hist.max() == pytest.approx(1.0)


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


def test_a_detector_told_the_threshold_finds_the_same_novel_windows_with_the_same_novelty(
) -> None:
    # Given the threshold it may stop at the newest past window when that is near enough:
    # every window over it must still be found, with its novelty exact.
    rng = np.random.default_rng(5)
    centres = rng.random((6, 480)) * (rng.random((6, 480)) < 0.3)  # each its own features
    frames = [f for centre in centres for f in _scene(rng, centre, 12)]
    full, quick = NoveltyDetector(window=3, horizon=20), NoveltyDetector(window=3, horizon=20)
    exact = [full.add(f) for f in frames]
    told = [quick.add(f, novel=0.3) for f in frames]
    assert sum(v is not None and v > 0.3 for v in exact) >= 5  # the premise: novel windows
    for e, t in zip(exact, told):
        assert (e is None) == (t is None)
        if e is not None:
            assert (e > 0.3) == (t > 0.3) and (t <= 0.3 or t == e)


def test_a_reset_detector_behaves_as_a_new_one() -> None:
    rng = np.random.default_rng(4)
    frames = _scene(rng, rng.random(480), 12) + _scene(rng, rng.random(480), 6)
    used, new = NoveltyDetector(window=3, horizon=50), NoveltyDetector(window=3, horizon=50)
    for f in _scene(rng, rng.random(480), 30):
        used.add(f)
    used.reset()
    assert [used.add(f) for f in frames] == [new.add(f) for f in frames]


# --- on the real model and clips -------------------------------------------------------------

NAMES = {"carving_ice": "carving ice", "arm_wrestling": "arm wrestling",
         "clean_and_jerk": "clean and jerk", "reading_book": "reading book",
         "tai_chi_2": "tai chi", "tai_chi": "tai chi", "cartwheeling": "cartwheeling",
         "opening_door": "opening door", "paragliding": "paragliding", "yoga": "yoga",
         "juggling_soccer_ball": "juggling soccer ball"}


@pytest.fixture(scope="module")
def frames() -> dict[str, list[np.ndarray]]:
    return {name: list(sampled_rgb_frames(require_shared("videos", f"{name}.mp4")))
            for name in NAMES}


def _in_a_dim_room(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A frame as a camera in a dim room films it, as an int8 model reads it."""
    small = cv2.resize(in_a_dim_room(rgb, rng), (172, 172), interpolation=cv2.INTER_AREA)
    return small ^ 0x80


def test_a_cut_between_two_clips_filmed_in_a_dim_room_is_another_place(
    frames: dict[str, list[np.ndarray]]
) -> None:
    # Every colour in the lowest levels: without brightening, 90 of these 110 cuts are
    # found, with it 107 (a cut the colours miss is left to the slower same-place question).
    rng = np.random.default_rng(7)
    dim = {name: [_in_a_dim_room(rgb, rng) for rgb in (*clip[-3:], clip[0])]
           for name, clip in frames.items()}
    found = []
    for a, b in itertools.permutations(dim, 2):
        colours = ColourMemory(horizon=150, sudden=0.45, novel=0.3, flip=0x80)
        for picture in dim[a][:3]:
            colours.add(picture)
        found.append(colours.add(dim[b][3]))
    assert sum(found) >= 0.95 * len(found)


def _looped(clip: list[np.ndarray], seconds: float) -> list[np.ndarray]:
    return list(itertools.islice(itertools.cycle(clip), int(seconds * FPS)))


def _shown(clf: StreamingClassifier, labels: Labels, clip: list[np.ndarray],
           shown: ShownList | None = None) -> list[str]:
    """The top label shown at each step (``shown``: a list that goes on, as the app's)."""
    shown = shown or ShownList(labels, 3, 0.1, logit_step=clf.logit_step)
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


def _auto(model: Path, labels: Labels) -> StreamingClassifier:
    return StreamingClassifier.from_file(model, labels, threads=1, history=AdaptiveHistory(FPS))


def _auto_after(model: Path, labels: Labels,
                clip: list[np.ndarray]) -> tuple[StreamingClassifier, AdaptiveHistory]:
    """An auto classifier that has been shown ``clip``, and its policy."""
    clf = _auto(model, labels)
    assert isinstance(clf.history, AdaptiveHistory)
    _shown(clf, labels, clip)
    return clf, clf.history


def _one_pass(clf: StreamingClassifier, clip: list[np.ndarray]) -> np.ndarray:
    clf.reset()
    for rgb in clip:
        probs = clf.step(rgb)
    return probs.copy()


@pytest.mark.parametrize("name", [
    "tai_chi_2",  # a broadcast: cuts between camera angles of one action
    "arm_wrestling",  # its last second is a glitch, then another angle
    "clean_and_jerk",  # its last second is another shot
    "cartwheeling", "tai_chi", "opening_door",  # slow settlers: 6-8 s to be sure
])
def test_one_pass_keeps_the_plain_models_answer(
    a0_model: Path, kinetics_labels: Labels, frames: dict, name: str
) -> None:
    plain = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                          history=PlainHistory())
    want = _one_pass(plain, frames[name])
    got = _one_pass(_auto(a0_model, kinetics_labels), frames[name])
    label = kinetics_labels.names.index(NAMES[name])
    assert int(got.argmax()) == int(want.argmax()) == label
    assert got[label] >= want[label] - 0.02, (got[label], want[label])


@pytest.mark.parametrize("name", ["paragliding", "carving_ice", "tai_chi_2", "arm_wrestling"])
def test_a_loop_never_changes_what_is_shown_once_it_settled(
    a0_model: Path, kinetics_labels: Labels, frames: dict, name: str
) -> None:
    # Short clips (a cut every 2-4 s), a broadcast's own cuts, a glitch: not changes of action.
    clf = _auto(a0_model, kinetics_labels)
    first = _shown(clf, kinetics_labels, frames[name])
    changes = clf.history.changes  # (carving ice begins with a black frame: a change)
    shown = first + _shown(clf, kinetics_labels, _looped(frames[name], 90))
    settled = _settled_at(shown, NAMES[name])
    assert settled is not None and settled <= 8.0, shown[::5]
    assert clf.history.changes == changes  # no loop starts the memory afresh


def test_a_shot_read_as_another_action_for_one_step_does_not_end_the_memory(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # Tai chi 2 (a broadcast) as a camera whose exposure hunts films it: at its cut to another
    # shot, 9.8 s in, the fresh stream's answer names another action at one step (under 0.5
    # sure), and no action surely after it. That one step ended the memory: on ai-edge-litert
    # "shaking hands" and "photobombing" were shown from 10.2 to 21 s, where the plain model
    # holds tai chi. Every cut inside the action must fold the memory back. (Under
    # tflite-runtime a stretch read as "photobombing" later still restarts it, at the same
    # place: the slower question's doing, not a cut's; docs/live-fidelity.md, Results.)
    clip = [while_exposure_hunts(rgb, i) for i, rgb in enumerate(frames["tai_chi_2"])]
    clf = _auto(a0_model, kinetics_labels)
    shown = _shown(clf, kinetics_labels, _looped(clip, 30))
    policy = clf.history
    assert isinstance(policy, AdaptiveHistory)
    assert policy.forks >= 2 and policy.folds == policy.forks, (policy.forks, policy.folds)
    assert shown[-1] == "tai chi"


def test_a_near_tie_of_two_actions_does_not_swap_the_top_label_on_every_wobble(
    a0_model: Path, kinetics_labels: Labels
) -> None:
    # Playing tennis (5 s, looped): on ai-edge-litert the 30 s memory puts two wrong actions one
    # step of the int8 logits' grid apart, either way round as the loop turns: the shown list
    # swapped them 8 times in 2 minutes, where the plain model and a 10 s window swap 2. The
    # goal: no more than either of them, on the same runtime.
    clip = list(sampled_rgb_frames(require_shared("videos", "playing_tennis.mp4")))

    runtime = ""

    def answers(history: HistoryPolicy) -> tuple[list[np.ndarray], float]:
        nonlocal runtime
        clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1, history=history)
        runtime = clf.runtime_name
        return [clf.step(rgb).copy() for rgb in _looped(clip, 120)], clf.logit_step

    def swaps(probs: list[np.ndarray], logit_step: float) -> int:
        app = ShownList(kinetics_labels, 3, 0.1, logit_step=logit_step)
        shown = [top[0].label if (top := app.update(p)) else "none" for p in probs]
        steady = shown[int(2.2 * FPS):]  # its settle time and 2 s, as the benchmark counts
        return sum(x != y for x, y in zip(steady, steady[1:]))

    auto, step = answers(AdaptiveHistory(FPS))
    held = swaps(auto, step)
    assert held <= min(swaps(*answers(PlainHistory())),
                       swaps(*answers(ExponentialHistory(10 * FPS))))
    # and the hold is what does it: the same answers in a list without it swap as often or
    # more; on ai-edge-litert, whose answers the near tie was found in, 8 times against 2
    # (under tflite-runtime 2.14 the two wrong actions do not tie there: 4 either way)
    unheld = swaps(auto, 0.0)
    assert step > 0 and unheld >= held
    if runtime == "ai-edge-litert":
        assert unheld > held


@pytest.mark.parametrize(("a", "b"), [("carving_ice", "arm_wrestling"),
                                      ("arm_wrestling", "carving_ice"),
                                      ("reading_book", "clean_and_jerk"),
                                      ("tai_chi_2", "juggling_soccer_ball")])
def test_after_a_minute_of_one_action_the_next_is_shown_as_fast_as_after_a_reset(
    a0_model: Path, kinetics_labels: Labels, frames: dict, a: str, b: str
) -> None:
    plain = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                          history=PlainHistory())
    oracle = _settled_at(_shown(plain, kinetics_labels, _looped(frames[b], 20)), NAMES[b])
    assert oracle is not None
    clf = _auto(a0_model, kinetics_labels)
    _shown(clf, kinetics_labels, _looped(frames[a], 60))
    reaction = _settled_at(_shown(clf, kinetics_labels, _looped(frames[b], 20)), NAMES[b])
    assert reaction is not None and reaction <= oracle + 1.0, (reaction, oracle)
    # The plain model, for comparison, is still showing the old action 20 s later.
    plain.reset()
    _shown(plain, kinetics_labels, _looped(frames[a], 60))
    assert _settled_at(_shown(plain, kinetics_labels, _looped(frames[b], 20)), NAMES[b]) is None


def test_a_change_right_after_a_change_is_found_too(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # A (60 s) -> B (5 s) -> C: the last design did not look for B -> C for 10 s.
    plain = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                          history=PlainHistory())
    clf = _auto(a0_model, kinetics_labels)
    _shown(clf, kinetics_labels, _looped(frames["reading_book"], 60))
    for clip, seconds in (("carving_ice", 5), ("yoga", 20)):
        oracle = _settled_at(_shown(plain, kinetics_labels, _looped(frames[clip], seconds)),
                             NAMES[clip])
        plain.reset()
        changes = clf.history.changes
        reaction = _settled_at(_shown(clf, kinetics_labels, _looped(frames[clip], seconds)),
                               NAMES[clip])
        assert oracle is not None and reaction is not None and reaction <= oracle + 1.0
        assert clf.history.changes > changes


def test_going_back_to_the_first_action_after_a_short_interruption_is_found_too(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # A (60 s) -> B (5 s) -> A: both scene tests looked 30 s back, so going back to A was not
    # news, and B's memory had to be outvoted: cartwheeling showed after 15-29 s, where a
    # reset at the change shows it after 8 s.
    plain = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                          history=PlainHistory())
    oracle = _settled_at(_shown(plain, kinetics_labels, _looped(frames["cartwheeling"], 30)),
                         "cartwheeling")
    clf = _auto(a0_model, kinetics_labels)
    _shown(clf, kinetics_labels, _looped(frames["cartwheeling"], 60))
    assert _settled_at(_shown(clf, kinetics_labels, _looped(frames["clean_and_jerk"], 5)),
                       "clean and jerk") is not None
    back = _settled_at(_shown(clf, kinetics_labels, _looped(frames["cartwheeling"], 30)),
                       "cartwheeling")
    assert oracle is not None and back is not None and back <= oracle + 1.0, (back, oracle)


def test_a_wrong_change_at_a_cut_of_a_loop_does_not_set_off_another_at_the_next(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # With a lower colour threshold, cartwheeling's own cuts fork, and a fresh stream is sure
    # of the wrong action (kicking soccer ball 0.81): a change. Were the pictures before it
    # forgotten, the next cut back would be news and fork again, loop after loop; a change
    # after a memory shorter than a Kinetics clip forgets nothing.
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                        history=AdaptiveHistory(FPS, AutoSettings(sudden=0.35)))
    shown = _shown(clf, kinetics_labels, _looped(frames["cartwheeling"], 20))
    changes = clf.history.changes
    shown += _shown(clf, kinetics_labels, _looped(frames["cartwheeling"], 90))
    assert clf.history.changes == changes
    settled = _settled_at(shown, "cartwheeling")
    assert settled is not None and settled <= 10.0, shown[::5]


def test_a_change_during_an_open_question_gets_a_question_of_its_own(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # Carving ice looped 10 s opens a question of its own (a pose change in the loop); reading
    # book then comes, and with the colour test off (as in a place of similar colours) only a
    # question can find it. The open question mixed 30 frames of ice with the book's and was
    # sure of nothing until it was dropped: the book showed after 10 s, where a reset shows
    # it at once.
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1, history=(
        AdaptiveHistory(FPS, AutoSettings(sudden=1.01))))  # no colour jump is that big
    if clf.runtime_name != "ai-edge-litert":  # whichever runtime was found, not asked for
        pytest.skip("a trace of ai-edge-litert's answers: under tflite-runtime 2.14 the book "
                    "shows after 4.8 s without the rule and 7.8 s with it")
    app = ShownList(kinetics_labels, 3, 0.1, logit_step=clf.logit_step)
    _shown(clf, kinetics_labels, _looped(frames["carving_ice"], 10), app)
    assert clf.history._question is not None  # the premise: a question is open at the change
    forks, changes = clf.history.forks, clf.history.changes
    shown = _shown(clf, kinetics_labels, _looped(frames["reading_book"], 30), app)
    settled = _settled_at(shown, "reading book")
    assert settled is not None and settled <= 3.0, shown[::5]
    assert clf.history.forks == forks and clf.history.changes == changes + 1


def test_at_another_place_the_stream_starts_afresh_on_that_very_frame(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # No replay: the fresh stream's pools after the cut are a reset stream's, bit for bit.
    clf = _auto(a0_model, kinetics_labels)
    _shown(clf, kinetics_labels, _looped(frames["carving_ice"], 40))
    changes = clf.history.changes
    fresh = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                          history=PlainHistory())
    memory = []
    for rgb in frames["arm_wrestling"][:4]:
        clf.step(rgb)
        fresh.step(rgb)
        memory.append(clf.history.memory_steps)
        np.testing.assert_array_equal(clf.history.slots[0].buffer_in,
                                      fresh.history.slots[0].buffer_in)
    assert clf.history.changes == changes + 1
    # The fresh answer is sure of arm wrestling at once: the old memory is gone at the first
    # decision, 0.6 s after the cut (an unsure answer would have to say it twice).
    assert memory[2:] == [3, 4]


def test_an_unsure_fresh_answer_naming_the_same_action_twice_ends_the_memory(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # With no answer sure enough (`sure` out of reach), the cut from carving ice to arm
    # wrestling is decided by the other rule alone: the fresh answer names arm wrestling at
    # its first decision, 0.6 s after the cut, and again at the next step, where the old
    # memory goes (not folded back 2 s later).
    policy = AdaptiveHistory(FPS, AutoSettings(sure=1.01))
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1, history=policy)
    _shown(clf, kinetics_labels, _looped(frames["carving_ice"], 40))
    changes = policy.changes
    memory = []
    for rgb in frames["arm_wrestling"][:6]:
        clf.step(rgb)
        memory.append(policy.memory_steps)
    assert policy.changes == changes + 1 and policy.folds == 0
    assert memory[2] > 6 and memory[3:] == [4, 5, 6]  # kept aside at 0.6 s, gone at 0.8 s


def _recoloured(clip: list[np.ndarray]) -> list[np.ndarray]:
    """The same action in another light: the colours' channels swapped."""
    return [np.ascontiguousarray(rgb[:, :, ::-1]) for rgb in clip]


def test_another_angle_with_the_same_answer_folds_the_old_memory_back(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    clf = _auto(a0_model, kinetics_labels)
    policy = clf.history
    assert isinstance(policy, AdaptiveHistory)
    _shown(clf, kinetics_labels, _looped(frames["juggling_soccer_ball"], 10))
    before = policy.memory_steps
    shown = _shown(clf, kinetics_labels, _looped(_recoloured(frames["juggling_soccer_ball"]), 3))
    assert policy.folds == 1 and policy.changes == 0
    assert set(shown) == {"juggling soccer ball"}  # never anything else on show
    assert policy.memory_steps == before + 15 - 3  # all but the fresh stream's first frames


def test_a_new_view_of_the_same_action_keeps_the_memory_and_another_action_drops_it(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # --roi auto's box moving is a cut whatever the colours: the same picture goes on here,
    # so only new_view() can make it one. The same action folds back; a new one is kept.
    clf = _auto(a0_model, kinetics_labels)
    policy = clf.history
    assert isinstance(policy, AdaptiveHistory)
    juggling = _looped(frames["juggling_soccer_ball"], 10)
    _shown(clf, kinetics_labels, juggling)
    before = policy.memory_steps
    clf.new_view()
    shown = _shown(clf, kinetics_labels, juggling[:15])
    assert policy.forks == 1 and policy.folds == 1 and policy.changes == 0
    assert set(shown) == {"juggling soccer ball"}
    assert policy.memory_steps == before + 15 - 3  # the memory was kept
    clf.new_view()
    shown = _shown(clf, kinetics_labels, _looped(frames["arm_wrestling"], 4))
    assert policy.forks == 2 and policy.changes == 1  # sure of another action, 1.6 s on end
    assert shown[-1] == "arm wrestling" and policy.memory_steps == 20  # the old one dropped


def test_a_new_view_starts_a_plain_or_windowed_stream_afresh(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    for policy in (PlainHistory(), ExponentialHistory(10 * FPS)):
        clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                            history=policy)
        for rgb in frames["carving_ice"][:5]:
            clf.step(rgb)
        clf.new_view()
        assert clf.steps == 0 and policy.memory_steps == 0


def test_without_a_head_to_score_with_auto_is_the_moving_average(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    clip = _looped(frames["carving_ice"], 8) + _looped(frames["arm_wrestling"], 4)
    auto, ema = AdaptiveHistory(FPS), ExponentialHistory(30 * FPS)
    results = []
    for policy in (auto, ema):
        clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1, history=policy)
        policy.attach(policy.slots, None)  # as for a model whose head cannot be read
        results.append([clf.step(rgb).copy() for rgb in clip])
    assert not auto.active
    np.testing.assert_array_equal(np.array(results[0]), np.array(results[1]))


def test_a_snapshot_branches_the_stream_exactly(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    clf = _auto(a0_model, kinetics_labels)
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
    # The two shared clips that run past 30 s, where the moving average takes over.
    clip = list(sampled_rgb_frames(require_shared("videos", f"{name}.mp4")))
    assert len(clip) > 30 * FPS
    scores = {}
    for policy in (PlainHistory(), AdaptiveHistory(FPS)):
        clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                            history=policy)
        probs = _one_pass(clf, clip)
        assert kinetics_labels[int(probs.argmax())] == label
        scores[policy.label] = float(probs[kinetics_labels.names.index(label)])
    assert scores["auto"] >= scores["inf"] - 0.02, scores


def test_a_box_that_follows_a_cut_late_restarts_the_cuts_fresh_stream_only(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # A cut to another place, then --roi auto's box moving two frames later: one change,
    # decided by the cut's own rule, on a fresh stream of the new box's frames alone.
    clf, policy = _auto_after(a0_model, kinetics_labels, _looped(frames["carving_ice"], 20))
    forks, changes = policy.forks, policy.changes
    wrestling = _looped(frames["arm_wrestling"], 6)
    for rgb in wrestling[:2]:
        clf.step(rgb)
    assert policy.forks == forks + 1 and policy._fork is not None and not policy._fork.view
    clf.new_view()
    clf.step(wrestling[2])
    assert policy.forks == forks + 1 and policy._fork.frames == 1  # started again, not a fork
    assert clf.history.slots[0].count_in.reshape(-1)[0] == 1  # the fresh stream: this frame
    shown = _shown(clf, kinetics_labels, wrestling[3:])
    assert policy.changes == changes + 1 and shown[-1] == "arm wrestling"


def test_a_cut_right_after_a_box_move_is_decided_by_the_cuts_rule(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    # The box moved on carving ice's last step; a frame later the video cuts to arm wrestling.
    clf, policy = _auto_after(a0_model, kinetics_labels, _looped(frames["carving_ice"], 20))
    clf.new_view()
    clf.step(frames["carving_ice"][0])
    assert policy._fork is not None and policy._fork.view
    forks, changes = policy.forks, policy.changes
    wrestling = _looped(frames["arm_wrestling"], 4)
    clf.step(wrestling[0])
    assert policy.forks == forks and policy._fork is not None and not policy._fork.view
    shown = _shown(clf, kinetics_labels, wrestling[1:])
    assert policy.changes == changes + 1 and shown[-1] == "arm wrestling"


def test_in_one_room_a_change_is_found_by_the_features_alone(
    a0_model: Path, kinetics_labels: Labels, frames: dict
) -> None:
    """`reaction.py --one-room`'s premise: with the colour test off (no cut), a change is no
    fork, and the features' question finds it, later than a cut's fork would (1.6 s of sure
    disagreement after its first 0.6 s)."""
    policy = AdaptiveHistory(FPS, AutoSettings(sudden=float("inf")))
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1, history=policy)
    _shown(clf, kinetics_labels, _looped(frames["juggling_soccer_ball"], 10))
    assert policy.changes == 0
    shown = _shown(clf, kinetics_labels, _looped(frames["arm_wrestling"], 4))
    assert policy.forks == 0 and policy.changes == 1
    assert shown[-1] == "arm wrestling"
    # not before a question that starts at the change can decide: its first answer at its
    # 3rd frame (index 2), then 8 steps of sure disagreement (index 9), where a fork at a cut
    # decides at once at index 2
    assert shown.index("arm wrestling") >= 2 + 8 - 1
