"""The fake picamera2 follows the real library where it bites users.

Each test pins one behaviour of picamera2 that code written on a PC gets wrong, checked
against the real library's source (picamera2/helpers.py ``make_array`` and ``make_image``,
picamera2/previews/drm_preview.py) and its issue tracker:

* "RGB888" arrays are B,G,R in memory (``make_image`` reads them with PIL mode "BGR"),
  "BGR888" are R,G,B; the padding at the end of each row is cut off: shape (h, w, 3).
* "XRGB8888"/"XBGR8888" arrays have 4 channels, shape (h, w, 4) (PIL modes "BGRX"/"RGBA").
* ``capture_array("lores")`` of a YUV420 lores stream is *not* an image: it is the I420
  planes reshaped to (h * 3 // 2, stride), the row padding kept.
* The DRM preview under a running desktop fails with "Failed to reserve DRM plane"; the
  real library raises that in the preview's thread at the first frame, after which no
  capture completes (picamera2 issues 501 and 1028; reported on Bookworm, Pi 4).
* The QTGL preview runs Qt in a thread of its own, and ``start_preview`` waits for it
  without a timeout: when the thread dies first (no PyQt5) it never returns; without a
  display Qt aborts the process, as does a 24-bit main stream QGlPicamera2 cannot
  import; its ``set_overlay`` wants RGBA (any size) and ``buffer_count`` >= 2; closing
  its window detaches it and leaves no event loop.
* ``configure`` may hand back another lores size than asked for (libcamera's
  ``validate()``), or fail.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from fake_picamera2 import install, solid_frames

RED = (255, 0, 0)


def bars(width: int, height: int) -> np.ndarray:
    """Red, green, blue and white vertical bars, RGB."""
    image = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate([RED, (0, 255, 0), (0, 0, 255), (255, 255, 255)]):
        image[:, i * width // 4 : (i + 1) * width // 4] = colour
    return image


def started(monkeypatch: pytest.MonkeyPatch, frames: Any = None, **config: Any) -> Any:
    """A started fake camera configured with ``create_video_configuration(**config)``."""
    system = install(monkeypatch, frames=frames)
    camera = system.module.Picamera2()
    camera.configure(camera.create_video_configuration(**config))
    camera.start()
    return camera


# --- "RGB888" is BGR in memory ----------------------------------------------------------------


def test_rgb888_capture_array_is_bgr(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = started(monkeypatch, solid_frames(RED), main={"format": "RGB888", "size": (64, 48)})
    array = camera.capture_array()
    assert array.shape == (48, 64, 3) and array.dtype == np.uint8
    assert array[0, 0].tolist() == [0, 0, 255]  # red is the *last* byte
    # so OpenCV (BGR) shows it right as it is, and a model wanting RGB needs it flipped
    assert cv2.cvtColor(array, cv2.COLOR_BGR2RGB)[0, 0].tolist() == list(RED)
    camera.close()


def test_bgr888_capture_array_is_rgb(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = started(monkeypatch, solid_frames(RED), main={"format": "BGR888", "size": (64, 48)})
    assert camera.capture_array()[0, 0].tolist() == [255, 0, 0]
    camera.close()


def test_rgb_rows_come_without_stride_padding(monkeypatch: pytest.MonkeyPatch) -> None:
    """50 px of RGB888 is 150 bytes, padded to a 160-byte stride; make_array cuts it off."""
    camera = started(
        monkeypatch, iter([bars(50, 40)] * 2), main={"format": "RGB888", "size": (50, 40)}
    )
    config = camera.camera_configuration()["main"]
    assert config["stride"] == 160 and config["stride"] > 50 * 3
    array = camera.capture_array()
    assert array.shape == (40, 50, 3) and array.flags.c_contiguous
    np.testing.assert_array_equal(array[..., ::-1], bars(50, 40))
    camera.close()


# --- 4-channel formats ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pixel"), [("XRGB8888", [0, 0, 255, 255]), ("XBGR8888", [255, 0, 0, 255])]
)
def test_x_formats_have_four_channels(
    monkeypatch: pytest.MonkeyPatch, fmt: str, pixel: list[int]
) -> None:
    camera = started(monkeypatch, solid_frames(RED), main={"format": fmt, "size": (64, 48)})
    array = camera.capture_array("main")
    assert array.shape == (48, 64, 4)  # a model expecting (h, w, 3) must drop a channel
    assert array[0, 0].tolist() == pixel
    camera.close()


def test_video_configuration_default_is_xbgr8888(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = started(monkeypatch, solid_frames(RED), main={"size": (64, 48)})
    assert camera.camera_configuration()["main"]["format"] == "XBGR8888"
    assert camera.capture_array().shape == (48, 64, 4)
    camera.close()


# --- main vs lores ----------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(320, 240), (40, 30)])
def test_lores_capture_array_is_yuv420_planes_not_an_image(
    monkeypatch: pytest.MonkeyPatch, width: int, height: int
) -> None:
    camera = started(
        monkeypatch,
        iter([bars(640, 480)] * 3),
        main={"format": "RGB888", "size": (640, 480)},
        lores={"size": (width, height)},  # YUV420, the only lores format on a Pi 4
    )
    lores = camera.camera_configuration()["lores"]
    assert lores["format"] == "YUV420"
    stride = lores["stride"]
    assert stride >= width

    main = camera.capture_array("main")
    yuv = camera.capture_array("lores")
    assert main.shape == (480, 640, 3)
    assert yuv.shape == (height * 3 // 2, stride) and yuv.ndim == 2  # one channel, taller
    # the top h rows are the luma plane: the white bar is bright, the blue one dark
    luma = yuv[:height, :width]
    assert luma[:, -2].min() > 230 and luma[:, width * 5 // 8].max() < 60
    # to get a picture: convert the planes, then cut the stride padding off
    rgb = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)[:, :width]
    expected = cv2.resize(bars(640, 480), (width, height), interpolation=cv2.INTER_AREA)
    assert np.median(np.abs(rgb.astype(int) - expected.astype(int))) <= 2
    camera.close()


def test_lores_must_be_yuv_on_a_pi4_but_not_on_a_pi5(monkeypatch: pytest.MonkeyPatch) -> None:
    for platform, ok in (("vc4", False), ("pisp", True)):
        system = install(monkeypatch, platform=platform)
        with system.module.Picamera2() as camera:
            config = camera.create_video_configuration(
                main={"size": (640, 480)}, lores={"format": "RGB888", "size": (320, 240)}
            )
            if ok:
                camera.configure(config)
            else:
                with pytest.raises(RuntimeError, match="lores stream must be YUV"):
                    camera.configure(config)


# --- the DRM preview under a desktop ------------------------------------------------------------


def test_drm_preview_under_a_desktop_fails_in_the_preview_thread(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """What the real library does: starting succeeds, then no frame ever arrives."""
    system = install(monkeypatch, solid_frames(RED), desktop=True, drm_failure="render")
    module = system.module
    camera = module.Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (64, 48)}))
    camera.start_preview(module.Preview.DRM)  # no error here
    camera.start()  # nor here
    err = capfd.readouterr().err
    assert "Exception in thread" in err and "RuntimeError: Failed to reserve DRM plane" in err
    assert isinstance(camera.preview_error, RuntimeError)
    with pytest.raises(TimeoutError):
        camera.capture_array(wait=0.2)  # the event loop is dead: a capture never completes
    with pytest.raises(RuntimeError, match="preview thread died"):
        camera.capture_array()  # (the real one would block forever)

    # stop() would wait on the dead thread forever (the fake says so instead)
    with pytest.raises(RuntimeError, match="stop\\(\\) waits forever on a dead preview thread"):
        camera.stop()
    system.hung = None
    # the preview first, as picamera2's close() does: back to a NULL preview, frames again
    camera.stop_preview()
    camera.stop()
    camera.start_preview(module.Preview.NULL)
    camera.start()
    assert camera.capture_array().shape == (48, 64, 4)
    camera.close()


def test_drm_preview_without_a_desktop_works(monkeypatch: pytest.MonkeyPatch) -> None:
    system = install(monkeypatch, solid_frames(RED), desktop=False, drm_failure="render")
    camera = system.module.Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (64, 48)}))
    camera.start_preview(system.module.Preview.DRM)
    camera.start()
    assert camera.capture_array(wait=1.0).shape == (48, 64, 4)
    assert camera.preview_error is None
    camera.close()


def test_drm_failure_at_start_preview_uses_the_real_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default mode raises at once, with picamera2's own words."""
    system = install(monkeypatch, desktop=True)
    camera = system.module.Picamera2()
    with pytest.raises(RuntimeError, match=r"^Failed to reserve DRM plane$"):
        camera.start_preview(system.module.Preview.DRM)
    camera.close()


