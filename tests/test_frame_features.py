"""Each frame's own features, exposed from inside the graph (movinet_pi.model.frame_features).

Exposing a tensor must change nothing the model computes (the logits tests in
test_graph.py run the exposed model against the file, to the bit); here: the right
tensor is found, it holds what the frame added to the sum, and bad bytes are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_loop import sampled_rgb_frames

from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.frame_features import add_outputs, expose_frame_features, find_frame_features
from movinet_pi.model.graph import GraphError, _Buffer, _Graph
from movinet_pi.model.labels import Labels
from movinet_pi.model.signature import pool_buffer_names

LABELS = Labels(tuple(f"c{i}" for i in range(600)), "test")
HEAD = "state_head_pool_buffer"


def _outputs(model: bytes) -> list[int]:
    graph = _Graph.read(_Buffer(bytearray(model)))
    assert graph is not None
    return graph.outputs


def test_the_head_pools_addend_is_found_on_its_own_fine_grid(a0_model: Path) -> None:
    data = a0_model.read_bytes()
    (feature,) = [f for f in find_frame_features(data, pool_buffer_names) if f.state == HEAD]
    assert feature.zero_point == -128 and abs(feature.scale * 255 - 6.0) < 1e-4  # [0, 6]
    exposed = expose_frame_features(data, pool_buffer_names)
    assert _outputs(exposed) == [*_outputs(data), feature.tensor]
    assert a0_model.read_bytes() == data


def test_adding_an_output_twice_or_none_changes_nothing(a0_model: Path) -> None:
    data = a0_model.read_bytes()
    assert add_outputs(data, []) == data
    assert add_outputs(data, [_outputs(data)[0]]) == data
    with pytest.raises(GraphError):
        add_outputs(data, [10**6])


def test_bytes_that_are_not_a_model_are_refused_or_left_alone() -> None:
    with pytest.raises(GraphError):
        add_outputs(b"\x00" * 64, [1])
    assert expose_frame_features(b"garbage!" * 8, pool_buffer_names) == b"garbage!" * 8


def test_the_int8_feature_is_what_a_fresh_sum_rounds(a0_model: Path, carving_ice: Path) -> None:
    clf = StreamingClassifier.from_file(a0_model, LABELS, threads=1)
    (slot,) = clf.history.slots
    assert slot.feature is not None
    for rgb in list(sampled_rgb_frames(carving_ice))[:5]:
        clf.reset()  # the sum starts at 0, so the sum out is this frame's addend, rounded
        clf.step(rgb)
        features = slot.frame_features()
        out_step = 6 / 255 * 25  # the sum's output grid is ~0.59: addends round to it
        assert np.abs(slot.buffer_out - features).max() <= out_step / 2 + 1e-3
        # ... and the features hold what that grid loses
        off_grid = np.abs(features - np.round(features / out_step) * out_step)
        assert features.max() > 0.5 and off_grid.max() > 0.05


def test_a_float_models_features_are_exactly_what_the_sum_gained(
    a0_float_model: Path, carving_ice: Path
) -> None:
    clf = StreamingClassifier.from_file(a0_float_model, LABELS, threads=1)
    head = next(s for s in clf.history.slots if s.name == HEAD)
    assert head.feature is not None and head.feature.dtype == np.float32
    frames = list(sampled_rgb_frames(carving_ice))[:3]
    for rgb in frames:
        before = head.buffer_in.copy()
        clf.step(rgb)
        np.testing.assert_allclose(head.buffer_out - before, head.frame_features(), atol=1e-5)
