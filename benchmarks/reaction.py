"""Live fidelity, out of fold: reaction to a change of action, flicker, accuracy, step time.

Every clip in ``--videos`` (default ../shared/videos; MANIFEST.tsv gives each clip's label
and settle time), A0 int8, the shown list as the app draws it (top 3, threshold 0.1), on
the stream's own 5 fps clock, headless and as fast as the model runs:

* accuracy: each clip once from a fresh stream; its top-1 and the score of its label,
  against ``--history inf`` (the plain model) on the same frames;
* first-pass steadiness: on that pass, how often the shown top-1 changes; no more than the
  plain model's on the same frames (a clip of many shots must not fork at its own cuts and
  name other actions on its way);
* flicker: each clip looped (2 minutes in the short protocol, 10 in the whole one); changes
  of the shown top-1 after its settle time + 2 s. A clip the plain model holds steady for
  the first 60 s of that must show 0;
  the others no more than the plain model or a 10 s window, whichever is lower;
* reaction: clip A looped for each length, then clip B looped for 30 s; the seconds until
  B's label is shown on top and stays to the end, minus the same for B alone from a fresh
  stream (the *oracle*: a reset exactly at the change). Every ordered pair of clips with
  different labels. Pairs whose B the plain model does not hold for its own last 10 s are
  reported apart. Three-action runs: A (60 s) -> B (5 s) -> C (30 s), both changes count
  (the change to B once for each A -> B, though a run is made for every third C);
* step time: the wall clock of each model step of ``--history auto``, and its worst in the
  2 s after a change (no replay: a change costs no step of its own).

With ``--roi auto`` every stream, the oracle's too, gives the model the part of each frame
its own box holds (``benchmarks/reaction_roi.py``): the clips are kept at most 640 pixels
wide for that (without it, at the model's input size), and a step's time includes the
resize of its box.

The settings of ``--history auto`` that footage could tune (``AutoSettings``) are chosen by
cross-validation: the clips are split into ``--folds`` folds (by their order in the
manifest); for each fold, the grid's setting that does best on the other folds' clips
(accuracy and steadiness first, then the pairs within 1 s, then those over 3 s) is scored
on it. A pair is scored in the fold of its B (the new action), a three-action run in the
folds of its B and C. The out-of-fold figures are printed beside the in-sample ones (the
defaults, on every clip). The grid is chosen on a shorter protocol (A of 10 and 60 s,
2-minute loops); every figure printed is from the whole one.

    python benchmarks/reaction.py                    # the whole protocol, ~2 h on 2 cores
    python benchmarks/reaction.py --quick            # the short protocol, the defaults only
    python benchmarks/reaction.py --quick --roi auto # the same, each stream with its own box
    python benchmarks/reaction.py --quick --one-room # no cuts: changes a camera in one room sees
    python benchmarks/reaction.py --videos DIR --defaults-only   # the defaults on other clips
    python benchmarks/reaction.py --dump run.json    # also every item's outcome, to trace
    python benchmarks/reaction.py --from-dump run.json   # that run's report again, no measuring
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))
from reaction_figures import (  # noqa: E402
    FPS,
    Clip,
    Oracle,
    Outcome,
    Run,
    changes,
    dump,
    figures,
    load,
    print_report,
    settled_at,
    step_times,
)
from reaction_roi import AutoBox, shrunk  # noqa: E402
from reference_loop import sampled_rgb_frames  # noqa: E402

from movinet_pi.display.shown import ShownList  # noqa: E402
from movinet_pi.model.adaptive import AdaptiveHistory, AutoSettings, history_policy  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402

B_SECONDS = 30
Policy = Union[str, AutoSettings]  # "inf", seconds, or the settings of auto

#: the settings cross-validated: the defaults, and each one moved either way
GRID: tuple[AutoSettings, ...] = (
    AutoSettings(),
    AutoSettings(agree=0.05), AutoSettings(agree=0.2),
    AutoSettings(novel=0.2), AutoSettings(novel=0.4),
    AutoSettings(sudden=0.35), AutoSettings(sudden=0.55),
    AutoSettings(same_place_s=1.0), AutoSettings(same_place_s=2.4),
)


@dataclass(frozen=True)
class Protocol:
    lengths: tuple[float, ...]
    flicker_minutes: float
    triples: bool


SHORT = Protocol((10.0, 60.0), 2.0, False)
WHOLE = Protocol((5.0, 10.0, 60.0, 300.0, 1800.0), 10.0, True)


def load_clips(folder: Path, size: tuple[int, int] = (172, 172), roi: bool = False
               ) -> list[Clip]:
    """Each clip of ``folder``'s MANIFEST.tsv at 5 fps, resized as the classifier resizes
    it (INTER_AREA), so that steps only copy; with ``roi``, at most 640 pixels wide (for
    the box to be cut from)."""
    for clip in (clips := manifest(folder)):
        clip.frames = [shrunk(rgb) if roi else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                       for rgb in sampled_rgb_frames(folder / clip.file, FPS)]
    return clips


def manifest_problem(clips: list[Clip], labels: Any, folds: int | None) -> str | None:
    """What is wrong with a folder's clips for this benchmark, before any is decoded: a
    label the model does not have, two clips of one name (clips are known by name, without
    the extension), fewer clips than ``folds`` (an empty fold chooses on every clip)."""
    unknown = [f"{c.file} ({c.label!r})" for c in clips if c.label not in labels.names]
    if unknown:
        return f"labels not in the label file: {', '.join(unknown)}"
    names = [c.name for c in clips]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"two clips named {', '.join(twice)} (whatever their extension): rename one"
    if folds is not None and len(clips) < folds:
        return f"{len(clips)} clips for {folds} folds: give at least --folds clips"
    return None


def manifest(folder: Path) -> list[Clip]:
    """The clips of ``folder``'s MANIFEST.tsv, no frames read yet."""
    with (folder / "MANIFEST.tsv").open() as f:
        return [Clip(row["file"].rsplit(".", 1)[0], row["label"], float(row["settle_s"]), [],
                     row["file"]) for row in csv.DictReader(f, delimiter="\t")]


