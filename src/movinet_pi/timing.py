"""Frames in time: which are due on a fixed fps grid, how many arrive a second, and the
one-slot hand-over that keeps only the newest between two threads."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: Timestamps within this of a due time count as on time (30 fps files put
#: frame 6 at 0.19999… s, which must feed the 0.2 s tick).
DUE_TOLERANCE_S = 1e-3


class FrameSampler:
    """Picks the frames the model sees: one per tick of a fixed ``fps`` grid.

    A frame is due when its timestamp reaches the next tick; the next tick is
    then the first one after that frame, so a source slower than the model
    feeds every frame, a faster one every n-th, and a gap in the source skips
    ticks instead of bunching them up. Each grid interval that holds a frame
    feeds exactly one.
    """

    def __init__(self, fps: float) -> None:
        if not fps > 0:
            raise ValueError("model fps must be positive")
        self.period = 1.0 / fps
        self.next_due = 0.0

    def is_due(self, t: float) -> bool:
        if t + DUE_TOLERANCE_S < self.next_due:
            return False
        ticks = math.floor((t + DUE_TOLERANCE_S) / self.period) + 1
        self.next_due = ticks * self.period
        return True

    def reset(self, t: float = 0.0) -> None:
        """Restart the grid so that ``t`` is due."""
        self.next_due = t


class RateMeter:
    """Events per second over a sliding window of the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    @property
    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Mailbox(Generic[T]):
    """A one-slot, overwrite-on-put hand-over between two threads.

    ``put`` never blocks and replaces what is waiting (counted in ``dropped``);
    ``get`` waits for a value and takes it. This is how the pipeline keeps
    latency bounded: there is never more than one frame in flight.

    Two plain locks rather than a ``Condition``: a frame passes through two of these,
    and a condition's wait makes a lock and runs a dozen lines of Python each time.
    ``_bell`` is released ("rung") when something is waiting or a get should wake.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()  # the slot and the bell change together under it
        self._bell = threading.Lock()
        self._bell.acquire()  # silent: nothing to take
        self._item: T | None = None
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._guard:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._ring()

    def wake(self) -> None:
        """Wake a waiting ``get`` (it returns what is waiting, maybe None); counts nothing."""
        with self._guard:
            self._ring()

    def get(self, timeout: float | None = None) -> T | None:
        """Take the waiting item, waiting up to ``timeout`` s; None if none came."""
        self._bell.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        with self._guard:
            item, self._item = self._item, None
            self._bell.acquire(blocking=False)  # taken: silent until the next put or wake
            return item

    def _ring(self) -> None:
        if self._bell.locked():
            self._bell.release()

    def peek(self) -> T | None:
        with self._guard:
            return self._item
