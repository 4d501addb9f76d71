"""``bench``'s arithmetic: the figures it prints are the ones its definitions imply."""

from __future__ import annotations

import pytest

from movinet_pi.tools.bench import BenchResult


def test_bench_figures_follow_from_the_times() -> None:
    times = {
        "capture": [1.0, 2.0, 3.0],
        "preprocess": [0.5, 0.5, 0.5],
        "invoke": [10.0, 12.0, 30.0],
        "carry": [1.0, 3.0, 1.0],
        "overlay": [2.0, 2.0, 2.0],
        "bare_invoke": [10.0, 11.0, 40.0],
        "memory": [0.5, 1.5, 0.5],  # the history policy's part of the carry
    }
    r = BenchResult("m", "rt", 2, (172, 172), (640, 480), "clip.mp4", times)
    assert r.steps == 3
    assert r.p50("invoke") == 12.0 and r.p99("invoke") == 30.0
    assert r.step_ms_p50 == 15.0  # median of 11, 15, 31
    assert r.total_ms_p50 == 19.5  # median of 14.5, 19.5, 36.5
    assert r.overhead_pct == pytest.approx((15.0 / 11.0 - 1) * 100)
    assert r.invoke_pct == pytest.approx((12.0 / 11.0 - 1) * 100)
    assert r.carry_pct == pytest.approx(1.0 / 11.0 * 100)
    data = r.to_json()
    assert data["steps_per_s"] == round(1000 / 19.5, 2)
    assert data["frame"] == [640, 480] and data["input"] == [172, 172]
    assert data["capture_ms_p50"] == 2.0 and data["capture_ms_p99"] == 3.0
    assert data["memory_ms_p50"] == 0.5
    assert data["memory_pct"] == round(0.5 / 15.0 * 100, 2)
    table = r.format()
    assert "3 steps on clip.mp4 (640x480)" in table
    assert "19.50 ms (51 steps/s" in table
    assert f"{(15.0 / 11.0 - 1) * 100:+.1f} %" in table