def describe(policy: Policy) -> str:
    if not isinstance(policy, AutoSettings):
        return f"--history {policy}"
    moved = [f"{k}={v:g}" for k, v in vars(policy).items() if v != getattr(AutoSettings(), k)]
    return "auto" + (f" ({', '.join(moved)})" if moved else "")


# --- one stream, as the app runs it ----------------------------------------------------------

class Stream:
    """A classifier and the shown list (and with ``roi``, its box), with the whole stream
    state saved and restored."""

    def __init__(self, model: Path, labels: Any, policy: Policy, roi: bool = False) -> None:
        history = (AdaptiveHistory(FPS, policy) if isinstance(policy, AutoSettings)
                   else history_policy(float(policy), FPS))
        self.clf = StreamingClassifier.from_file(model, labels, threads=1, history=history)
        self.shown = ShownList(labels, 3, 0.1, logit_step=self.clf.logit_step)
        self.box = AutoBox(self.clf, FPS) if roi else None
        self.step_ms: list[float] = []
        self.probs = np.zeros(len(labels), np.float32)

    def reset(self) -> None:
        self.clf.reset()
        self.shown.reset()
        if self.box:
            self.box.reset()

    def step(self, rgb: np.ndarray) -> np.ndarray:
        if self.box:
            rgb = self.box(rgb)
        started = time.perf_counter()
        self.probs = self.clf.step(rgb)
        self.step_ms.append((time.perf_counter() - started) * 1000.0)
        return self.probs

    def run(self, frames: Iterable[np.ndarray]) -> list[int]:
        out = []
        for rgb in frames:
            top = self.shown.update(self.step(rgb))
            out.append(top[0].index if top else -1)
        return out

    def save(self) -> tuple:
        return (self.clf.snapshot(), list(self.shown._shown),
                self.box.save() if self.box else None)

    def restore(self, saved: tuple) -> None:
        self.clf.restore(saved[0])
        self.shown._shown = list(saved[1])
        if self.box:
            self.box.restore(saved[2])


def looped(clip: Clip, steps: int, start: int = 0) -> Iterator[np.ndarray]:
    return (clip.frames[(start + i) % len(clip.frames)] for i in range(steps))


