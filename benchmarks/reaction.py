"""Live fidelity, out of fold: reaction to a change of action, flicker, accuracy, step time.

Every clip in ``--videos`` (default ../shared/videos; MANIFEST.tsv gives each clip's label
and settle time), A0 int8, the shown list as the app draws it (top 3, threshold 0.1), on
the stream's own 5 fps clock, headless and as fast as the model runs:

* accuracy: each clip once from a fresh stream; its top-1 and the score of its label,
  against ``--history inf`` (the plain model) on the same frames;
* first-pass steadiness: on that pass, how often the shown top-1 changes; no more than the
  plain model's on the same frames (a clip of many shots must not fork at its own cuts and
  name other actions on its way);
* flicker: each clip looped ``--flicker-minutes``; changes of the shown top-1 after its
  settle time + 2 s. A clip the plain model holds steady for its first 60 s must show 0;
  the others no more than the plain model or a 10 s window, whichever is lower;
* reaction: clip A looped for each length, then clip B looped for 30 s; the seconds until
  B's label is shown on top and stays to the end, minus the same for B alone from a fresh
  stream (the *oracle*: a reset exactly at the change). Every ordered pair of clips with
  different labels. Pairs whose B the plain model does not hold for its own last 10 s are
  reported apart. Three-action runs: A (60 s) -> B (5 s) -> C (30 s), both changes count;
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
    python benchmarks/reaction.py --videos DIR --defaults-only   # the defaults on other clips
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Union

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))
from reaction_roi import AutoBox, shrunk  # noqa: E402
from reference_loop import sampled_rgb_frames  # noqa: E402

from movinet_pi.display.shown import ShownList  # noqa: E402
from movinet_pi.model.adaptive import AdaptiveHistory, AutoSettings, history_policy  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402

FPS = 5
B_SECONDS = 30
GOAL_EXCESS_S, WORST_EXCESS_S, GOAL_SHARE = 1.0, 3.0, 0.95
GOAL_SCORE_DROP = 0.02
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


@dataclass
class Clip:
    name: str
    label: str
    settle_s: float
    frames: list[np.ndarray]


def load_clips(folder: Path, size: tuple[int, int] = (172, 172), roi: bool = False
               ) -> list[Clip]:
    """Each clip of ``folder``'s MANIFEST.tsv at 5 fps, resized as the classifier resizes
    it (INTER_AREA), so that steps only copy; with ``roi``, at most 640 pixels wide (for
    the box to be cut from)."""
    rows = csv.DictReader((folder / "MANIFEST.tsv").open(), delimiter="\t")
    return [Clip(row["file"].rsplit(".", 1)[0], row["label"], float(row["settle_s"]),
                 [shrunk(rgb) if roi else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                  for rgb in sampled_rgb_frames(folder / row["file"], FPS)])
            for row in rows]


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


def changes(shown: list[int]) -> int:
    """How often the shown top-1 changes."""
    return sum(x != y for x, y in zip(shown, shown[1:]))


def settled_at(shown: list[int], label: int) -> float | None:
    """Seconds until ``label`` is on top and stays to the end; None if it never does."""
    last_wrong = max((i for i, s in enumerate(shown) if s != label), default=-1)
    return None if last_wrong == len(shown) - 1 else (last_wrong + 1) / FPS


# --- the measurements, per item ---------------------------------------------------------------

@dataclass
class Outcome:
    """What one policy did on every item of a protocol."""

    single: dict[str, tuple[int, float]] = field(default_factory=dict)
    first_pass: dict[str, int] = field(default_factory=dict)  # shown top-1 changes
    flicker: dict[str, int] = field(default_factory=dict)
    held_60s: dict[str, bool] = field(default_factory=dict)
    pairs: dict[tuple[str, str, float], float | None] = field(default_factory=dict)
    triples: dict[tuple[str, str, str], tuple[float | None, float | None]] = field(
        default_factory=dict)
    step_ms: list[float] = field(default_factory=list)
    change_ms: list[float] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        for name in ("single", "first_pass", "flicker", "held_60s", "pairs", "triples"):
            getattr(self, name).update(getattr(other, name))
        self.step_ms += other.step_ms
        self.change_ms += other.change_ms


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


@dataclass
class Oracle:
    """B alone from a fresh stream with the plain model: when it settles (30 s and 5 s),
    and whether it holds B for its own last 10 s."""

    settles: dict[str, float | None]
    settles_5s: dict[str, float | None]
    holds: dict[str, bool]


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


# --- the goals' figures, for a set of clips ------------------------------------------------

@dataclass
class Figures:
    kept: int = 0  # clips keeping the plain model's top-1 within the score drop
    clips: int = 0
    worst_drop: float = 0.0
    made_wrong: int = 0  # clips the plain model gets right and this does not
    unsteady: list[str] = field(default_factory=list)  # held by the plain model, flicker > 0
    restless: list[str] = field(default_factory=list)  # a first pass changing more than plain
    over_limit: list[str] = field(default_factory=list)  # others, over min(plain, 10 s)
    reaction: dict[float, list[float | None]] = field(default_factory=dict)  # excess, by A
    apart: dict[float, list[float | None]] = field(default_factory=dict)
    triples: list[float | None] = field(default_factory=list)

    def pairs(self) -> list[float | None]:
        return [x for v in self.reaction.values() for x in v]

    def within(self, values: list[float | None]) -> int:
        return sum(v is not None and v <= GOAL_EXCESS_S for v in values)

    def over(self, values: list[float | None]) -> int:
        return sum(v is None or v > WORST_EXCESS_S for v in values)

    def objective(self) -> tuple:
        """Accuracy and steadiness first, then reaction (smaller is better)."""
        pairs = self.pairs() + self.triples
        share = self.within(pairs) / max(1, len(pairs))
        return (self.clips - self.kept + self.made_wrong + len(self.unsteady)
                + len(self.over_limit) + len(self.restless), -share, self.over(pairs))


def figures(run: Outcome, plain: Outcome, window: Outcome, orc: Oracle, labels: Any,
            clips: dict[str, Clip], single: set[str], pair_b: set[str],
            triple_bc: set[str]) -> Figures:
    """The figures of ``run`` on the items of these clips: passes and loops of ``single``,
    pairs whose B is in ``pair_b``, three-action runs whose B or C is in ``triple_bc``."""
    f = Figures()
    for name in sorted(single & run.single.keys()):
        top, score = run.single[name]
        plain_top, plain_score = plain.single[name]
        right = labels.names.index(clips[name].label)
        f.clips += 1
        drop = plain_score - score
        f.worst_drop = max(f.worst_drop, drop)
        f.kept += top == plain_top and drop <= GOAL_SCORE_DROP
        f.made_wrong += plain_top == right and top != right
        if run.first_pass[name] > plain.first_pass[name]:
            f.restless.append(name)
        if plain.held_60s.get(name):
            if run.flicker[name]:
                f.unsteady.append(name)
        elif run.flicker[name] > min(plain.flicker[name], window.flicker[name]):
            f.over_limit.append(name)
    for (_a, b, length), settled in run.pairs.items():
        if b not in pair_b:
            continue
        base = orc.settles[b]
        excess = None if settled is None else settled - (base or 0.0)
        (f.reaction if orc.holds[b] else f.apart).setdefault(length, []).append(excess)
    for (_a, b, c), (b_at, c_at) in run.triples.items():
        if b in triple_bc and orc.settles_5s[b] is not None:
            f.triples.append(None if b_at is None else b_at - orc.settles_5s[b])
        if c in triple_bc and orc.holds[c]:
            f.triples.append(None if c_at is None else c_at - (orc.settles[c] or 0.0))
    return f


def out_of_fold(outcomes: dict[Policy, Outcome], chosen: dict[int, Policy],
                fold_of: dict[str, int]) -> Outcome:
    """Each fold's items from the setting the other folds chose."""
    out = Outcome()
    for fold, policy in chosen.items():
        run = outcomes[policy]
        mine = {n for n, f in fold_of.items() if f == fold}
        out.single.update({k: v for k, v in run.single.items() if k in mine})
        out.first_pass.update({k: v for k, v in run.first_pass.items() if k in mine})
        out.flicker.update({k: v for k, v in run.flicker.items() if k in mine})
        out.held_60s.update({k: v for k, v in run.held_60s.items() if k in mine})
        out.pairs.update({k: v for k, v in run.pairs.items() if k[1] in mine})
    # a three-action run's change to B from B's fold's setting, its change to C from C's
    for key in next(iter(outcomes.values())).triples:
        b_at = outcomes[chosen[fold_of[key[1]]]].triples[key][0]
        c_at = outcomes[chosen[fold_of[key[2]]]].triples[key][1]
        out.triples[key] = (b_at, c_at)
    return out


