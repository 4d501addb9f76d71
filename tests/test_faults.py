"""Faults while running: signals, a display that goes away, outputs that cannot be written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from movinet_pi.display.base import Display
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.outputs.base import StepResult
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.base import Frame, Source

TESTS = Path(__file__).parent


@pytest.fixture
def app_env(shared: Path, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["MOVINET_PI_MODELS"] = os.pathsep.join([str(shared / "models"), str(shared / "labels")])
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_within_a_second_releasing_the_camera_and_flushing_json(
    app_env: dict[str, str], tmp_path: Path, signum: int
) -> None:
    report = tmp_path / "camera.json"
    out = tmp_path / "steps.jsonl"
    with out.open("w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, str(TESTS / "fake_camera_app.py"), str(report), "--source",
             "picamera", "--headless", "--json", "--offline"],
            stdout=stdout, stderr=subprocess.PIPE, text=True, env=app_env,
        )
        try:
            deadline = time.monotonic() + 60
            while out.stat().st_size == 0 and time.monotonic() < deadline:
                time.sleep(0.05)  # waiting for the app to start up, not synchronising it
            assert out.stat().st_size > 0, proc.stderr.read() if proc.poll() else "no output"
            signalled = time.monotonic()
            proc.send_signal(signum)
            proc.wait(timeout=10)
            stopped_after = time.monotonic() - signalled
        finally:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    assert stopped_after < 1.0, f"took {stopped_after:.2f} s to stop"
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(line)["top"] is not None for line in lines)  # no torn line
    camera = json.loads(report.read_text())
    assert camera["opened"] == 1 and camera["still_open"] == 0 and camera["acquired"] == []


@pytest.mark.parametrize("output", ["--json", "--events"])
def test_json_to_a_full_disk_is_one_line_and_exit_1(app_env: dict[str, str], carving_ice: Path,
                                                   output: str) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "movinet_pi", "--source", str(carving_ice), "--headless",
             output, "--offline"],
            stdout=full, stderr=subprocess.PIPE, text=True, env=app_env, timeout=120,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "movinet-pi: error: cannot write: No space left on device (output): "
        "free some space or choose another place"
    ]


@pytest.mark.parametrize("output", ["--json", "--events"])
def test_json_into_a_closed_pipe_ends_quietly(app_env: dict[str, str], arm_wrestling: Path,
                                              output: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(arm_wrestling), "--headless",
         output, "--offline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=app_env,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    proc.wait(timeout=120)
    assert proc.returncode == 0
    assert proc.stderr.read() == ""  # no traceback, and no "closing the outputs failed too"


def numbered_frame(index: int) -> Frame:
    """Frame ``index`` of a 30 fps 172x172 source, its grey level telling its number."""
    return Frame(np.full((172, 172, 3), index % 255, np.uint8), index / 30.0, index)


class FramesSource(Source):
    """A 30 fps "file": played at its own pace when a display is attached."""

    name = "frames"
    live = False
    fps = 30.0
    frame_size = (172, 172)

    def __init__(self, count: int) -> None:
        self.count = count
        self.index = 0

    def read(self) -> Frame | None:
        if self.index >= self.count:
            return None
        frame, self.index = numbered_frame(self.index), self.index + 1
        return frame

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


class VanishingDisplay(Display):
    """A window whose X session ends after a few frames (cv2 raises from imshow)."""

    def __init__(self, frames_before: int) -> None:
        self.left = frames_before
        self.closed = False

    def show(self, bgr: np.ndarray) -> int | None:
        if self.left == 0:
            raise RuntimeError("cv2.error: Can't connect to X11 server")
        self.left -= 1
        return None

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("the display is gone")


@pytest.fixture(scope="module")
def a0(a0_model: Path) -> StreamingClassifier:
    return StreamingClassifier.from_file(a0_model, Labels(tuple(map(str, range(600))), "t"))


def test_a_lost_display_means_headless_not_a_crash(a0: StreamingClassifier) -> None:
    logged: list[str] = []
    display = VanishingDisplay(frames_before=3)
    pipeline = Pipeline(FramesSource(45), Recognizer(a0, RunConfig()), display,
                        log=logged.append)
    stats = pipeline.run()
    assert stats.frames_read == 45 and stats.steps >= 6  # the whole source, still classified
    assert stats.frames_shown > 10  # the display loop went on after the window vanished
    assert pipeline.display is None and display.closed
    assert any("display went away" in line and "continuing headless" in line
               for line in logged)
    assert "display lost" in pipeline.message


def test_a_failure_on_the_inference_thread_surfaces_from_run(a0: StreamingClassifier) -> None:
    class BrokenSink:
        def on_step(self, result: object) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    pipeline = Pipeline(FramesSource(10_000), Recognizer(a0, RunConfig(), [BrokenSink()]),
                        VanishingDisplay(frames_before=10_000))
    with pytest.raises(OSError, match="No space left"):
        pipeline.run()


def test_every_sink_is_closed_even_when_one_fails(a0: StreamingClassifier) -> None:
    closed: list[str] = []

    class Sink:
        def __init__(self, name: str, fail: bool) -> None:
            self.name, self.fail = name, fail

        def on_step(self, result: object) -> None:
            pass

        def close(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise BrokenPipeError(32, "Broken pipe")

    recognizer = Recognizer(a0, RunConfig(), [Sink("stdout", True), Sink("mqtt", False),
                                               Sink("clips", False)])
    with pytest.raises(BrokenPipeError):
        recognizer.close()
    assert closed == ["stdout", "mqtt", "clips"]


def test_unreadable_model_and_labels_are_read_errors(
    tmp_path: Path, a0_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from movinet_pi import MovinetPiError
    from movinet_pi.model.labels import load_labels
    from movinet_pi.model.runtime import check_model_file

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(MovinetPiError, match=r"cannot read model file .*: Permission denied"):
        check_model_file(a0_model)
    with pytest.raises(MovinetPiError, match=r"cannot read label file .*: Permission denied"):
        load_labels(labels)


# -- shutdown and threads ---------------------------------------------------------------------
class GatedClassifier:
    """The real classifier, but each step waits for ``gate`` (at most ``wait`` s) first;
    ``fail`` makes the step raise once the gate opens."""

    def __init__(self, inner: StreamingClassifier, wait: float = 10.0,
                 fail: BaseException | None = None) -> None:
        self.inner, self.wait, self.fail = inner, wait, fail
        self.gate = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def step(self, rgb: np.ndarray) -> np.ndarray:
        self.started.set()
        self.gate.wait(self.wait)
        try:
            if self.fail is not None:
                raise self.fail
            return self.inner.step(rgb)
        finally:
            self.finished.set()


class OrderSink:
    """Records what it hears, in order: ("step", frame) and ("close", None)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, object]] = []

    def on_step(self, result: StepResult) -> None:
        self.heard.append(("step", result.frame))

    def close(self) -> None:
        self.heard.append(("close", None))


