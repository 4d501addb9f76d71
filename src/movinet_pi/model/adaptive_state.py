"""What ``--history auto`` keeps from step to step besides the pools
(:mod:`movinet_pi.model.adaptive`): a fresh stream since a cut and the memory from
before it, the last few steps as they were read, an open same-place question."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from movinet_pi.model.history import Memory


@dataclass
class Fork:
    """A fresh stream since a cut, and the memory from before it."""

    old: Memory  # the pools' memory before the cut
    before: np.ndarray  # what was shown just before it
    frames: int = 0  # frames of the fresh stream so far
    early: list[np.ndarray] = field(default_factory=list)  # its first frames' head addends
    view: bool = False  # made by a new view (the crop moved), not by the pictures
    disagreeing: int = 0  # (a view's) steps in a row its answer surely named another action
    named: int | None = None  # the other action its answer named at the last step, if any


def mean_of(total: np.ndarray, count: float) -> np.ndarray:
    """A pool's mean, flat, in float64."""
    return total.reshape(-1).astype(np.float64) / max(1.0, count)


@dataclass
class RecentStep:
    """One recent step, as it was read: kept cheaply, made into means only when asked
    (a question or a cut looks back; most steps never are)."""

    shown: np.ndarray | None  # the mean shown instead of the pool's, if any
    pool: np.ndarray  # the head pool's sum (a copy)
    count: float  # and its count
    features: np.ndarray  # the frame's features (a copy)

    def shown_mean(self) -> np.ndarray:
        return mean_of(self.pool, self.count) if self.shown is None else self.shown

    def feature_vector(self) -> np.ndarray:
        return self.features.reshape(-1).astype(np.float64)


@dataclass
class Question:
    """Frames since a change of features, scored on their own."""

    before: np.ndarray  # what was shown just before them
    features: np.ndarray  # their head features, summed
    added: np.ndarray  # what they add to the head pool's sum, summed
    frames: int
    disagreeing: int = 0  # steps in a row their answer disagreed, surely
