"""The Pi camera's DRM/KMS preview on HDMI (a Pi without a desktop), our overlay on top.

The camera stack draws the picture itself, full-screen, at the camera's rate: it
never passes through Python, whatever the model does. We start that preview on
the camera (:class:`~movinet_pi.sources.picamera.PicameraSource`, which brings it
back on every reconnect) and give it our overlay as an RGBA image to composite.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Optional

import numpy as np

from movinet_pi.display.base import Display
from movinet_pi.display.overlay import OverlayState, render_overlay_rgba
from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.sources.picamera import REASON_LIMIT, PicameraSource

#: How long a new DRM preview may take to deliver its first frame before we call it failed.
DRM_PROBE_S = 3.0


class DrmDisplay(Display):
    """The Pi camera's DRM/KMS preview on HDMI, with our overlay composited on top.

    Opening it starts the preview on ``source`` (a one-line MovinetPiError when a
    desktop session holds the display; the camera then goes on without one). The
    display thread only redraws the RGBA overlay, and only when what it shows
    changed (at most ``max_fps`` a second), since ``set_overlay`` copies a full
    frame. As the source's :class:`~movinet_pi.sources.picamera.CameraPreview`, it
    starts the preview again, with its last overlay, after a reconnect.
    """

    shows_picture = False

    def __init__(self, source: PicameraSource, size: tuple[int, int],
                 max_fps: float = 10.0) -> None:
        self.source = source
        self.size = size
        self.min_interval = 1.0 / max_fps
        self._last_text: tuple[object, ...] | None = None
        self._last_time = -math.inf
        self._overlay: Optional[np.ndarray] = None
        self._start_preview()

    def _start_preview(self) -> None:
        """Show the camera's main stream full-screen through DRM/KMS, drawn by the camera
        stack, or raise MovinetPiError (a desktop session may hold the display)."""
        camera = self.source.camera
        if camera is None:
            raise MovinetPiError("the Pi camera is not open")
        try:
            camera.stop()
            # start() already runs a NULL preview (picamera2's event loop): replace it.
            with contextlib.suppress(Exception):
                camera.stop_preview()
            self.before_start(camera)
            camera.start()
            # Under a desktop the real picamera2 fails only at the first frame, in its
            # preview thread, and then delivers nothing: one frame proves the preview works.
            camera.capture_request(wait=min(self.source.timeout, DRM_PROBE_S)).release()
        except Exception as error:
            _restore_null_preview(camera)
            reason = one_line(error, limit=REASON_LIMIT) or "no frame came through the DRM preview"
            raise MovinetPiError(
                f"the DRM preview did not start ({reason}): "
                "a desktop session may hold the display; use --display window",
                exit_code=1,
            ) from error
        self.source.preview = self

    # -- the source's CameraPreview: called on every (re)connect ----------------------------------
    def before_start(self, camera: Any) -> None:
        camera.start_preview(self.source.picamera2.Preview.DRM)

    def after_start(self, camera: Any) -> None:
        if self._overlay is not None:
            camera.set_overlay(self._overlay)

    # -- Display ----------------------------------------------------------------------------------
    def update(self, state: OverlayState) -> None:
        now = time.monotonic()
        text = (tuple(state.predictions), state.message, round(state.prediction_age_s) > 1,
                tuple(state.extra_lines), round(state.display_fps), round(state.infer_ms),
                state.model_name, state.threads, state.show_help,
                None if state.memory_s is None else round(state.memory_s))
        if text == self._last_text or now - self._last_time < self.min_interval:
            return
        self._last_text, self._last_time = text, now
        self._set_overlay(render_overlay_rgba(self.size, state))

    def close(self) -> None:
        self._set_overlay(None)

    def _set_overlay(self, rgba: Optional[np.ndarray]) -> None:
        """Draw an RGBA image (any size: scaled to the preview) over the DRM preview."""
        self._overlay = rgba
        camera = self.source.camera
        if camera is not None:
            with contextlib.suppress(Exception):  # a camera mid-reconnect: shown once back
                camera.set_overlay(rgba)


def _restore_null_preview(camera: Any) -> None:
    """Back to frames without a preview after the DRM preview failed."""
    for step in (camera.stop, camera.stop_preview, camera.start):
        with contextlib.suppress(Exception):
            step()