class LiveFrames(FramesSource):
    """A live source of ``count`` frames at 30 fps (no pacing); then None.
    ``fail_after``: raise that error once the given event is set, instead of the next frame."""

    name = "live frames"
    live = True

    def __init__(self, count: int, fail_after: threading.Event | None = None,
                 error: BaseException | None = None, hold: threading.Event | None = None
                 ) -> None:
        super().__init__(count)
        self.fail_after, self.error = fail_after, error
        self.hold = hold  # frames after the first wait for it

    def read(self) -> Frame | None:
        if self.hold is not None and self.index > 0:
            self.hold.wait(10)
        if self.fail_after is not None and self.index > 0:
            self.fail_after.wait(10)
            raise self.error  # type: ignore[misc]
        return super().read()


def test_close_cancels_the_step_in_flight_no_output_after_close(
    a0: StreamingClassifier
) -> None:
    gated = GatedClassifier(a0)
    sink = OrderSink()
    recognizer = Recognizer(gated, RunConfig(), [sink])  # type: ignore[arg-type]
    frame = Frame(np.zeros((172, 172, 3), np.uint8), 0.0, 0)
    stepping = threading.Thread(target=recognizer.process, args=(frame,))
    stepping.start()
    assert gated.started.wait(10)
    recognizer.close()  # the step is still in the model
    gated.gate.set()
    stepping.join(10)
    assert sink.heard == [("close", None)]
    recognizer.close()  # once only
    assert sink.heard == [("close", None)]


