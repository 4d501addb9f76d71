"""The classifier head on its own: a model's class probabilities for any head-pool mean.

A streaming MoViNet adds each frame's features to its head pool's running sum,
divides the sum by the frame count, and runs that mean through a small head
(on the official A0: QUANTIZE, CONV 480→2048, CONV 2048→600) to the logits.
:func:`head_only` cuts those last ops out of the graph into a model of their
own, and :class:`HeadScorer` runs it: the answer the model *would* give for a
memory other than the one it carries (the frames since a change of scene, the
memory from before it) costs one small invoke (~0.04 ms on A0) instead of a
whole step.

Like :mod:`movinet_pi.model.frame_features`, this works on the bytes given to
the interpreter, never on the file: the head's ops are kept in their order, the
rest of the operator list is dropped, and the subgraph's inputs and outputs
become the mean and the logits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from movinet_pi.model.graph import (
    _MODEL_SIGNATURES,
    _SUBGRAPH_INPUTS,
    _SUBGRAPH_OUTPUTS,
    GraphError,
    _Buffer,
    _Graph,
)
from movinet_pi.model.predictions import softmax

_DIV = 42  # BuiltinOperator

#: the signature's logits output, as :mod:`movinet_pi.model.signature` names it
LOGITS = "logits"


@dataclass(frozen=True)
class HeadModel:
    """A model holding only the head: input ``mean`` (the head pool's sum over its
    count, as the full model computes it), output ``logits``."""

    content: bytes
    mean: int  # tensor index of the input
    logits: int  # tensor index of the output


def head_only(model: bytes, logits_name: str = LOGITS) -> HeadModel | None:
    """The head of ``model`` as a model of its own, or None when its graph does not have
    the expected shape: the logits reached from one DIV (the pool's sum over its count)
    through ops whose other inputs are constants."""
    buf = _Buffer(bytearray(model))
    try:
        graph = _Graph.read(buf)
        if graph is None or logits_name not in graph.sig_outputs:
            return None
        logits = graph.sig_outputs[logits_name].tensor
        found = _head_ops(graph, logits)
        if found is None:
            return None
        keep, mean = found
        graph.dropped = {op.position for op in graph.operators if op.position not in keep}
        graph.drop_operators()
        for field, tensor in ((_SUBGRAPH_INPUTS, mean), (_SUBGRAPH_OUTPUTS, logits)):
            first, count = buf.vector(graph.table, field)
            if count < 1:
                return None
            struct.pack_into("<Ii", buf.data, first - 4, 1, tensor)
        # The signature names tensors that are no longer inputs: the head has none.
        first, _ = buf.vector(buf.u32(0), _MODEL_SIGNATURES)
        struct.pack_into("<I", buf.data, first - 4, 0)
    except (struct.error, IndexError, KeyError, GraphError):
        return None
    return HeadModel(bytes(buf.data), mean, logits)


def _head_ops(graph: _Graph, logits: int) -> tuple[set[int], int] | None:
    """The positions of the ops that make ``logits`` from the mean, and the mean's tensor.
    Walks back from the logits; every input on the way is the mean, a constant (no
    producer, not a graph input) or made by another op of the head."""
    keep: set[int] = set()
    mean: int | None = None
    todo = [logits]
    while todo:
        tensor = todo.pop()
        op = graph.producer.get(tensor)
        if op is None:
            if tensor in graph.inputs:
                return None  # the head reads a state or the image directly
            continue
        if op.builtin == _DIV:
            if mean not in (None, tensor):
                return None
            mean = tensor
            continue
        if op.position not in keep:
            keep.add(op.position)
            todo.extend(t for t in op.inputs if t >= 0)
    if mean is None or not keep:
        return None
    return keep, mean


class HeadScorer:
    """Class probabilities for a head-pool mean, through the model's own head ops.

    ``interpreter_class`` is the runtime's (:class:`~movinet_pi.model.runtime.Runtime`);
    one thread, because the head is small and runs between two steps of the model.
    """

    def __init__(self, head: HeadModel, interpreter_class: Callable[..., Any]) -> None:
        self._content = head.content  # the interpreter reads these bytes; keep them alive
        self.interpreter = interpreter_class(model_content=head.content, num_threads=1)
        self.interpreter.allocate_tensors()
        (mean,) = self.interpreter.get_input_details()
        (logits,) = self.interpreter.get_output_details()
        self._mean_index, self._logits_index = mean["index"], logits["index"]
        self._mean_shape = tuple(int(d) for d in mean["shape"])
        self._mean_dtype = np.dtype(mean["dtype"])
        scale, zero_point = mean.get("quantization", (0.0, 0))
        self._grid = (float(scale), int(zero_point)) if scale else None
        self.size = int(np.prod(self._mean_shape))
        self.num_classes = int(np.prod(logits["shape"]))
        self._probs = np.empty(self.num_classes, np.float64)

    def logits(self, mean: np.ndarray) -> np.ndarray:
        """The logits (600 on A0) the model gives for ``mean`` (480 values on A0); a new array."""
        self.interpreter.set_tensor(self._mean_index, self._to_input(mean))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._logits_index).reshape(-1)

    def probabilities(self, mean: np.ndarray) -> np.ndarray:
        """The softmax of :meth:`logits`, in float64 (a buffer reused next call)."""
        np.copyto(self._probs, self.logits(mean))
        return softmax(self._probs, out=self._probs)

    def _to_input(self, mean: np.ndarray) -> np.ndarray:
        values = np.asarray(mean, np.float64).reshape(self._mean_shape)
        if self._grid is None:
            return values.astype(self._mean_dtype)
        scale, zero_point = self._grid
        info = np.iinfo(self._mean_dtype)
        steps = np.rint(values / scale) + zero_point
        return np.clip(steps, info.min, info.max).astype(self._mean_dtype)