def test_drm_failure_mode_is_checked() -> None:
    from fake_picamera2 import FakeCameraSystem

    with pytest.raises(ValueError, match="drm_failure"):
        FakeCameraSystem(drm_failure="later")


def test_project_drm_display_detects_the_real_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """--display drm under a desktop says why, though picamera2 only fails in its thread."""
    from fake_picamera2 import pattern_frames

    from movinet_pi import MovinetPiError
    from movinet_pi.display.drm import DrmDisplay
    from movinet_pi.sources.open import open_source

    install(monkeypatch, pattern_frames((640, 480)), desktop=True, drm_failure="render")
    source = open_source("picamera", frame_size=(640, 480), timeout=0.5)
    try:
        with pytest.raises(MovinetPiError, match="desktop"):
            DrmDisplay(source, (640, 480))
    finally:
        source.close()


# --- the QTGL preview (picamera2/previews/qt_previews.py, q_gl_picamera2.py) ------------------


def _configured(monkeypatch: pytest.MonkeyPatch, fmt: str = "XRGB8888", **options: Any) -> Any:
    system = install(monkeypatch, solid_frames(RED), **options)
    camera = system.module.Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (64, 48), "format": fmt}))
    return system, camera


def test_qtgl_runs_qt_in_a_thread_of_its_own_and_wants_an_rgba_overlay(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    system, camera = _configured(monkeypatch)
    camera.start_preview(system.module.Preview.QTGL, width=320, height=240)
    camera.start()
    preview = camera._preview
    assert preview.thread.name == "QtGlPreview" and preview.thread.is_alive()
    assert camera.capture_array(wait=1.0).shape == (48, 64, 4)
    with pytest.raises(RuntimeError, match="Overlay must be a 4-channel image"):
        camera.set_overlay(np.zeros((10, 10, 3), np.uint8))
    camera.set_overlay(np.zeros((10, 20, 4), np.uint8))  # any size: scaled to the window
    assert camera.overlay.shape == (10, 20, 4)
    camera.close()  # stops the preview: Qt's thread ends
    assert not preview.thread.is_alive()


def test_qtgl_overlay_needs_two_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    system = install(monkeypatch, solid_frames(RED))
    camera = system.module.Picamera2()
    camera.configure(camera.create_still_configuration(main={"size": (64, 48)}))
    camera.start_preview(system.module.previews.QtGlPreview())  # a preview object works too
    with pytest.raises(RuntimeError, match="buffer_count=2"):
        camera.set_overlay(np.zeros((10, 10, 4), np.uint8))
    camera.close()


def test_qtgl_without_pyqt5_never_returns_from_start_preview(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import fake_picamera2

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(fake_picamera2, "HANG_S", 0.2)  # (the real one waits forever)
    system, camera = _configured(monkeypatch, qt=False)
    with pytest.raises(RuntimeError, match="would block forever"):
        camera.start_preview(system.module.Preview.QTGL)
    err = capfd.readouterr().err
    assert "Exception in thread QtGlPreview" in err and "No module named 'PyQt5'" in err
    camera.close()


def test_qtgl_without_a_display_or_with_a_24_bit_picture_would_abort(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import fake_picamera2

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(fake_picamera2, "HANG_S", 0.2)
    system, camera = _configured(monkeypatch)
    with pytest.raises(RuntimeError):
        camera.start_preview(system.module.Preview.QTGL)
    assert system.aborted == "qt.qpa.xcb: could not connect to display"
    camera.close()

    monkeypatch.setenv("DISPLAY", ":0")
    system, camera = _configured(monkeypatch, fmt="RGB888")
    camera.start_preview(system.module.Preview.QTGL)
    camera.start()
    assert system.aborted == "Format RGB888 not supported by QGlPicamera2 preview"
    with pytest.raises(TimeoutError):
        camera.capture_array(wait=0.2)
    camera.close()


def test_closing_the_qtgl_window_leaves_no_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    system, camera = _configured(monkeypatch)
    camera.start_preview(system.module.Preview.QTGL)
    camera.start()
    thread = camera._preview.thread
    system.close_window()
    thread.join(timeout=5.0)
    assert camera._preview is None  # detached, as the widget's cleanup() does
    with pytest.raises(TimeoutError):
        camera.capture_array(wait=0.2)
    camera.start_preview(False)  # a NULL preview brings the frames back
    assert camera.capture_array(wait=1.0).shape == (48, 64, 4)
    camera.close()


def test_configure_may_adjust_or_refuse_the_lores_size(monkeypatch: pytest.MonkeyPatch) -> None:
    system = install(monkeypatch, lores_adjust=(192, 172))
    camera = system.module.Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (640, 480)},
                                                       lores={"size": (172, 172)}))
    assert camera.camera_configuration()["lores"]["size"] == (192, 172)
    camera.close()
    system = install(monkeypatch, lores_refused=True)
    camera = system.module.Picamera2()
    with pytest.raises(RuntimeError, match="Configuration failed"):
        camera.configure(camera.create_video_configuration(lores={"size": (172, 172)}))
    camera.configure(camera.create_video_configuration())  # without lores: fine
    camera.close()
