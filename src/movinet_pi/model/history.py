"""How far back a streaming model remembers: policies for its running-average states.

Each ``*_pool_buffer`` state is a running *sum* of per-frame features and its
``*_pool_frame_count`` the number of frames summed; the model divides one by
the other. Carried unchanged (:class:`PlainHistory`, ``--history inf``) that
mean covers every frame since the stream started, so on an endless camera a
new action needs about as long as the old one ran to take over; after a few
minutes it never does.

Two things make bounding it harder than rescaling the sum, and both were
measured on the official A0 int8 model (``benchmarks/reaction.py``):

* The int8 model *quantizes the sum* it is given: the head pool's buffer goes
  through a QUANTIZE op with a step of 0.59 and a range of [0, 150]. A frame's
  contribution is often smaller than one step. Rescaling ``sum *= n / count``
  in place (the obvious exponential window) is rounded back to the grid by the
  model, so small sums never decay and the state sticks wherever it lands: in
  our runs carving ice → arm wrestling then never settled, with the top-1
  probability at ~0.05. (That quantized range is also why the plain model
  drifts after ~5 minutes: the sum saturates at 150.)
* Only the sum/count pairs may be touched: the causal-convolution buffers
  (``*_stream_buffer``) hold the last few frames and must stay exact.

So both bounded policies keep their own float copy of each live pool and hand
the model values *on its quantization grid* (read from the model's QUANTIZE
op; float models have no grid). What a frame added is then exact:
``delta = buffer_out - buffer_in``.

* :class:`ExponentialHistory` keeps an exponential moving average of the
  per-frame contributions (effective length ``n`` steps) and feeds the model
  ``n * mean`` with a count of ``n``. Until ``n`` steps have passed it is
  identical to the plain model.
* :class:`StaggeredHistory` keeps two sums, restarted in turn every ``W``
  steps, and feeds the model the older one: it sees between ``W + 1`` and
  ``2W`` frames, each counted once as in the plain model. One interpreter call
  serves both sums; exact for the head pool, whose per-frame input does not
  depend on the pool state.

The default is chosen in :func:`history_policy` from what the benchmark measured
(see the README's "Live fidelity" table).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from movinet_pi.errors import MovinetPiError


@dataclass(frozen=True)
class Grid:
    """The quantization a model applies to a float input: ``(q - zero_point) * scale``."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    def snap(self, values: np.ndarray) -> np.ndarray:
        """The float values the model will actually see for ``values``."""
        q = np.clip(np.round(values / self.scale) + self.zero_point, self.qmin, self.qmax)
        return ((q - self.zero_point) * self.scale).astype(np.float32)


def input_grid(interpreter: Any, tensor_index: int) -> Grid | None:
    """The grid of the QUANTIZE op that reads ``tensor_index``, if the model has one."""
    try:
        ops = interpreter._get_ops_details()  # the only way to see the graph's ops
        tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    except (AttributeError, RuntimeError, ValueError):
        return None
    for op in ops:
        if op.get("op_name") != "QUANTIZE" or list(op["inputs"]) != [tensor_index]:
            continue
        out = tensors.get(int(op["outputs"][0]))
        if out is None:
            return None
        scale, zero_point = out["quantization"]
        if not scale:
            return None
        info = np.iinfo(out["dtype"])
        return Grid(float(scale), int(zero_point), int(info.min), int(info.max))
    return None


@dataclass
class PoolSlot:
    """One live sum/count pair, as lasting views of the interpreter's tensors."""

    name: str
    buffer_in: np.ndarray
    buffer_out: np.ndarray
    count_in: np.ndarray
    count_out: np.ndarray
    grid: Grid | None

    def snap(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32) if self.grid is None else self.grid.snap(values)

    def feed(self, total: np.ndarray, count: int) -> None:
        """Give the model a sum (snapped to its grid) and a count for the next step."""
        np.copyto(self.buffer_in, self.snap(total).reshape(self.buffer_in.shape))
        self.count_in.fill(count)

    def delta(self) -> np.ndarray:
        """What the last frame added to the sum: exact when the input was on the grid."""
        return self.buffer_out.astype(np.float64) - self.buffer_in


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


class PlainHistory(HistoryPolicy):
    """The model as exported: sums and counts carried unchanged, memory unbounded."""

    label = "inf"

    def reset(self) -> None:
        pass

    def carry(self) -> None:
        for slot in self.slots:
            np.copyto(slot.buffer_in, slot.buffer_out)
            np.copyto(slot.count_in, slot.count_out)


class ExponentialHistory(HistoryPolicy):
    """An exponential moving average with an effective length of ``steps`` frames."""

    def __init__(self, steps: float) -> None:
        if not steps > 0:
            raise MovinetPiError("--history must be more than 0 seconds (or 'inf')")
        self.n = max(1, round(steps))
        self.label = f"ema {self.n}"

    def reset(self) -> None:
        self._means = [np.zeros(s.buffer_in.shape, np.float64) for s in self.slots]
        self._steps = 0

    def carry(self) -> None:
        counted = min(self._steps, self.n)
        self._steps += 1
        upcoming = min(self._steps, self.n)
        for slot, mean in zip(self.slots, self._means):
            if counted < self.n:  # still inside the window: exactly the plain model
                np.divide(slot.buffer_out, counted + 1, out=mean)
            else:  # decay in float, so the model's rounding cannot freeze the mean
                mean *= counted
                mean += slot.delta()
                mean /= counted + 1
            slot.feed(mean * upcoming, upcoming)


class StaggeredHistory(HistoryPolicy):
    """Two sums restarted in turn every ``steps // 2`` frames; the model sees the older."""

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


def history_policy(seconds: float, fps: float, kind: str = "exponential") -> HistoryPolicy:
    """The policy for ``--history SECONDS`` (``inf`` = plain) at the model's frame rate."""
    if seconds < 0 or math.isnan(seconds):
        raise MovinetPiError("--history must be more than 0 seconds (or 'inf')")
    if math.isinf(seconds):
        return PlainHistory()
    steps = seconds * fps
    if kind == "staggered":
        return StaggeredHistory(steps)
    return ExponentialHistory(steps)
