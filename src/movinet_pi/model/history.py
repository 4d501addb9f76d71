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
* :class:`~movinet_pi.model.adaptive.AdaptiveHistory` (``--history auto``, the
  default) is that over 30 s, started afresh when the action changes (a change of
  scene only asks the model's answer);
  :func:`~movinet_pi.model.adaptive.history_policy` picks a policy for ``--history``.

``docs/live-fidelity.md`` has the measurements behind the default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.pools import Grid, PoolSlot, input_grid

__all__ = [
    "ExponentialHistory", "Grid", "HistoryPolicy", "Memory", "PlainHistory", "PoolSlot",
    "Scorer", "input_grid",
]

#: the model's class probabilities for a head-pool mean (the head alone, or a taught head)
Scorer = Callable[[np.ndarray], np.ndarray]
#: what the pools hold: for each live pool, its sum (float64) and how many frames it covers
Memory = list[tuple[np.ndarray, int]]


class HistoryPolicy(ABC):
    """Carries the pool pairs from one step to the next (the classifier carries the rest).

    The classifier calls :meth:`begin` with each frame's picture before the model runs
    (a policy may start a fresh stream there) and :meth:`carry` after it.
    """

    #: a name for the overlay, logs and benchmarks
    label: str = ""

    def attach(self, slots: Sequence[PoolSlot], score: Scorer | None = None, *,
               picture_flip: int = 0) -> None:
        """Take the classifier's pools; ``score``, where the classifier can give it, is
        the model's answer for any head-pool mean; ``picture_flip``, what the pictures
        :meth:`begin` sees are XORed with (0x80 for an int8 model's input, 0 for RGB), for
        a policy that reads their levels."""
        self.slots = list(slots)
        self.score = score
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything: the next step starts a fresh stream."""

    def begin(self, picture: np.ndarray) -> bool:
        """Before the invoke, with the frame's picture as the model reads it (HxWx3 uint8,
        the int8 models' ``v ^ 0x80``): True to start a fresh stream at this frame (the
        classifier zeroes every state first, pools included)."""
        return False

    def new_view(self) -> bool:
        """The next frame shows another view of the scene (``--roi auto``'s box moved to a
        new part of the picture): True if the policy takes care of it (at its next
        :meth:`begin`), False to have the classifier start a fresh stream there, as a plain
        running average cannot tell the two views apart."""
        return False

    @abstractmethod
    def carry(self) -> None:
        """After an invoke: write the next step's pool inputs."""

    @property
    @abstractmethod
    def memory_steps(self) -> int:
        """How many frames the model's running averages cover at the next step."""

    @property
    def shown_mean(self) -> np.ndarray | None:
        """The head-pool mean whose answer is shown instead of the model's own, when the
        policy holds more memory than the pools do (None: the model's own)."""
        return None


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
                    np.divide(slot.buffer_out, max(1, int(slot.count_out.reshape(-1)[0])),
                              out=mean)
            return
        for i, (slot, mean) in enumerate(zip(self.slots, self._means)):
            # Decay in float, so the model's rounding cannot freeze the mean.
            work = slot.added(slot.work(), features.get(i))  # what this frame adds
            mean *= self.n
            mean += work
            mean /= self.n + 1
            count = slot.fed_count(mean, self.n)
            slot.feed(np.multiply(mean, count, out=work), count)

    def memory(self) -> Memory:
        """What the pools will hold at the next step (after :meth:`carry`): the plain
        model's own sums, or the moving average as ``n`` frames of its mean."""
        if self._steps < self.n:
            return [(s.buffer_in.astype(np.float64), int(s.count_in.reshape(-1)[0]))
                    for s in self.slots]
        return [(mean * self.n, self.n) for mean in self._means]

    def load(self, memory: Memory) -> None:
        """Make the pools hold ``memory`` at the next step: the plain model's way while it
        covers fewer than ``n`` frames, the moving average from there on."""
        count = memory[0][1] if memory else 0
        if count < self.n:
            self._steps = count
            for slot, (total, frames) in zip(self.slots, memory):
                slot.feed(total, frames)
            return
        self._steps = self.n
        for slot, mean, (total, frames) in zip(self.slots, self._means, memory):
            np.divide(total.reshape(mean.shape), frames, out=mean)
            fed = slot.fed_count(mean, self.n)
            slot.feed(mean * fed, fed)
