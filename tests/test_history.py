"""Stream history policies: the mechanism, on the real models in ../shared."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from reference_loop import sampled_rgb_frames

from movinet_pi import MovinetPiError
from movinet_pi.flags import DEFAULT_HISTORY
from movinet_pi.model.adaptive import AdaptiveHistory, AutoSettings, history_policy
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.history import ExponentialHistory, Grid, PlainHistory
from movinet_pi.model.labels import Labels

LABELS = Labels(tuple(f"c{i}" for i in range(600)), "test")


@pytest.fixture(scope="module")
def clips(carving_ice: Path, arm_wrestling: Path) -> dict[str, list[np.ndarray]]:
    return {
        "carving ice": list(sampled_rgb_frames(carving_ice)),
        "arm wrestling": list(sampled_rgb_frames(arm_wrestling)),
    }


def _counts(clf: StreamingClassifier) -> list[int]:
    return [int(slot.count_in.flat[0]) for slot in clf.history.slots]


def test_the_int8_head_pool_is_read_through_a_quantization_grid(a0_model: Path) -> None:
    clf = StreamingClassifier.from_file(a0_model, LABELS, history=ExponentialHistory(10))
    (slot,) = clf.history.slots  # the official int8 A0 keeps only the head's pool live
    assert slot.name == "state_head_pool_buffer"
    assert slot.grid is not None and 0.1 < slot.grid.scale < 2.0


def test_a_float_model_has_no_grid_and_every_block_pool_is_live(a0_float_model: Path) -> None:
    clf = StreamingClassifier.from_file(a0_float_model, LABELS, history=ExponentialHistory(10))
    assert len(clf.history.slots) > 1
    assert all(slot.grid is None for slot in clf.history.slots)


def test_grid_snaps_to_steps_and_saturates() -> None:
    grid = Grid(scale=0.5, zero_point=-128, qmin=-128, qmax=127)
    out = grid.snap(np.array([0.0, 0.24, 0.26, 1.1, -3.0, 500.0]))
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 0.0, 127.5])


def _auto(steps: float) -> AdaptiveHistory:
    return AdaptiveHistory(5.0, AutoSettings(long_s=steps / 5.0))


@pytest.mark.parametrize("model_fixture", ["a0_model", "a0_float_model"])
@pytest.mark.parametrize("policy", [ExponentialHistory, _auto])
def test_a_long_window_is_the_plain_model_bit_for_bit(
    request: pytest.FixtureRequest, model_fixture: str, policy: type, clips: dict
) -> None:
    # Within its window (and, for auto, with no change of scene) a bounded policy
    # must not change what the model computes: equal logits, not close ones.
    model = request.getfixturevalue(model_fixture)
    plain = StreamingClassifier.from_file(model, LABELS, history=PlainHistory())
    bounded = StreamingClassifier.from_file(model, LABELS, history=policy(10_000))
    for rgb in clips["arm wrestling"]:  # one scene: auto sees no change in it
        plain.step(rgb)
        bounded.step(rgb)
        np.testing.assert_array_equal(bounded.logits, plain.logits)
    assert _counts(bounded) == _counts(plain)
    assert bounded.history.memory_steps == plain.history.memory_steps == 50


@pytest.mark.parametrize("model_fixture", ["a0_model", "a0_float_model"])
def test_a_short_window_is_the_plain_model_up_to_its_edge(
    request: pytest.FixtureRequest, model_fixture: str, clips: dict
) -> None:
    # The moving average takes over from the plain model's own sums at the window's edge:
    # up to it, and at the first step after it (fed exactly the plain model's mean, n times),
    # the logits are the plain model's; a phase that ends a step early is not.
    model = request.getfixturevalue(model_fixture)
    n = 10
    plain = StreamingClassifier.from_file(model, LABELS, history=PlainHistory())
    bounded = StreamingClassifier.from_file(model, LABELS, history=ExponentialHistory(n))
    for step, rgb in enumerate(clips["arm wrestling"][: n + 1], start=1):
        plain.step(rgb)
        bounded.step(rgb)
        np.testing.assert_array_equal(bounded.logits, plain.logits, err_msg=f"step {step}")
        assert bounded.history.memory_steps == min(step, n)


def test_exponential_history_caps_every_count_at_its_window(
    a0_float_model: Path, clips: dict
) -> None:
    clf = StreamingClassifier.from_file(a0_float_model, LABELS, history=ExponentialHistory(4))
    seen = []
    for rgb in clips["carving ice"][:8]:
        clf.step(rgb)
        seen.append(_counts(clf)[0])
        assert len(set(_counts(clf))) == 1
    assert seen == [1, 2, 3, 4, 4, 4, 4, 4]


def test_the_default_history_forgets_a_long_first_action(
    a0_model: Path, kinetics_labels: Labels, clips: dict
) -> None:
    # The first issue's failing case: after 60 s of carving ice the plain model never
    # switches to arm wrestling within 60 s. The default must, within a second.
    policy = history_policy(DEFAULT_HISTORY, 5.0)
    assert isinstance(policy, AdaptiveHistory)
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, history=policy)
    for rgb in itertools.islice(itertools.cycle(clips["carving ice"]), 300):
        clf.step(rgb)
    target = kinetics_labels.names.index("arm wrestling")
    top = [int(clf.step(rgb).argmax()) for rgb in clips["arm wrestling"] * 2]
    assert all(t == target for t in top[5:]), "top-1 must be arm wrestling after 1 s"


def test_reset_clears_a_bounded_history(a0_model: Path, clips: dict) -> None:
    clf = StreamingClassifier.from_file(a0_model, LABELS, history=ExponentialHistory(10))
    fresh = [clf.step(rgb).copy() for rgb in clips["arm wrestling"][:12]]
    for rgb in clips["carving ice"]:
        clf.step(rgb)
    clf.reset()
    again = [clf.step(rgb).copy() for rgb in clips["arm wrestling"][:12]]
    np.testing.assert_array_equal(np.array(fresh), np.array(again))


@pytest.mark.parametrize("seconds", [0.0, -1.0, math.nan])
def test_history_must_be_positive(seconds: float) -> None:
    with pytest.raises(MovinetPiError, match="more than 0"):
        history_policy(seconds, 5.0)


def test_history_policy_picks_plain_for_inf_and_the_window_in_steps() -> None:
    assert isinstance(history_policy(math.inf, 5.0), PlainHistory)
    auto = history_policy("auto", 5.0)
    assert isinstance(auto, AdaptiveHistory) and auto.n == 150
    ema = history_policy(2.0, 5.0)
    assert isinstance(ema, ExponentialHistory) and ema.n == 10


def test_a_moving_average_is_never_fed_above_the_int8_grids_top() -> None:
    from movinet_pi.model.pools import FeatureTensor, PoolSlot

    zeros = np.zeros(4, np.float32)
    grid = Grid(scale=0.5742605, zero_point=-128, qmin=-128, qmax=127)  # A0's: tops at 146.4
    feature = FeatureTensor(0, 6 / 255, -128)  # one frame adds at most 6.0
    slot = PoolSlot("p", zeros, zeros, zeros, zeros, grid, feature_grid=feature)
    mean = np.array([0.1, 1.2, 0.0, 0.3])
    assert slot.fed_count(mean, 150) == int((146.4 - 6.0) / 1.2)  # 117 frames, not 150
    assert slot.fed_count(mean, 50) == 50  # 50 x 1.2 = 60: room to spare
    assert slot.fed_count(np.zeros(4), 150) == 150
    float_slot = PoolSlot("p", zeros, zeros, zeros, zeros, None)
    assert float_slot.fed_count(mean * 1000, 150) == 150  # a float sum has no top


def test_a_frame_adds_its_features_rounded_onto_the_sums_grid() -> None:
    from movinet_pi.model.pools import FeatureTensor, PoolSlot

    grid = Grid(scale=0.5742605, zero_point=-128, qmin=-128, qmax=127)
    feature = FeatureTensor(0, 6 / 255, -128)
    # int8 features 0.0, 0.28 (under half a step), 0.31 (over it), 1.2
    raw = np.array([-128, -128 + 12, -128 + 13, -128 + 51], np.int8)
    buffer_in = np.array([10.0, 10.0, 10.0, 10.0], np.float32)
    buffer_out = np.array([10.6, 11.2, 10.6, 11.2], np.float32)  # the fed sum's re-rounding
    count = np.zeros(1, np.int32)
    slot = PoolSlot("p", buffer_in, buffer_out, count, count, grid, feature=raw,
                    feature_grid=feature)
    added = slot.added(np.empty(4))
    np.testing.assert_allclose(added, [0.0, 0.0, 0.5742605, 2 * 0.5742605], rtol=1e-6)
    # Where the model does not expose a frame's features: what the sum changed by.
    bare = PoolSlot("p", buffer_in, buffer_out, count, count, grid)
    np.testing.assert_allclose(bare.added(np.empty(4)), buffer_out - buffer_in, rtol=1e-6)
