"""``bench``'s arithmetic: the figures it prints are the ones its definitions imply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.tools.bench import BenchResult


def test_bench_figures_follow_from_the_times() -> None:
    times = {
        "capture": [1.0, 2.0, 3.0],
        "preprocess": [0.5, 0.5, 0.5],
        "invoke": [10.0, 12.0, 30.0],
        "carry": [1.0, 3.0, 1.0],
        "answer": [0.5, 0.5, 0.5],  # not part of the model step, but of the whole one
        "overlay": [2.0, 2.0, 2.0],
        "bare_invoke": [10.0, 11.0, 40.0],
        "memory": [0.2, 0.1, 0.3],  # the history policy's part of "carry"
        "memory_at_change": [0.3],  # the step where it acted on a change
    }
    r = BenchResult("m", "rt", 2, (172, 172), (640, 480), "clip.mp4", times)
    assert r.steps == 3
    assert r.p50("invoke") == 12.0 and r.p99("invoke") == 30.0
    assert r.step_ms_p50 == 15.0  # median of 11, 15, 31
    assert r.total_ms_p50 == 20.0  # median of 15, 20, 37
    assert r.overhead_pct == pytest.approx((15.0 / 11.0 - 1) * 100)
    assert r.invoke_pct == pytest.approx((12.0 / 11.0 - 1) * 100)
    assert r.carry_pct == pytest.approx(1.0 / 11.0 * 100)
    assert r.memory_pct == pytest.approx(0.2 / 15.0 * 100)
    data = r.to_json()
    assert data["steps_per_s"] == round(1000 / 20.0, 2)
    assert data["frame"] == [640, 480] and data["input"] == [172, 172]
    assert data["capture_ms_p50"] == 2.0 and data["capture_ms_p99"] == 3.0
    table = r.format()
    assert "3 steps on clip.mp4 (640x480)" in table
    assert "A step takes 20.0 ms" in table and "50 steps a second" in table
    assert "36 % slower than a bare invoke" in table  # 15 / 11 - 1
    assert data["memory_ms_p50"] == 0.2 and data["memory_pct"] == round(0.2 / 15 * 100, 2)
    assert data["memory_at_change_ms_max"] == 0.3 and data["changes"] == 1
    assert "worst at a change (1)" in table


def test_bench_shows_preprocess_from_a_lores_frame_beside_the_full_frame() -> None:
    times = {
        "capture": [1.0], "preprocess": [0.9], "invoke": [10.0], "carry": [1.0],
        "answer": [0.1], "overlay": [2.0], "bare_invoke": [10.0], "memory": [0.1],
        "preprocess_lores": [0.08],
    }
    r = BenchResult("m", "rt", 2, (172, 172), (640, 480), "synthetic frames", times)
    data = r.to_json()
    assert data["preprocess_lores_ms_p50"] == 0.08 and data["preprocess_ms_p50"] == 0.9
    assert data["total_ms_p50"] == 15.0  # the lores figure is beside the step, not in it
    table = r.format()
    assert "instead, from 172x172 lores" in table
    assert "preprocess 0.90 -> 0.08 ms" in table


def test_bench_times_preprocess_from_what_the_isp_would_give(
    a0_model: Path, kinetics_labels: Labels, monkeypatch: pytest.MonkeyPatch
) -> None:
    from movinet_pi.model.runtime import load_interpreter
    from movinet_pi.tools import bench

    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1)
    given: list[tuple[int, ...]] = []
    preprocess = clf.preprocess
    monkeypatch.setattr(clf, "preprocess", lambda rgb: (given.append(rgb.shape),
                                                         preprocess(rgb))[1])
    bare, _ = load_interpreter(clf.model_path, 1)
    result = bench.run_bench(clf, bare, bench.synthetic_frames((640, 480)), steps=3,
                             model_name="A0", source_name="synthetic frames", warmup=1)
    assert len(result.times_ms["preprocess_lores"]) == result.steps == 3
    # each step: the full frame, then beside the step the ISP-sized one (I420 made into RGB)
    assert given == [(480, 640, 3), (172, 172, 3)] * 4
    lores = bench._lores_of(np.zeros((480, 640, 3), np.uint8), (172, 172))
    assert lores.shape == (258, 172)  # picamera2's YUV420 array: (h * 3 / 2, w)


def test_bench_shows_the_memorys_worst_step_at_a_change(
    a0_model: Path, kinetics_labels: Labels
) -> None:
    """A cut from one clip to another is a change for ``--history auto``: bench names the
    steps where the memory acted on one, and the worst of its time there."""
    import itertools

    from conftest import require_shared
    from reference_loop import sampled_rgb_frames

    from movinet_pi.model.adaptive import AdaptiveHistory
    from movinet_pi.model.runtime import load_interpreter
    from movinet_pi.tools import bench

    clips = [list(sampled_rgb_frames(require_shared("videos", name), 5))[:20]
             for name in ("carving_ice.mp4", "playing_drums.mp4")]
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1,
                                        history=AdaptiveHistory(5))
    bare, _ = load_interpreter(clf.model_path, 1)
    result = bench.run_bench(clf, bare, itertools.chain(*clips), steps=39,
                             model_name="A0", source_name="two clips", warmup=1)
    at_change = result.times_ms["memory_at_change"]
    assert clf.history.forks >= 1 and len(at_change) >= clf.history.forks
    assert max(at_change) > 0 and result.to_json()["changes"] == len(at_change)