# --- the report ------------------------------------------------------------------------------

def dump(path: Path, runs: dict[str, Outcome], orc: Oracle) -> None:
    """Every item's outcome, for tracing the failures after a long run."""
    def keyed(d: dict) -> dict:
        return {" ".join(map(str, k)) if isinstance(k, tuple) else k: v for k, v in d.items()}
    path.write_text(json.dumps({
        "oracle": vars(orc),
        "runs": {name: {k: keyed(getattr(o, k)) for k in
                        ("single", "first_pass", "flicker", "held_60s", "pairs", "triples")}
                 for name, o in runs.items()}}, indent=1))


def cell(values: list[float | None]) -> str:
    if not values:
        return "-"
    finite = [v for v in values if v is not None]
    never = len(values) - len(finite)
    within = sum(v <= GOAL_EXCESS_S for v in finite)
    over = sum(v > WORST_EXCESS_S for v in finite) + never
    median = f"{statistics.median(finite):.1f}" if finite else "-"
    worst = "never" if never else f"{max(finite):.1f}"
    return f"{within}/{len(values)} ({100 * within / len(values):.0f} %), >3 s: {over}, " \
           f"median {median}, worst {worst}"


def report(rows: list[tuple[str, Figures]], lengths: tuple[float, ...]) -> None:
    print("\nReaction: excess over a reset at the change; pairs within 1 s (share), over "
          "3 s or never, median and worst seconds.\n")
    print("| --history | " + " | ".join(f"A ran {x:g} s" for x in lengths)
          + " | A 60 s -> B 5 s -> C 30 s |")
    print("|---|" + "---|" * (len(lengths) + 1))
    for name, f in rows:
        print(f"| {name} | " + " | ".join(cell(f.reaction.get(x, [])) for x in lengths)
              + f" | {cell(f.triples)} |")
    print("\nAccuracy (one pass) and flicker (loops):\n")
    print("| --history | top-1 kept, score within 0.02 | made wrong | worst drop "
          "| first passes changing more than inf | held clips that flicker "
          "| others over the limit |")
    print("|---|---|---|---|---|---|---|")
    for name, f in rows:
        print(f"| {name} | {f.kept}/{f.clips} | {f.made_wrong} | {f.worst_drop:+.3f} | "
              f"{', '.join(f.restless) or 'none'} | "
              f"{', '.join(f.unsteady) or 'none'} | {', '.join(f.over_limit) or 'none'} |")
    apart = rows[0][1].apart
    if apart:
        print("\nReported apart (B not held by the plain model for its own last 10 s): "
              + "; ".join(f"A {x:g} s: {cell(v)}" for x, v in sorted(apart.items())))