# --- the measurements, per item ---------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init(model: Path, labels_path: Path, folder: Path, roi: bool) -> None:
    _WORKER["model"], _WORKER["labels"], _WORKER["roi"] = model, load_labels(labels_path), roi
    _WORKER["clips"] = {c.name: c for c in load_clips(folder, roi=roi)}


def _index(clip: Clip) -> int:
    return _WORKER["labels"].names.index(clip.label)


def _measure_a(args: tuple[Policy, Protocol, str]) -> Outcome:
    """Everything that starts with clip ``a``: its pass, its loop, its pairs and triples."""
    policy, protocol, a_name = args
    clips: dict[str, Clip] = _WORKER["clips"]
    a = clips[a_name]
    stream = Stream(_WORKER["model"], _WORKER["labels"], policy, _WORKER["roi"])
    out = Outcome()
    stream.reset()
    shown = stream.run(a.frames)
    out.single[a.name] = (int(stream.probs.argmax()), float(stream.probs[_index(a)]))
    out.first_pass[a.name] = changes(shown)
    stream.reset()
    shown = stream.run(looped(a, int(protocol.flicker_minutes * 60 * FPS)))
    steady = shown[int((a.settle_s + 2) * FPS):]
    out.flicker[a.name] = changes(steady)
    out.held_60s[a.name] = len(set(steady[: 60 * FPS])) <= 1
    stream.reset()
    done, saved = 0, {}
    for length in sorted(protocol.lengths):
        steps = int(length * FPS)
        stream.run(looped(a, steps - done, done))
        done, saved[length] = steps, stream.save()
    stream.step_ms.clear()
    others = [c for c in clips.values() if c.label != a.label]
    for b in others:
        for length in protocol.lengths:
            stream.restore(saved[length])
            mark = len(stream.step_ms)
            out.pairs[(a.name, b.name, length)] = settled_at(
                stream.run(looped(b, B_SECONDS * FPS)), _index(b))
            out.change_ms.extend(stream.step_ms[mark: mark + 2 * FPS])
    if protocol.triples and 60.0 in saved:
        for b in others:
            stream.restore(saved[60.0])
            b_shown = stream.run(looped(b, 5 * FPS))
            after_b = stream.save()
            for c in [c for c in clips.values() if c.label != b.label][::3]:
                stream.restore(after_b)
                c_shown = stream.run(looped(c, B_SECONDS * FPS))
                out.triples[(a.name, b.name, c.name)] = (
                    settled_at(b_shown, _index(b)), settled_at(c_shown, _index(c)))
    out.step_ms = stream.step_ms
    return out


def measure(pool: Any, policy: Policy, protocol: Protocol, names: list[str]) -> Outcome:
    out = Outcome()
    for part in pool.imap_unordered(_measure_a, [(policy, protocol, n) for n in names]):
        out.merge(part)
    return out


def _oracle_of(name: str) -> tuple[float | None, float | None, bool]:
    clip = _WORKER["clips"][name]
    stream = Stream(_WORKER["model"], _WORKER["labels"], "inf", _WORKER["roi"])
    shown = stream.run(looped(clip, B_SECONDS * FPS))
    label = _index(clip)
    return (settled_at(shown, label), settled_at(shown[: 5 * FPS], label),
            all(s == label for s in shown[-10 * FPS:]))


