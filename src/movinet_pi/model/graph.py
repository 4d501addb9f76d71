"""Reading a TFLite model's graph, and narrowing its quantized inputs and outputs to int8.

An int8 streaming MoViNet takes and returns its states as float32, and the
first thing it does with each ``*_stream_buffer`` state is QUANTIZE it to int8;
the last thing it does with the next value is DEQUANTIZE it from int8, on the
same grid. Carried from one call to the next, each state makes a round trip
int8 → float32 → (our copy) → float32 → int8 that changes nothing but costs
memory traffic: on the official A0, 2.7 MB of float states are written,
copied and read again per frame where 0.67 MB of int8 would do.

:func:`narrow_io` rewrites the model in memory so that those states go
in and out as the int8 tensors themselves: the QUANTIZE/DEQUANTIZE pair around
each one is dropped and the signature points at the int8 tensors. It only
does so where that is exact: the pair uses the same scale and zero point, the
float tensors have no other use, and the state is a graph input and output.
States on different grids (the head pool's running sum), float models and
anything unexpected are left as they are. The image input is narrowed the same
way when its grid is 1/255 (see :func:`narrow_io`).

The model file is never changed; this works on the bytes given to the
interpreter. No flatbuffers library is needed: the edits are in place (a
tensor index here and there) plus a shorter operator list.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Collection

# tflite/schema.fbs: field numbers of the tables we read.
_MODEL_OPERATOR_CODES, _MODEL_SUBGRAPHS, _MODEL_SIGNATURES = 1, 2, 7
_OPCODE_DEPRECATED_BUILTIN, _OPCODE_BUILTIN = 0, 3
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS = 0, 1, 2, 3
_OPERATOR_OPCODE_INDEX, _OPERATOR_INPUTS, _OPERATOR_OUTPUTS = 0, 1, 2
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_QUANTIZATION = 0, 1, 4
_QUANT_SCALE, _QUANT_ZERO_POINT = 2, 3
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_SUBGRAPH = 0, 1, 4
_TENSORMAP_NAME, _TENSORMAP_INDEX = 0, 1

_DEQUANTIZE, _QUANTIZE = 6, 114  # BuiltinOperator
_FLOAT32, _INT8 = 0, 9  # TensorType


class GraphError(Exception):
    """The bytes are not a model this module can read (the caller falls back)."""


class _Buffer:
    """Little-endian flatbuffer access with bounds checks."""

    def __init__(self, data: bytearray) -> None:
        self.data = data

    def _unpack(self, fmt: str, pos: int) -> int:
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            raise GraphError("offset out of range")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def u32(self, pos: int) -> int:
        return self._unpack("<I", pos)

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def field(self, table: int, index: int) -> int | None:
        """Where field ``index`` of the table at ``table`` is stored, or None if absent."""
        vtable = table - self._unpack("<i", table)
        vt_size = self._unpack("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        offset = self._unpack("<H", vtable + slot)
        return table + offset if offset else None

    def scalar(self, table: int, index: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self.field(table, index)
        return default if pos is None else struct.unpack_from(fmt, self.data, pos)[0]

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) if absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        start = self.deref(pos)
        return start + 4, self.u32(start)

    def tables(self, table: int, index: int) -> list[int]:
        first, count = self.vector(table, index)
        return [self.deref(first + 4 * i) for i in range(count)]

    def ints(self, table: int, index: int, fmt: str = "<i") -> list[int]:
        first, count = self.vector(table, index)
        size = struct.calcsize(fmt)
        if first + count * size > len(self.data):
            raise GraphError("vector out of range")
        return [struct.unpack_from(fmt, self.data, first + size * i)[0] for i in range(count)]

    def string(self, table: int, index: int) -> str:
        first, count = self.vector(table, index)
        return bytes(self.data[first : first + count]).decode("utf-8", "replace")


@dataclass(frozen=True)
class _Tensor:
    type: int
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]


@dataclass(frozen=True)
class _Operator:
    position: int  # of the operator's entry in the operators vector
    builtin: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class NarrowedState:
    """A state now fed as int8: its name and grid (float = (q - zero_point) * scale)."""

    name: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class NarrowedIO:
    """What :func:`narrow_io` changed: the states now int8, and whether the image is."""

    states: tuple[NarrowedState, ...] = ()
    image: bool = False

    def __bool__(self) -> bool:
        return bool(self.states) or self.image


def narrow_io(
    model: bytes,
    *,
    states: Callable[[Collection[str]], Collection[str]],
    image: str | None = None,
) -> tuple[bytes, NarrowedIO]:
    """The model with its exactly-quantized inputs and outputs as int8, and which those are.

    ``states(names)`` picks, from the names of the signature's states (the names
    that are both an input and an output), those that may be narrowed. ``image`` names
    the frame input: it is narrowed when the model quantizes it onto the 1/255
    grid with zero point -128, where a frame's uint8 value ``v`` becomes exactly
    ``v - 128`` (``v ^ 0x80``), so the [0, 1] floats need never be made.
    Returns the bytes unchanged and an empty :class:`NarrowedIO` when nothing
    can be narrowed; raises :class:`GraphError` for bytes it cannot read.
    """
    buf = _Buffer(bytearray(model))
    try:
        graph = _Graph.read(buf)
        if graph is None:
            return model, NarrowedIO()
        narrowed = NarrowedIO(
            states=tuple(graph.narrow_states(states)),
            image=image is not None and graph.narrow_image(image),
        )
        if not narrowed:
            return model, narrowed
        graph.drop_operators()
    except (struct.error, IndexError, KeyError) as e:
        raise GraphError(str(e) or type(e).__name__) from None
    return bytes(buf.data), narrowed


def _read_tensor(buf: _Buffer, table: int) -> _Tensor:
    quant = buf.field(table, _TENSOR_QUANTIZATION)
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    if quant is not None:
        q = buf.deref(quant)
        first, count = buf.vector(q, _QUANT_SCALE)
        scale = tuple(struct.unpack_from("<f", buf.data, first + 4 * i)[0] for i in range(count))
        zero_point = tuple(buf.ints(q, _QUANT_ZERO_POINT, "<q"))
    return _Tensor(
        type=int(buf.scalar(table, _TENSOR_TYPE, "<b")),
        shape=tuple(buf.ints(table, _TENSOR_SHAPE)),
        scale=scale,
        zero_point=zero_point,
    )


def _builtin_codes(buf: _Buffer, model: int) -> list[int]:
    codes = []
    for table in buf.tables(model, _MODEL_OPERATOR_CODES):
        deprecated = int(buf.scalar(table, _OPCODE_DEPRECATED_BUILTIN, "<b"))
        builtin = int(buf.scalar(table, _OPCODE_BUILTIN, "<i"))
        codes.append(max(deprecated, builtin))
    return codes


@dataclass(frozen=True)
class _Entry:
    """One signature input or output: its tensor, and where that index is stored (None
    when it is the default 0, which flatbuffers leaves out: no field to edit in place)."""

    tensor: int
    position: int | None


def _tensor_map(buf: _Buffer, signature: int, index: int) -> dict[str, _Entry]:
    found = {}
    for entry in buf.tables(signature, index):
        pos = buf.field(entry, _TENSORMAP_INDEX)
        tensor = 0 if pos is None else buf.u32(pos)
        found[buf.string(entry, _TENSORMAP_NAME)] = _Entry(tensor, pos)
    return found


class _Graph:
    """The main subgraph of a one-signature model, as far as narrowing needs it."""

    def __init__(self, buf: _Buffer, root: int, signature: int, graph: int) -> None:
        self.buf = buf
        self.table = graph
        codes = _builtin_codes(buf, root)
        self.tensors = [_read_tensor(buf, t) for t in buf.tables(graph, _SUBGRAPH_TENSORS)]
        self.ops_first, ops_count = buf.vector(graph, _SUBGRAPH_OPERATORS)
        self.operators = []
        for i in range(ops_count):
            table = buf.deref(self.ops_first + 4 * i)
            opcode = int(buf.scalar(table, _OPERATOR_OPCODE_INDEX, "<I"))
            self.operators.append(_Operator(
                position=i,
                builtin=codes[opcode],
                inputs=tuple(buf.ints(table, _OPERATOR_INPUTS)),
                outputs=tuple(buf.ints(table, _OPERATOR_OUTPUTS)),
            ))
        self.consumers: dict[int, list[_Operator]] = {}
        self.producer: dict[int, _Operator] = {}
        for op in self.operators:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)
            for t in op.outputs:
                self.producer[t] = op
        self.inputs = buf.ints(graph, _SUBGRAPH_INPUTS)
        self.outputs = buf.ints(graph, _SUBGRAPH_OUTPUTS)
        self.sig_inputs = _tensor_map(buf, signature, _SIGNATURE_INPUTS)
        self.sig_outputs = _tensor_map(buf, signature, _SIGNATURE_OUTPUTS)
        self.dropped: set[int] = set()

    @classmethod
    def read(cls, buf: _Buffer) -> _Graph | None:
        """None for models narrowing leaves alone (several signatures or subgraph not 0)."""
        root = buf.u32(0)
        signatures = buf.tables(root, _MODEL_SIGNATURES)
        subgraphs = buf.tables(root, _MODEL_SUBGRAPHS)
        if len(signatures) != 1 or not subgraphs:
            return None
        if int(buf.scalar(signatures[0], _SIGNATURE_SUBGRAPH, "<I")) != 0:
            return None
        return cls(buf, root, signatures[0], subgraphs[0])

    def _only_here(self, tensor: int, io: list[int], other_io: list[int]) -> bool:
        """``tensor`` is named once by the signature and once in ``io``, never in
        ``other_io``: rewiring that one place rewires every use of it."""
        entries = [*self.sig_inputs.values(), *self.sig_outputs.values()]
        return (sum(e.tensor == tensor for e in entries) == 1
                and io.count(tensor) == 1 and tensor not in other_io)

    def _sole_quantize(self, float_in: int) -> _Operator | None:
        """The QUANTIZE that is the only reader of the graph input ``float_in``."""
        readers = self.consumers.get(float_in, [])
        if not self._only_here(float_in, self.inputs, self.outputs) or len(readers) != 1:
            return None
        op = readers[0]
        if op.builtin != _QUANTIZE or len(op.outputs) != 1:
            return None
        if op.outputs[0] in self.inputs or op.outputs[0] in self.outputs:
            return None
        if self.tensors[float_in].type != _FLOAT32 or self.tensors[op.outputs[0]].type != _INT8:
            return None
        return op

    def _sole_dequantize(self, float_out: int) -> _Operator | None:
        """The DEQUANTIZE that writes the graph output ``float_out``, read by nothing else."""
        op = self.producer.get(float_out)
        if not self._only_here(float_out, self.outputs, self.inputs):
            return None
        if float_out in self.consumers or op is None:
            return None
        if op.builtin != _DEQUANTIZE or len(op.inputs) != 1:
            return None
        if op.inputs[0] in self.outputs or op.inputs[0] in self.inputs:
            return None
        if self.tensors[float_out].type != _FLOAT32 or self.tensors[op.inputs[0]].type != _INT8:
            return None
        return op

    def narrow_states(
        self, pick: Callable[[Collection[str]], Collection[str]]
    ) -> list[NarrowedState]:
        wanted = set(pick([n for n in self.sig_inputs if n in self.sig_outputs]))
        narrowed = []
        for name, entry_in in self.sig_inputs.items():
            entry_out = self.sig_outputs.get(name)
            if entry_out is None or name not in wanted:
                continue
            in_pos, out_pos = entry_in.position, entry_out.position
            float_in, float_out = entry_in.tensor, entry_out.tensor
            if in_pos is None or out_pos is None or float_in == float_out:
                continue
            quantize, dequantize = self._sole_quantize(float_in), self._sole_dequantize(float_out)
            if quantize is None or dequantize is None:
                continue
            q, d = self.tensors[quantize.outputs[0]], self.tensors[dequantize.inputs[0]]
            same_grid = len(q.scale) == 1 and (q.scale, q.zero_point) == (d.scale, d.zero_point)
            if not same_grid or q.shape != d.shape:
                continue
            self._rewire(in_pos, float_in, quantize.outputs[0], _SUBGRAPH_INPUTS)
            self._rewire(out_pos, float_out, dequantize.inputs[0], _SUBGRAPH_OUTPUTS)
            self.dropped |= {quantize.position, dequantize.position}
            narrowed.append(NarrowedState(name, q.scale[0], q.zero_point[0]))
        return narrowed

    def narrow_image(self, name: str) -> bool:
        entry = self.sig_inputs.get(name)
        if entry is None or entry.position is None or name in self.sig_outputs:
            return False
        in_pos, float_in = entry.position, entry.tensor
        quantize = self._sole_quantize(float_in)
        if quantize is None:
            return False
        q = self.tensors[quantize.outputs[0]]
        # On this grid v / 255 quantizes to v - 128 for every uint8 v, with a margin of
        # 0.49 before any rounding could differ.
        if len(q.scale) != 1 or abs(q.scale[0] * 255.0 - 1.0) > 1e-5 or q.zero_point != (-128,):
            return False
        self._rewire(in_pos, float_in, quantize.outputs[0], _SUBGRAPH_INPUTS)
        self.dropped.add(quantize.position)
        return True

    def _rewire(self, signature_pos: int, old: int, new: int, io_field: int) -> None:
        """Point the signature entry and the subgraph's input/output list at ``new``."""
        struct.pack_into("<I", self.buf.data, signature_pos, new)
        io = self.inputs if io_field == _SUBGRAPH_INPUTS else self.outputs
        first, _ = self.buf.vector(self.table, io_field)
        slot = io.index(old)  # the only one: see _only_here
        struct.pack_into("<i", self.buf.data, first + 4 * slot, new)
        io[slot] = new

    def drop_operators(self) -> None:
        """Shorten the operators vector in place, keeping the order of the rest.

        Each entry is an offset relative to its own slot, so an entry moved to an
        earlier slot grows by the distance it moved.
        """
        first = self.ops_first
        kept = [self.buf.deref(first + 4 * op.position)
                for op in self.operators if op.position not in self.dropped]
        struct.pack_into("<I", self.buf.data, first - 4, len(kept))
        for slot, target in enumerate(kept):
            struct.pack_into("<I", self.buf.data, first + 4 * slot, target - (first + 4 * slot))
