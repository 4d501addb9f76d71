"""Rates in time: which frames are due on a fixed fps grid, and how many per second arrive."""

from __future__ import annotations

import math
import time
from collections import deque

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
