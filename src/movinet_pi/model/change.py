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

import math
from typing import Sequence

import numpy as np


def _unit(v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``v`` scaled to length 1 (into ``out``, which may be ``v`` itself); a zero ``v``
    as it is."""
    norm = math.sqrt(float(v @ v))
    if norm == 0.0:
        return v
    return np.multiply(v, 1.0 / norm, out=out)


class NoveltyDetector:
    """Cosine distance of the last ``window`` frames to the nearest earlier window of the
    last ``horizon`` steps; windows become comparable once they no longer overlap.

    Every buffer is allocated once, at the first frame: a step costs a few vector
    operations and one (horizon x features) product, in as few numpy calls as it can
    (after the model's invoke each call runs from cold caches).
    """

    def __init__(self, window: int, horizon: int) -> None:
        self.window = max(1, window)
        self.horizon = max(1, horizon)
        self._frames: np.ndarray | None = None  # ring: the last `window` frames
        self.reset()

    def reset(self) -> None:
        """Forget every frame and every past window (a new segment starts)."""
        self._seen = 0  # frames added since the reset
        self.forget_past()

    def forget_past(self) -> None:
        """Keep the last frames but forget the windows they are compared with."""
        self._count = 0  # windows in the past
        self._next = 0  # where the next past window goes
        self._waiting = 0  # window averages not yet old enough to be compared with

    def _allocate(self, size: int) -> None:
        self._frames = np.zeros((self.window, size), np.float32)
        self._current = np.zeros(size, np.float32)  # the newest window, as a unit
        self._recent_units = np.zeros((self.window, size), np.float32)  # ring, by frame
        self._past = np.zeros((self.horizon, size), np.float32)

    def add(self, features: np.ndarray) -> float | None:
        """Take one frame's features; the novelty of the window ending with it (None
        until a whole window and one earlier window exist)."""
        flat = features.reshape(-1)
        if self._frames is None or self._frames.shape[1] != flat.size:
            self._allocate(flat.size)
        assert self._frames is not None
        slot = self._seen % self.window
        np.copyto(self._frames[slot], flat, casting="unsafe")
        self._seen += 1
        if self._seen < self.window:
            return None
        # The window's sum, made afresh (a running sum would drift over hours), as a unit.
        current = _unit(self._frames.sum(axis=0, out=self._current), out=self._current)
        novelty = None
        if self._count:
            novelty = 1.0 - float((self._past[: self._count] @ current).max())
        # This window may be compared with once `window` newer frames have come.
        if self._waiting == self.window:
            np.copyto(self._past[self._next], self._recent_units[slot])
            self._next = (self._next + 1) % self.horizon
            self._count = min(self._count + 1, self.horizon)
        else:
            self._waiting += 1
        np.copyto(self._recent_units[slot], current)
        return novelty

    def new_frames(self) -> int:
        """How many of the newest frames belong with the newest one rather than with the
        past (each is assigned to whichever is nearer): where the change happened."""
        assert self._frames is not None
        last = (self._seen - 1) % self.window
        newest = _unit(self._frames[last])
        past = self._past[: self._count] if self._count else None
        n = 0
        for back in range(min(self._seen, self.window)):
            unit = _unit(self._frames[(last - back) % self.window])
            if past is not None and float(unit @ newest) < float(np.max(past @ unit)):
                break
            n += 1
        return max(n, 1)


def scene_start(inputs: Sequence[np.ndarray], new: int, lookback: int) -> int:
    """How many of the newest ``inputs`` (oldest first) belong to the new scene, given
    that the features put the last ``new`` there.

    The features of the first frames after a cut still carry the old scene (the
    model's temporal convolutions and buffers see the frames before them), so they
    place a cut up to a few frames late (on a third of the changes between the
    shared clips); the pictures do not. The start may move back by up to
    ``lookback`` frames, to where the pictures split best into two groups: each
    group's pictures closest to the group's median picture (least absolute
    deviations, on every fourth pixel each way). Medians, so that one odd frame
    in a group (a flash, the old scene's own cut) does not decide the split. A
    steady picture leaves the start where the features put it; a gradual change
    has no clean split, and the start may move into the transition, never more
    than ``lookback`` frames.
    """
    n = len(inputs)
    new = max(1, min(new, n))
    if n - new < 1 or lookback < 1:
        return new
    pictures = np.stack([np.asarray(x)[::4, ::4].astype(np.float32).ravel() for x in inputs])
    best, best_spread = new, math.inf
    for back in range(new, min(new + lookback, n - 1) + 1):  # frames replayed
        spread = _spread(pictures[: n - back]) + _spread(pictures[n - back:])
        if spread < best_spread:
            best, best_spread = back, spread
    return best


def _spread(group: np.ndarray) -> float:
    """Sum of absolute differences of a group of pictures from their median picture."""
    return float(np.sum(np.abs(group - np.median(group, axis=0))))
