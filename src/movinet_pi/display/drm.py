"""The Pi camera's DRM/KMS preview on HDMI (a Pi without a desktop), our overlay on top.

The camera stack draws the picture itself at the camera's rate, scaled to fit the
screen's mode (its size read from sysfs; picamera2's own default is a 640x480 corner)
or ``--window-size`` (:mod:`movinet_pi.display.camera_preview`); our overlay is drawn
no larger than the picture, and smaller when the screen is (a Pi's 7" display), so the
plane never shrinks its text out of reading. DRM cannot get the screen while a desktop
session holds it.
"""

from __future__ import annotations

import os
from typing import Any

from movinet_pi.display.camera_preview import CameraPreviewDisplay
from movinet_pi.display.render import fit
from movinet_pi.errors import MovinetPiError
from movinet_pi.health import health_root
from movinet_pi.sources.picamera import PicameraSource

#: Where the kernel lists the screens: ``card<N>-<connector>/status`` and ``/modes``.
DRM_CLASS = "sys/class/drm"


def drm_mode_size(root: str | os.PathLike[str] | None = None) -> tuple[int, int] | None:
    """The size of the first connected screen's mode (the first of its ``modes``, the
    one the kernel prefers), under ``root`` (``$MOVINET_PI_SYSFS``, else ``/``)."""
    for connector in sorted((health_root(root) / DRM_CLASS).glob("card*-*")):
        try:
            if (connector / "status").read_text().strip() != "connected":
                continue
            first = (connector / "modes").read_text().split()
        except OSError:
            continue
        width, _, height = (first[0] if first else "").partition("x")
        if width.isdigit() and height.rstrip("i").isdigit():
            return int(width), int(height.rstrip("i"))
    return None


class DrmDisplay(CameraPreviewDisplay):
    """The Pi camera's DRM/KMS preview on HDMI, with our overlay composited on top.

    Under a desktop the real picamera2 fails only at the first frame, in its preview
    thread, and then delivers nothing: the probe frame catches that, and opening
    raises a one-line MovinetPiError while the camera goes on without a preview.
    """

    def __init__(self, source: PicameraSource, size: tuple[int, int],
                 max_fps: float = 10.0, screen: tuple[int, int] | None = None,
                 mirror: bool = False) -> None:
        """``size``: the camera's picture; ``screen``: the area the preview fills (default:
        the screen's mode, else picamera2's 640x480); ``mirror``: flipped left-right."""
        self.screen = screen or drm_mode_size() or (640, 480)
        fits = size[0] <= self.screen[0] and size[1] <= self.screen[1]
        super().__init__(source, size if fits else fit(size, self.screen), max_fps, mirror)

    def before_start(self, camera: Any) -> None:
        width, height = self.screen  # (the picture is letter-boxed in it, as is the overlay)
        transform = self.mirror_transform()  # (the DRM plane's rotation property)
        extra = {} if transform is None else {"transform": transform}
        camera.start_preview(self.source.picamera2.Preview.DRM, x=0, y=0, width=width,
                             height=height, **extra)
        self.mirrored = transform is not None

    def start_error(self, reason: str) -> MovinetPiError:
        return MovinetPiError(
            f"the DRM preview did not start ({reason or 'no frame came through the DRM preview'})"
            ": a desktop session may hold the display; use --display window",
            exit_code=1,
        )
