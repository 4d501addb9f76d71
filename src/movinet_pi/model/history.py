"""How far back a streaming model remembers: policies for its running-average states.

Each ``*_pool_buffer`` state is a running *sum* of per-frame features and its
``*_pool_frame_count`` the number of frames summed (:mod:`movinet_pi.model.pools`).
Carried unchanged (:class:`PlainHistory`, ``--history inf``) that mean covers
every frame since the stream started, so on an endless camera a new action
needs about as long as the old one ran to take over; after a few minutes it
never does, because the official int8 model keeps the sum on a grid of 0.57
with a ceiling of 146, where it saturates.

* :class:`ExponentialHistory` (``--history SECONDS``) is the plain model for
  its first ``n`` steps, then keeps a float exponential moving average of what
  each frame adds (its features rounded onto the sum's grid, as the plain model
  adds them) and feeds the model ``n * mean`` with a count of at most ``n``.
  (Rescaling the sum in place does not work on the int8 model: its grid rounds
  small sums back and the mean freezes.)
* :class:`AdaptiveHistory` (``--history auto``, the default) is long while the
  scene stays and short when it changes: the plain model (then a 30 s moving
  average) since the last *change*, where a change is a few frames unlike
  anything of the last 10 s (:mod:`movinet_pi.model.change`). At a change the
  memory restarts from the frames that belong to the new scene, which is what a
  reset at that moment would have given.
* :class:`StaggeredHistory` keeps two sums restarted in turn; measured and kept
  for comparison (``benchmarks/reaction.py``).

The README's "Live fidelity" section has the measurements behind the default.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Sequence, Union

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.change import NoveltyDetector, scene_start
from movinet_pi.model.pools import Grid, PoolSlot, input_grid

__all__ = [
    "AdaptiveHistory", "ExponentialHistory", "Grid", "HistoryPolicy", "PlainHistory",
    "PoolSlot", "StaggeredHistory", "history_policy", "input_grid",
]

AUTO = "auto"
HistorySpec = Union[float, str]  # seconds, inf, or "auto"
RecentInputs = Callable[[int], Sequence[np.ndarray]]


class HistoryPolicy(ABC):
    """Carries the pool pairs from one step to the next (the classifier carries the rest)."""

    #: a name for the overlay, logs and benchmarks
    label: str = ""

    def attach(self, slots: Sequence[PoolSlot]) -> None:
        self.slots = list(slots)
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything: the next step starts a fresh stream."""

    @abstractmethod
    def carry(self) -> None:
        """After an invoke: write the next step's pool inputs."""

    @property
    @abstractmethod
    def memory_steps(self) -> int:
        """How many frames the model's running averages cover at the next step."""

    #: how many recent model inputs the classifier keeps for :meth:`take_replay`
    replay_frames: int = 0

    def take_replay(self, recent: RecentInputs) -> int:
        """After :meth:`carry`: restart the stream this many frames back (0: no). The
        classifier zeroes every state and runs those frames again, calling
        :meth:`carry` for each. ``recent(k)`` gives the last ``k`` model inputs
        (oldest first) of the :attr:`replay_frames` it keeps."""
        return 0


class PlainHistory(HistoryPolicy):
    """The model as exported: sums and counts carried unchanged, memory unbounded."""

    label = "inf"

    def reset(self) -> None:
        self._steps = 0

    def carry(self) -> None:
        self._steps += 1
        for slot in self.slots:
            np.copyto(slot.buffer_in, slot.buffer_out)
            np.copyto(slot.count_in, slot.count_out)

    @property
    def memory_steps(self) -> int:
        return self._steps


class ExponentialHistory(HistoryPolicy):
    """The plain model for ``steps`` frames, then an exponential moving average with an
    effective length of ``steps`` frames."""

    def __init__(self, steps: float) -> None:
        if not steps > 0:
            raise MovinetPiError("--history must be more than 0 seconds (or 'inf')")
        self.n = max(1, round(steps))
        self.label = f"ema {self.n}"

    def reset(self) -> None:
        self._means = [np.zeros(s.buffer_in.shape, np.float64) for s in self.slots]
        self._steps = 0

    @property
    def memory_steps(self) -> int:
        return min(self._steps, self.n)

    def carry(self) -> None:
        self._advance({})

    def _advance(self, features: dict[int, np.ndarray]) -> None:
        """One step; ``features``: frame features of slots (by index) already read."""
        if self._steps < self.n:
            # Inside the window: exactly the plain model (the mean is kept for later).
            self._steps += 1
            for slot, mean in zip(self.slots, self._means):
                np.copyto(slot.count_in, slot.count_out)
                np.copyto(slot.buffer_in, slot.buffer_out)
                if self._steps == self.n:  # the moving average starts from this mean
                    np.divide(slot.buffer_out, self._steps, out=mean)
            return
        for i, (slot, mean) in enumerate(zip(self.slots, self._means)):
            # Decay in float, so the model's rounding cannot freeze the mean.
            work = slot.added(slot.work(), features.get(i))  # what this frame adds
            mean *= self.n
            mean += work
            mean /= self.n + 1
            count = slot.fed_count(mean, self.n)
            slot.feed(np.multiply(mean, count, out=work), count)


