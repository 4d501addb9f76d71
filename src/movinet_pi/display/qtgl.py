"""The Pi camera's QTGL preview (a Pi with a desktop), our overlay on top.

picamera2's QTGL preview shows the camera's picture in a window of the desktop,
drawn by the GPU from the camera's own buffers (EGL dma-buf import): no frame is
converted, copied or scaled on the CPU for the screen. Our overlay goes on top with
``set_overlay`` at the model's rate (:mod:`movinet_pi.display.camera_preview`).

Its failures are not polite, so it is started only where it can work: with PyQt5
and PyOpenGL installed (else Qt's thread dies and ``start_preview`` waits for it
forever), on this machine's own X display (Qt aborts the process when it cannot
connect; GLES does not work over X forwarding), and with a 32-bit main stream
(QGlPicamera2 cannot import 24-bit RGB888 buffers, and the error in its Qt slot
aborts the process). The start itself has a deadline all the same.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from movinet_pi.display.camera_preview import CameraPreviewDisplay
from movinet_pi.display.overlay import OverlayState
from movinet_pi.display.render import shown_size
from movinet_pi.display.select import X11_SOCKET_DIR
from movinet_pi.display.x11 import screen_size
from movinet_pi.errors import MovinetPiError
from movinet_pi.sources.picamera import PicameraSource

#: Seconds the QTGL window may take to open before we give up on it.
QTGL_START_S = 10.0
#: The main stream's format under QTGL: B,G,R,X in memory, which QGlPicamera2 can import.
QTGL_MAIN_FORMAT = "XRGB8888"
#: What each Python package the QTGL preview imports is called on Raspberry Pi OS.
QTGL_PACKAGES = {"PyQt5": "python3-pyqt5", "OpenGL": "python3-opengl"}


def qtgl_unavailable(env: Optional[Mapping[str, str]] = None,
                     socket_dir: Optional[Path] = None) -> Optional[str]:
    """Why the QTGL preview cannot start here (None: it can)."""
    for module, package in QTGL_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: sudo apt install {package}"
    env = os.environ if env is None else env
    display = env.get("DISPLAY", "")
    if not display.startswith(":"):
        where = f"$DISPLAY is {display}" if display else "no $DISPLAY"
        return f"{where}, not this machine's own screen (QTGL needs it)"
    number = display[1:].split(".")[0]
    if not ((X11_SOCKET_DIR if socket_dir is None else socket_dir) / f"X{number}").exists():
        return f"no X server on {display}"
    return None


class QtGlDisplay(CameraPreviewDisplay):
    """picamera2's QTGL preview in a desktop window, our overlay composited on top.

    The overlay is redrawn at most ``max_fps`` a second (the model's rate). When the
    user closes the window, a NULL preview takes over so the camera keeps delivering
    frames, and :meth:`update` returns ``q`` (the app quits, as when its window closes).
    """

    def __init__(self, source: PicameraSource, size: tuple[int, int], max_fps: float = 5.0,
                 start_timeout: float = QTGL_START_S, socket_dir: Optional[Path] = None,
                 window_size: Optional[tuple[int, int]] = None, mirror: bool = False) -> None:
        """``window_size``: the box the picture is fitted to (``--window-size``); else
        the X screen's size, as for the OpenCV window; ``mirror``: flipped left-right."""
        reason = qtgl_unavailable(socket_dir=socket_dir)
        if reason:
            raise self.start_error(reason)
        self.start_timeout = start_timeout
        self.window_size = window_size
        self.window_closed = False
        self._closing = False
        self._preview: Any = None
        self._main_format = source.main_format
        super().__init__(source, size, max_fps, mirror)

    def start_error(self, reason: str) -> MovinetPiError:
        return MovinetPiError(f"the QTGL preview cannot start ({reason})", exit_code=1)

    def prepare(self, camera: Any) -> None:
        self.source.set_main_format(QTGL_MAIN_FORMAT)
        # the window (and the overlay drawn for it) at the size the picture is shown
        self.size = shown_size(self.source.frame_size, screen_size(), self.window_size)

    def undo(self, camera: Any) -> None:
        preview, self._preview = self._preview, None
        if preview is not None:  # (stopped by the camera: not a closed window)
            with contextlib.suppress(Exception):
                camera.stop_preview()
        with contextlib.suppress(Exception):
            camera.stop()
            self.source.set_main_format(self._main_format)

    def before_start(self, camera: Any) -> None:
        width, height = self.size
        preview_class = _stop_noting(importlib.import_module("picamera2.previews").QtGlPreview)
        transform = self.mirror_transform()
        try:  # (every picamera2 since 0.3.2 takes one; a stand-in may not)
            preview = preview_class(width=width, height=height,
                                    **({} if transform is None else {"transform": transform}))
        except TypeError:
            preview, transform = preview_class(width=width, height=height), None
        self.mirrored = transform is not None
        _call_within(lambda: camera.start_preview(preview), self.start_timeout,
                     "the QTGL window did not open")
        self._preview = preview
        threading.Thread(target=self._watch, args=(preview, camera), name="qtgl watch",
                         daemon=True).start()

    def _watch(self, preview: Any, camera: Any) -> None:
        """When the window's Qt thread ends and the camera did not stop it (closing, a
        reconnect), the user closed the window: ask the app to quit, and keep frames
        coming meanwhile (a NULL preview)."""
        thread = getattr(preview, "thread", None)
        if thread is None:
            return
        # Newer picamera2 runs every Qt window on one thread that outlives them: there, a
        # closed window shows as the camera's preview being detached.
        while thread.is_alive() and getattr(camera, "_preview", preview) is preview:
            thread.join(WATCH_S)
        if self._closing or preview.stopped_by_camera:
            return
        self.window_closed = True
        if camera is self.source.camera:
            with contextlib.suppress(Exception):
                camera.start_preview(False)

    def update(self, state: OverlayState) -> int | None:
        if self.window_closed:
            return ord("q")
        return super().update(state)

    def close(self) -> None:
        self._closing = True
        super().close()


WATCH_S = 0.5  # how often the window's watch looks


def _stop_noting(preview_class: type) -> type:
    """``preview_class`` noting when the camera stops it (``stop_preview``, on closing or
    reconnecting), so that its window's end can be told from the user closing it."""

    class StopNoting(preview_class):  # type: ignore[misc, valid-type]
        stopped_by_camera = False

        def stop(self) -> None:
            self.stopped_by_camera = True
            super().stop()

    return StopNoting


def _call_within(call: Callable[[], None], seconds: float, late: str) -> None:
    """``call()`` on a thread of its own, its error raised here; RuntimeError(``late``) if
    it has not returned after ``seconds`` (it is then left behind, a daemon)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="qtgl start", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise RuntimeError(f"{late} within {seconds:g} s")
    if errors:
        raise errors[0]
