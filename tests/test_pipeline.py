"""Frame sampling, the hand-over between threads, and whole runs over real clips."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movinet_pi.display.base import Display
from movinet_pi.display.render import shown_shape
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.outputs.base import StepResult
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.base import Frame, SourceLost
from movinet_pi.sources.open import open_source
from movinet_pi.timing import FrameSampler, Mailbox


# -- frame sampling -------------------------------------------------------------------------
def test_30fps_file_feeds_every_sixth_frame() -> None:
    sampler = FrameSampler(5.0)
    fed = [i for i in range(60) if sampler.is_due(i / 30.0)]
    assert fed == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]


def test_source_slower_than_the_model_feeds_every_frame() -> None:
    sampler = FrameSampler(5.0)
    assert all(sampler.is_due(i / 3.0) for i in range(20))


def test_a_gap_skips_ticks_instead_of_bunching() -> None:
    sampler = FrameSampler(5.0)
    times = [0.0, 0.2, 1.5, 1.53, 1.6, 1.8]
    assert [t for t in times if sampler.is_due(t)] == [0.0, 0.2, 1.5, 1.6, 1.8]


@settings(max_examples=200, deadline=None)
@given(
    fps=st.floats(min_value=0.5, max_value=240.0),
    jitter=st.lists(st.floats(min_value=0.0, max_value=0.3), min_size=1, max_size=40),
)
def test_each_tick_interval_with_frames_feeds_exactly_one(fps: float, jitter: list[float]) -> None:
    """For any source rate: no tick is fed twice, none that has a frame is skipped."""
    sampler = FrameSampler(5.0)
    times = [i / fps + j / fps for i, j in enumerate(jitter)]
    times = sorted(times)
    fed = [t for t in times if sampler.is_due(t)]
    period, tol = 0.2, 1e-3
    ticks_fed = [int((t + tol) // period) for t in fed]
    ticks_with_frames = sorted({int((t + tol) // period) for t in times})
    assert ticks_fed == ticks_with_frames


# -- mailbox ---------------------------------------------------------------------------------
def test_mailbox_keeps_only_the_newest_and_counts_drops() -> None:
    box: Mailbox[int] = Mailbox()
    box.put(1)
    box.put(2)
    box.put(3)
    assert box.get(0) == 3
    assert box.dropped == 2
    assert box.get(0) is None


def test_mailbox_get_wakes_on_put_from_another_thread() -> None:
    box: Mailbox[str] = Mailbox()
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(box.get(timeout=5)))
    t.start()
    box.put("frame")
    t.join(5)
    assert got == ["frame"]


def test_mailbox_wake_returns_what_waits_and_a_taken_item_is_gone() -> None:
    box: Mailbox[int] = Mailbox()
    box.wake()
    assert box.get(timeout=5) is None  # woken with nothing waiting
    box.put(7)
    box.wake()
    assert box.get(timeout=5) == 7
    assert box.get(0) is None  # taken: a later get does not find it again
    assert box.peek() is None


def test_mailbox_hands_over_the_last_put_of_a_fast_producer() -> None:
    box: Mailbox[int] = Mailbox()
    last = 20_000
    taken: list[int] = []

    def consume() -> None:
        while not taken or taken[-1] != last:
            item = box.get(timeout=5)
            if item is None:
                return
            taken.append(item)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(1, last + 1):
        box.put(i)
    consumer.join(10)
    assert taken[-1] == last and taken == sorted(taken)  # newest last, never one twice
    assert box.dropped == last - len(taken)


# -- whole runs ----------------------------------------------------------------------------
class ListSink:
    def __init__(self) -> None:
        self.results: list[StepResult] = []
        self.closed = False

    def on_step(self, result: StepResult) -> None:
        self.results.append(result)

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def a0(a0_model: Path, kinetics_labels: Labels) -> StreamingClassifier:
    return StreamingClassifier.from_file(a0_model, kinetics_labels, threads=2)


def test_headless_file_run_steps_at_5fps_on_file_timestamps(
    a0: StreamingClassifier, carving_ice: Path
) -> None:
    a0.reset()
    sink = ListSink()
    source = open_source(str(carving_ice))
    stats = Pipeline(source, Recognizer(a0, RunConfig(top_k=3), [sink])).run()
    source.close()
    assert sink.closed
    assert stats.frames_read >= 130
    assert [r.step for r in sink.results] == list(range(len(sink.results)))
    assert len(sink.results) == 22  # 4.4 s at 5 fps
    ts = [r.t for r in sink.results]
    assert ts[0] == 0.0
    assert all(abs(b - a - 0.2) < 0.04 for a, b in zip(ts, ts[1:]))
    assert sink.results[-1].top[0].label == "carving ice"
    assert sink.results[-1].top[0].score >= 0.95


class ScriptedLiveSource:
    """A live source of numbered frames that loses its camera once, at a set frame."""

    live = True
    name = "scripted camera"
    fps = 30.0
    frame_size = (64, 48)

    def __init__(self, frames: int, lose_at: int | None = None, interval: float = 0.0) -> None:
        self.frames = frames
        self.lose_at = lose_at
        self.interval = interval  # seconds between frames, as a camera delivers them
        self.index = 0
        self.reopened = 0
        self.closed = False

    def read(self) -> Frame | None:
        if self.index == self.lose_at:
            self.lose_at = None
            raise SourceLost("camera unplugged")
        if self.index >= self.frames:
            return None
        if self.interval:
            time.sleep(self.interval)
        frame = Frame(np.full((48, 64, 3), self.index % 255, np.uint8), self.index / 30.0,
                      self.index)
        self.index += 1
        return frame

    def reopen(self) -> None:
        self.reopened += 1

    def close(self) -> None:
        self.closed = True


def test_live_run_survives_a_lost_camera(a0: StreamingClassifier) -> None:
    a0.reset()
    sink = ListSink()
    source = ScriptedLiveSource(frames=60, lose_at=20, interval=1 / 30)  # 2 s, as a camera
    messages: list[str] = []
    pipeline = Pipeline(source, Recognizer(a0, RunConfig(), [sink]), None, log=messages.append)
    stats = pipeline.run()
    assert source.reopened == 1
    assert stats.reconnects == 1
    assert stats.frames_read == 60
    assert [m for m in messages if "lost" in m] == ["scripted camera lost: reconnecting "
                                                    "(camera unplugged)"]
    assert any(m.startswith("scripted camera is back after ") for m in messages)
    # the outputs heard of the loss at once: "no action" (open events end), dated at the
    # last step before it; the stream starts afresh after it
    lost = [i for i, r in enumerate(sink.results) if not r.top]
    assert len(lost) == 1
    before, notice, after = sink.results[lost[0] - 1:lost[0] + 2]
    assert (notice.t, notice.frame, notice.step) == (before.t, before.frame, before.step)
    assert after.step == 0 and after.frame >= 20
    # 60 frames at 30 fps are 10 ticks of the 5 fps grid (frames 0, 6, ... 54): each one
    # stepped, or skipped when the model was busy (a reconnect does not lose one)
    due = [r.frame for i, r in enumerate(sink.results) if i != lost[0]]
    assert len(due) == stats.steps == 10 - stats.steps_skipped
    assert set(due) <= set(range(0, 60, 6)) and due == sorted(due)
    assert stats.steps_skipped <= 2  # A0 takes far less than a tick (0.2 s) a step
    assert sink.closed


class DeadSource(ScriptedLiveSource):
    """A live source that is lost after a few frames and never comes back."""

    def read(self) -> Frame | None:
        if self.index >= (self.lose_at or 0):
            raise SourceLost("camera unplugged")
        return super().read()

    def reopen(self) -> None:
        self.reopened += 1
        raise SourceLost("no answer")


def test_a_long_outage_is_said_once_then_at_growing_intervals(a0: StreamingClassifier) -> None:
    a0.reset()
    source = DeadSource(frames=60, lose_at=6)
    messages: list[str] = []
    config = RunConfig(reconnect_max_s=0.01)
    pipeline = Pipeline(source, Recognizer(a0, config, [ListSink()]), None, log=messages.append)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    deadline = time.monotonic() + 10
    while source.reopened < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    pipeline.stop()
    runner.join(timeout=10)
    assert source.reopened >= 40
    lost = [m for m in messages if "lost" in m]
    assert lost[0] == "scripted camera lost: reconnecting (camera unplugged)"
    tries = [int(m.split(" after ")[1].split(" ")[0]) for m in lost[1:]]
    assert tries == [1, 2, 4, 8, 16, 32][:len(tries)] and len(tries) >= 5  # not one a try


def test_reset_request_applies_before_the_next_step(a0: StreamingClassifier) -> None:
    a0.reset()
    recognizer = Recognizer(a0, RunConfig())
    frame = Frame(np.zeros((172, 172, 3), np.uint8), 0.0, 0)
    recognizer.process(frame)
    recognizer.process(frame)
    assert a0.steps == 2
    recognizer.request_reset()
    result = recognizer.process(frame)
    assert result.step == 0


def test_render_draws_the_overlay_on_a_bgr_copy(a0: StreamingClassifier) -> None:
    source = ScriptedLiveSource(frames=0)
    pipeline = Pipeline(source, Recognizer(a0, RunConfig(mirror=True)))
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[:, :320] = (255, 0, 0)  # left half red
    shown = pipeline.render(Frame(rgb, 0.0, 0))
    assert shown.shape == (480, 640, 3)
    assert rgb[400, 10].tolist() == [255, 0, 0]  # the frame itself is untouched
    # mirrored and BGR: red now on the right, as (0, 0, 255)
    assert shown[400, 630].tolist() == [0, 0, 255]
    assert shown[400, 10].tolist() == [0, 0, 0]


def test_render_reuses_its_buffers_frame_after_frame(a0: StreamingClassifier) -> None:
    pipeline = Pipeline(ScriptedLiveSource(frames=0), Recognizer(a0, RunConfig()))
    small = [Frame(np.full((172, 172, 3), v, np.uint8), v / 30, v) for v in range(3)]
    shown = [pipeline.render(f) for f in small]
    assert shown[0] is shown[1] is shown[2]  # nothing allocated per frame
    assert shown[0].shape == (688, 688, 3)  # scaled up 4x to stay readable
    big = pipeline.render(Frame(np.zeros((480, 640, 3), np.uint8), 1.0, 3))
    assert big.shape == (480, 640, 3)  # a new size gets new buffers


def test_small_pictures_are_scaled_up_to_be_read_but_stay_on_a_screen() -> None:
    assert shown_shape((172, 172, 3)) == (688, 688, 3)  # 4x: 640 wide at least
    assert shown_shape((256, 340, 3)) == (512, 680, 3)
    assert shown_shape((480, 640, 3)) == (480, 640, 3)  # wide enough: as it is
    assert shown_shape((1080, 1920, 3)) == (1080, 1920, 3)  # never scaled down
    # a phone's portrait clip: 4x would be 1440 tall, its status line off the screen
    assert shown_shape((360, 204, 3)) == (720, 408, 3)
    assert shown_shape((400, 300, 3)) == (400, 300, 3)  # 2x would be 800 tall: as it is


class KeyDisplay(Display):
    """A display that 'presses' a key at a given shown frame, as a user would."""

    def __init__(self, presses: dict[int, int]) -> None:
        self.presses = presses
        self.shown = 0
        self.closed = False

    def show(self, bgr: np.ndarray) -> int | None:
        self.shown += 1
        return self.presses.get(self.shown)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("key", [ord("q"), 27])
def test_q_and_esc_quit(a0: StreamingClassifier, key: int) -> None:
    display = KeyDisplay({5: key})
    # A camera delivers frames over time; one that never waits would end (10,000 frames
    # read in a blink) before the display thread got to frame 5.
    source = ScriptedLiveSource(frames=10_000, interval=0.005)
    stats = Pipeline(source, Recognizer(a0, RunConfig(realtime=False)), display).run()
    assert display.shown == 5  # the picture stopped right after the key
    assert stats.frames_read < 10_000
    assert display.closed


def test_r_resets_the_stream(a0: StreamingClassifier) -> None:
    a0.reset()
    sink = ListSink()
    recognizer = Recognizer(a0, RunConfig(), [sink])
    pipeline = Pipeline(ScriptedLiveSource(frames=0), recognizer)
    frame = Frame(np.zeros((172, 172, 3), np.uint8), 0.0, 0)
    recognizer.process(frame)
    recognizer.process(frame)
    pipeline.handle_key(ord("r"))
    recognizer.process(frame)
    assert [r.step for r in sink.results] == [0, 1, 0]
    pipeline.handle_key(ord("x"))  # other keys do nothing
    assert not pipeline.stopped


@pytest.mark.parametrize(("clip", "steps"), [("arm_wrestling", 50), ("carving_ice", 22)])
def test_skipping_undue_frames_feeds_the_same_frames_as_reading_every_one(
    request: pytest.FixtureRequest, a0: StreamingClassifier, clip: str, steps: int
) -> None:
    # The headless fast path passes over frames without converting them, on a reader
    # thread; the frames the model sees (index, time, pixels) must not change. Carving ice
    # (30 fps) has frames exactly on ticks that floating point puts a hair later (3 x 0.2 is
    # 0.6000000000000001): the frame at 0.6 s is the one due there, on both paths.
    path = request.getfixturevalue(clip)
    from movinet_pi.outputs.base import FrameSink

    class FramesSeen(ListSink):
        def on_frame(self, bgr: np.ndarray, t: float) -> None:
            pass  # wanting pictures turns the fast path off

    fed: dict[str, list[tuple[int, float]]] = {}
    logits: dict[str, np.ndarray] = {}
    read: dict[str, int] = {}
    for name, sink in (("fast", ListSink()), ("every frame", FramesSeen())):
        assert isinstance(sink, FrameSink) == (name == "every frame")
        a0.reset()
        source = open_source(str(path))
        stats = Pipeline(source, Recognizer(a0, RunConfig(top_k=3), [sink])).run()
        source.close()
        fed[name] = [(r.frame, r.t) for r in sink.results]
        logits[name] = a0.logits.copy()
        read[name] = stats.frames_read
    assert fed["fast"] == fed["every frame"] and len(fed["fast"]) == steps
    assert read["fast"] == read["every frame"]
    np.testing.assert_array_equal(logits["fast"], logits["every frame"])


class OwnBufferDisplay(Display):
    """A display with a buffer of its own (as the window's shared memory), busy every
    other frame."""

    def __init__(self) -> None:
        self.memory = np.ndarray((1,), np.uint8)
        self.shown: list[bool] = []
        self.asked = 0

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray | None:
        self.asked += 1
        if self.memory.shape != shape:
            self.memory = np.zeros(shape, np.uint8)
        return self.memory if self.asked % 2 else None

    def busy(self) -> bool:
        return self.asked % 2 == 0

    def show(self, bgr: np.ndarray) -> int | None:
        self.shown.append(np.shares_memory(bgr, self.memory))
        return None


@pytest.mark.parametrize("size", [(640, 480), (172, 172)], ids=["as-is", "scaled-up"])
def test_frames_are_rendered_straight_into_a_display_buffer(
    a0: StreamingClassifier, size: tuple[int, int]
) -> None:
    display = OwnBufferDisplay()
    pipeline = Pipeline(ScriptedLiveSource(frames=0), Recognizer(a0, RunConfig()), display)
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    rgb[:, :] = (255, 0, 0)
    expected = pipeline.render(Frame(rgb, 0.0, 0)).copy()
    rendered = []
    render = pipeline.render
    pipeline.render = lambda frame, out=None: (rendered.append(frame.index),  # type: ignore[method-assign]
                                               render(frame, out))[1]
    for i in range(4):
        pipeline._present(Frame(rgb, 0.0, i))
    assert display.shown == [True, True]  # no copy when it has a buffer
    assert rendered == [0, 2]  # nor a picture made while the display is still busy
    assert display.memory.shape == expected.shape
    np.testing.assert_array_equal(display.memory, expected)


def test_a_busy_display_skips_no_picture_an_output_wants(a0: StreamingClassifier) -> None:
    class Pictures(ListSink):
        def on_frame(self, bgr: np.ndarray, t: float) -> None:
            self.results.append(t)  # type: ignore[arg-type]

    sink = Pictures()
    display = OwnBufferDisplay()
    pipeline = Pipeline(ScriptedLiveSource(frames=0), Recognizer(a0, RunConfig(), [sink]),
                        display)
    for i in range(4):
        pipeline._present(Frame(np.zeros((48, 64, 3), np.uint8), float(i), i))
    assert sink.results == [0.0, 1.0, 2.0, 3.0]
    assert display.shown == [True, False, True, False]  # (a busy window drops it itself)


@pytest.mark.parametrize("mirror", [False, True], ids=["as-is", "mirrored"])
@pytest.mark.parametrize("size", [(640, 480), (172, 172)], ids=["full", "scaled-up"])
def test_a_bgr_frame_is_shown_as_decoded_with_no_colour_conversion(
    a0: StreamingClassifier, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int],
    mirror: bool
) -> None:
    display = OwnBufferDisplay()
    pipeline = Pipeline(ScriptedLiveSource(frames=0), Recognizer(a0, RunConfig(mirror=mirror)),
                        display)
    bgr = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    frame = Frame.from_bgr(bgr.copy(), 0.0, 0)
    conversions = []
    convert = cv2.cvtColor
    monkeypatch.setattr(cv2, "cvtColor", lambda *a, **k: (conversions.append(1),
                                                          convert(*a, **k))[1])
    pipeline._present(frame)
    assert conversions == []  # not to RGB and back per displayed frame
    np.testing.assert_array_equal(frame.bgr, bgr)  # the frame itself is untouched
    shown = display.memory
    expected = cv2.resize(bgr, (shown.shape[1], shown.shape[0]),
                          interpolation=cv2.INTER_LINEAR) if shown.shape != bgr.shape else bgr
    expected = expected[:, ::-1] if mirror else expected
    middle = slice(shown.shape[0] // 2 - 20, shown.shape[0] // 2 + 20)  # clear of the panels
    np.testing.assert_array_equal(shown[middle], expected[middle])
    monkeypatch.undo()
    # the same picture as an RGB frame renders the same
    rgb_frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 0.0, 1)
    np.testing.assert_array_equal(pipeline.render(rgb_frame)[middle], shown[middle])


def test_the_model_gets_the_same_pixels_from_a_bgr_frame(a0: StreamingClassifier) -> None:
    recognizer = Recognizer(a0, RunConfig())
    bgr = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    small = recognizer._model_input(Frame.from_bgr(bgr, 0.0, 0))
    assert small.shape == (172, 172, 3)  # resized before its channels are swapped
    np.testing.assert_array_equal(small, cv2.resize(rgb, (172, 172), interpolation=cv2.INTER_AREA))
    frame = Frame.from_bgr(bgr, 0.0, 0)
    np.testing.assert_array_equal(frame.rgb, rgb)  # made when asked for


def test_a_step_in_the_model_when_the_source_is_lost_is_not_told(
        a0: StreamingClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    """The capture thread finds the loss while the inference thread has a frame from before
    it in the model: that step must not follow the "no action" notice (the outputs would
    show the old action through the whole outage)."""
    a0.reset()
    sink = ListSink()
    recognizer = Recognizer(a0, RunConfig(), [sink])
    frame = Frame(np.full((172, 172, 3), 90, np.uint8), 0.0, 0)
    recognizer.process(frame)
    real_step = a0.step

    def lost_meanwhile(rgb: np.ndarray) -> np.ndarray:
        probs = real_step(rgb)
        recognizer.source_lost()  # (as the capture thread would, mid-step)
        return probs

    monkeypatch.setattr(a0, "step", lost_meanwhile)
    recognizer.process(Frame(frame.rgb, 0.2, 6))
    assert [bool(r.top) for r in sink.results] == [True, False]
    assert recognizer.latest is not None and recognizer.latest.top == []
    monkeypatch.setattr(a0, "step", real_step)
    after = recognizer.process(Frame(frame.rgb, 0.4, 12))  # the next frame: a fresh stream
    assert sink.results[-1] is after and after.step == 0


@pytest.mark.parametrize(("model_fixture", "held"), [("a0_model", True), ("a0_float_model", False)])
def test_the_apps_list_holds_the_top_label_by_its_models_logit_grid(
    request: pytest.FixtureRequest, kinetics_labels: Labels, model_fixture: str, held: bool
) -> None:
    # The int8 A0's logits lie on a grid: a lead of one step of it is no reason to swap the
    # top label. The app's list must be told the grid (a float model has none, and no hold).
    classifier = StreamingClassifier.from_file(request.getfixturevalue(model_fixture),
                                               kinetics_labels, threads=1)
    assert (classifier.logit_step > 0) == held
    shown = Recognizer(classifier, RunConfig()).shown
    probs = np.zeros(classifier.num_classes, np.float32)
    probs[[0, 1]] = 0.40, 0.30
    shown.update(probs)
    probs[[0, 1]] = 0.30, 0.30 * np.exp(0.19)  # one step of the int8 A0's grid ahead
    assert shown.update(probs)[0].index == (0 if held else 1)


def test_a_rate_counts_intervals_not_ticks() -> None:
    # Ten ticks 0.2 s apart are nine intervals in 1.8 s: 5 a second, as the status line says.
    from movinet_pi.timing import RateMeter

    meter = RateMeter(window_s=2.0)
    for i in range(10):
        meter.tick(i * 0.2)
    assert meter.rate == pytest.approx(5.0)


class CountingDisplay(Display):
    """A display that counts the pictures it is given."""

    def __init__(self) -> None:
        self.shown = 0

    def show(self, bgr: np.ndarray) -> int | None:
        self.shown += 1
        return None


def test_a_model_slower_than_the_camera_skips_ticks_and_never_holds_the_picture_up(
        a0: StreamingClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    # A2 on a Pi 3, say: 0.5 s a step against the 0.2 s between ticks. The camera's 30 fps
    # go on reaching the screen; the model takes the newest due frame when it is free.
    a0.reset()
    real_step = a0.step
    monkeypatch.setattr(a0, "step", lambda rgb: (time.sleep(0.5), real_step(rgb))[1])
    display = CountingDisplay()
    source = ScriptedLiveSource(frames=90, interval=1 / 30)  # 3 s, 15 ticks
    stats = Pipeline(source, Recognizer(a0, RunConfig()), display).run()
    assert stats.frames_read == 90 and display.shown >= 60  # (most: a busy CI machine)
    assert stats.steps_skipped >= 5 and stats.steps + stats.steps_skipped == 15


def test_a_reset_starts_what_is_shown_afresh(
        a0: StreamingClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    # A label on show stays while it is over the leave threshold; not after `r` or SIGHUP.
    a0.reset()
    scores = iter([0.9, 0.2])  # enters at 0.5, would stay down to 0.1

    def step(rgb: np.ndarray) -> np.ndarray:
        probs = np.zeros(a0.num_classes, np.float32)
        probs[5] = next(scores)
        a0.steps += 1
        return probs

    monkeypatch.setattr(a0, "step", step)
    recognizer = Recognizer(a0, RunConfig(threshold=0.5, leave_threshold=0.1))
    frame = Frame(np.zeros((172, 172, 3), np.uint8), 0.0, 0)
    assert [p.index for p in recognizer.process(frame).top] == [5]
    recognizer.request_reset()
    assert recognizer.process(frame).top == []


def test_a_model_switch_takes_the_new_models_logit_grid(
        a0: StreamingClassifier, a0_float_model: Path, kinetics_labels: Labels) -> None:
    float_a0 = StreamingClassifier.from_file(a0_float_model, kinetics_labels, threads=1)
    assert a0.logit_step > 0 and float_a0.logit_step == 0
    recognizer = Recognizer(a0, RunConfig())
    assert recognizer.shown.hold_ratio > 1.0
    recognizer.request_swap(float_a0, "float")
    recognizer.process(Frame(np.zeros((172, 172, 3), np.uint8), 0.0, 0))
    assert recognizer.shown.hold_ratio == 1.0
