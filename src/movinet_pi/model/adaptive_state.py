"""``--history auto``'s settings, and what it keeps from step to step besides the pools
(:mod:`movinet_pi.model.adaptive`): a fresh stream since a cut and the memory from
before it, the last few steps as they were read, an open same-place question."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from movinet_pi.model.history import Memory


@dataclass(frozen=True)
class AutoSettings:
    """The settings of ``--history auto``: times in seconds, the rest fractions."""

    long_s: float = 30.0  # the moving average; how far back the scene tests look
    settle_s: float = 0.6  # feature windows; a fresh stream's first frames
    sudden: float = 0.45  # colour mass that must not be shared with the last picture
    novel: float = 0.3  # colour mass not shared with the nearest picture of the last long_s
    agree: float = 0.1  # below this agreement two answers name different actions
    sure: float = 0.5  # an answer that ends the memory must be at least this sure of one action
    features_novel: float = 0.3  # feature novelty that asks the same-place question
    same_place_s: float = 1.6  # how long a same-place disagreement must last
    fold_s: float = 2.0  # how long a cut's fresh stream may end the memory before it is folded back
    question_s: float = 10.0  # how long a question stays open (and a memory worth going back to)

    def with_values(self, **values: float) -> AutoSettings:
        return replace(self, **values)


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
