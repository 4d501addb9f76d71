"""Where the picture goes: an OpenCV window, the Pi camera's DRM preview, or nowhere.

``--display auto`` picks for a user who may be at the Pi or SSHed into it:

1. ``$DISPLAY`` (or ``$WAYLAND_DISPLAY``) set: a window there;
2. no display in this shell but the Pi's own desktop session is running and
   reachable (its X socket ``/tmp/.X11-unix/X0``, which XWayland also provides
   under Wayland): a window on ``:0``, the monitor attached to the Pi;
3. no desktop at all (Pi OS Lite, or console boot) and the Pi camera: its
   DRM/KMS preview on HDMI, with our overlay composited by the camera stack;
4. otherwise headless, saying how to get a picture.

:func:`choose_display` returns the choice and a one-line reason, which the CLI
prints, so a user never wonders why no window opened.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from movinet_pi import MovinetPiError
from movinet_pi.overlay import OverlayState, render_overlay_rgba
from movinet_pi.pipeline import Display

DISPLAY_MODES = ("auto", "window", "drm", "none")
X11_SOCKET_DIR = Path("/tmp/.X11-unix")
WINDOW_TITLE = "movinet-pi"


@dataclass(frozen=True)
class DisplayChoice:
    kind: str  # "window", "drm" or "none"
    reason: str
    env: Mapping[str, str]  # variables to set before opening (e.g. DISPLAY=:0)


def _desktop_socket(socket_dir: Path) -> str | None:
    """The display name of a running local X server we may connect to, if any."""
    sock = socket_dir / "X0"
    if sock.exists() and os.access(sock, os.R_OK | os.W_OK):
        return ":0"
    return None


def choose_display(
    mode: str,
    env: Mapping[str, str] | None = None,
    *,
    picamera: bool = False,
    socket_dir: Path | None = None,
) -> DisplayChoice:
    """Decide where to show the picture (see the module docstring).

    ``picamera``: the source is the Pi camera, so its DRM preview is possible.
    """
    env = os.environ if env is None else env
    if mode not in DISPLAY_MODES:
        choices = ", ".join(DISPLAY_MODES)
        raise MovinetPiError(f"unknown --display {mode!r}: choose one of {choices}")
    if mode == "none":
        return DisplayChoice("none", "headless (--display none)", {})
    if mode == "drm":
        if not picamera:
            raise MovinetPiError(
                "--display drm shows the Pi camera's own preview: use it with --source "
                "picamera, or --display window for other sources"
            )
        return DisplayChoice("drm", "DRM preview on HDMI (--display drm)", {})
    display = env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    if display:
        return DisplayChoice("window", f"window on {display}", {})
    desktop = _desktop_socket(X11_SOCKET_DIR if socket_dir is None else socket_dir)
    if desktop:
        return DisplayChoice(
            "window",
            f"no $DISPLAY in this shell: using the Pi's desktop session on {desktop} "
            "(the attached monitor)",
            {"DISPLAY": desktop},
        )
    if mode == "window":
        raise MovinetPiError(
            "--display window: no display found ($DISPLAY is not set and no desktop "
            "session is running): log in on the Pi's desktop, use `ssh -X`, or run with --headless"
        )
    if picamera:
        return DisplayChoice(
            "drm",
            "no desktop session: using the camera's DRM preview on HDMI "
            "(start the desktop or use `ssh -X` for a window)",
            {},
        )
    return DisplayChoice(
        "none",
        "no display found (no $DISPLAY, no desktop session): running headless; "
        "start the Pi's desktop or use `ssh -X` for a window",
        {},
    )


class WindowDisplay(Display):
    """An OpenCV window. Keys come back from :meth:`show` as codes (-1: none)."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        # OpenCV's Qt backend warns about missing bundled fonts on every window; the
        # warnings mean nothing to a user and bury our own messages.
        os.environ.setdefault("QT_LOGGING_RULES", "*.warning=false")
        import cv2

        self.title = title
        self._cv2 = cv2
        try:
            flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | getattr(cv2, "WINDOW_GUI_NORMAL", 0)
            cv2.namedWindow(title, flags)
        except cv2.error as e:
            raise MovinetPiError(
                f"cannot open a window ({str(e).strip().splitlines()[-1]}): run with --headless"
            ) from e
        self.closed_by_user = False
        self._sized = False

    def show(self, bgr: np.ndarray) -> int | None:
        cv2 = self._cv2
        if not self._sized:  # a resizable window opens small: fit it to the picture once
            cv2.resizeWindow(self.title, bgr.shape[1], bgr.shape[0])
            self._sized = True
        cv2.imshow(self.title, bgr)
        key = cv2.waitKey(1)
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.closed_by_user = True
            return ord("q")
        return key & 0xFF if key >= 0 else None

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
            self._cv2.waitKey(1)
        except self._cv2.error:
            pass



class DrmDisplay(Display):
    """The Pi camera's DRM/KMS preview on HDMI, with our overlay composited on top.

    The camera stack draws the picture itself, at the camera's rate: the display
    thread only redraws the RGBA overlay, and only when what it shows changed
    (at most ``max_fps`` a second), since ``set_overlay`` copies a full frame.
    """

    shows_picture = False

    def __init__(self, camera: Any, size: tuple[int, int], max_fps: float = 10.0) -> None:
        camera.start_drm_preview()
        self.camera = camera
        self.size = size
        self.min_interval = 1.0 / max_fps
        self._last_text: tuple[object, ...] | None = None
        self._last_time = -math.inf

    def update(self, state: OverlayState) -> None:
        now = time.monotonic()
        text = (tuple(state.predictions), state.message, round(state.prediction_age_s) > 1,
                tuple(state.extra_lines), round(state.display_fps), round(state.infer_ms),
                state.model_name, state.threads, state.show_help)
        if text == self._last_text or now - self._last_time < self.min_interval:
            return
        self._last_text, self._last_time = text, now
        self.camera.set_overlay(render_overlay_rgba(self.size, state))

    def close(self) -> None:
        self.camera.set_overlay(None)
