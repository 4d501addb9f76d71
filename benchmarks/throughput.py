"""Headless file throughput: our pipeline against a plain reference loop, same clips.

Both decode the whole clip, feed the frames due on the 5 fps grid to A0 int8
and take the top classes of each step:

* ours: ``Pipeline`` on a ``FileSource`` with JSON lines to /dev/null, exactly
  what ``movinet-pi --source CLIP --headless --json`` runs (default ``--history auto``);
* reference: OpenCV decode, ``astype(float32) / 255``, the signature runner
  with a dict of states, ``np.argsort`` (the TF tutorial's loop).

Both interpreters are built once, outside the timed runs, and reset between
clips. Runs alternate (so drift in machine speed hits both alike); prints
medians and the ratio (goal: ours >= 1.25x the reference).

    python benchmarks/throughput.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))

from reference_loop import ReferenceLoop, sampled_rgb_frames  # noqa: E402

from movinet_pi.flags import DEFAULT_HISTORY  # noqa: E402
from movinet_pi.model.adaptive import history_policy  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402
from movinet_pi.outputs.jsonlines import JsonLinesSink  # noqa: E402
from movinet_pi.pipeline import Pipeline  # noqa: E402
from movinet_pi.recognizer import Recognizer, RunConfig  # noqa: E402
from movinet_pi.sources.open import open_source  # noqa: E402

MODEL = SHARED / "models" / "movinet_a0_stream_int8.tflite"
CLIPS = (SHARED / "videos" / "carving_ice.mp4", SHARED / "videos" / "arm_wrestling.mp4")


def ours(clf: StreamingClassifier, clip: Path, out) -> int:
    clf.reset()
    source = open_source(str(clip))
    try:
        stats = Pipeline(source, Recognizer(clf, RunConfig(top_k=3), [JsonLinesSink(out)])).run()
    finally:
        source.close()
    return stats.steps


def reference(loop: ReferenceLoop, clip: Path) -> int:
    loop.reset()
    steps = 0
    for rgb in sampled_rgb_frames(clip):
        logits = loop.step(rgb)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        np.argsort(probs)[::-1][:3]
        steps += 1
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    labels = load_labels(SHARED / "labels" / "kinetics600_label_map.txt")
    clf = StreamingClassifier.from_file(MODEL, labels, threads=args.threads,
                                        history=history_policy(DEFAULT_HISTORY, MODEL_FPS))
    loop = ReferenceLoop(MODEL, threads=args.threads)
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    steps = {}
    with open(os.devnull, "w") as out:
        for _ in range(args.repeats):
            for name in ("ours", "reference"):
                started = time.perf_counter()
                if name == "ours":
                    steps[name] = sum(ours(clf, clip, out) for clip in CLIPS)
                else:
                    steps[name] = sum(reference(loop, clip) for clip in CLIPS)
                times[name].append(time.perf_counter() - started)
    assert steps["ours"] == steps["reference"], steps
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"both clips ({steps['ours']} model steps, every frame decoded), A0 int8, "
          f"{args.threads} threads, ours with --history {clf.history.label}, "
          f"median of {args.repeats}:")
    for name in times:
        print(f"  {name:<10} {med[name] * 1000:7.1f} ms  ({steps[name] / med[name]:.0f} steps/s)")
    print(f"ours is {med['reference'] / med['ours']:.2f}x the reference loop (goal >= 1.25x)")


if __name__ == "__main__":
    main()
