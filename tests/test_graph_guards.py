"""Narrowing refuses what it cannot do exactly: the official A0, altered one way at a time.

Each test edits the model with the TFLite schema's object API (shipped with
ai-edge-litert) and checks that the state or image concerned is left as float
while the rest is still narrowed. (Not run in the tflite-runtime venv of
.ci/run, which has no schema module; the parser under test is pure Python.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")

from movinet_pi import MovinetPiError  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.graph import narrow_io  # noqa: E402
from movinet_pi.model.labels import Labels  # noqa: E402
from movinet_pi.model.signature import narrow_for_streaming, pool_state_names  # noqa: E402

STATE = "state_block2_layer0_stream_buffer"
LABELS = Labels(tuple(f"c{i}" for i in range(600)), "test")


@pytest.fixture(scope="module")
def a0_bytes(a0_model: Path) -> bytes:
    return a0_model.read_bytes()


def edited(data: bytes, edit: Callable[[Any, Any], None]) -> bytes:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    edit(model, model.subgraphs[0])
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def names_of(model: Any, which: str) -> dict[str, int]:
    entries = getattr(model.signatureDefs[0], which)
    return {e.name.decode() if isinstance(e.name, bytes) else e.name: e.tensorIndex
            for e in entries}


def ops_touching(graph: Any, tensor: int) -> list[Any]:
    return [op for op in graph.operators if tensor in list(op.inputs) + list(op.outputs)]


def narrowed_names(data: bytes) -> tuple[set[str], bool]:
    _, what = narrow_for_streaming(data)
    return {s.name for s in what.states}, what.image


def quantize_of(model: Any, graph: Any) -> Any:
    """The QUANTIZE op reading STATE's float input."""
    return next(op for op in graph.operators
                if list(op.inputs) == [names_of(model, "inputs")[STATE]])


def dequantize_of(model: Any, graph: Any) -> Any:
    return next(op for op in graph.operators
                if list(op.outputs) == [names_of(model, "outputs")[STATE]])


def test_the_unaltered_model_narrows_the_state_and_image(a0_bytes: bytes) -> None:
    states, image = narrowed_names(edited(a0_bytes, lambda model, graph: None))
    assert STATE in states and len(states) == 11 and image


def test_a_state_whose_two_grids_differ_stays_float(a0_bytes: bytes) -> None:
    def edit(model: Any, graph: Any) -> None:
        quant = graph.tensors[dequantize_of(model, graph).inputs[0]].quantization
        quant.scale = np.array([quant.scale[0] * 1.01], dtype=np.float32)

    states, image = narrowed_names(edited(a0_bytes, edit))
    assert STATE not in states and len(states) == 10 and image


def test_a_state_read_by_a_second_op_stays_float(a0_bytes: bytes) -> None:
    def edit(model: Any, graph: Any) -> None:
        extra = schema.OperatorT()
        quantize = quantize_of(model, graph)
        extra.opcodeIndex = quantize.opcodeIndex
        extra.inputs = [names_of(model, "inputs")[STATE]]
        extra.outputs = [quantize.outputs[0]]
        graph.operators.append(extra)

    states, _ = narrowed_names(edited(a0_bytes, edit))
    assert STATE not in states and len(states) == 10


def test_a_state_output_read_inside_the_graph_stays_float(a0_bytes: bytes) -> None:
    def edit(model: Any, graph: Any) -> None:
        reader = next(op for op in graph.operators if op is not dequantize_of(model, graph)
                      and len(op.inputs) > 1)
        reader.inputs = [*list(reader.inputs), names_of(model, "outputs")[STATE]]

    states, _ = narrowed_names(edited(a0_bytes, edit))
    assert STATE not in states


@pytest.mark.parametrize("change", ["per-channel", "uint8"])
def test_a_state_not_on_one_int8_grid_stays_float(a0_bytes: bytes, change: str) -> None:
    def edit(model: Any, graph: Any) -> None:
        tensor = graph.tensors[quantize_of(model, graph).outputs[0]]
        if change == "uint8":
            tensor.type = schema.TensorType.UINT8
        else:
            for t in (tensor, graph.tensors[dequantize_of(model, graph).inputs[0]]):
                t.quantization.scale = np.repeat(t.quantization.scale, 2)
                t.quantization.zeroPoint = np.repeat(t.quantization.zeroPoint, 2)

    states, _ = narrowed_names(edited(a0_bytes, edit))
    assert STATE not in states and len(states) == 10


@pytest.mark.parametrize("which", ["inputs", "outputs"])
def test_a_state_tensor_the_signature_names_twice_stays_float(a0_bytes: bytes,
                                                               which: str) -> None:
    def edit(model: Any, graph: Any) -> None:
        alias = schema.TensorMapT()
        alias.name = "alias"
        alias.tensorIndex = names_of(model, which)[STATE]
        getattr(model.signatureDefs[0], which).append(alias)

    states, _ = narrowed_names(edited(a0_bytes, edit))
    assert STATE not in states and len(states) == 10


def test_an_image_not_on_the_1_255_grid_stays_float(a0_bytes: bytes) -> None:
    def edit(model: Any, graph: Any) -> None:
        image = names_of(model, "inputs")["image"]
        quantize = next(op for op in graph.operators if list(op.inputs) == [image])
        graph.tensors[quantize.outputs[0]].quantization.scale = np.array([1 / 256], np.float32)

    states, image = narrowed_names(edited(a0_bytes, edit))
    assert not image and len(states) == 11


def test_an_image_on_the_1_255_grid_but_another_zero_point_stays_float(a0_bytes: bytes) -> None:
    # The int8 image is exact only as v ^ 0x80: scale 1/255 *and* zero point -128.
    def edit(model: Any, graph: Any) -> None:
        image = names_of(model, "inputs")["image"]
        quantize = next(op for op in graph.operators if list(op.inputs) == [image])
        graph.tensors[quantize.outputs[0]].quantization.zeroPoint = np.array([0], np.int64)

    states, image = narrowed_names(edited(a0_bytes, edit))
    assert not image and len(states) == 11


def test_every_state_name_is_offered_even_the_one_at_tensor_zero(a0_bytes: bytes) -> None:
    """flatbuffers leaves out a tensor index of 0; that entry is still a state."""
    offered: list[str] = []

    def pick(names):
        offered.extend(names)
        return set(names) - pool_state_names(names)

    narrow_io(a0_bytes, states=pick, image="image")
    assert len(offered) == 43
    assert len(pool_state_names(offered)) == 32


def test_the_views_are_checked_at_load(a0_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def moved(self: StreamingClassifier) -> None:
        raise MovinetPiError("moved")

    monkeypatch.setattr(StreamingClassifier, "_check_views_stay_put", moved)
    with pytest.raises(MovinetPiError, match="moved"):
        StreamingClassifier.from_file(a0_model, LABELS)


def test_an_interpreter_with_views_cannot_be_reallocated(a0_model: Path) -> None:
    clf = StreamingClassifier.from_file(a0_model, LABELS)
    with pytest.raises(RuntimeError, match="re-allocating"):
        clf.interpreter.allocate_tensors()
    with pytest.raises(RuntimeError, match="re-allocating"):
        clf.interpreter.resize_tensor_input(clf.signature.image_index, [1, 1, 176, 176, 3])
    clf.step(np.zeros((172, 172, 3), np.uint8))  # and it still runs
