"""``movinet-pi teach`` on the ten shared clips: accuracy, teaching time, cost per step.

* accuracy: each clip's first half teaches its class (ten classes), its second half,
  streamed from fresh states, tests it: top-1 over every test step after the first second
  (and over the clips, by their last step); the same with only the first 1, 2 and 4 s of
  each clip to teach from. Goal: >= 0.9 with the first halves.
* teaching time: ``teach`` on the whole clips (decode + stream + fit + write), as a ratio
  of the clips' total duration. Goal: <= 0.1.
* cost: a taught model's ``step()`` against the stock model's, alternating blocks on the
  same frames; the median ratio. Goal: <= 1.02.

    python benchmarks/teach.py [--model PATH] [--threads 2] [--steps 300]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reference_loop import sampled_rgb_frames  # noqa: E402

from movinet_pi.model.adaptive import history_policy  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import Labels  # noqa: E402
from movinet_pi.tools.teach import (  # noqa: E402
    clip_features,
    examples_of,
    fit_best,
    load_base,
    teach,
)

SHARED = ROOT.parent / "shared"
BUDGETS = (1.0, 2.0, 4.0, None)  # seconds of teaching material per class; None: first half
BLOCK = 25


def manifest() -> list[tuple[Path, str, float]]:
    with open(SHARED / "videos" / "MANIFEST.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(SHARED / "videos" / r["file"], r["label"], float(r["seconds"])) for r in rows]


def accuracy(model: Path, threads: int) -> None:
    clips = manifest()
    clf = load_base(model, threads)
    labels = [label for _, label, _ in clips]
    first = [clip_features(clf, path, 0.0, secs / 2) for path, _, secs in clips]
    second = [clip_features(clf, path, secs / 2) for path, _, secs in clips]
    print("teaching material per class -> top-1 on the second halves "
          "(steps after the first second; clips by their last step)")
    print(f"{'material':>12}  {'examples':>8}  {'kept':>10}  {'steps':>6}  {'clips':>6}")
    for budget in BUDGETS:
        train = [f if budget is None else f[:int(budget * MODEL_FPS)] for f in first]
        ex = [examples_of(f) for f in train]
        x = np.concatenate(ex)
        y = np.concatenate([np.full(len(e), i) for i, e in enumerate(ex)])
        head, _, _ = fit_best(x, y, y.copy(), labels)
        tests = [examples_of(f) for f in second]
        tx = np.concatenate(tests)
        ty = np.concatenate([np.full(len(t), i) for i, t in enumerate(tests)])
        steps = float(np.mean(np.argmax(head.probs(tx), axis=1) == ty))
        last = np.stack([f[-1] for f in second])
        by_clip = float(np.mean(np.argmax(head.probs(last), axis=1) == np.arange(len(clips))))
        name = "first half" if budget is None else f"{budget:g} s"
        print(f"{name:>12}  {len(y):>8}  {head.kind:>10}  {steps:>6.3f}  {by_clip:>6.3f}")
    reject(first, second, labels)


def reject(first: list[np.ndarray], second: list[np.ndarray], labels: list[str]) -> None:
    """--reject: taught the first five classes, how often the second halves of the other
    five (actions it does not know) get no answer, and how often its own still get one."""
    known = 5
    ex = [examples_of(f) for f in first[:known]]
    x = np.concatenate(ex)
    y = np.concatenate([np.full(len(e), i) for i, e in enumerate(ex)])
    head, _, _ = fit_best(x, y, y.copy(), labels[:known], reject=True)
    own = np.concatenate([examples_of(f) for f in second[:known]])
    other = np.concatenate([examples_of(f) for f in second[known:]])
    kept = float(np.mean(head.probs(own).max(axis=1) > 0))
    rejected = float(np.mean(head.probs(other).max(axis=1) == 0))
    print(f"--reject (taught {known} classes, threshold {head.threshold:.3f}): "
          f"its own second halves answered {kept:.3f}, "
          f"the {len(first) - known} unknown actions rejected {rejected:.3f}")


def teaching_time(model: Path, threads: int) -> None:
    clips = manifest()
    total = sum(secs for _, _, secs in clips)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        for path, label, _ in clips:
            (folder / label).mkdir(parents=True, exist_ok=True)
            (folder / label / path.name).symlink_to(path)
        started = time.perf_counter()
        result = teach(folder, model, Path(tmp) / "taught.tflite", threads=threads)
        took = time.perf_counter() - started
    print(f"teaching on {len(clips)} whole clips ({total:.1f} s of video, "
          f"{result.head.examples} examples, {result.head.kind}): {took:.1f} s "
          f"(fitting {result.fit_seconds:.1f} s), "
          f"ratio {took / total:.3f} (goal <= 0.1)")
    return


def step_cost(model: Path, threads: int, steps: int) -> None:
    clips = manifest()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        for path, label, _ in clips[:3]:
            (folder / label).mkdir(parents=True, exist_ok=True)
            (folder / label / path.name).symlink_to(path)
        taught_path = Path(tmp) / "taught.tflite"
        teach(folder, model, taught_path, threads=threads)
        labels = Labels(tuple(str(i) for i in range(600)), "bench")
        stock = StreamingClassifier.from_file(model, labels, threads=threads,
                                              history=history_policy("auto", MODEL_FPS))
        taught = StreamingClassifier.from_file(taught_path, threads=threads,
                                               history=history_policy("auto", MODEL_FPS))
    frames = list(sampled_rgb_frames(SHARED / "videos" / "arm_wrestling.mp4"))
    times: dict[str, list[float]] = {"stock": [], "taught": []}
    done = 0
    while done < steps:
        for name, clf in (("stock", stock), ("taught", taught)):
            clf.reset()
            for i in range(BLOCK):
                t0 = time.perf_counter()
                clf.step(frames[(done + i) % len(frames)])
                times[name].append(time.perf_counter() - t0)
        done += BLOCK
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"step: stock {med['stock']:.3f} ms, taught {med['taught']:.3f} ms, "
          f"ratio {med['taught'] / med['stock']:.3f} (goal <= 1.02)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path,
                    default=SHARED / "models" / "movinet_a0_stream_int8.tflite")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    accuracy(args.model, args.threads)
    teaching_time(args.model, args.threads)
    step_cost(args.model, args.threads, args.steps)


if __name__ == "__main__":
    main()
