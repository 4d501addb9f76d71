"""A picture the Pi camera stack draws itself (DRM/KMS on HDMI, QTGL in a desktop window),
with our overlay composited on top.

The picture never passes through Python, whatever the model does: the camera stack
puts each frame on the screen and only our overlay (an RGBA image, any size, scaled
to the preview) comes from us. :class:`CameraPreviewDisplay` starts such a preview on
the camera (:class:`~movinet_pi.sources.picamera.PicameraSource`, which brings it
back on every reconnect) and redraws the overlay only when what it says changed.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import time
from typing import Any, Optional

import numpy as np

from movinet_pi.display.base import Display
from movinet_pi.display.overlay import OverlayState, render_overlay_rgba
from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.sources.picamera import PicameraSource
from movinet_pi.sources.picamera_lib import REASON_LIMIT

#: How long a new preview may take to deliver its first frame before we call it failed.
PREVIEW_PROBE_S = 3.0


class CameraPreviewDisplay(Display):
    """The camera stack's own preview, with our overlay composited on top.

    Opening it starts the preview on ``source``, or raises a one-line MovinetPiError
    (:meth:`start_error`); the camera then goes on without one. The display thread
    only redraws the RGBA overlay, and only when what it shows changed (at most
    ``max_fps`` a second), since ``set_overlay`` copies a full frame. As the source's
    :class:`~movinet_pi.sources.picamera.CameraPreview`, it starts the preview again,
    with its last overlay, after a reconnect. Subclasses say which preview
    (:meth:`before_start`) and what a failure means.
    """

    shows_picture = False

    def __init__(self, source: PicameraSource, size: tuple[int, int],
                 max_fps: float = 10.0, mirror: bool = False) -> None:
        self.source = source
        self.size = size
        self.mirror = mirror  # asked for (--mirror)...
        self.mirrored = False  # ...and done by the preview (the overlay's box then is too)
        self.min_interval = 1.0 / max_fps
        self._last_text: tuple[object, ...] | None = None
        self._last_time = -math.inf
        self._overlay: Optional[np.ndarray] = None
        self._start_preview()

    def _start_preview(self) -> None:
        """Start the preview, proven by one frame through it, or raise MovinetPiError."""
        camera = self.source.camera
        if camera is None:
            raise MovinetPiError("the Pi camera is not open")
        try:
            camera.stop()
            # start() already runs a NULL preview (picamera2's event loop): replace it.
            with contextlib.suppress(Exception):
                camera.stop_preview()
            self.prepare(camera)
            self.before_start(camera)
            camera.start()
            # A preview may fail only at the first frame, in its own thread, and then
            # deliver nothing: one frame proves the preview works.
            camera.capture_request(wait=min(self.source.timeout, PREVIEW_PROBE_S)).release()
        except Exception as error:
            self.undo(camera)
            _restore_null_preview(camera)
            raise self.start_error(one_line(error, limit=REASON_LIMIT)) from error
        self.source.preview = self

    def mirror_transform(self) -> Any:
        """libcamera's left-right flip for the preview when ``--mirror`` asks for it (the
        camera stack flips the picture, the overlay's text stays as it is); None if not
        asked or libcamera is not there."""
        if not self.mirror:
            return None
        try:
            return importlib.import_module("libcamera").Transform(hflip=1)
        except Exception:
            return None

    # -- what subclasses say ----------------------------------------------------------------------
    def prepare(self, camera: Any) -> None:
        """Anything the preview needs before it starts (the camera is stopped)."""

    def undo(self, camera: Any) -> None:
        """Take back :meth:`prepare` after the preview failed."""

    def start_error(self, reason: str) -> MovinetPiError:
        raise NotImplementedError

    # -- the source's CameraPreview: called on every (re)connect ----------------------------------
    def before_start(self, camera: Any) -> None:
        raise NotImplementedError

    def after_start(self, camera: Any) -> None:
        """The overlay back after a (re)connect. Some picamera2 versions take an overlay only
        once a frame has been shown: then the next :meth:`update` sends it (a failed overlay
        must not fail the reconnect)."""
        if self._overlay is not None:
            try:
                camera.set_overlay(self._overlay)
            except Exception:
                self._last_text = None  # the next update draws and sends it again

    # -- Display ----------------------------------------------------------------------------------
    def update(self, state: OverlayState) -> int | None:
        now = time.monotonic()
        text = (tuple(state.predictions), state.message, round(state.prediction_age_s) > 1,
                tuple(state.extra_lines), round(state.display_fps), round(state.infer_ms),
                state.model_name, state.threads, state.show_help,
                None if state.memory_s is None else round(state.memory_s), state.roi)
        if text == self._last_text or now - self._last_time < self.min_interval:
            return None
        self._last_text, self._last_time = text, now
        self._set_overlay(render_overlay_rgba(self.size, state, mirror=self.mirrored))
        return None

    def close(self) -> None:
        self._set_overlay(None)

    def _set_overlay(self, rgba: Optional[np.ndarray]) -> None:
        """Draw an RGBA image (any size: scaled to the preview) over the picture."""
        self._overlay = rgba
        camera = self.source.camera
        if camera is not None:
            with contextlib.suppress(Exception):  # a camera mid-reconnect: shown once back
                camera.set_overlay(rgba)


def _restore_null_preview(camera: Any) -> None:
    """Back to frames without a preview after a preview failed: the preview first (stop()
    waits on a preview's thread, forever if it died), a timed-out capture's job dropped (it
    would take a frame later and never give it back), then a NULL preview's frames."""
    steps = [camera.stop_preview, camera.stop, camera.start]
    if hasattr(camera, "cancel_all_and_flush"):  # (picamera2 0.3.20 and later)
        steps.insert(0, camera.cancel_all_and_flush)
    for step in steps:
        with contextlib.suppress(Exception):
            step()
