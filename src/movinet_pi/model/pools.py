"""The running-sum states as history policies see them: grids, views, what a frame added.

Each ``*_pool_buffer`` state is a running *sum* of per-frame features and its
``*_pool_frame_count`` the number of frames summed; the model divides one by the
other. A :class:`PoolSlot` holds lasting views of one such pair's tensors, the
grid an int8 model puts the sum on (:class:`Grid`, read from the model's
QUANTIZE op), and, where :mod:`movinet_pi.model.frame_features` exposed it, the
tensor with this frame's own features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Grid:
    """The quantization a model applies to a float input: ``(q - zero_point) * scale``."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int

    def snap(self, values: np.ndarray, out: np.ndarray | None = None,
             work: np.ndarray | None = None) -> np.ndarray:
        """The float32 values the model will actually see for ``values``: each rounded to
        the nearest step and clipped to the grid. ``out`` and ``work`` (float64, the
        shape of ``values``) let a caller do it without allocating."""
        steps = np.divide(values, self.scale, out=work)
        np.rint(steps, out=steps)
        # (two ufuncs: np.clip's Python wrapper costs more than the clipping itself)
        np.maximum(steps, self.qmin - self.zero_point, out=steps)
        np.minimum(steps, self.qmax - self.zero_point, out=steps)
        if out is None:
            return (steps * self.scale).astype(np.float32)
        return np.multiply(steps, self.scale, out=out, casting="unsafe")


def _graph(interpreter: Any) -> tuple[list[dict], dict[int, dict]] | None:
    try:
        ops = interpreter._get_ops_details()  # the only way to see the graph's ops
        tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    except (AttributeError, RuntimeError, ValueError):
        return None
    return ops, tensors


def input_grid(interpreter: Any, tensor_index: int) -> Grid | None:
    """The grid of the QUANTIZE op that reads ``tensor_index``, if the model has one."""
    graph = _graph(interpreter)
    if graph is None:
        return None
    ops, tensors = graph
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


def output_step(interpreter: Any, tensor_index: int) -> float:
    """The step of the int8 grid a float output is dequantized from (the DEQUANTIZE op that
    writes ``tensor_index``): the resolution of an int8 model's answer; 0.0 for a float
    output."""
    graph = _graph(interpreter)
    if graph is None:
        return 0.0
    ops, tensors = graph
    for op in ops:
        if op.get("op_name") == "DEQUANTIZE" and tensor_index in list(op["outputs"]):
            source = tensors.get(int(op["inputs"][0]))
            if source is not None and source["quantization"][0]:
                return float(source["quantization"][0])
    return 0.0


@dataclass(frozen=True)
class FeatureTensor:
    """Where an interpreter writes what one frame adds to a sum, and on which grid."""

    index: int
    scale: float  # 0.0: float
    zero_point: int