def test_a_run_stopped_during_a_long_step_says_nothing_after_closing(
    a0: StreamingClassifier
) -> None:
    gated = GatedClassifier(a0)
    sink = OrderSink()
    pipeline = Pipeline(LiveFrames(1), Recognizer(gated, RunConfig(), [sink]))  # type: ignore[arg-type]
    threading.Thread(target=lambda: (gated.started.wait(10), pipeline.stop()),
                     daemon=True).start()
    stats = pipeline.run()  # the step outlives the pipeline's wait for the inference thread
    (inference,) = [t for t in threading.enumerate() if t.name == "inference"]
    gated.gate.set()
    assert gated.finished.wait(10)
    inference.join(10)  # the step, were it to report, has done so now
    assert not inference.is_alive()
    assert sink.heard == [("close", None)]
    assert stats.steps_skipped == 0


def test_a_frame_waiting_at_shutdown_is_not_counted_as_skipped(
    a0: StreamingClassifier
) -> None:
    gated = GatedClassifier(a0)
    # due frames: 0 (in the model) and 6 (waiting for it)
    source = LiveFrames(7, hold=gated.started)
    pipeline = Pipeline(source, Recognizer(gated, RunConfig(), []))  # type: ignore[arg-type]
    handed_over = threading.Event()
    put = pipeline._due.put

    def put_and_tell(frame: Frame) -> None:
        put(frame)
        if frame.index == 6:
            handed_over.set()

    pipeline._due.put = put_and_tell  # type: ignore[method-assign]
    seen: dict[str, object] = {}

    def stop_when_handed_over() -> None:  # (it only records; the test asserts)
        if handed_over.wait(10):
            seen["waiting"] = pipeline._due.peek()
            seen["dropped"] = pipeline._due.dropped
        pipeline.stop()  # (sets the flag the inference thread checks after its step)
        gated.gate.set()

    helper = threading.Thread(target=stop_when_handed_over, daemon=True)
    helper.start()
    stats = pipeline.run()
    helper.join(10)
    assert isinstance(seen.get("waiting"), Frame) and seen["dropped"] == 0  # frame 6 waited
    assert stats.steps == 1 and stats.steps_skipped == 0


def test_the_first_error_of_any_thread_is_the_one_raised(a0: StreamingClassifier) -> None:
    """The capture thread fails first; the step then in the model fails after it."""
    gated = GatedClassifier(a0, wait=0.5, fail=OSError(28, "No space left on device"))
    source = LiveFrames(1000, fail_after=gated.started, error=ValueError("camera broke first"))
    pipeline = Pipeline(source, Recognizer(gated, RunConfig(), []))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="camera broke first"):
        pipeline.run()
    assert gated.finished.is_set()  # the second failure did happen


def test_an_error_closing_the_outputs_does_not_hide_the_runs_own(
    a0: StreamingClassifier
) -> None:
    class BrokenFile(FramesSource):
        def read(self) -> Frame | None:
            if self.index == 40:
                raise ValueError("the file is cut short")
            return super().read()

    class ClosesBadly(OrderSink):
        def close(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    logged: list[str] = []
    pipeline = Pipeline(BrokenFile(100), Recognizer(a0, RunConfig(), [ClosesBadly()]),
                        log=logged.append)
    with pytest.raises(ValueError, match="cut short"):
        pipeline.run()
    assert any("closing the outputs failed too" in line and "Broken pipe" in line
               for line in logged)
    # with no error of its own, the run raises the closing error
    ok = Pipeline(FramesSource(10), Recognizer(a0, RunConfig(), [ClosesBadly()]))
    with pytest.raises(BrokenPipeError):
        ok.run()
