"""The OpenCV window, drawn by a process of its own (so a lost X session cannot end the app)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np

from movinet_pi.display.base import Display
from movinet_pi.errors import MovinetPiError

WINDOW_TITLE = "movinet-pi"

#: How long the window process waits for a frame before it looks at the window (keys, the
#: user closing it) anyway. A frame ends the wait at once, so while frames come faster than
#: this (a camera, a file at its own speed) the window is served once a frame, not between
#: frames too; when none come (a paused source), keys still answer within this.
IDLE_WAIT_S = 0.05


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
        self._view: np.ndarray | None = None  # the shared memory as an image
        self._drawing = False
        self._key: int | None = None  # a key read by buffer(), returned by the next show()
        self._received = False  # buffer() has just read the window's messages
        self._failed = False  # buffer() found the window gone
        try:
            reply = (self._conn.recv() if self._conn.poll(start_timeout)
                     else ("error", "no answer"))
        except (EOFError, OSError):  # the process died before it said anything
            self._process.join(timeout=2.0)
            reply = ("error", f"the window process ended (exit status {self._process.exitcode})")
        if reply[0] != "ready":
            self.close()
            raise MovinetPiError(f"cannot open a window ({reply[1]}): run with --headless")

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
        self._memory_for(bgr.shape)
        assert self._view is not None
        if not np.shares_memory(bgr, self._view):  # else rendered there already
            np.copyto(self._view, bgr)
        try:
            self._conn.send(("frame", (self._shm.name, bgr.shape)))
            self._drawing = True
        except (OSError, ValueError) as error:
            raise RuntimeError(f"the window process is gone ({error})") from None

    def _memory_for(self, shape: tuple[int, ...]) -> None:
        from multiprocessing import shared_memory

        if shape != self._shape:
            self._release_memory()
            self._shm = shared_memory.SharedMemory(create=True, size=int(np.prod(shape)))
            self._shape = shape
            self._view = np.ndarray(shape, np.uint8, self._shm.buf)

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

    # imshow's conversion on OpenCV's worker pool costs more CPU than it saves (see
    # movinet_pi.cli.opencv_without_workers): this process draws on its own thread.
    cv2.setNumThreads(0)

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
            if conn.poll(IDLE_WAIT_S):
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
