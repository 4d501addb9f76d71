"""``benchmarks/reaction.py``'s bookkeeping: what a run measured (:class:`Outcome`), the
goals' figures on a set of clips (:func:`figures`, :func:`out_of_fold`), the report, and a
run's outcomes written to JSON and read back (``--dump``, ``--from-dump``), so that a report
can be made again without measuring again."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FPS = 5
GOAL_EXCESS_S, WORST_EXCESS_S, GOAL_SHARE = 1.0, 3.0, 0.95
GOAL_SCORE_DROP = 0.02


@dataclass
class Clip:
    name: str
    label: str
    settle_s: float
    frames: list[np.ndarray]
    file: str = ""


def changes(shown: list[int]) -> int:
    """How often the shown top-1 changes."""
    return sum(x != y for x, y in zip(shown, shown[1:]))


def settled_at(shown: list[int], label: int) -> float | None:
    """Seconds until ``label`` is on top and stays to the end; None if it never does."""
    last_wrong = max((i for i, s in enumerate(shown) if s != label), default=-1)
    return None if last_wrong == len(shown) - 1 else (last_wrong + 1) / FPS


#: an Outcome's items of each clip alone (by its name), and all of them
PER_CLIP = ("single", "first_pass", "flicker", "held_60s")
ITEMS = (*PER_CLIP, "pairs", "triples")


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
        for name in ITEMS:
            getattr(self, name).update(getattr(other, name))
        self.step_ms += other.step_ms
        self.change_ms += other.change_ms


@dataclass
class Oracle:
    """B alone from a fresh stream with the plain model: when it settles (30 s and 5 s),
    and whether it holds B for its own last 10 s."""

    settles: dict[str, float | None]
    settles_5s: dict[str, float | None]
    holds: dict[str, bool]


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
    to_b: dict[tuple[str, str], float | None] = {}  # one change to B for each A -> B
    for (a, b, c), (b_at, c_at) in run.triples.items():
        if b in triple_bc and orc.settles_5s[b] is not None:
            to_b[(a, b)] = None if b_at is None else b_at - orc.settles_5s[b]
        if c in triple_bc and orc.holds[c]:
            f.triples.append(None if c_at is None else c_at - (orc.settles[c] or 0.0))
    f.triples += to_b.values()
    return f


def out_of_fold(outcomes: dict[Any, Outcome], chosen: dict[int, Any],
                fold_of: dict[str, int]) -> Outcome:
    """Each fold's items from the setting the other folds chose."""
    out = Outcome()
    for fold, policy in chosen.items():
        run = outcomes[policy]
        mine = {n for n, f in fold_of.items() if f == fold}
        for name in PER_CLIP:
            getattr(out, name).update(
                {k: v for k, v in getattr(run, name).items() if k in mine})
        out.pairs.update({k: v for k, v in run.pairs.items() if k[1] in mine})
    # a three-action run's change to B from B's fold's setting, its change to C from C's
    for key in next(iter(outcomes.values())).triples:
        b_at = outcomes[chosen[fold_of[key[1]]]].triples[key][0]
        c_at = outcomes[chosen[fold_of[key[2]]]].triples[key][1]
        out.triples[key] = (b_at, c_at)
    return out


# --- the report ------------------------------------------------------------------------------

@dataclass
class Run:
    """What a run measured, as it is reported: ``--history auto`` under each setting it ran
    (by name), the defaults' name, the setting each fold chose, the plain model and a 10 s
    window, the oracle, and the defaults' step times (a line)."""

    lengths: tuple[float, ...]
    autos: dict[str, Outcome]
    default: str
    chosen: dict[int, str]
    fold_of: dict[str, int]
    plain: Outcome
    window: Outcome
    orc: Oracle
    steps: str = ""
    seen: str = ""  # " with --roi auto", or nothing


def print_report(run: Run, clips: list[Clip], labels: Any) -> None:
    """The tables and the summary lines."""
    by_name = {c.name: c for c in clips}
    everyone = set(by_name)

    def figs(out: Outcome) -> Figures:
        return figures(out, run.plain, run.window, run.orc, labels, by_name, everyone,
                       everyone, everyone)

    seen = run.seen
    rows = [(f"auto (the defaults, in-sample){seen}", figs(run.autos[run.default]))]
    if run.chosen:
        rows.append((f"auto, out-of-fold{seen}",
                     figs(out_of_fold(run.autos, run.chosen, run.fold_of))))
    rows += [(f"inf (as exported){seen}", figs(run.plain)),
             (f"10 (a 10 s window){seen}", figs(run.window))]
    report(rows, run.lengths)
    per_clip([("auto", run.autos[run.default]), ("inf", run.plain), ("10", run.window)],
             clips, labels)
    print("\n" + run.steps + "\n")
    for name, f in rows:
        print(summary(name, f))


def dump(path: Path, run: Run) -> None:
    """Every item's outcome and how the run was set (not every step's time), so that
    failures can be traced and the report made again (:func:`load`)."""
    def keyed(d: dict) -> dict:
        # (tab-separated: a clip's name may hold a space)
        return {"\t".join(map(str, k)) if isinstance(k, tuple) else k: v for k, v in d.items()}

    def items(o: Outcome) -> dict:
        return {k: keyed(getattr(o, k)) for k in ITEMS}

    path.write_text(json.dumps({
        "lengths": run.lengths, "default": run.default, "chosen": run.chosen,
        "fold_of": run.fold_of, "steps": run.steps, "seen": run.seen, "oracle": vars(run.orc),
        "runs": {name: items(o) for name, o in run.autos.items()}
        | {"inf": items(run.plain), "10": items(run.window)}}, indent=1))


def _key(text: str) -> tuple[str, ...]:
    """A dumped item's key (tab-separated; dumps made before were space-separated)."""
    return tuple(text.split("\t") if "\t" in text else text.split())


def load(path: Path) -> Run:
    """A :func:`dump` read back."""
    data = json.loads(path.read_text())

    def outcome(d: dict) -> Outcome:
        return Outcome(
            single={k: tuple(v) for k, v in d["single"].items()},
            first_pass=dict(d["first_pass"]), flicker=dict(d["flicker"]),
            held_60s=dict(d["held_60s"]),
            pairs={(a, b, float(length)): v
                   for (a, b, length), v in ((_key(k), v) for k, v in d["pairs"].items())},
            triples={_key(k): tuple(v) for k, v in d["triples"].items()})

    runs = data["runs"]
    return Run(tuple(data["lengths"]),
               {k: outcome(v) for k, v in runs.items() if k not in ("inf", "10")},
               data["default"], {int(k): v for k, v in data["chosen"].items()},
               data["fold_of"], outcome(runs["inf"]), outcome(runs["10"]),
               Oracle(**data["oracle"]), data["steps"], data["seen"])


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
