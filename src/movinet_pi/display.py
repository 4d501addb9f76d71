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

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from movinet_pi.errors import MovinetPiError
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
    """An OpenCV window, drawn by a process of its own.

    OpenCV's Qt backend ends the whole process (``exit(1)`` from C) when its X
    connection goes away, e.g. when the desktop session ends or ``ssh -X``
    drops. In a child process that only takes the window with it: :meth:`show`
    then raises, and the pipeline carries on headless. Frames go through shared
    memory; a frame is handed over only once the last one was drawn, so a slow
    window misses frames and never holds the pipeline up. Keys come back from
    :meth:`show` as codes (None: no key).
    """

    def __init__(self, title: str = WINDOW_TITLE, start_timeout: float = 20.0) -> None:
        import multiprocessing

        # Qt warns about missing bundled fonts on every window; the warnings mean
        # nothing to a user and bury our own messages. (Inherited by the child.)
        os.environ.setdefault("QT_LOGGING_RULES", "*.warning=false")
        context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_window_process, args=(child_conn, title),
                                        name="movinet-pi window", daemon=True)
        self._process.start()
        child_conn.close()
        self._shm: Any = None
        self._shape: tuple[int, ...] = ()
        self._drawing = False
        reply = self._conn.recv() if self._conn.poll(start_timeout) else ("error", "no answer")
        if reply[0] != "ready":
            self.close()
            raise MovinetPiError(f"cannot open a window ({reply[1]}): run with --headless")

    def show(self, bgr: np.ndarray) -> int | None:
        key = self._receive()
        if not self._drawing:
            self._send_frame(bgr)
        return key

    def _receive(self) -> int | None:
        """Acks, keys and errors from the window process, without waiting."""
        key = None
        try:
            while self._conn.poll():
                kind, value = self._conn.recv()
                if kind == "drawn":
                    self._drawing = False
                elif kind == "key":
                    key = value
                elif kind == "error":
                    raise RuntimeError(f"the window failed: {value}")
        except (EOFError, OSError):
            pass  # the process is gone: said below
        if not self._process.is_alive():
            raise RuntimeError(f"the window process ended (exit status {self._process.exitcode})")
        return key

    def _send_frame(self, bgr: np.ndarray) -> None:
        from multiprocessing import shared_memory

        if bgr.shape != self._shape:
            self._release_memory()
            self._shm = shared_memory.SharedMemory(create=True, size=bgr.nbytes)
            self._shape = bgr.shape
        np.copyto(np.ndarray(bgr.shape, np.uint8, self._shm.buf), bgr)
        try:
            self._conn.send(("frame", (self._shm.name, bgr.shape)))
            self._drawing = True
        except (OSError, ValueError) as error:
            raise RuntimeError(f"the window process is gone ({error})") from None

    def _release_memory(self) -> None:
        if self._shm is not None:
            with contextlib.suppress(Exception):
                self._shm.close()
                self._shm.unlink()
            self._shm = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.send(("close", None))
        self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=1.0)
        with contextlib.suppress(Exception):
            self._conn.close()
        self._release_memory()


def _window_process(conn: Any, title: str) -> None:
    """The window's own process: draw what the pipeline sends, send back keys."""
    import signal
    from multiprocessing import shared_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the app, which closes us
    import cv2

    try:
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | getattr(cv2, "WINDOW_GUI_NORMAL", 0)
        cv2.namedWindow(title, flags)
    except cv2.error as e:
        conn.send(("error", str(e).strip().splitlines()[-1]))
        return
    conn.send(("ready", None))
    memory: Any = None
    sized = False
    try:
        while True:
            if conn.poll(0.02):
                kind, value = conn.recv()
                if kind == "close":
                    break
                name, shape = value
                if memory is None or memory.name != name:
                    if memory is not None:
                        memory.close()
                    # (the resource tracker is the app's, shared: the app unlinks it)
                    memory = shared_memory.SharedMemory(name=name)
                frame = np.ndarray(shape, np.uint8, memory.buf)
                if not sized:  # a resizable window opens small: fit it to the picture once
                    cv2.resizeWindow(title, shape[1], shape[0])
                    sized = True
                cv2.imshow(title, frame)
                del frame
                conn.send(("drawn", None))
            key = cv2.waitKey(1)
            if cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1:
                conn.send(("key", ord("q")))  # the user closed the window: quit
                break
            if key >= 0:
                conn.send(("key", key & 0xFF))
    except (EOFError, OSError):
        pass  # the app has gone
    finally:
        if memory is not None:
            memory.close()
        with contextlib.suppress(Exception):
            cv2.destroyWindow(title)
            cv2.waitKey(1)


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
