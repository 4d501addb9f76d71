"""Live fidelity: reaction to a change of action, flicker on a steady one, accuracy.

Every clip in ../shared/videos (MANIFEST.tsv gives its label), A0 int8, the
shown list as the app draws it (top-3, threshold 0.1), on the stream's own
5 fps clock, headless and as fast as the model runs:

* reaction: clip A looped for 10 / 60 / 300 / 1800 s, then clip B looped for
  30 s; seconds after the change until the shown top-1 is B's label and stays
  so to the end. Reported as *excess* over an oracle: the same on B alone from
  a fresh stream with ``--history inf`` (a reset exactly at the change).
  All 90 ordered pairs at every length (A's run is computed once per clip and
  its state restored for each B).
* flicker: each clip looped for 10 minutes; shown top-1 changes after its
  settle time (MANIFEST) + 2 s.
* accuracy: each clip once from a fresh stream; top-1 and its score against
  ``--history inf`` on the same frames.

    python benchmarks/reaction.py                       # auto, inf, 2 and 10 s
    python benchmarks/reaction.py --history auto --lengths 10 60 --flicker-minutes 1
    python benchmarks/reaction.py --videos DIR          # other clips, with a MANIFEST.tsv

The cost of a policy per step is printed by ``movinet-pi bench`` (its "memory" row).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_loop import sampled_rgb_frames

from movinet_pi.display.shown import ShownList
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.history import history_policy
from movinet_pi.model.labels import Labels, load_labels

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FPS = 5
B_SECONDS = 30
GOAL_EXCESS_S = 1.0
GOAL_SCORE_DROP = 0.02


@dataclass
class Clip:
    name: str
    label: str
    settle_s: float
    frames: list[np.ndarray]


def load_clips(size: tuple[int, int], folder: Path = SHARED / "videos") -> list[Clip]:
    """Each clip of ``folder``'s MANIFEST.tsv (columns file, label, settle_s) at 5 fps (as
    the app samples it), resized as the classifier resizes it (INTER_AREA), so that steps
    only copy."""
    rows = csv.DictReader((folder / "MANIFEST.tsv").open(), delimiter="\t")
    return [
        Clip(row["file"].rsplit(".", 1)[0], row["label"], float(row["settle_s"]),
             [cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
              for rgb in sampled_rgb_frames(folder / row["file"], FPS)])
        for row in rows
    ]


class Stream:
    """A classifier and the shown list, with the whole stream state saved and restored."""

    def __init__(self, model: Path, labels: Labels, history: str) -> None:
        spec = history if history == "auto" else float(history)
        self.clf = StreamingClassifier.from_file(model, labels, threads=1,
                                                 history=history_policy(spec, FPS))
        self.shown = ShownList(labels, 3, 0.1)

    def reset(self) -> None:
        self.clf.reset()
        self.shown.reset()

    def run(self, frames: Iterable[np.ndarray]) -> list[str]:
        out = []
        for rgb in frames:
            top = self.shown.update(self.clf.step(rgb))
            out.append(top[0].label if top else "none")
        return out

    def save(self) -> tuple:
        return self.clf.snapshot(), list(self.shown._shown)

    def restore(self, saved: tuple) -> None:
        snapshot, shown = saved
        self.clf.restore(snapshot)
        self.shown._shown = list(shown)


def looped(clip: Clip, steps: int, start: int = 0) -> Iterable[np.ndarray]:
    return (clip.frames[(start + i) % len(clip.frames)] for i in range(steps))


def settled_at(shown: list[str], label: str) -> float | None:
    """Seconds until ``label`` is on top and stays to the end; None if it never does."""
    last_wrong = max((i for i, s in enumerate(shown) if s != label), default=-1)
    return None if last_wrong == len(shown) - 1 else (last_wrong + 1) / FPS


@dataclass
class Result:
    history: str
    excess: dict[tuple[str, str, float], float | None] = field(default_factory=dict)
    flicker: dict[str, int] = field(default_factory=dict)
    accuracy: dict[str, tuple[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def oracle(stream: Stream, clips: list[Clip]) -> dict[str, float | None]:
    out = {}
    for b in clips:
        stream.reset()
        out[b.name] = settled_at(stream.run(looped(b, B_SECONDS * FPS)), b.label)
    return out


def measure(stream: Stream, clips: list[Clip], lengths: list[float], flicker_min: float,
            oracles: dict[str, float | None], history: str) -> Result:
    result, started = Result(history), time.perf_counter()
    for a in clips:
        stream.reset()
        done, saved = 0, {}
        for length in sorted(lengths):
            steps = int(length * FPS)
            stream.run(looped(a, steps - done, done))
            done, saved[length] = steps, stream.save()
        for b in clips:
            if b is a:
                continue
            for length in lengths:
                stream.restore(saved[length])
                reaction = settled_at(stream.run(looped(b, B_SECONDS * FPS)), b.label)
                base = oracles[b.name]
                result.excess[(a.name, b.name, length)] = (
                    None if reaction is None else reaction - (base or 0.0))
    for c in clips:
        stream.reset()
        shown = stream.run(looped(c, int(flicker_min * 60 * FPS)))
        steady = shown[int((c.settle_s + 2) * FPS):]
        result.flicker[c.name] = sum(x != y for x, y in zip(steady, steady[1:]))
    for c in clips:
        stream.reset()
        probs = None
        for rgb in c.frames:
            probs = stream.clf.step(rgb)
        assert probs is not None
        best = int(probs.argmax())
        result.accuracy[c.name] = (stream.clf.labels[best],
                                   float(probs[stream.clf.labels.names.index(c.label)]))
    result.seconds = time.perf_counter() - started
    return result


def fmt_excess(values: list[float | None]) -> str:
    never = sum(v is None for v in values)
    finite = [v for v in values if v is not None]
    over = sum(v > GOAL_EXCESS_S for v in finite)
    worst = "never" if never else f"{max(finite):.1f} s"
    median = f"{statistics.median(finite):.1f} s" if finite else "-"
    return f"{median} / {worst} / {over + never}"


def report(results: list[Result], clips: list[Clip], lengths: list[float]) -> None:
    print("\nReaction, excess over a reset at the change (median / worst / pairs over "
          f"{GOAL_EXCESS_S:g} s of {len(clips) * (len(clips) - 1)}):\n")
    print("| --history | " + " | ".join(f"A ran {x:g} s" for x in lengths) + " |")
    print("|---|" + "---|" * len(lengths))
    for r in results:
        cells = [fmt_excess([v for (_, _, n), v in r.excess.items() if n == x])
                 for x in lengths]
        print(f"| {r.history} | " + " | ".join(cells) + " |")
    print("\nFlicker (shown top-1 changes after settle + 2 s) and accuracy (one pass, "
          "top-1 score; '!' = another top-1):\n")
    print("| clip | " + " | ".join(f"flicker {r.history}" for r in results) + " | "
          + " | ".join(f"score {r.history}" for r in results) + " |")
    print("|---|" + "---|" * (2 * len(results)))
    for c in clips:
        flick = [str(r.flicker[c.name]) for r in results]
        score = [f"{r.accuracy[c.name][1]:.3f}" + ("" if r.accuracy[c.name][0] == c.label
                                                    else f" !{r.accuracy[c.name][0]}")
                 for r in results]
        print(f"| {c.name} | " + " | ".join(flick) + " | " + " | ".join(score) + " |")
    plain = next((r for r in results if r.history == "inf"), None)
    print()
    for r in results:
        values = list(r.excess.values())
        finite = [v for v in values if v is not None]
        within = sum(v is not None and v <= GOAL_EXCESS_S for v in values)
        worst = "never" if len(finite) < len(values) else f"{max(finite):.1f} s"
        line = (f"summary --history {r.history}: reaction excess <= {GOAL_EXCESS_S:g} s on "
                f"{within}/{len(values)} runs (goal: all), worst {worst}; flicker "
                f"{sum(r.flicker.values())} on {sum(v > 0 for v in r.flicker.values())} clips "
                "(goal: 0)")
        if plain is not None:
            kept = sum(r.accuracy[c.name][0] == plain.accuracy[c.name][0] for c in clips)
            drop = max(plain.accuracy[c.name][1] - r.accuracy[c.name][1] for c in clips)
            line += (f"; top-1 of --history inf kept on {kept}/{len(clips)} clips, score at "
                     f"most {drop:.3f} below it (goal: all, <= {GOAL_SCORE_DROP:g})")
        print(line + f"  [{r.seconds:.0f} s]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", nargs="+", default=["auto", "inf", "2", "10"],
                    help="policies to compare: auto, inf, or seconds (default: auto inf 2 10)")
    ap.add_argument("--lengths", nargs="+", type=float, default=[10, 60, 300, 1800],
                    help="seconds clip A runs before the change (default: 10 60 300 1800)")
    ap.add_argument("--flicker-minutes", type=float, default=10.0)
    ap.add_argument("--videos", type=Path, default=SHARED / "videos",
                    help="a folder of clips with a MANIFEST.tsv (file, label, settle_s), "
                         "as ../shared/videos has (default)")
    args = ap.parse_args()
    model = SHARED / "models" / "movinet_a0_stream_int8.tflite"
    labels = load_labels(SHARED / "labels" / "kinetics600_label_map.txt")
    clips = load_clips((172, 172), args.videos)
    print(f"{len(clips)} clips; A0 int8; lengths {args.lengths}; "
          f"flicker loops {args.flicker_minutes:g} min")
    oracles = oracle(Stream(model, labels, "inf"), clips)
    print("oracle (B alone, fresh, --history inf): "
          + ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}"
                      for k, v in oracles.items()))
    if any(v is None or math.isnan(v) for v in oracles.values()):
        print("(a clip the plain model never settles on counts from 0 s)")
    results = []
    for history in args.history:
        r = measure(Stream(model, labels, history), clips, args.lengths,
                    args.flicker_minutes, oracles, history)
        print(f"--history {history}: done in {r.seconds:.0f} s", flush=True)
        results.append(r)
    report(results, clips, args.lengths)


if __name__ == "__main__":
    main()
