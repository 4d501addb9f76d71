"""The Pi camera's DRM/KMS preview on HDMI (a Pi without a desktop), our overlay on top.

The camera stack draws the picture itself, full-screen, at the camera's rate
(:mod:`movinet_pi.display.camera_preview`); DRM cannot get the screen while a desktop
session holds it.
"""

from __future__ import annotations

from typing import Any

from movinet_pi.display.camera_preview import CameraPreviewDisplay
from movinet_pi.errors import MovinetPiError


class DrmDisplay(CameraPreviewDisplay):
    """The Pi camera's DRM/KMS preview on HDMI, with our overlay composited on top.

    Under a desktop the real picamera2 fails only at the first frame, in its preview
    thread, and then delivers nothing: the probe frame catches that, and opening
    raises a one-line MovinetPiError while the camera goes on without a preview.
    """

    def before_start(self, camera: Any) -> None:
        camera.start_preview(self.source.picamera2.Preview.DRM)

    def start_error(self, reason: str) -> MovinetPiError:
        return MovinetPiError(
            f"the DRM preview did not start ({reason or 'no frame came through the DRM preview'})"
            ": a desktop session may hold the display; use --display window",
            exit_code=1,
        )
