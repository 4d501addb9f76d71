"""The OpenCV window, drawn by a process of its own (so a lost X session cannot end the app).

The window fits the screen it opens on: the window process tells the X screen's size
(:mod:`movinet_pi.display.x11`) and pictures are shown scaled to fit it, or to
``--window-size`` (:func:`~movinet_pi.display.render.shown_size`).
"""

from __future__ import annotations

import contextlib
import os
import select
from typing import Any

import numpy as np

from movinet_pi.display.base import Display
from movinet_pi.display.render import shown_shape
from movinet_pi.errors import MovinetPiError

WINDOW_TITLE = "movinet-pi"

#: How long the window process waits for a frame before it looks at the window (keys, the
#: user closing it) anyway. A frame ends the wait at once, so while frames come faster than
#: this (a camera, a file at its own speed) the window is served once a frame, not between
#: frames too; when none come (a paused source), keys still answer within this.
IDLE_WAIT_S = 0.05
#: How many times (once a turn of its loop, from the first frame on, until the window is
#: viewable) the window process tries to tell Qt that its window is mapped: Qt may have
#: missed it and would never paint it (see movinet_pi.display.x11).
MAP_NUDGE_TRIES = 30

# The messages on the pipe between the app and its window process: raw bytes, a kind
# and its value, never pickles. A frame costs one message each way, and reading one
# is a few microseconds on each side (multiprocessing's own poll and pickling took
# ~0.1 ms of the app's CPU a frame, issue #21).
FRAME = b"f"  # app -> window: b"f<shared memory name> <h> <w> <c>": draw the frame in it
CLOSE = b"c"  # app -> window: close the window and end
READY = b"r"  # window -> app: b"r<w>x<h>", the window is open on a screen that size (b"r": ?)
DRAWN = b"d"  # window -> app: the frame has been drawn (its memory is the app's again)
KEY = b"k"  # window -> app: b"k<code>", a key, as one byte
ERROR = b"e"  # window -> app: b"e<text>", the window failed


def frame_message(memory_name: str, shape: tuple[int, ...]) -> bytes:
    return FRAME + " ".join([memory_name, *map(str, shape)]).encode()


def parse_size(text: bytes) -> tuple[int, int] | None:
    """``b"1280x800"`` -> ``(1280, 800)``; anything else (b"": unknown) -> None."""
    width, _, height = text.decode(errors="replace").partition("x")
    return (int(width), int(height)) if width.isdigit() and height.isdigit() else None