def oracle(pool: Any, names: list[str]) -> Oracle:
    found = dict(zip(names, pool.map(_oracle_of, names)))
    return Oracle({n: v[0] for n, v in found.items()}, {n: v[1] for n, v in found.items()},
                  {n: v[2] for n, v in found.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=SHARED / "videos",
                    help="a folder of clips with a MANIFEST.tsv (file, label, settle_s)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true",
                    help="the short protocol (A 10 and 60 s, 2-minute loops), no grid")
    ap.add_argument("--defaults-only", action="store_true",
                    help="score the defaults, choose nothing (the check on other clips)")
    ap.add_argument("--roi", choices=("auto",), default=None,
                    help="each stream (the oracle's too) reads its own --roi auto box "
                         "(default: the whole picture)")
    ap.add_argument("--one-room", action="store_true",
                    help="no change comes with a cut: --history auto's colour test off, as "
                         "for a camera that sees one room (with --quick or --defaults-only)")
    ap.add_argument("--dump", type=Path, default=None,
                    help="also write every item's outcome to this JSON file (the whole "
                         "protocol's settings: the defaults, those the folds chose, inf, 10)")
    ap.add_argument("--from-dump", type=Path, default=None, metavar="FILE",
                    help="measure nothing: report a run --dump wrote (with this version's "
                         "figures)")
    args = ap.parse_args()
    if args.one_room and not (args.quick or args.defaults_only):
        ap.error("--one-room: no grid is chosen without cuts; add --quick or --defaults-only")
    if args.dump and not args.dump.parent.is_dir():
        ap.error(f"--dump: no folder {args.dump.parent}")
    if not (args.videos / "MANIFEST.tsv").is_file():
        ap.error(f"--videos: no MANIFEST.tsv in {args.videos}")
    labels_path = SHARED / "labels" / "kinetics600_label_map.txt"
    labels = load_labels(labels_path)
    listed = manifest(args.videos)
    problem = manifest_problem(listed, labels,
                               None if args.quick or args.defaults_only else args.folds)
    if problem:
        ap.error(f"--videos: {problem}")
    if args.from_dump:
        if not args.from_dump.is_file():
            ap.error(f"--from-dump: no file {args.from_dump}")
        print_report(load(args.from_dump), listed, labels)
        return
    roi = args.roi == "auto"
    seen = " with --roi auto" if roi else ""
    model = SHARED / "models" / "movinet_a0_stream_int8.tflite"
    clips = load_clips(args.videos)
    by_name = {c.name: c for c in clips}
    names = [c.name for c in clips]
    protocol = SHORT if args.quick else WHOLE
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.workers, _init, (model, labels_path, args.videos, roi)) as pool:
        orc = oracle(pool, names)
        print(f"{len(clips)} clips; A0 int8; {args.folds} folds; "
              + ("--roi auto (each stream's own box)" if roi else "the whole picture")
              + ("; one room: auto's colour test off, no change is a cut" if args.one_room else "")
              + f"; oracle (B alone, afresh, --history inf{seen}) settles: "
              + ", ".join(f"{n} {'never' if v is None else f'{v:.1f} s'}"
                          for n, v in orc.settles.items()), flush=True)

        def run(policy: Policy, protocol: Protocol) -> Outcome:
            t0 = time.perf_counter()
            out = measure(pool, policy, protocol, names)
            print(f"  {describe(policy)}: {time.perf_counter() - t0:.0f} s", flush=True)
            return out

        # One room: no picture jumps to another place, so every change is the features'.
        default = AutoSettings(sudden=math.inf) if args.one_room else AutoSettings()
        chosen: dict[int, Policy] = {}
        fold_of = {n: i % args.folds for i, n in enumerate(names)}
        if not (args.quick or args.defaults_only):
            print("choosing on the short protocol:", flush=True)
            short = {p: run(p, SHORT) for p in GRID}
            short_refs = {p: run(p, SHORT) for p in ("inf", "10")}
            everyone = set(names)
            for fold in range(args.folds):
                train = {n for n in names if fold_of[n] != fold}
                chosen[fold] = min(GRID, key=lambda p: figures(
                    short[p], short_refs["inf"], short_refs["10"], orc, labels, by_name,
                    train, train, train).objective())
                print(f"  fold {fold + 1}: {describe(chosen[fold])}", flush=True)
            best = min(GRID, key=lambda p: figures(
                short[p], short_refs["inf"], short_refs["10"], orc, labels, by_name,
                everyone, everyone, everyone).objective())
            print(f"  on every clip: {describe(best)}")
        print("the whole protocol:" if protocol is WHOLE else "the short protocol:", flush=True)
        whole = {p: run(p, protocol) for p in {default, *chosen.values()}}
        plain, window = run("inf", protocol), run("10", protocol)
    result = Run(protocol.lengths, {describe(p): o for p, o in whole.items()}, describe(default),
                 {fold: describe(p) for fold, p in chosen.items()}, fold_of, plain, window, orc,
                 step_times(whole[default]), seen)
    print_report(result, clips, labels)
    if args.dump:
        dump(args.dump, result)
    print(f"[{time.perf_counter() - started:.0f} s]")


if __name__ == "__main__":
    main()
