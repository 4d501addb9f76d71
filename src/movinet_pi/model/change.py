"""Has the scene changed? Novelty of the last few frames against the segment's recent past.

The test works on each frame's own embedding (the head pool's per-frame
features, :mod:`movinet_pi.model.frame_features`). Every step it averages the
last ``window`` frames, normalises that, and asks how far it is (cosine
distance) from the *nearest* window-average seen in the last ``horizon`` steps
of the current segment. Nearest, not the segment's mean: one action filmed from
several angles, a camera pan or a loop cut back to an earlier shot lands next to
a moment already seen and is not news; a new action is unlike every one of them.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0.0 else v


class NoveltyDetector:
    """Cosine distance of the last ``window`` frames to the nearest earlier window of the
    last ``horizon`` steps; windows become comparable once they no longer overlap."""

    def __init__(self, window: int, horizon: int) -> None:
        self.window = max(1, window)
        self.horizon = max(1, horizon)
        self.reset()

    def reset(self) -> None:
        """Forget every frame and every past window (a new segment starts)."""
        self._frames: deque[np.ndarray] = deque(maxlen=self.window)
        self._waiting: deque[np.ndarray] = deque()
        self._past: np.ndarray | None = None  # horizon x features, unit rows
        self._count = 0
        self._next = 0

    def forget_past(self) -> None:
        """Keep the last frames but forget the windows they are compared with."""
        self._waiting.clear()
        self._count = 0

    def add(self, features: np.ndarray) -> float | None:
        """Take one frame's features; the novelty of the window ending with it (None
        until a whole window and one earlier window exist)."""
        self._frames.append(np.asarray(features, np.float32).ravel())
        if len(self._frames) < self.window:
            return None
        current = _unit(np.sum(self._frames, axis=0))
        novelty = None
        if self._count:
            novelty = 1.0 - float(np.max(self._past[: self._count] @ current))
        self._waiting.append(current)
        if len(self._waiting) > self.window:  # no longer overlaps the current window
            self._remember(self._waiting.popleft())
        return novelty

    def _remember(self, unit_window: np.ndarray) -> None:
        if self._past is None:
            self._past = np.zeros((self.horizon, unit_window.size), np.float32)
        self._past[self._next] = unit_window
        self._next = (self._next + 1) % self.horizon
        self._count = min(self._count + 1, self.horizon)

    def new_frames(self) -> int:
        """How many of the newest frames belong with the newest one rather than with the
        past (each is assigned to whichever is nearer): where the change happened."""
        frames = list(self._frames)
        newest = _unit(frames[-1])
        past = self._past[: self._count] if self._count else None
        n = 0
        for frame in reversed(frames):
            unit = _unit(frame)
            if past is not None and float(unit @ newest) < float(np.max(past @ unit)):
                break
            n += 1
        return max(n, 1)
