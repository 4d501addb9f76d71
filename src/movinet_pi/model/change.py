"""Has the scene changed? Tests on what each frame looks like, and how much two answers agree.

Two tests, for two kinds of change, both against the last 30 s (the span of the
memory), so that a loop or a cut back to an earlier shot is not news:

* :class:`ColourMemory`: is this picture from another place? A new angle of the
  same place keeps most of its colours (walls, floor, clothes, light); a cut to
  another place does not. It reads the picture itself, before the model runs:
  the model's features carry the previous frames through its temporal
  convolutions, the pictures carry nothing of the past.
* :class:`NoveltyDetector`: are the last frames' features unlike any of the last
  30 s? This also moves when the place stays and the action changes, and when a
  pose or an angle changes within one action, so it only opens a question that
  the model's answers settle (:mod:`movinet_pi.model.adaptive`).

:func:`agreement` is how much two answers (class probabilities) agree.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: The mean level (of 255) a dark picture is brought up to before its colours are counted:
#: about where a camera's auto-exposure puts a picture's mean (mid-grey, in sRGB).
EXPOSURE_TARGET = 110.0
#: The most a dark picture is brightened (two stops): a black frame stays nearly black.
MOST_GAIN = 4.0


def agreement(p: np.ndarray, q: np.ndarray) -> float:
    """The Bhattacharyya coefficient of two class distributions: 1 for the same answer,
    0 when no class has probability under both. Two answers that name different
    actions, each surely (p of a, q of b), agree at about ``sqrt(q(a)) + sqrt(p(b))``: a
    few hundredths."""
    return float(np.sqrt(p * q).sum())


class ColourMemory:
    """Is a picture from a place not seen in the last ``horizon`` frames?

    Each picture is summed up as a histogram of its colours (8 levels per channel,
    every ``step``-th pixel each way). A picture is from a new place when its colours
    both *jump* from the previous picture's (``sudden`` of its colour mass is not shared
    with the last picture's: one minus the overlap of the two histograms; a pan or a slow
    change of light does not jump) and are *new* against every picture of the last
    ``horizon`` (``novel`` of its mass is not shared with the nearest of them). Histograms
    ignore where colours are, so a new angle, a moving person or a moving camera in the
    same place change them little.

    A picture darker than :data:`EXPOSURE_TARGET` on average is brightened to it first (by
    at most :data:`MOST_GAIN`), as a camera's auto-exposure would: in a dim room every colour
    falls into the lowest levels, where two places share most of their mass and a cut from
    one to the other is no jump (of the cuts between the shared clips made dim, 96 of 342
    were none; brightened, 11). A picture at or above it is counted as it is.

    At a change of action (:meth:`changed`) the pictures before it are forgotten: the
    memory holds none of them, so going back to the place of what came before a short
    interruption is news again.
    """

    def __init__(self, horizon: int, *, sudden: float, novel: float, step: int = 4,
                 flip: int = 0) -> None:
        self.horizon = max(1, horizon)
        self.sudden, self.novel, self.step = sudden, novel, step
        self.flip = flip  # what the pictures' bytes are XORed with (0x80: an int8 model's input)
        self._past = np.zeros((self.horizon, 512), np.float32)
        self._small: np.ndarray | None = None
        self._levels = np.arange(256, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget every picture."""
        self._count = 0
        self._since = self.horizon  # pictures since the last change (all, at most horizon)

    def changed(self, pictures: int) -> None:
        """The action changed ``pictures`` pictures ago (the newest of them included):
        forget the pictures before those."""
        self._since = max(1, pictures)

    def histogram(self, picture: np.ndarray) -> np.ndarray:
        """The colour histogram of an HxWx3 uint8 picture (its bytes XORed with ``flip``),
        summing to 1, a dark picture brightened first."""
        step = self.step
        sampled = picture[::step, ::step]
        if self._small is None or self._small.shape != sampled.shape:
            self._small = np.empty(sampled.shape, np.uint8)
        if picture.shape[0] % step or picture.shape[1] % step:
            np.copyto(self._small, sampled)  # calcHist wants it contiguous
        else:
            # A nearest-neighbour shrink by a whole factor picks exactly every step-th
            # pixel, for a third of the cost of numpy's strided copy of bytes.
            cv2.resize(picture, sampled.shape[1::-1], dst=self._small,
                       interpolation=cv2.INTER_NEAREST)
        if self.flip:
            np.bitwise_xor(self._small, self.flip, out=self._small)
        self._brighten(self._small)
        hist = cv2.calcHist([self._small], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3)
        return hist.reshape(-1) / float(sampled.shape[0] * sampled.shape[1])

    def _brighten(self, small: np.ndarray) -> None:
        """Bring a dark picture's mean level up to :data:`EXPOSURE_TARGET`, in place."""
        mean = sum(cv2.mean(small)[:3]) / 3.0
        if mean >= EXPOSURE_TARGET:
            return
        gain = min(MOST_GAIN, EXPOSURE_TARGET / max(mean, 1.0))
        table = np.minimum(self._levels * gain, 255.0).astype(np.uint8)
        cv2.LUT(small, table, dst=small)

    def add(self, picture: np.ndarray) -> bool:
        """Take the next picture; True if it is from a new place."""
        hist = self.histogram(picture)
        new = self._count > 0 and self._is_new(hist)
        self._past[self._count % self.horizon] = hist
        self._count += 1
        self._since = min(self._since + 1, self.horizon)
        return new

    def _is_new(self, hist: np.ndarray) -> bool:
        last = self._past[(self._count - 1) % self.horizon]
        if 1.0 - float(np.minimum(last, hist).sum()) < self.sudden:
            return False
        seen = min(self._count, self.horizon, self._since)
        if seen == min(self._count, self.horizon):  # every picture in the ring
            shared = np.minimum(self._past[:seen], hist).sum(axis=1)
        else:  # the newest `seen` pictures
            newest = (self._count - 1 - np.arange(seen)) % self.horizon
            shared = np.minimum(self._past[newest], hist).sum(axis=1)
        return 1.0 - float(shared.max()) >= self.novel