def per_clip(runs: list[tuple[str, Outcome]], clips: list[Clip], labels: Any) -> None:
    print("\nPer clip: flicker in the loops, and one pass's top-1 score ('!' another top-1):\n")
    print("| clip | " + " | ".join(f"flicker {n}" for n, _ in runs) + " | "
          + " | ".join(f"score {n}" for n, _ in runs) + " |")
    print("|---|" + "---|" * (2 * len(runs)))
    for c in clips:
        right = labels.names.index(c.label)
        flick = [str(r.flicker[c.name]) for _, r in runs]
        score = [f"{r.single[c.name][1]:.3f}"
                 + ("" if r.single[c.name][0] == right else f" !{labels[r.single[c.name][0]]}")
                 for _, r in runs]
        print(f"| {c.name} | " + " | ".join(flick) + " | " + " | ".join(score) + " |")


def step_times(run: Outcome) -> str:
    if not run.step_ms:
        return ""
    median = statistics.median(run.step_ms)
    at_change = max(run.change_ms) if run.change_ms else float("nan")
    return (f"step wall clock: median {median:.2f} ms, worst {max(run.step_ms):.2f} ms; "
            f"worst in the 2 s after a change {at_change:.2f} ms")


def summary(name: str, f: Figures) -> str:
    pairs = f.pairs()
    return (f"summary {name}: reaction within {GOAL_EXCESS_S:g} s on {f.within(pairs)}/"
            f"{len(pairs)} pairs ({100 * f.within(pairs) / max(1, len(pairs)):.1f} %, goal "
            f">= {100 * GOAL_SHARE:.0f} %), over {WORST_EXCESS_S:g} s or never {f.over(pairs)} "
            f"(goal 0); three-action changes within {GOAL_EXCESS_S:g} s "
            f"{f.within(f.triples)}/{len(f.triples)}, over {WORST_EXCESS_S:g} s "
            f"{f.over(f.triples)}; one pass kept {f.kept}/{f.clips} (worst drop "
            f"{f.worst_drop:+.3f}, made wrong {f.made_wrong}); first passes changing more "
            f"than inf {len(f.restless)}; held clips that flicker "
            f"{len(f.unsteady)}, others over the limit {len(f.over_limit)}")


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
    ap.add_argument("--dump", type=Path, default=None,
                    help="also write every item's outcome to this JSON file (the whole "
                         "protocol's settings: the defaults, those the folds chose, inf, 10)")
    args = ap.parse_args()
    if args.dump and not args.dump.parent.is_dir():
        ap.error(f"--dump: no folder {args.dump.parent}")
    roi = args.roi == "auto"
    seen = " with --roi auto" if roi else ""
    model = SHARED / "models" / "movinet_a0_stream_int8.tflite"
    labels_path = SHARED / "labels" / "kinetics600_label_map.txt"
    labels = load_labels(labels_path)
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
              + f"; oracle (B alone, afresh, --history inf{seen}) settles: "
              + ", ".join(f"{n} {'never' if v is None else f'{v:.1f} s'}"
                          for n, v in orc.settles.items()), flush=True)

        def run(policy: Policy, protocol: Protocol) -> Outcome:
            t0 = time.perf_counter()
            out = measure(pool, policy, protocol, names)
            print(f"  {describe(policy)}: {time.perf_counter() - t0:.0f} s", flush=True)
            return out

        default = AutoSettings()
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
    everyone = set(names)

    def figs(out: Outcome) -> Figures:
        return figures(out, plain, window, orc, labels, by_name, everyone, everyone, everyone)

    rows = [(f"auto (the defaults, in-sample){seen}", figs(whole[default]))]
    if chosen:
        rows.append((f"auto, out-of-fold{seen}", figs(out_of_fold(whole, chosen, fold_of))))
    rows += [(f"inf (as exported){seen}", figs(plain)), (f"10 (a 10 s window){seen}", figs(window))]
    report(rows, protocol.lengths)
    per_clip([("auto", whole[default]), ("inf", plain), ("10", window)], clips, labels)
    print("\n" + step_times(whole[default]))
    print()
    for name, f in rows:
        print(summary(name, f))
    if args.dump:
        dump(args.dump, {describe(p): o for p, o in whole.items()}
             | {"inf": plain, "10": window}, orc)
    print(f"[{time.perf_counter() - started:.0f} s]")


if __name__ == "__main__":
    main()
