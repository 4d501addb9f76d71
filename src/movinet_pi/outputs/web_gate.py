"""How the browser view takes connections: one thread reads every request's head, a few answer.

A thread per connection (:class:`http.server.ThreadingHTTPServer`) lets anyone who
opens sockets and sends nothing make threads: each sat up to 20 s on a read, and 300
idle sockets took the app to 131 threads. Here one thread, the gate, accepts every
connection and reads its request line and headers without blocking (a selector):

* a client has ``head_deadline_s`` to send them, else it is closed (408);
* at most ``max_waiting`` connections wait for their heads at once; beyond that the
  one that has waited longest is closed first, and so is it when file descriptors run out;
* a head over :data:`MAX_HEAD_BYTES` is refused (431).

Only a complete head goes on, to one of at most ``workers`` handler threads (started
when needed), which answers it from the bytes read. An idle socket costs a file
descriptor and a few bytes, never a thread, and never holds up another's answer; the
token is checked as soon as the head is in.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from movinet_pi.errors import one_line
from movinet_pi.log import say

#: Seconds a client has to send its request line and headers.
HEAD_DEADLINE_S = 5.0
#: Connections waiting for their heads at once (the oldest is closed beyond it).
MAX_WAITING = 256
#: The longest request head taken (request line and headers).
MAX_HEAD_BYTES = 64 * 1024

Handle = Callable[[socket.socket, Any, bytes], None]


@dataclass
class _Waiting:
    """A connection whose head has not all come yet."""

    address: Any
    deadline: float
    head: bytearray = field(default_factory=bytearray)


def head_complete(head: bytes | bytearray, searched_from: int = 0) -> bool:
    """Whether ``head`` holds the blank line that ends the headers (CRLF or bare LF)."""
    start = max(0, searched_from - 3)
    return head.find(b"\r\n\r\n", start) >= 0 or head.find(b"\n\n", start) >= 0


def refuse(conn: socket.socket, status: str) -> None:
    """Answer ``status`` (e.g. ``408 Request Timeout``) if the socket takes it now, and close."""
    with contextlib.suppress(OSError):
        conn.send(f"HTTP/1.0 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                  .encode())
    conn.close()


class Gate:
    """Accepts on ``listener``, reads heads on its own thread, hands each complete one to
    ``handle(conn, address, head)`` on one of at most ``workers`` threads. ``handle``
    owns the connection (and closes it)."""

    def __init__(self, listener: socket.socket, handle: Handle, *, workers: int,
                 head_deadline_s: float = HEAD_DEADLINE_S,
                 max_waiting: int = MAX_WAITING) -> None:
        if workers < 1 or max_waiting < 1:
            raise ValueError("workers and max_waiting must be 1 or more")
        self.listener = listener
        self.handle = handle
        self.max_workers = workers
        self.head_deadline_s = head_deadline_s
        self.max_waiting = max_waiting
        self._waiting: dict[socket.socket, _Waiting] = {}  # oldest first
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._jobs: deque[tuple[socket.socket, Any, bytes]] = deque()
        self._jobs_cond = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a job

    @property
    def threads(self) -> int:
        """Handler threads started so far (never more than ``max_workers``)."""
        with self._jobs_cond:
            return len(self._workers)

    def start(self) -> None:
        self.listener.setblocking(False)
        self._wake_r.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop accepting, close the connections still sending heads and the ones not
        yet answered, and wait up to ``timeout`` for the threads (the caller ends long
        answers, such as streams, first)."""
        deadline = time.monotonic() + timeout
        self._closing.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        with self._jobs_cond:
            jobs, self._jobs = list(self._jobs), deque()
            workers = list(self._workers)
            self._jobs_cond.notify_all()
        for conn, _, _ in jobs:
            conn.close()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    # -- the gate's thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                for key, _ in self._selector.select(self._next_timeout()):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                self._expire(time.monotonic())
        finally:
            for conn in list(self._waiting):
                self._drop(conn)
            self._selector.close()

    def _next_timeout(self) -> float:
        if not self._waiting:
            return 1.0
        first = next(iter(self._waiting.values()))  # the oldest has the nearest deadline
        return min(1.0, max(0.0, first.deadline - time.monotonic()))

    def _accept(self) -> None:
        while True:
            try:
                conn, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if self._waiting:  # out of descriptors: the longest waiting goes
                        self._drop(next(iter(self._waiting)), "503 Service Unavailable")
                        continue
                    self._closing.wait(0.1)  # all answering: let them finish
                    return
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # gone before we took it
                raise
            if len(self._waiting) >= self.max_waiting:
                self._drop(next(iter(self._waiting)), "503 Service Unavailable")
            conn.setblocking(False)
            self._waiting[conn] = _Waiting(address, time.monotonic() + self.head_deadline_s)
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        waiting = self._waiting[conn]
        try:
            data = conn.recv(8192)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        searched = len(waiting.head)
        waiting.head += data
        if head_complete(waiting.head, searched):
            self._selector.unregister(conn)
            del self._waiting[conn]
            self._dispatch(conn, waiting.address, bytes(waiting.head))
        elif len(waiting.head) > MAX_HEAD_BYTES:
            self._drop(conn, "431 Request Header Fields Too Large")

    def _expire(self, now: float) -> None:
        while self._waiting:  # in order of arrival, so of deadline
            conn, waiting = next(iter(self._waiting.items()))
            if waiting.deadline > now:
                return
            self._drop(conn, "408 Request Timeout")

    def _drop(self, conn: socket.socket, status: str | None = None) -> None:
        self._waiting.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        if status is None:
            conn.close()
        else:
            refuse(conn, status)

    # -- the handler threads -------------------------------------------------------------
    def _dispatch(self, conn: socket.socket, address: Any, head: bytes) -> None:
        with self._jobs_cond:
            self._jobs.append((conn, address, head))
            if len(self._jobs) > self._idle and len(self._workers) < self.max_workers:
                worker = threading.Thread(target=self._work, daemon=True,
                                          name=f"web-{len(self._workers) + 1}")
                self._workers.append(worker)
                worker.start()
            self._jobs_cond.notify()

    def _work(self) -> None:
        while True:
            with self._jobs_cond:
                self._idle += 1
                self._jobs_cond.wait_for(lambda: self._jobs or self._closing.is_set())
                self._idle -= 1
                if not self._jobs:
                    return  # closing
                conn, address, head = self._jobs.popleft()
            try:
                self.handle(conn, address, head)
            except Exception as e:  # a bug in one answer must not cost the pool a thread
                say(f"web: answering {address}: {one_line(e)}")
                conn.close()
