"""The DRM preview path (a Pi without a desktop), against the fake picamera2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_picamera2 import install, install_libcamera, pattern_frames

from movinet_pi import MovinetPiError
from movinet_pi.display.drm import DrmDisplay
from movinet_pi.display.overlay import PANEL_ALPHA, OverlayState, render_overlay_rgba
from movinet_pi.display.select import choose_display
from movinet_pi.model.predictions import Prediction
from movinet_pi.sources.open import open_source


@pytest.fixture
def no_desktop(tmp_path: Path) -> Path:
    return tmp_path  # an empty X11 socket dir: no desktop session


def test_auto_over_ssh_without_desktop_uses_drm_with_the_pi_camera(no_desktop: Path) -> None:
    choice = choose_display("auto", {"SSH_CONNECTION": "x"}, picamera=True, socket_dir=no_desktop)
    assert choice.kind == "drm"
    assert "no desktop session" in choice.reason and "DRM preview on HDMI" in choice.reason


def test_auto_without_desktop_or_pi_camera_is_headless(no_desktop: Path) -> None:
    choice = choose_display("auto", {}, picamera=False, socket_dir=no_desktop)
    assert choice.kind == "none" and "headless" in choice.reason
    assert "add --web PORT" in choice.reason
    with_web = choose_display("auto", {}, picamera=False, socket_dir=no_desktop, web=True)
    assert with_web.kind == "none" and "add --web" not in with_web.reason
    assert "the picture is on the --web page" in with_web.reason


def test_a_display_or_desktop_wins_over_drm(no_desktop: Path) -> None:
    # (a desktop window: the camera's QTGL preview, see test_qtgl.py)
    assert choose_display("auto", {"DISPLAY": ":1"}, picamera=True,
                          socket_dir=no_desktop).kind == "qtgl"
    assert choose_display("auto", {"DISPLAY": "localhost:10.0"}, picamera=True,
                          socket_dir=no_desktop).kind == "window"
    (no_desktop / "X0").touch()
    assert choose_display("auto", {}, picamera=True, socket_dir=no_desktop).kind == "qtgl"


def test_forced_drm_needs_the_pi_camera(no_desktop: Path) -> None:
    with pytest.raises(MovinetPiError, match="--source picamera"):
        choose_display("drm", {}, picamera=False, socket_dir=no_desktop)


def _state(*predictions: Prediction, message: str = "") -> OverlayState:
    return OverlayState(predictions=predictions, model_name="MoViNet-A0", message=message)


def test_rgba_overlay_is_transparent_but_for_its_panels_and_text() -> None:
    rgba = render_overlay_rgba((640, 480), _state(Prediction("arm wrestling", 0.9, 6)))
    assert rgba.shape == (480, 640, 4) and rgba.dtype == np.uint8
    alpha = rgba[..., 3]
    assert alpha[240, 320] == 0  # the middle of the picture shows the camera
    assert (alpha == PANEL_ALPHA).any() and (alpha == 255).any()
    top_panel = alpha[:30]
    assert (top_panel > 0).all()  # the predictions' panel covers the top
    # the bar is green in RGB order (picamera2 overlays are RGBA)
    greens = rgba[(alpha == 255) & (rgba[..., 1] > 150) & (rgba[..., 0] < 120)]
    assert len(greens) > 100


def test_drm_display_starts_the_preview_and_sets_overlays(monkeypatch: pytest.MonkeyPatch) -> None:
    system = install(monkeypatch, frames=pattern_frames((640, 480)))
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        display = DrmDisplay(source, (640, 480), max_fps=1000.0)
        camera = system.instances[-1]
        assert camera._preview is not None and camera._preview.kind.name == "DRM"
        assert camera.started
        display.update(_state(Prediction("arm wrestling", 0.9, 6)))
        first = camera.overlay
        assert first is not None and first.shape == (480, 640, 4)
        display.update(_state(Prediction("arm wrestling", 0.9, 6)))
        assert camera.overlay is first  # nothing new: not drawn nor sent again
        display.update(_state(Prediction("arm wrestling", 0.9, 6), message="camera lost"))
        assert camera.overlay is not first  # a message is news
        second = camera.overlay
        display.update(_state(Prediction("carving ice", 0.8, 5)))
        assert not np.array_equal(camera.overlay, second)  # redrawn when it says something new
        source.read()  # the camera still delivers frames to the model
        display.close()
        assert camera.overlay is None
    finally:
        source.close()


def test_drm_preview_survives_a_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    system = install(monkeypatch, frames=pattern_frames((640, 480)))
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        display = DrmDisplay(source, (640, 480), max_fps=1000.0)
        display.update(_state(message="hello"))
        source.reopen()
        camera = system.instances[-1]
        assert camera._preview is not None and camera._preview.kind.name == "DRM"
        assert camera.overlay is not None  # the last overlay is shown again
    finally:
        source.close()


def test_drm_refused_while_a_desktop_holds_the_display(monkeypatch: pytest.MonkeyPatch) -> None:
    system = install(monkeypatch, frames=pattern_frames((640, 480)), desktop=True)
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        with pytest.raises(MovinetPiError, match="desktop session may hold the display"):
            DrmDisplay(source, (640, 480))
        assert system.instances[-1].started  # the camera keeps running for the model
        assert source.read() is not None
    finally:
        source.close()


def test_drm_failing_in_the_preview_thread_is_caught_and_frames_come_back(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # The real picamera2 accepts start_preview(DRM) under a desktop and dies at the first
    # frame, in its event-loop thread; from then on no capture completes.
    system = install(monkeypatch, frames=pattern_frames((640, 480)), desktop=True,
                     drm_failure="render")
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        with pytest.raises(MovinetPiError, match="desktop session may hold the display"):
            DrmDisplay(source, (640, 480))
        camera = system.instances[-1]
        assert camera._preview is not None and camera._preview.kind.name == "NULL"
        assert source.read() is not None  # the model still gets its frames
    finally:
        source.close()
    assert system.hung is None  # (stop() before stop_preview() would wait on the dead thread)


@pytest.mark.parametrize("with_libcamera", [True, False])
def test_mirror_flips_the_drm_picture_and_the_box_but_not_the_text(
        monkeypatch: pytest.MonkeyPatch, with_libcamera: bool) -> None:
    if with_libcamera:
        install_libcamera(monkeypatch)
    system = install(monkeypatch, frames=pattern_frames((640, 480)))
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        display = DrmDisplay(source, (640, 480), max_fps=1000.0, mirror=True)
        camera = system.instances[-1]
        transform = camera._preview.options.get("transform")
        assert display.mirrored is with_libcamera  # (no libcamera: the picture is not flipped)
        assert (transform is not None and transform.hflip == 1) is with_libcamera
        state = OverlayState([Prediction("arm wrestling", 0.9, 6)], "M",
                             roi=(0.0, 0.4, 0.2, 0.2))  # a box on the picture's left
        display.update(state)
        overlay = camera.overlay
        assert overlay is not None
        band = overlay[int(0.45 * 480):int(0.55 * 480)]  # the box's middle rows
        left, right = band[:, :64, 3].max(), band[:, -64:, 3].max()
        # over a flipped picture, the box is drawn on the right; the text stays readable
        assert (right > 0 and left == 0) if with_libcamera else (left > 0 and right == 0)
        assert np.array_equal(overlay[:60, :, 3] > 0,
                              render_overlay_rgba((640, 480), state)[:60, :, 3] > 0)
    finally:
        source.close()


def test_the_overlay_may_be_redrawn_exactly_at_its_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.display import camera_preview

    clock = [0.0]
    monkeypatch.setattr(camera_preview.time, "monotonic", lambda: clock[0])
    system = install(monkeypatch, frames=pattern_frames((640, 480)))
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        display = DrmDisplay(source, (640, 480), max_fps=4.0)  # at most every 0.25 s
        camera = system.instances[-1]
        display.update(_state(Prediction("arm wrestling", 0.9, 6)))
        first = camera.overlay
        clock[0] = 0.2
        display.update(_state(Prediction("carving ice", 0.8, 5)))
        assert camera.overlay is first  # too soon
        clock[0] = 0.25
        display.update(_state(Prediction("carving ice", 0.8, 5)))
        assert camera.overlay is not first
    finally:
        source.close()
