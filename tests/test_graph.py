"""Narrowing a model's quantized states and image to int8 (movinet_pi.model.graph).

The narrowed model must compute exactly what the file computes: every test
here that runs a model compares logits for equality, not closeness.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from reference_loop import sampled_rgb_frames

from movinet_pi import MovinetPiError
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.graph import GraphError, NarrowedIO, _Buffer, _Graph, narrow_io
from movinet_pi.model.labels import Labels
from movinet_pi.model.runtime import find_runtime, load_interpreter
from movinet_pi.model.signature import narrow_for_streaming, pool_state_names, read_signature

DATA = Path(__file__).parent / "data"
LABELS = Labels(tuple(f"c{i}" for i in range(600)), "test")


def narrow(model: bytes):
    return narrow_io(model, states=lambda names: set(names) - pool_state_names(names),
                     image="image")


def operator_count(model: bytes) -> int:
    graph = _Graph.read(_Buffer(bytearray(model)))
    assert graph is not None
    return len(graph.operators)


def as_published(model: Path, threads: int = 2) -> StreamingClassifier:
    """A classifier on the model exactly as the file has it (float states and image)."""
    interpreter, runtime = load_interpreter(model, threads)
    return StreamingClassifier(interpreter, LABELS, runtime_name=runtime.name)


def int8_models(shared: Path) -> list[Path]:
    models = [shared / "models" / "movinet_a0_stream_int8.tflite"]
    if find_runtime().name != "tflite-runtime":  # 2.14 cannot run the A1/A2 int8 ops
        models += [shared / "models" / "untrained" / f"movinet_{m}_stream_int8.tflite"
                   for m in ("a1", "a2")]
    return models


def test_the_official_a0_carries_its_stream_states_and_image_as_int8(a0_model: Path) -> None:
    data = a0_model.read_bytes()
    narrowed, what = narrow(data)
    assert what.image
    names = {s.name for s in what.states}
    assert len(names) == 11 and all(n.endswith("_stream_buffer") for n in names)
    assert all(s.zero_point == -128 and abs(s.scale - 6 / 255) < 1e-6 for s in what.states)

    interpreter, _ = load_interpreter(a0_model, 1, transform=lambda _: narrowed)
    sig = read_signature(interpreter)
    dtypes = {s.name: s.dtype for s in sig.states}
    assert all(dtypes[n] == np.int8 for n in names)
    # the pools stay float for the history policy, and the head pool's two grids differ
    assert dtypes["state_head_pool_buffer"] == np.float32
    assert sig.image_dtype == np.int8
    live_bytes = sum(s.nbytes for s in sig.states if not s.passthrough)
    assert live_bytes < 0.7e6  # was 2.7 MB of float32
    # one QUANTIZE per narrowed input, one DEQUANTIZE per narrowed output: gone
    assert operator_count(data) - operator_count(narrowed) == 2 * len(names) + 1
    assert a0_model.read_bytes() == data  # the file is never touched


def test_narrowed_models_give_the_same_logits_to_the_bit(shared: Path, carving_ice: Path) -> None:
    frames = list(sampled_rgb_frames(carving_ice))
    for model in int8_models(shared):
        ours = StreamingClassifier.from_file(model, LABELS, threads=2)
        assert ours.signature.image_dtype == np.int8, model.name
        published = as_published(model)
        assert published.signature.image_dtype == np.float32
        for rgb in frames:
            ours.step(rgb)
            published.step(rgb)
            np.testing.assert_array_equal(ours.logits, published.logits, err_msg=model.name)


def test_every_byte_value_goes_in_as_the_model_would_quantize_it(a0_model: Path) -> None:
    """v ^ 0x80 for the narrowed image against v / 255 quantized by the model itself:
    a frame holding all 256 values, a few steps, equal logits."""
    values = (np.arange(172 * 172 * 3) % 256).astype(np.uint8)
    rng = np.random.default_rng(0)
    ours, published = StreamingClassifier.from_file(a0_model, LABELS), as_published(a0_model)
    for _ in range(3):
        rgb = rng.permutation(values).reshape(172, 172, 3)  # model-sized: no resize
        assert len(np.unique(rgb)) == 256
        ours.step(rgb)
        published.step(rgb)
        np.testing.assert_array_equal(ours.logits, published.logits)


def test_reset_puts_int8_states_back_to_their_zero_point(
    a0_model: Path, arm_wrestling: Path
) -> None:
    clf = StreamingClassifier.from_file(a0_model, LABELS)
    frames = list(sampled_rgb_frames(arm_wrestling))[:5]
    first = [clf.step(f).copy() for f in frames]
    clf.reset()
    for state in clf.signature.states:
        if state.dtype == np.int8:
            assert (clf.interpreter.get_tensor(state.input_index) == -128).all()
    again = [clf.step(f).copy() for f in frames]
    np.testing.assert_array_equal(np.array(first), np.array(again))


@pytest.mark.parametrize("name", ["tiny_rgb_stream.tflite", "tiny_rgb_stream_f16.tflite",
                                  "tiny_motion_call.tflite", "image_classifier.tflite"])
def test_float_models_are_left_as_they_are(name: str) -> None:
    data = (DATA / name).read_bytes()
    narrowed, what = narrow(data)
    assert not what and narrowed is data


def test_the_float_a0_is_left_as_it_is(a0_float_model: Path) -> None:
    data = a0_float_model.read_bytes()
    assert narrow_for_streaming(data) == (data, NarrowedIO())


def test_pool_states_are_never_narrowed() -> None:
    names = ["s_pool_buffer", "s_pool_frame_count", "t_stream_buffer", "u_pool_buffer"]
    assert pool_state_names(names) == {"s_pool_buffer", "s_pool_frame_count"}


def test_unreadable_bytes_raise_graph_error_and_the_classifier_falls_back(a0_model: Path) -> None:
    data = a0_model.read_bytes()
    broken = struct.pack("<I", len(data) * 2) + data[4:]  # the root table points past the end
    with pytest.raises(GraphError):
        narrow(broken)
    assert narrow_for_streaming(broken) == (broken, NarrowedIO())
    empty = b"\x00" * 8  # reads as a model with no signature: nothing to narrow
    assert narrow(empty) == (empty, NarrowedIO())


def test_the_lasting_tensor_views_are_the_interpreters_memory(a0_model: Path) -> None:
    clf = StreamingClassifier.from_file(a0_model, LABELS)
    clf.step(np.full((100, 120, 3), 200, dtype=np.uint8))
    image = clf.interpreter.get_tensor(clf.signature.image_index)
    assert (image == 200 - 128).all()  # written through the view, read by the runtime
    for state in clf.signature.states:  # carried through the views: next input = output
        if state.dtype == np.int8:
            np.testing.assert_array_equal(clf.interpreter.get_tensor(state.input_index),
                                          clf.interpreter.get_tensor(state.output_index))


def test_a_model_whose_tensors_move_is_refused(a0_model: Path) -> None:
    """A runtime that moved a tensor during invoke (dynamic shapes) would leave the lasting
    views pointing at freed memory: the start-up check must notice."""
    clf = StreamingClassifier.from_file(a0_model, LABELS)
    real = clf.interpreter

    class Moving:
        def tensor(self, index: int):
            return lambda: real.tensor(index)().copy()  # same values, somewhere else

    clf.interpreter = Moving()
    with pytest.raises(MovinetPiError, match="tensors move while it runs"):
        clf._check_views_stay_put()
