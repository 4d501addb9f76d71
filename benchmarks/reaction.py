"""Live fidelity: how fast predictions follow a change of action on an endless stream.

Loops clip A for a while (simulating a camera that has watched A for that long),
then switches to clip B, and reports the seconds after the switch until top-1
becomes B and stays B for the rest of the run (60 s of B). Also counts flicker:
top-1 changes during a steady clip after its first 2 s. Headless, as fast as the
model runs; every figure is on the stream's own 5 fps clock.

    python benchmarks/reaction.py [--history 1 2 inf] [--lengths 10 60 300 1800]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reference_loop import sampled_rgb_frames  # noqa: E402

from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.history import history_policy  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402

SHARED = ROOT.parent / "shared"
FPS = 5.0
PAIRS = (("carving_ice", "carving ice"), ("arm_wrestling", "arm wrestling"))


def make_classifier(history_s: float, kind: str) -> StreamingClassifier:
    labels = load_labels(SHARED / "labels" / "kinetics600_label_map.txt")
    policy = history_policy(history_s, FPS, kind)
    return StreamingClassifier.from_file(
        SHARED / "models" / "movinet_a0_stream_int8.tflite", labels, history=policy
    )


def top1(clf: StreamingClassifier, rgb) -> str:
    probs = clf.step(rgb)
    return clf.labels[int(probs.argmax())]


def reaction(clf, frames_a, frames_b, label_b: str, a_seconds: float, b_seconds: float = 60):
    clf.reset()
    for rgb in itertools.islice(itertools.cycle(frames_a), int(a_seconds * FPS)):
        clf.step(rgb)
    labels = [top1(clf, rgb) for rgb in itertools.islice(itertools.cycle(frames_b),
                                                          int(b_seconds * FPS))]
    last_wrong = max((i for i, lab in enumerate(labels) if lab != label_b), default=-1)
    if last_wrong == len(labels) - 1:
        return None
    return (last_wrong + 1) / FPS


def flicker(clf, frames, seconds: float = 60) -> int:
    clf.reset()
    labels = [top1(clf, rgb) for rgb in itertools.islice(itertools.cycle(frames),
                                                          int(seconds * FPS))]
    steady = labels[int(2 * FPS):]
    return sum(a != b for a, b in zip(steady, steady[1:]))


def single_clip_score(clf, frames, label: str) -> float:
    clf.reset()
    probs = None
    for rgb in frames:
        probs = clf.step(rgb)
    return float(probs[clf.labels.names.index(label)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", nargs="+", default=["inf", "2", "4"])
    ap.add_argument("--policy", nargs="+", default=["exponential", "staggered"],
                    choices=["exponential", "staggered"])
    ap.add_argument("--lengths", nargs="+", type=float, default=[10, 60, 300, 1800])
    args = ap.parse_args()
    frames = {name: list(sampled_rgb_frames(SHARED / "videos" / f"{name}.mp4"))
              for name, _ in PAIRS}
    fmt = lambda r: "never" if r is None else f"{r:.1f} s"  # noqa: E731
    runs = [(h, kind) for h in args.history for kind in args.policy]
    runs = [(h, kind) for h, kind in runs if not (h == "inf" and kind != args.policy[0])]
    for h, kind in runs:
        clf = make_classifier(float(h), kind)
        started = time.perf_counter()
        print(f"\n--history {h} ({clf.history.label})")
        print("| A then B | " + " | ".join(f"A ran {x:g} s" for x in args.lengths) + " |")
        print("|---|" + "---|" * len(args.lengths))
        for (a, _), (b, label_b) in (PAIRS, PAIRS[::-1]):
            cells = [fmt(reaction(clf, frames[a], frames[b], label_b, x)) for x in args.lengths]
            print(f"| {a} → {b} | " + " | ".join(cells) + " |")
        flick = {name: flicker(clf, frames[name]) for name, _ in PAIRS}
        single = {name: single_clip_score(clf, frames[name], label) for name, label in PAIRS}
        print("flicker (top-1 changes after 2 s of a steady 60 s loop): "
              + ", ".join(f"{k} {v}" for k, v in flick.items()))
        print("single clip top-1 score: "
              + ", ".join(f"{k} {v:.3f}" for k, v in single.items()))
        print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
