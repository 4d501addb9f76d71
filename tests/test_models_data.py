"""The tiny models in tests/data (built by make_test_models.py) are what they claim to be."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from make_test_models import (
    POOL_BUFFER_STATE,
    POOL_COUNT_STATE,
    STREAM_STATE,
    clip_frames,
)

from movinet_pi import MovinetPiError
from movinet_pi.cli import main
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import load_labels
from movinet_pi.model.runtime import load_interpreter
from movinet_pi.model.signature import read_signature

DATA = Path(__file__).resolve().parent / "data"

#: file -> (input size, classes, signature key, label file)
STREAMING = {
    "tiny_rgb_stream.tflite": (64, 3, "serving_default", "tiny_rgb_labels.txt"),
    "tiny_rgb_stream_f16.tflite": (64, 3, "serving_default", "tiny_rgb_labels.txt"),
    "tiny_motion_call.tflite": (172, 6, "call", "tiny_motion_labels.txt"),
    "tiny_motion_224.tflite": (224, 6, "serving_default", "tiny_motion_labels.txt"),
}


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_models_are_small_and_load(name: str) -> None:
    size, classes, key, labels = STREAMING[name]
    path = DATA / name
    assert path.stat().st_size < 100_000
    clf = StreamingClassifier.from_file(path, load_labels(DATA / labels), threads=1)
    sig = clf.signature
    assert (sig.key, sig.input_size, sig.num_classes) == (key, (size, size), classes)
    assert {s.name for s in sig.states} == {STREAM_STATE, POOL_BUFFER_STATE, POOL_COUNT_STATE}
    (pair,) = sig.pool_pairs
    assert (pair.buffer.name, pair.count.name) == (POOL_BUFFER_STATE, POOL_COUNT_STATE)


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_pool_pair_is_a_running_sum_and_a_count(name: str) -> None:
    size, _, _, labels = STREAMING[name]
    clf = StreamingClassifier.from_file(DATA / name, load_labels(DATA / labels), threads=1)
    (pair,) = clf.signature.pool_pairs
    total = np.zeros(3)
    for step, rgb in enumerate(clip_frames("green", True, frames=6)):
        clf.step(rgb)
        resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)  # as the app
        total += resized.reshape(-1, 3).mean(axis=0) / 255.0
        count = clf.interpreter.get_tensor(pair.count.input_index)
        pool_sum = clf.interpreter.get_tensor(pair.buffer.input_index).reshape(-1)
        assert int(count[0]) == step + 1
        np.testing.assert_allclose(pool_sum[:3], total, rtol=0.01)
    assert clf.top_k(clf.step(next(clip_frames("green", True))), 1)[0].label.startswith("green")
    clf.reset()
    assert int(clf.interpreter.get_tensor(pair.count.input_index)[0]) == 0


def test_labels_inside_the_call_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(DATA / "tiny_motion_call.tflite")]) == 0
    out = capsys.readouterr().out
    assert "signature  " in out and " call" in out
    assert "tiny_motion_call.tflite:labels.txt (inside the model)" in out
    assert "red still, red moving" in out


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("image_classifier.tflite", "no state tensors: an image or clip classifier, "
                                    "not a streaming model"),
        ("bad_image_shape.tflite", "expected [1, 1, H, W, 3]: not a streaming MoViNet"),
    ],
)
def test_negative_models_are_refused_in_one_line(name: str, words: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    interpreter, _ = load_interpreter(DATA / name, 1)
    with pytest.raises(MovinetPiError, match="not a streaming"):
        read_signature(interpreter)
    assert main(["info", str(DATA / name)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert words in line
