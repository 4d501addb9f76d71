"""The QTGL preview path (the Pi camera with a desktop), against the fake picamera2."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_picamera2 import install, install_libcamera, solid_frames

from movinet_pi import MovinetPiError
from movinet_pi.display import camera_preview
from movinet_pi.display.open import open_display
from movinet_pi.display.overlay import OverlayState
from movinet_pi.display.qtgl import QTGL_MAIN_FORMAT, QtGlDisplay, qtgl_unavailable
from movinet_pi.display.select import choose_display
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.model.predictions import Prediction
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.open import open_source

RED = (255, 0, 0)


@pytest.fixture
def desktop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This machine's own X display :7 (its socket in ``tmp_path``)."""
    (tmp_path / "X7").touch()
    monkeypatch.setenv("DISPLAY", ":7")
    monkeypatch.setattr("movinet_pi.display.qtgl.X11_SOCKET_DIR", tmp_path)
    return tmp_path


def _state(*predictions: Prediction, message: str = "") -> OverlayState:
    return OverlayState(predictions=predictions, model_name="MoViNet-A0", message=message)


def _camera(monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple[Any, Any]:
    system = install(monkeypatch, frames=solid_frames(RED, (640, 480)), **options)
    return system, open_source("picamera", frame_size=(640, 480), timeout=2.0)


def _wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 5.0
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


# -- choosing it ------------------------------------------------------------------------------


def test_the_pi_camera_on_this_machines_display_gets_the_qtgl_preview(tmp_path: Path) -> None:
    choice = choose_display("auto", {"DISPLAY": ":0"}, picamera=True, socket_dir=tmp_path)
    assert choice.kind == "qtgl" and "QTGL preview on :0" in choice.reason
    # other sources, ssh -X and --display window keep the OpenCV window
    assert choose_display("auto", {"DISPLAY": ":0"}, socket_dir=tmp_path).kind == "window"
    assert choose_display("auto", {"DISPLAY": "localhost:10.0"}, picamera=True,
                          socket_dir=tmp_path).kind == "window"
    assert choose_display("window", {"DISPLAY": ":0"}, picamera=True,
                          socket_dir=tmp_path).kind == "window"


def test_over_ssh_the_desktops_qtgl_preview_is_used(tmp_path: Path) -> None:
    (tmp_path / "X0").touch()
    choice = choose_display("auto", {}, picamera=True, socket_dir=tmp_path)
    assert choice.kind == "qtgl" and choice.env == {"DISPLAY": ":0"}


def test_forced_qtgl_needs_the_pi_camera_and_a_display(tmp_path: Path) -> None:
    with pytest.raises(MovinetPiError, match="--source picamera"):
        choose_display("qtgl", {"DISPLAY": ":0"}, socket_dir=tmp_path)
    with pytest.raises(MovinetPiError, match="--display qtgl: no display found"):
        choose_display("qtgl", {}, picamera=True, socket_dir=tmp_path)


def test_what_qtgl_needs_is_checked_before_it_starts(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    install(monkeypatch, qt=False)
    assert "PyQt5 is not installed: sudo apt install python3-pyqt5" in str(
        qtgl_unavailable({"DISPLAY": ":7"}, tmp_path))
    install(monkeypatch, qt=True)
    assert "not this machine's own screen" in str(
        qtgl_unavailable({"DISPLAY": "localhost:10.0"}, tmp_path))
    assert qtgl_unavailable({"DISPLAY": ":7"}, tmp_path) == "no X server on :7"
    (tmp_path / "X7").touch()
    assert qtgl_unavailable({"DISPLAY": ":7.0"}, tmp_path) is None


# -- running it -------------------------------------------------------------------------------


def test_qtgl_shows_the_camera_and_composites_the_overlay_at_the_models_rate(
    monkeypatch: pytest.MonkeyPatch, desktop: Path
) -> None:
    system, source = _camera(monkeypatch)
    clock = [100.0]
    monkeypatch.setattr(camera_preview.time, "monotonic", lambda: clock[0])
    try:
        display = QtGlDisplay(source, source.frame_size, max_fps=5.0)
        camera = system.instances[-1]
        preview = camera._preview
        assert preview.kind.name == "QTGL" and preview.thread.is_alive()  # Qt's own thread
        assert (preview.width, preview.height) == (640, 480)
        assert camera.camera_config["main"]["format"] == QTGL_MAIN_FORMAT  # 32-bit: drawable
        assert system.aborted is None
        frame = source.read()  # the camera still feeds the model, in RGB
        assert frame is not None and frame.rgb[0, 0].tolist() == list(RED)

        display.update(_state(Prediction("arm wrestling", 0.9, 6)))
        first = camera.overlay
        assert first is not None and first.shape == (480, 640, 4) and first.dtype == np.uint8
        clock[0] += 0.1  # a new prediction sooner than the model's rate: not drawn yet
        display.update(_state(Prediction("carving ice", 0.8, 5)))
        assert np.array_equal(camera.overlay, first)
        clock[0] += 0.15  # a model step (0.2 s) after the last drawing
        assert display.update(_state(Prediction("carving ice", 0.8, 5))) is None
        assert not np.array_equal(camera.overlay, first)

        display.close()
        assert camera.overlay is None
    finally:
        source.close()
    assert not preview.thread.is_alive()  # closing the camera closed the window
    assert not display.window_closed  # ... which is not the user closing it


def test_the_qtgl_preview_comes_back_after_a_reconnect(monkeypatch: pytest.MonkeyPatch,
                                                       desktop: Path) -> None:
    system, source = _camera(monkeypatch)
    try:
        display = QtGlDisplay(source, source.frame_size, max_fps=1000.0)
        display.update(_state(message="hello"))
        source.reopen()
        camera = system.instances[-1]
        assert camera._preview.kind.name == "QTGL"
        assert camera.camera_config["main"]["format"] == QTGL_MAIN_FORMAT
        assert camera.overlay is not None  # the last overlay is shown again
        assert source.read() is not None and not display.window_closed
    finally:
        source.close()


@pytest.mark.parametrize("shared", [False, True], ids=["qt-thread-a-window", "one-qt-thread"])
def test_closing_the_window_quits_and_frames_keep_coming(monkeypatch: pytest.MonkeyPatch,
                                                         desktop: Path, shared: bool) -> None:
    """Older picamera2 ends a window's Qt thread with it; newer runs every window on one
    thread that goes on: a closed window is then only its preview detached."""
    system, source = _camera(monkeypatch, qt_shared_thread=shared)
    try:
        display = QtGlDisplay(source, source.frame_size)
        system.close_window()
        _wait_for(lambda: display.window_closed)
        assert display.update(_state()) == ord("q")
        _wait_for(lambda: system.instances[-1]._preview is not None)
        assert source.read() is not None  # a NULL preview runs the camera until the app stops
    finally:
        source.close()


def test_a_qt_thread_that_dies_is_given_up_on_and_the_camera_goes_on(
    monkeypatch: pytest.MonkeyPatch, desktop: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # EGL unusable: the real start_preview() waits forever for a thread that died
    system, source = _camera(monkeypatch, qt_failure="egl")
    try:
        with pytest.raises(MovinetPiError, match=r"QTGL preview cannot start .*did not open"):
            QtGlDisplay(source, source.frame_size, start_timeout=0.3)
        camera = system.instances[-1]
        assert camera._preview.kind.name == "NULL"
        assert camera.camera_config["main"]["format"] == "RGB888"  # as before
        assert source.read() is not None
    finally:
        source.close()
    assert "eglCreateWindowSurface failed" in capfd.readouterr().err


def _run_args(**overrides: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"headless": False, "display": "auto", "window_size": None,
                                 "web": None, "mirror": False, **overrides})


class _Window:
    def __init__(self, size: tuple[int, int] | None = None) -> None:
        self.size = size

    def close(self) -> None:
        pass


def test_without_pyqt5_the_app_says_why_and_opens_the_opencv_window(
    monkeypatch: pytest.MonkeyPatch, desktop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system, source = _camera(monkeypatch, qt=False)
    monkeypatch.setattr("movinet_pi.display.window.WindowDisplay", _Window)
    try:
        assert isinstance(open_display(_run_args(), source), _Window)
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["movinet-pi: display: the QTGL preview cannot start (PyQt5 is not "
                       "installed: sudo apt install python3-pyqt5): using an OpenCV window "
                       "instead"]
        assert system.aborted is None and source.read() is not None
        with pytest.raises(MovinetPiError, match="PyQt5 is not installed"):
            open_display(_run_args(display="qtgl"), source)  # forced: an error
    finally:
        source.close()


def test_the_app_opens_the_qtgl_preview(monkeypatch: pytest.MonkeyPatch, desktop: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, source = _camera(monkeypatch)
    try:
        display = open_display(_run_args(), source)
        assert isinstance(display, QtGlDisplay) and not display.shows_picture
        assert "display: the camera's QTGL preview on :7" in capsys.readouterr().err
        display.close()
    finally:
        source.close()


def test_the_run_ends_when_the_qtgl_window_is_closed(
    monkeypatch: pytest.MonkeyPatch, desktop: Path, a0_model: Path, kinetics_labels: Labels
) -> None:
    system, source = _camera(monkeypatch)
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1)
    try:
        display = QtGlDisplay(source, source.frame_size)
        pipeline = Pipeline(source, Recognizer(clf, RunConfig()), display)
        closer = threading.Timer(0.5, system.close_window)  # the user, some time into the run
        guard = threading.Event()
        stopper = threading.Timer(30.0, lambda: (guard.set(), pipeline.stop()))  # (no hang)
        closer.start()
        stopper.start()
        stats = pipeline.run()  # returns: the window's 'q'
        stopper.cancel()
        closer.join()
    finally:
        source.close()
    assert not guard.is_set() and pipeline.stopped and stats.frames_read > 0
    assert system.aborted is None


def test_under_qtgl_the_main_picture_is_converted_only_when_wanted(
    monkeypatch: pytest.MonkeyPatch, desktop: Path
) -> None:
    import cv2

    _, source = _camera(monkeypatch)
    try:
        QtGlDisplay(source, source.frame_size)
        conversions: list[int] = []
        convert = cv2.cvtColor
        monkeypatch.setattr(cv2, "cvtColor", lambda *a, **k: (conversions.append(a[1]),
                                                              convert(*a, **k))[1])
        frame = source.read()  # the GPU shows the picture: nothing here wants it yet
        assert frame is not None and frame.shape == (480, 640, 3) and conversions == []
        assert frame.rgb[0, 0].tolist() == list(RED)  # made when asked for (web, clips)
        assert frame.bgr is not None and frame.bgr[0, 0].tolist() == list(RED[::-1])
        assert conversions == [cv2.COLOR_BGRA2BGR, cv2.COLOR_BGR2RGB]
    finally:
        source.close()


def test_mirror_flips_the_qtgl_picture_where_the_preview_takes_a_transform(
        monkeypatch: pytest.MonkeyPatch, desktop: Path) -> None:
    install_libcamera(monkeypatch)
    system, source = _camera(monkeypatch)
    try:
        display = QtGlDisplay(source, source.frame_size, max_fps=5.0, mirror=True)
        preview = system.instances[-1]._preview
        assert display.mirrored and preview.options["transform"].hflip == 1
    finally:
        source.close()
