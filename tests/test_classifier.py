"""StreamingClassifier against the real models in ../shared."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from reference_loop import ReferenceLoop, sampled_rgb_frames, top1

from movinet_pi import MovinetPiError
from movinet_pi.display.shown import LabelFilter
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.model.predictions import softmax
from movinet_pi.model.runtime import find_runtime, load_interpreter
from movinet_pi.model.signature import read_signature


@pytest.fixture(scope="module")
def a0(a0_model: Path, kinetics_labels: Labels) -> StreamingClassifier:
    return StreamingClassifier.from_file(a0_model, kinetics_labels, threads=2)


def test_signature_is_read_from_the_model(a0: StreamingClassifier) -> None:
    sig = a0.signature
    assert sig.key == "serving_default"
    assert (sig.input_width, sig.input_height) == (172, 172)
    assert sig.num_classes == 600
    assert len(sig.states) == 43
    assert all(s.name.startswith("state_") for s in sig.states)
    # every pool buffer has its frame count, and no stream buffer is paired
    assert len(sig.pool_pairs) == sum(s.name.endswith("_pool_frame_count") for s in sig.states)
    assert all(p.buffer.name.endswith("_pool_buffer") for p in sig.pool_pairs)


@pytest.fixture
def a2_for_runtime(a2_model: Path, shared: Path) -> Path:
    """The A2 int8 model, or A2 float32 under tflite-runtime 2.14, whose kernels predate
    the int8 ops the A2 int8 export uses (that refusal has its own test)."""
    if find_runtime().name == "tflite-runtime":
        return shared / "models" / "untrained" / "movinet_a2_stream_float32.tflite"
    return a2_model


def test_a2_input_size_follows_the_model(a2_for_runtime: Path) -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    clf = StreamingClassifier.from_file(a2_for_runtime, labels, threads=2)
    assert clf.input_size == (224, 224)
    assert len(clf.signature.states) == 73
    probs = clf.step(np.zeros((480, 640, 3), dtype=np.uint8))
    assert probs.shape == (600,)
    assert abs(float(probs.sum()) - 1.0) < 1e-4


@pytest.mark.parametrize("model_fixture", ["a0_model", "a0_float_model"])
def test_logits_equal_a_plain_reference_loop(
    request: pytest.FixtureRequest, model_fixture: str, arm_wrestling: Path
) -> None:
    model = request.getfixturevalue(model_fixture)
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    ours = StreamingClassifier.from_file(model, labels, threads=2)
    ref = ReferenceLoop(model)
    steps = 0
    for rgb in sampled_rgb_frames(arm_wrestling):
        ours.step(rgb)
        expected = ref.step(rgb)
        np.testing.assert_allclose(ours.logits, expected, atol=1e-5, rtol=0)
        steps += 1
    assert steps == 50


@pytest.mark.parametrize(
    ("clip", "label"), [("carving_ice", "carving ice"), ("arm_wrestling", "arm wrestling")]
)
def test_real_clips_are_recognised(
    request: pytest.FixtureRequest, a0: StreamingClassifier, clip: str, label: str
) -> None:
    a0.reset()
    probs = None
    for rgb in sampled_rgb_frames(request.getfixturevalue(clip)):
        probs = a0.step(rgb)
    assert probs is not None
    best = a0.top_k(probs, 1)[0]
    assert best.label == label
    assert best.score >= 0.95


def test_reset_starts_a_fresh_stream(a0: StreamingClassifier, carving_ice: Path) -> None:
    frames = list(sampled_rgb_frames(carving_ice))[:6]
    a0.reset()
    first = [a0.step(f).copy() for f in frames]
    a0.reset()
    assert a0.steps == 0
    again = [a0.step(f).copy() for f in frames]
    np.testing.assert_array_equal(np.array(first), np.array(again))


def test_states_are_carried_between_steps(a0: StreamingClassifier, carving_ice: Path) -> None:
    frame = next(iter(sampled_rgb_frames(carving_ice)))
    a0.reset()
    one = a0.step(frame).copy()
    two = a0.step(frame).copy()
    assert not np.allclose(one, two)  # same picture, different history


def test_step_reuses_its_buffers(a0: StreamingClassifier) -> None:
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    a = a0.step(frame)
    b = a0.step(frame)
    assert a is b


def test_the_answers_resolution_is_the_int8_logits_grid_step(
    a0: StreamingClassifier, a0_float_model: Path
) -> None:
    # the logits come out of a DEQUANTIZE of an int8 tensor: its scale is the step
    ops = a0.interpreter._get_ops_details()
    (source,) = [op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"
                 and a0.signature.logits_index in list(op["outputs"])]
    scale = next(d["quantization"][0] for d in a0.interpreter.get_tensor_details()
                 if d["index"] == source)
    assert a0.logit_step == pytest.approx(scale) and 0.1 < a0.logit_step < 0.3
    assert StreamingClassifier.from_file(a0_float_model, threads=1).logit_step == 0.0


def test_softmax_is_stable_for_huge_logits() -> None:
    logits = np.array([1000.0, 999.0, -1000.0], dtype=np.float32)
    probs = softmax(logits)
    assert np.all(np.isfinite(probs))
    assert probs[0] > probs[1] > probs[2]
    assert abs(float(probs.sum()) - 1.0) < 1e-6


def test_top_k_threshold_and_filters(a0: StreamingClassifier) -> None:
    probs = np.zeros(600, dtype=np.float32)
    probs[[10, 20, 30]] = [0.5, 0.3, 0.01]
    top = a0.top_k(probs, 3)
    assert [p.index for p in top] == [10, 20, 30]
    assert [p.index for p in a0.top_k(probs, 3, threshold=0.1)] == [10, 20]
    deny = LabelFilter(a0.labels, deny=[a0.labels[10]])
    assert [p.index for p in a0.top_k(probs, 2, label_filter=deny)] == [20, 30]
    allow = LabelFilter(a0.labels, allow=[a0.labels[30]])
    assert [p.index for p in a0.top_k(probs, 3, label_filter=allow)] == [30]


def test_unknown_filter_label_is_refused(a0: StreamingClassifier) -> None:
    with pytest.raises(MovinetPiError, match="unknown label 'flying'"):
        LabelFilter(a0.labels, allow=["flying"])
    with pytest.raises(MovinetPiError, match="'carving ise' in --allow/--deny "
                       "\\(closest: 'carving ice'\\)"):
        LabelFilter(a0.labels, allow=["carving ise"])


def test_a_label_both_allowed_and_denied_is_refused(a0: StreamingClassifier) -> None:
    with pytest.raises(MovinetPiError, match="'yoga' is in both --allow and --deny: give it "
                       "to one"):
        LabelFilter(a0.labels, allow=["squat", "yoga"], deny=["yoga"])
    both = LabelFilter(a0.labels, allow=["squat", "yoga"], deny=["tai chi"])  # no overlap
    assert both.mask.sum() == 2


def test_label_count_must_match_the_logits(a0_model: Path) -> None:
    with pytest.raises(MovinetPiError, match="has 3 labels but the model has 600 classes"):
        StreamingClassifier.from_file(a0_model, Labels(("a", "b", "c"), "three.txt"))


def _rename_signature(model: Path, new_key: bytes, dest: Path) -> Path:
    """Copy a model with its signature key renamed (flatbuffer strings are length-prefixed)."""
    data = bytearray(model.read_bytes())
    old = b"serving_default"
    pos = -1
    while True:
        pos = data.find(old, pos + 1)
        assert pos > 0, "signature key not found"
        if struct.unpack_from("<I", data, pos - 4)[0] == len(old) and data[pos + len(old)] == 0:
            break
    assert len(new_key) <= len(old)
    struct.pack_into("<I", data, pos - 4, len(new_key))
    data[pos : pos + len(old)] = new_key + b"\0" * (len(old) - len(new_key))
    dest.write_bytes(bytes(data))
    return dest


def test_signature_key_is_not_hard_coded(a0_model: Path, tmp_path: Path) -> None:
    renamed = _rename_signature(a0_model, b"call", tmp_path / "call.tflite")
    interpreter, _ = load_interpreter(renamed, 2)
    assert read_signature(interpreter).key == "call"
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    clf = StreamingClassifier(interpreter, labels)
    assert clf.step(np.zeros((172, 172, 3), dtype=np.uint8)).shape == (600,)


def test_official_int8_squeeze_excite_states_are_passthrough(a0: StreamingClassifier) -> None:
    # The official export keeps only the head's running average: its block pools are
    # identity outputs. We must not depend on them being carried.
    live = [s.name for s in a0.signature.states if "pool" in s.name and not s.passthrough]
    assert sorted(live) == ["state_head_pool_buffer", "state_head_pool_frame_count"]


def test_reference_top1_matches(a0: StreamingClassifier, arm_wrestling: Path) -> None:
    ref = ReferenceLoop(a0.interpreter and Path(a0.model_path))
    logits = None
    for rgb in sampled_rgb_frames(arm_wrestling):
        logits = ref.step(rgb)
    assert logits is not None
    index, score = top1(logits)
    assert a0.labels[index] == "arm wrestling" and score > 0.95


def test_a_model_the_runtime_cannot_run_is_refused_at_load(
    a0_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interpreter, _ = load_interpreter(a0_model, 1)

    def fail() -> None:
        raise RuntimeError("Div only supports FLOAT32, INT32 and quantized UINT8 now, got 9.")

    monkeypatch.setattr(interpreter, "invoke", fail)
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    with pytest.raises(MovinetPiError, match=r"does not run on .*Div only supports") as e:
        StreamingClassifier(interpreter, labels, runtime_name="tflite-runtime")
    assert "\n" not in str(e.value)


def test_tflite_runtime_2_14_refuses_a2_int8_with_one_line(a2_model: Path) -> None:
    """Only meaningful under tflite-runtime (CI's second venv), whose kernels are too old."""
    if find_runtime().name != "tflite-runtime":
        pytest.skip("runs in the tflite-runtime venv of .ci/run")
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    with pytest.raises(MovinetPiError, match="does not run on tflite-runtime") as e:
        StreamingClassifier.from_file(a2_model, labels, threads=1)
    assert "\n" not in str(e.value)


class _Runner:
    """A signature runner as read_signature sees it."""

    def __init__(self, inputs: dict, outputs: dict) -> None:
        self.inputs, self.outputs = inputs, outputs

    def get_input_details(self) -> dict:
        return self.inputs

    def get_output_details(self) -> dict:
        return self.outputs


def _detail(index: int, shape: list[int]) -> dict:
    return {"index": index, "shape": np.array(shape), "dtype": np.float32, "quantization": (0.0, 0)}


class _Signatures:
    """An interpreter with these signature runners, by key."""

    def __init__(self, runners: dict[str, _Runner]) -> None:
        self.runners = runners

    def get_signature_list(self) -> dict:
        return {k: {"inputs": list(r.inputs), "outputs": list(r.outputs)}
                for k, r in self.runners.items()}

    def get_signature_runner(self, key: str) -> _Runner:
        return self.runners[key]


def _stream_step(image_shape: list[int]) -> _Runner:
    return _Runner({"image": _detail(0, image_shape), "state_a": _detail(1, [1, 4])},
                   {"logits": _detail(2, [1, 600]), "state_a": _detail(3, [1, 4])})


@pytest.mark.parametrize("key", ["serving_default", "call"])
def test_of_several_signatures_the_stream_step_is_taken(key: str) -> None:
    # An export may carry another signature too (one that makes the initial states, with
    # more inputs): the stream step is `serving_default`, or `call` in some fine-tuned ones.
    many = {f"in{i}": _detail(10 + i, [1, 4]) for i in range(9)}
    other = _Runner({"image": _detail(0, [1, 1, 64, 64, 3]), **many},
                    {"logits": _detail(2, [1, 7]), **many})
    interpreter = _Signatures({"init_states": other, key: _stream_step([1, 1, 172, 172, 3])})
    assert read_signature(interpreter).key == key


@pytest.mark.parametrize("shape", [[1, 1, 172, 172, 1], [2, 1, 172, 172, 3]])
def test_an_image_input_other_than_one_rgb_frame_is_refused(shape: list[int]) -> None:
    with pytest.raises(MovinetPiError, match=r"expected \[1, 1, H, W, 3\]"):
        read_signature(_Signatures({"serving_default": _stream_step(shape)}))


def test_a_score_exactly_at_the_threshold_is_shown(a0_model: Path) -> None:
    labels = Labels(tuple(f"c{i}" for i in range(600)), "test")
    clf = StreamingClassifier.from_file(a0_model, labels, threads=1)
    probs = np.zeros(600, dtype=np.float32)
    probs[[10, 20]] = 0.5, 0.25  # (exact in binary: float32 and float64 agree)
    assert [p.index for p in clf.top_k(probs, 3, threshold=0.25)] == [10, 20]