class AdaptiveHistory(ExponentialHistory):
    """``--history auto``: memory since the last change of scene, up to ``long_s``.

    Between changes this is :class:`ExponentialHistory` over ``long_s`` (the plain
    model, bit for bit, for its first ``long_s`` seconds). A change is a window
    of ``window_s`` seconds whose frames are farther than ``threshold`` (cosine
    distance of the head pool's per-frame features) from every such window of
    the last ``horizon_s`` seconds of the segment. At a change the memory
    restarts from the newest frames that belong with the new scene: the classifier
    resets the stream and runs those frames again. A segment
    must be ``min_segment_s`` old before it can end, so a new action gets the
    time the model needs to recognise it before its own shot changes can cut it.
    """

    label = AUTO

    def __init__(
        self,
        fps: float,
        *,
        long_s: float = 30.0,
        window_s: float = 0.6,
        horizon_s: float = 10.0,
        min_segment_s: float = 10.0,
        threshold: float = 0.4,
    ) -> None:
        super().__init__(long_s * fps)
        self.label = AUTO
        self.threshold = threshold
        self.min_segment = max(1, round(min_segment_s * fps))
        self.detector = NoveltyDetector(max(1, round(window_s * fps)), round(horizon_s * fps))
        # The cut may lie up to a window before where the features put it (scene_start):
        # the frames the features give, a window more, and the frame before those.
        self.replay_frames = 2 * self.detector.window + 1
        self._cue = 0

    def attach(self, slots: Sequence[PoolSlot]) -> None:
        # The head pool's features describe the whole frame; it is the last pool.
        heads = [i for i, s in enumerate(slots) if "head" in s.name]
        self._cue = heads[-1] if heads else len(slots) - 1
        super().attach(slots)

    def reset(self) -> None:
        super().reset()
        self.detector.reset()
        self._segment = 0
        self._replay = self._replaying = 0
        self.changes = 0

    def take_replay(self, recent: RecentInputs) -> int:
        if not self._replay:
            return 0
        lookback = self.detector.window
        new, self._replay = self._replay, 0
        self._replaying = scene_start(recent(new + lookback + 1), new, lookback)
        return self._replaying

    def carry(self) -> None:
        self._segment += 1
        if self._replaying:  # the classifier runs the new scene's frames again
            self._replaying -= 1
            super().carry()
            return
        if not self.slots:
            return
        features = self.slots[self._cue].frame_features()
        self._advance({self._cue: features})
        novelty = self.detector.add(features)
        if novelty is not None and novelty > self.threshold and self._segment >= self.min_segment:
            self._change()

    def _change(self) -> None:
        """Start afresh from the frames that belong with the new scene (by their features
        here, then on the pictures in :meth:`take_replay`): the classifier resets the
        stream and runs them again."""
        fresh = self.detector.new_frames()
        ExponentialHistory.reset(self)
        self.detector.forget_past()
        self._segment = 0
        self._replay = fresh  # placed on the pictures by take_replay
        self.changes += 1


def history_policy(spec: HistorySpec, fps: float, kind: str = "exponential") -> HistoryPolicy:
    """The policy for ``--history``: ``auto``, SECONDS (``inf`` = plain) at the model's rate."""
    if spec == AUTO:
        return AdaptiveHistory(fps)
    seconds = float(spec)
    if seconds <= 0 or math.isnan(seconds):
        raise MovinetPiError("--history must be more than 0 seconds, 'inf' or 'auto'")
    if math.isinf(seconds):
        return PlainHistory()
    steps = seconds * fps
    if kind == "staggered":
        return StaggeredHistory(steps)
    return ExponentialHistory(steps)


class StaggeredHistory(HistoryPolicy):
    """Two sums restarted in turn every ``steps // 2`` frames; the model sees the older.

    It sees between ``W + 1`` and ``2W`` frames, each counted once as in the plain
    model; one interpreter call serves both sums (exact for the head pool, whose
    per-frame input does not depend on the pool state).
    """

    def __init__(self, steps: float) -> None:
        if not steps > 0:
            raise MovinetPiError("--history must be more than 0 seconds (or 'inf')")
        self.half = max(1, round(steps / 2))
        self.label = f"staggered {2 * self.half}"

    def reset(self) -> None:
        self._sums = [[np.zeros(s.buffer_in.shape, np.float64) for _ in range(2)]
                      for s in self.slots]
        self._counts = [0, 0]
        self._steps = 0

    @property
    def memory_steps(self) -> int:
        return max(self._counts)

    def carry(self) -> None:
        self._steps += 1
        # The second sum starts late, so that its count is half a window behind.
        active = [0] if self._steps <= self.half else [0, 1]
        fed = max(active, key=lambda i: self._counts[i])
        deltas = [slot.delta() for slot in self.slots]
        for slot, sums, delta in zip(self.slots, self._sums, deltas):
            for i in active:
                if i == fed:  # the sum the model saw: take its own result, as plain does
                    np.copyto(sums[i], slot.buffer_out)
                else:
                    sums[i] += delta
        for i in active:
            self._counts[i] += 1
        older = max(active, key=lambda i: self._counts[i])
        if self._counts[older] > 2 * self.half:
            # Restart the older sum with just this frame; the younger one takes over.
            self._counts[older] = 1
            for sums, delta in zip(self._sums, deltas):
                np.copyto(sums[older], delta)
            older = 1 - older
        for slot, sums in zip(self.slots, self._sums):
            slot.feed(sums[older], self._counts[older])
