"""What each frame adds to a running-sum state: found in the graph, exposed as an output.

A streaming MoViNet's pools add this frame's pooled features to a running sum
(``*_pool_buffer``). For the head pool that addend is the frame's embedding:
what the classifier head would see if the stream were this one frame. The int8
models add it on a coarse grid (the official A0 rounds the sum to steps of
0.59, the addend is on steps of 0.024), so the difference of the sum before and
after a step says little about one frame. The addend itself is an ordinary
tensor inside the graph; :func:`expose_frame_features` makes the runtime write
it where it can be read, by listing it among the subgraph's outputs. Nothing
else changes: the logits are the same to the bit (``tests/test_graph.py``).

Like :mod:`movinet_pi.model.graph`, this works on the bytes given to the
interpreter, never on the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Collection

from movinet_pi.model.graph import (
    _FLOAT32,
    _INT8,
    _QUANTIZE,
    _SUBGRAPH_OUTPUTS,
    GraphError,
    _Buffer,
    _Graph,
)

_ADD = 0  # BuiltinOperator


@dataclass(frozen=True)
class FrameFeature:
    """The tensor holding what one frame adds to the sum state ``state``, and its grid
    (``scale`` 0.0: a float tensor)."""

    state: str
    tensor: int
    scale: float
    zero_point: int


StatePicker = Callable[[Collection[str]], Collection[str]]


def find_frame_features(model: bytes, states: StatePicker) -> list[FrameFeature]:
    """For each sum state that ``states(input names)`` picks, the other operand of the
    ADD that adds this frame to it, reached directly or through the QUANTIZE that
    reads the state. States whose graph does not have that shape are left out."""
    buf = _Buffer(bytearray(model))
    try:
        graph = _Graph.read(buf)
        if graph is None:
            return []
        picked = states(list(graph.sig_inputs))
        return [f for f in (_feature(graph, name) for name in picked) if f is not None]
    except (struct.error, IndexError, KeyError) as e:
        raise GraphError(str(e) or type(e).__name__) from None


def _feature(graph: _Graph, state: str) -> FrameFeature | None:
    entry = graph.sig_inputs.get(state)
    if entry is None:
        return None
    tensor = entry.tensor
    readers = graph.consumers.get(tensor, [])
    if len(readers) == 1 and readers[0].builtin == _QUANTIZE:
        tensor = readers[0].outputs[0]
        readers = graph.consumers.get(tensor, [])
    if len(readers) != 1 or readers[0].builtin != _ADD or len(readers[0].inputs) != 2:
        return None
    others = [t for t in readers[0].inputs if t != tensor]
    if len(others) != 1:
        return None
    t = graph.tensors[others[0]]
    if t.type == _FLOAT32:
        return FrameFeature(state, others[0], 0.0, 0)
    if t.type == _INT8 and len(t.scale) == 1 and len(t.zero_point) == 1:
        return FrameFeature(state, others[0], float(t.scale[0]), int(t.zero_point[0]))
    return None


def add_outputs(model: bytes, tensors: Collection[int]) -> bytes:
    """The model with ``tensors`` added to its subgraph's outputs, so that the runtime
    writes them (a delegate otherwise keeps intermediate tensors to itself).

    Flatbuffer offsets only point forward, so the longer output list is appended
    to the end of the bytes and the subgraph's field is re-pointed at it; that
    field is the only byte changed in place. The signature is not touched: the
    classifier reads these tensors by index.
    """
    buf = _Buffer(bytearray(model))
    try:
        graph = _Graph.read(buf)
        if graph is None:
            raise GraphError("not a one-signature model")
        new = [t for t in dict.fromkeys(tensors) if t not in graph.outputs]
        if not new:
            return model
        if any(not 0 <= t < len(graph.tensors) for t in new):
            raise GraphError("no such tensor")
        field = buf.field(graph.table, _SUBGRAPH_OUTPUTS)
        if field is None:
            raise GraphError("the subgraph lists no outputs")
        outputs = [*graph.outputs, *new]
        data = buf.data
        data.extend(b"\0" * (-len(data) % 4))
        start = len(data)
        data.extend(struct.pack(f"<I{len(outputs)}i", len(outputs), *outputs))
        struct.pack_into("<I", data, field, start - field)
    except (struct.error, IndexError, KeyError) as e:
        raise GraphError(str(e) or type(e).__name__) from None
    return bytes(data)


def expose_frame_features(model: bytes, states: StatePicker) -> bytes:
    """The model with the frame features of ``states`` among its outputs (the bytes as
    they are when there are none, or the graph cannot be read)."""
    try:
        found = find_frame_features(model, states)
        return add_outputs(model, [f.tensor for f in found]) if found else model
    except GraphError:
        return model