def _unit(v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``v`` scaled to length 1 (into ``out``, which may be ``v`` itself); a zero ``v``
    as it is."""
    norm = math.sqrt(float(v @ v))
    if norm == 0.0:
        return v
    return np.multiply(v, 1.0 / norm, out=out)


class NoveltyDetector:
    """Cosine distance of the last ``window`` frames' features to the nearest earlier
    window of the last ``horizon`` steps; windows become comparable once they no longer
    overlap. Nearest, not the mean: one action filmed from several angles, a camera pan
    or a loop's cut back to an earlier shot lands next to a moment already seen; a new
    action is unlike all of it.

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
        """Forget every frame and every past window."""
        self._seen = 0  # frames added since the reset
        self._count = 0  # windows in the past
        self._next = 0  # where the next past window goes
        self._waiting = 0  # window averages not yet old enough to be compared with

    def _allocate(self, size: int) -> None:
        self._frames = np.zeros((self.window, size), np.float32)
        self._current = np.zeros(size, np.float32)  # the newest window, as a unit
        self._recent_units = np.zeros((self.window, size), np.float32)  # ring, by frame
        self._past = np.zeros((self.horizon, size), np.float32)

    def add(self, features: np.ndarray, novel: float | None = None) -> float | None:
        """Take one frame's features; the novelty of the window ending with it (None
        until a whole window and one earlier window exist). With ``novel``, a novelty of
        at most that may come back as any value of at most that: the newest past window
        is looked at first, and when it is that near the others need not be (the nearest
        is nearer still), which in a steady scene is almost every step."""
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
            newest = self._past[(self._next - 1) % self.horizon]
            novelty = 1.0 - float(newest @ current)
            if novel is None or novelty > novel:
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
