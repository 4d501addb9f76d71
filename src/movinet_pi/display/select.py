"""The ``--display`` choice: an OpenCV window, the Pi camera's QTGL or DRM preview, or nowhere.

``--display auto`` picks for a user who may be at the Pi or SSHed into it:

1. ``$DISPLAY`` (or ``$WAYLAND_DISPLAY``) set: a window there; with the Pi camera
   and this machine's own X display (``:N``), picamera2's QTGL preview (the GPU
   draws the picture; the CLI falls back to the OpenCV window, saying why, when it
   cannot start);
2. no display in this shell but the Pi's own desktop session is running and
   reachable (its X socket ``/tmp/.X11-unix/X0``, which XWayland also provides
   under Wayland): a window (or the QTGL preview) on ``:0``, the monitor attached
   to the Pi;
3. no desktop at all (Pi OS Lite, or console boot) and the Pi camera: its
   DRM/KMS preview on HDMI, with our overlay composited by the camera stack;
4. otherwise headless, saying how to get a picture.

:func:`choose_display` returns the choice and a one-line reason, which the CLI
prints, so a user never wonders why no window opened.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from movinet_pi.errors import MovinetPiError

DISPLAY_MODES = ("auto", "window", "qtgl", "drm", "none")
X11_SOCKET_DIR = Path("/tmp/.X11-unix")


@dataclass(frozen=True)
class DisplayChoice:
    kind: str  # "window", "qtgl", "drm" or "none"
    reason: str
    env: Mapping[str, str]  # variables to set before opening (e.g. DISPLAY=:0)


#: How to see the picture all the same when a run goes headless by itself.
WEB_HINT = "to see the picture, add --web PORT and open the page it names in a browser"


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
    web: bool = False,
) -> DisplayChoice:
    """Decide where to show the picture (see the module docstring).

    ``picamera``: the source is the Pi camera, so its QTGL and DRM previews are possible.
    ``web``: the picture is on a ``--web`` page already (no hint to add one).
    """
    env = os.environ if env is None else env
    if mode not in DISPLAY_MODES:
        choices = ", ".join(DISPLAY_MODES)
        raise MovinetPiError(f"unknown --display {mode!r}: choose one of {choices}")
    if mode == "none":
        return DisplayChoice("none", "headless (--display none)", {})
    if mode in ("drm", "qtgl") and not picamera:
        raise MovinetPiError(
            f"--display {mode} shows the Pi camera's own preview: use it with --source "
            "picamera, or --display window for other sources"
        )
    if mode == "drm":
        return DisplayChoice("drm", "DRM preview on HDMI (--display drm)", {})
    # QTGL wants this machine's own X display; `ssh -X` (localhost:10.0) gets the window
    qtgl = picamera and mode != "window"
    display = env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    if display:
        if qtgl and env.get("DISPLAY", "").startswith(":"):
            return DisplayChoice("qtgl", f"the camera's QTGL preview on {display}", {})
        return DisplayChoice("window", f"window on {display}", {})
    desktop = _desktop_socket(X11_SOCKET_DIR if socket_dir is None else socket_dir)
    if desktop:
        where = (f"no $DISPLAY in this shell: using the Pi's desktop session on {desktop} "
                 "(the attached monitor)")
        if qtgl:
            return DisplayChoice("qtgl", f"{where}, the camera's QTGL preview",
                                 {"DISPLAY": desktop})
        return DisplayChoice("window", where, {"DISPLAY": desktop})
    if mode in ("window", "qtgl"):
        raise MovinetPiError(
            f"--display {mode}: no display found ($DISPLAY is not set and no desktop "
            "session is running): log in on the Pi's desktop, use `ssh -X`, or run with --headless"
        )
    if picamera:
        return DisplayChoice(
            "drm",
            "no desktop session: using the camera's DRM preview on HDMI "
            "(start the desktop or use `ssh -X` for a window)",
            {},
        )
    see = "the picture is on the --web page" if web else WEB_HINT
    return DisplayChoice(
        "none",
        f"no display found (no $DISPLAY, no desktop session): running headless; {see}, "
        "or start the Pi's desktop or use `ssh -X` for a window",
        {},
    )