def parse_frame_message(message: bytes) -> tuple[str, tuple[int, ...]]:
    name, *shape = message[1:].decode().split(" ")
    return name, tuple(int(n) for n in shape)


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

    def __init__(self, title: str = WINDOW_TITLE, start_timeout: float = 20.0,
                 size: tuple[int, int] | None = None) -> None:
        """``size``: the box pictures are scaled to fit (``--window-size``); else the
        screen's size, as the window process tells it, less room for a title bar."""
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
        self._incoming = select.poll()  # (the window's end closing also wakes it)
        self._incoming.register(self._conn.fileno(), select.POLLIN)
        self._shm: Any = None
        self._shape: tuple[int, ...] = ()
        self._view: np.ndarray | None = None  # the shared memory as an image
        self._frame_message = b""
        self._drawing = False
        self._key: int | None = None  # a key read by buffer(), returned by the next show()
        self._received = False  # buffer() has just read the window's messages
        self._failed = False  # buffer() found the window gone
        self.chosen_size = size
        self.screen: tuple[int, int] | None = None  # (w, h), if the window process knows
        try:
            reply = self._conn.recv_bytes() if self._conn.poll(start_timeout) else b"eno answer"
        except (EOFError, OSError):  # the process died before it said anything
            self._process.join(timeout=2.0)
            reply = ERROR + (f"the window process ended (exit status "
                             f"{self._process.exitcode})").encode()
        if reply[:1] != READY:
            self.close()
            reason = reply[1:].decode(errors="replace")
            raise MovinetPiError(f"cannot open a window ({reason}): run with --headless")
        self.screen = parse_size(reply[1:])

    def shown_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        return shown_shape(shape, self.screen, self.chosen_size)

    def show(self, bgr: np.ndarray) -> int | None:
        # buffer() has just heard from the window for this frame: no second poll
        key = None if self._received else self._receive()
        self._received = False
        if key is None:
            key, self._key = self._key, None
        if not self._drawing:
            self._send_frame(bgr)
        return key

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """The shared memory itself, while the window is not drawing from it: a frame
        rendered there goes to the window with no copy."""
        try:
            key = self._receive()
        except Exception:
            self._failed = True  # not busy: the next show() says what happened
            return None
        self._received = True
        if key is not None:
            self._key = key
        if self._drawing:
            return None
        self._memory_for(tuple(shape))
        return self._view

    def busy(self) -> bool:
        """The window is still drawing the last frame (keys wait for the next one)."""
        return self._drawing and not self._failed

    def _receive(self) -> int | None:
        """Acks, keys and errors from the window process, without waiting."""
        key = None
        try:
            while self._incoming.poll(0):
                message = self._conn.recv_bytes()
                kind = message[:1]
                if kind == DRAWN:
                    self._drawing = False
                elif kind == KEY:
                    key = message[1]
                elif kind == ERROR:
                    raise RuntimeError(f"the window failed: {message[1:].decode()}")
        except (EOFError, OSError):  # the window's end is closed: the process has ended
            if key is not None:
                return key  # (its last word, e.g. "q" for a closed window; next time: gone)
            self._process.join(timeout=1.0)
            raise RuntimeError(
                f"the window process ended (exit status {self._process.exitcode})") from None
        return key

    def _send_frame(self, bgr: np.ndarray) -> None:
        self._memory_for(bgr.shape)
        assert self._view is not None
        if not np.shares_memory(bgr, self._view):  # else rendered there already
            np.copyto(self._view, bgr)
        try:
            self._conn.send_bytes(self._frame_message)
        except (OSError, ValueError):  # the window has gone: the next _receive() says so,
            return  # after its last key (closed by the user: "q")
        self._drawing = True

    def _memory_for(self, shape: tuple[int, ...]) -> None:
        from multiprocessing import shared_memory

        if shape != self._shape:
            self._release_memory()
            self._shm = shared_memory.SharedMemory(create=True, size=int(np.prod(shape)))
            self._shape = shape
            self._view = np.ndarray(shape, np.uint8, self._shm.buf)
            self._frame_message = frame_message(self._shm.name, shape)

    def _release_memory(self) -> None:
        self._view = None
        if self._shm is not None:
            with contextlib.suppress(Exception):
                self._shm.unlink()
            with contextlib.suppress(Exception):  # (a view still held keeps it mapped)
                self._shm.close()
            self._shm = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.send_bytes(CLOSE)
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

    from movinet_pi.display.x11 import screen_size

    # imshow's conversion on OpenCV's worker pool costs more CPU than it saves (see
    # movinet_pi.commands.opencv_without_workers): this process draws on its own thread.
    cv2.setNumThreads(0)

    try:
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | getattr(cv2, "WINDOW_GUI_NORMAL", 0)
        cv2.namedWindow(title, flags)
    except cv2.error as e:
        conn.send_bytes(ERROR + str(e).strip().splitlines()[-1].encode())
        return
    screen = screen_size()
    conn.send_bytes(READY + (f"{screen[0]}x{screen[1]}".encode() if screen else b""))
    incoming = select.poll()  # (the app's end closing also wakes it)
    incoming.register(conn.fileno(), select.POLLIN)
    wait_ms = round(IDLE_WAIT_S * 1000)
    memory: Any = None
    sized = False
    nudges = MAP_NUDGE_TRIES
    try:
        while True:
            if incoming.poll(wait_ms):
                message = conn.recv_bytes()
                if message[:1] == CLOSE:
                    break
                name, shape = parse_frame_message(message)
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
                conn.send_bytes(DRAWN)
            key = cv2.waitKey(1)
            if sized and nudges:  # once it is viewable: see movinet_pi.display.x11
                nudges = 0 if _told_mapped(title) else nudges - 1
            if cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1:
                conn.send_bytes(KEY + bytes([ord("q")]))  # the user closed the window: quit
                break
            if key >= 0:
                conn.send_bytes(KEY + bytes([key & 0xFF]))
    except (EOFError, OSError):
        pass  # the app has gone
    finally:
        if memory is not None:
            memory.close()
        with contextlib.suppress(Exception):
            cv2.destroyWindow(title)
            cv2.waitKey(1)


def _told_mapped(title: str) -> bool:
    """Tell OpenCV's Qt that its window is mapped (:func:`~movinet_pi.display.x11.tell_mapped`);
    whether it was. Never the end of the window: a failure is as good as not yet."""
    from movinet_pi.display.x11 import tell_mapped

    try:
        return tell_mapped(title) > 0
    except Exception:
        return False
