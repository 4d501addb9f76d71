"""Opening the display ``--display`` asks for, saying in one line which and why.

The choice itself (``auto``: a desktop, the Pi camera, HDMI) is
:mod:`movinet_pi.display.select`'s; this opens it, falling back where the flags allow: the
Pi camera's QTGL preview to the OpenCV window, a DRM preview that cannot be had to none
(headless).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.model.catalogue import MODEL_FPS

if TYPE_CHECKING:  # imported for real where used: the CLI's `--help` stays fast
    from movinet_pi.display.base import Display
    from movinet_pi.sources.base import Source


def open_display(args: argparse.Namespace, source: Source) -> Display | None:
    """The display ``--display`` asks for, saying in one line which and why."""
    from movinet_pi.display.drm import DrmDisplay
    from movinet_pi.display.select import WEB_HINT, choose_display
    from movinet_pi.display.window import WindowDisplay
    from movinet_pi.sources.picamera import PicameraSource

    mode = "none" if args.headless else args.display
    picamera = isinstance(source, PicameraSource)
    choice = choose_display(mode, picamera=picamera, web=args.web is not None)
    os.environ.update(choice.env)
    size = args.window_size
    if choice.kind == "window":
        say(f"display: {choice.reason}")
        return WindowDisplay(size=size)
    if choice.kind == "qtgl":
        return say_if_not_mirrored(_open_qtgl(source, choice.reason, forced=mode == "qtgl",
                                              size=size, mirror=args.mirror))
    if choice.kind == "drm":
        try:
            display = DrmDisplay(source, source.frame_size, screen=size, mirror=args.mirror)
        except MovinetPiError as e:
            if mode == "drm":
                raise
            see = "the picture is on the --web page" if args.web is not None else WEB_HINT
            say(f"display: {e}; running headless ({see})")
            return None
        say(f"display: {choice.reason}")
        return say_if_not_mirrored(display)
    if mode == "auto":
        say(f"display: {choice.reason}")
    return None


def say_if_not_mirrored(display: Display) -> Display:
    """One line when ``--mirror`` was asked of a camera preview that cannot flip."""
    from movinet_pi.display.camera_preview import CameraPreviewDisplay

    if isinstance(display, CameraPreviewDisplay) and display.mirror and not display.mirrored:
        say("note: --mirror: this picamera2's preview cannot flip the picture (the web page "
            "and event clips are flipped)")
    return display


def _open_qtgl(source: Source, reason: str, forced: bool,
               size: tuple[int, int] | None, mirror: bool = False) -> Display:
    """The Pi camera's QTGL preview, else (unless forced) the OpenCV window, saying why."""
    from movinet_pi.display.qtgl import QtGlDisplay
    from movinet_pi.display.window import WindowDisplay
    from movinet_pi.sources.picamera import PicameraSource

    assert isinstance(source, PicameraSource)  # (choose_display offers QTGL only for it)
    try:
        display = QtGlDisplay(source, source.frame_size, max_fps=MODEL_FPS, window_size=size,
                              mirror=mirror)
    except MovinetPiError as e:
        if forced:
            raise
        say(f"display: {e}: using an OpenCV window instead")
        return WindowDisplay(size=size)
    say(f"display: {reason}")
    return display