def frame_feature_tensor(interpreter: Any, sum_index: int) -> FeatureTensor | None:
    """The tensor added to the sum read from ``sum_index`` (directly or after its
    QUANTIZE), if it is one of the interpreter's outputs and so written where it can be
    read (:func:`movinet_pi.model.frame_features.expose_frame_features`)."""
    graph = _graph(interpreter)
    if graph is None:
        return None
    ops, tensors = graph
    try:
        outputs = {int(d["index"]) for d in interpreter.get_output_details()}
    except (AttributeError, RuntimeError, ValueError):
        return None
    # A delegate's node lists every tensor its partition reads: look at the ops only.
    ops = [op for op in ops if op.get("op_name") != "DELEGATE"]
    readers = [op for op in ops if sum_index in list(op["inputs"])]
    if len(readers) == 1 and readers[0].get("op_name") == "QUANTIZE":
        sum_index = int(readers[0]["outputs"][0])
        readers = [op for op in ops if sum_index in list(op["inputs"])]
    if len(readers) != 1 or readers[0].get("op_name") != "ADD":
        return None
    others = [int(t) for t in readers[0]["inputs"] if int(t) != sum_index]
    if len(others) != 1 or others[0] not in outputs or others[0] not in tensors:
        return None
    details = tensors[others[0]]
    scale, zero_point = details["quantization"]
    if np.dtype(details["dtype"]) == np.float32:
        return FeatureTensor(others[0], 0.0, 0)
    if np.dtype(details["dtype"]) == np.int8 and scale:
        return FeatureTensor(others[0], float(scale), int(zero_point))
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
    feature: np.ndarray | None = None  # what this frame added, on ``feature_grid``
    feature_grid: FeatureTensor | None = None
    _features: np.ndarray | None = field(default=None, repr=False)
    _work: np.ndarray | None = field(default=None, repr=False)

    def feed(self, total: np.ndarray, count: int) -> None:
        """Give the model a sum (snapped to its grid) and a count for the next step."""
        total = total.reshape(self.buffer_in.shape)
        grid = self.grid
        if grid is None:
            np.copyto(self.buffer_in, total, casting="unsafe")
        else:
            grid.snap(total, out=self.buffer_in, work=self.work())
        self.count_in.fill(count)

    def work(self) -> np.ndarray:
        """A float64 scratch buffer of the sum's shape, kept from step to step."""
        if self._work is None:
            self._work = np.empty(self.buffer_in.shape, np.float64)
        return self._work

    def fed_count(self, mean: np.ndarray, count: int) -> int:
        """The largest count up to ``count`` at which ``count * mean`` plus one more frame
        stays below the top of an int8 model's grid: a sum fed above it is clipped, and
        the model then reads a smaller mean than the one kept. (The plain model's own
        sum saturates that way after some seconds; the count is only the mean's
        denominator, so it can shrink instead.)"""
        top = float(mean.max())
        if self.grid is None or top <= 0.0:
            return count
        ceiling = (self.grid.qmax - self.grid.zero_point) * self.grid.scale
        if self.feature_grid is not None and self.feature_grid.scale:
            ceiling -= (127 - self.feature_grid.zero_point) * self.feature_grid.scale
        return max(1, min(count, int(ceiling / top)))

    def delta(self) -> np.ndarray:
        """What the last frame changed the sum by, in the model's own arithmetic: exact
        for a float model; for an int8 one, rounded onto the sum's coarse grid."""
        return self.buffer_out.astype(np.float64) - self.buffer_in

    def added(self, out: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """What this frame adds to a running sum in the model's own arithmetic, into
        ``out`` (float64, the sum's shape): its features rounded onto the sum's grid, so
        that a feature under half a step adds nothing, as in the plain model.

        Not :meth:`delta` once the sum is ours: the model re-rounds the sum it is fed
        onto a second, slightly coarser grid (its ADD's output), and from a sum it did
        not make itself that rounding is biased (upwards by about 0.03 a channel a frame
        on A0, as much as a frame's mean feature).  Without exposed features, the delta.
        ``features``: this step's :meth:`frame_features`, if the caller has them already."""
        grid = self.feature_grid
        if self.feature is None or grid is None:
            if features is not None:  # the delta, read before the sums moved on: as it is
                np.copyto(out, np.reshape(features, out.shape))
                return out
            return np.subtract(self.buffer_out, self.buffer_in, out=out)
        to_steps = 1.0 / self.grid.scale if self.grid is not None else 1.0
        if features is not None or not grid.scale:
            source = self.feature if features is None else features
            np.multiply(source.reshape(out.shape), to_steps, out=out)
        else:  # int8: (q - zero_point) * scale, in one pass with the grid's
            np.subtract(self.feature.reshape(out.shape), grid.zero_point, out=out,
                        dtype=np.float64)
            out *= grid.scale * to_steps
        if self.grid is not None:  # the increment is rounded; only the sum is clipped
            np.rint(out, out=out)
            out *= self.grid.scale
        return out

    def frame_features(self) -> np.ndarray:
        """What the last frame added, before any rounding onto the sum's grid (the
        :meth:`delta` where the model does not expose it). A buffer reused next step."""
        if self.feature is None or self.feature_grid is None:
            return self.delta()
        grid = self.feature_grid
        if not grid.scale:
            return self.feature
        if self._features is None:
            self._features = np.empty(self.feature.shape, np.float32)
        np.subtract(self.feature, grid.zero_point, out=self._features, dtype=np.float32)
        self._features *= grid.scale
        return self._features

