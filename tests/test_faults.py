"""Faults while running: signals, a display that goes away, outputs that cannot be written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from movinet_pi.display.base import Display
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
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


def test_json_to_a_full_disk_is_one_line_and_exit_1(app_env: dict[str, str], carving_ice: Path
                                                   ) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "movinet_pi", "--source", str(carving_ice), "--headless",
             "--json", "--offline"],
            stdout=full, stderr=subprocess.PIPE, text=True, env=app_env, timeout=120,
        )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "movinet-pi: error: cannot write: No space left on device (output): "
        "free some space or choose another place"
    ]


def test_json_into_a_closed_pipe_ends_quietly(app_env: dict[str, str], arm_wrestling: Path
                                              ) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(arm_wrestling), "--headless",
         "--json", "--offline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=app_env,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    proc.wait(timeout=120)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr.read()


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
        frame = Frame(np.full((172, 172, 3), self.index % 255, np.uint8), self.index / 30.0,
                      self.index)
        self.index += 1
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
