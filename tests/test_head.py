"""The head on its own (model/head.py): the model's own answer for any head-pool mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_loop import sampled_rgb_frames

from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.head import HeadScorer, head_only
from movinet_pi.model.history import PlainHistory
from movinet_pi.model.predictions import softmax
from movinet_pi.model.runtime import find_runtime

DATA = Path(__file__).parent / "data"


def _scorer(model: Path) -> HeadScorer:
    head = head_only(model.read_bytes())
    assert head is not None
    return HeadScorer(head, find_runtime().interpreter_class)


def _head_mean(clf: StreamingClassifier) -> np.ndarray:
    """The mean the model's head saw at the last step (its own float32 division)."""
    slot = next(s for s in clf.history.slots if "head" in s.name)
    return slot.buffer_out.reshape(-1).astype(np.float32) / np.float32(slot.count_out[0])


@pytest.mark.parametrize("model_fixture", ["a0_model", "a0_float_model"])
def test_the_head_alone_gives_the_models_own_logits(
    model_fixture: str, request: pytest.FixtureRequest, carving_ice: Path, kinetics_labels
) -> None:
    model = request.getfixturevalue(model_fixture)
    clf = StreamingClassifier.from_file(model, kinetics_labels, threads=1,
                                        history=PlainHistory())
    scorer = _scorer(model)
    assert (scorer.size, scorer.num_classes) == (480, 600)
    for rgb in list(sampled_rgb_frames(carving_ice))[:12]:
        clf.step(rgb)
        assert np.array_equal(scorer.logits(_head_mean(clf)), clf.logits)
    np.testing.assert_allclose(scorer.probabilities(_head_mean(clf)), softmax(clf.logits),
                               rtol=1e-5, atol=1e-7)


def test_an_int8_mean_input_is_quantized_onto_its_grid(a2_model: Path) -> None:
    # The A1/A2 int8 exports divide in int8: the head's input is the int8 mean.
    scorer = _scorer(a2_model)
    assert scorer.size == 640
    low, high = scorer.logits(np.zeros(640)), scorer.logits(np.full(640, 3.0))
    assert low.shape == (600,) and not np.array_equal(low, high)


def test_a_tiny_model_with_its_own_head_is_scored_too() -> None:
    scorer = _scorer(DATA / "tiny_rgb_stream.tflite")
    assert scorer.num_classes == 3
    probs = scorer.probabilities(np.ones(scorer.size))
    assert probs.shape == (3,) and abs(probs.sum() - 1.0) < 1e-9


def test_a_model_without_a_pooled_head_has_none() -> None:
    # An image classifier: no DIV of a running sum before its logits.
    assert head_only((DATA / "image_classifier.tflite").read_bytes()) is None
    assert head_only(b"not a model at all") is None
