"""``benchmarks/roi.py``'s scoring: what "recovered", "kept", the median ratio, a move and the
out-of-fold choice mean (the figures issue 27's goals are judged by)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rb():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("roi_benchmark",
                                                  ROOT / "benchmarks" / "roi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.modules["roi_benchmark"] = module
    spec.loader.exec_module(module)
    return module


def _versions(rb, kinds: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    out = []
    for name, ks in kinds.items():
        clip = rb.Clip(name, [(0.0, None)])
        for k in ks:
            out.append(rb.Version(len(out), clip, k, lambda i: None))
    return out


def test_roi_figures(rb) -> None:
    v = _versions(rb, {"x": ["full", "1/2", "1/2", "1/3"]})
    ref = {"x": (5, 0.8)}
    outs = [rb.Outcome(v[0], 5, 0.79, 0.79, 0.0), rb.Outcome(v[1], 5, 0.72, 0.72, 1.2),
            rb.Outcome(v[2], 7, 0.9, 0.08, 0.0), rb.Outcome(v[3], 5, 0.48, 0.48, 0.2)]
    f = rb.figures(outs, ref)
    assert (f.recovered, f.small, f.kept, f.full, f.unsteady) == (2, 3, 1, 1, 1)
    assert f.ratios == pytest.approx([0.9, 0.1, 0.6])  # the reference label's score
    assert f.median_ratio == pytest.approx(0.6)  # the median, not the mean (0.53)
    dropped = rb.figures([rb.Outcome(v[0], 5, 0.77, 0.77, 0.0)], ref)
    assert dropped.kept == 0  # 0.03 below the whole picture's


def test_a_move_is_a_side_moving_more_than_5_percent_of_the_boxs_size(rb) -> None:
    small = (0.1, 0.1, 0.2, 0.2)
    assert rb.moves_per_second([small, (0.12, 0.1, 0.2, 0.2)], 1.0) == 1.0  # 10 % of 0.2
    assert rb.moves_per_second([small, (0.108, 0.1, 0.2, 0.2)], 1.0) == 0.0  # 4 %
    assert rb.moves_per_second([rb.WHOLE, (0.04, 0, 0.96, 1.0)] * 2, 2.0) == 0.0


def test_roi_cross_validation_scores_each_fold_with_settings_chosen_without_it(rb) -> None:
    s1, s2 = rb.AutoRoiSettings(), rb.AutoRoiSettings(margin=0.1)
    vs = _versions(rb, {"c0": ["1/2"] * 4, "c1": ["1/2"], "c2": ["1/2"], "c3": ["1/2"]})
    clips = [v.clip for v in vs if v.key in (0, 4, 5, 6)]  # c0's versions are keys 0-3
    ref = {c.name: (1, 0.9) for c in clips}
    # s1 recovers c0's four versions only, s2 the three others only
    runs = {s: {v.key: rb.Outcome(v, 1 if (v.clip.name == "c0") == (s is s1) else 2, 0.9,
                                  0.9, 0.0) for v in vs} for s in (s1, s2)}
    oof, chosen = rb.cross_validated(runs, vs, clips, 4, ref)
    assert chosen == [s2, s1, s1, s1]  # c0's fold chose without c0
    assert rb.figures(oof, ref).recovered == 0
