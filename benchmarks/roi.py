"""``--roi auto`` on every shared clip, full size and as a small actor in a room.

Footage: every clip in ``--videos`` (default ``../shared/videos``) as it is ("full"), and
pasted, shrunk to 1/2 and to 1/3 of the picture's height, into a still frame of a real room
(640x480: the first frames of two indoor shared clips, with a little sensor noise that
changes each frame), at two places each: four small versions of every clip, the same clip
shown more than once. The model is A0 int8 with the plain memory (``--history inf``;
``--history auto`` for the default memory), streamed once over each version from a fresh
state at 5 fps, and afresh wherever the box moves to a new view (``AutoRoi.new_view``, as
the app does); what counts is its top-1 after the last step, as ``movinet-pi eval`` scores
a clip.

Goals (issue 27), for ``--roi auto``:

* small actors recover: the top-1 of the full-size clip on >= 90 % of the small versions,
  and its score >= 0.8 x the full-size score on the median version;
* full frames lose nothing: every full-size clip keeps its top-1, its score at least the
  whole picture's - 0.02;
* the box is steady: at most one move a second on every version (a move: a step where a
  side of the box moves by more than 5 % of the box's size).

Every constant of :class:`AutoRoiSettings` the footage could tune (shape, margin, the
seconds, whether a new view starts the model afresh) is chosen by cross-validation: the
clips are split into ``--folds`` folds; for each fold the settings that do best on the
other folds are scored on it. The out-of-fold figures (each clip scored by settings chosen
without it) are printed beside the in-sample ones (settings chosen on every clip); the
settings chosen on every clip are the defaults.

    python benchmarks/roi.py [--videos DIR] [--model PATH] [--folds 4] [--threads 2]
    python benchmarks/roi.py --videos other/ --defaults-only   # the defaults on other clips
    python benchmarks/roi.py --defaults-only --history auto    # with the default memory
    python benchmarks/roi.py --clips paragliding squat         # a few clips, while developing

(``--defaults-only`` scores the current defaults and chooses nothing: the check on clips the
defaults were not chosen on. The rooms come from ``../shared/videos`` unless ``--rooms`` names
another folder holding the same two clips: ``benchmarks/camera_like.py``'s folders do, so a
dim clip can be pasted into a room filmed as dimly.)
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

from movinet_pi.model.adaptive import history_policy  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402
from movinet_pi.sources.opencv import FileSource  # noqa: E402
from movinet_pi.sources.roi import WHOLE, Box, crop, is_whole  # noqa: E402
from movinet_pi.sources.roi_auto import AutoRoi, AutoRoiSettings  # noqa: E402
from movinet_pi.timing import FrameSampler  # noqa: E402
from movinet_pi.tools.clip_folders import is_clip  # noqa: E402

HISTORY = "inf"  # the plain model: the baseline memory for these figures (--history)
ROOM = (640, 480)
BACKGROUNDS = ("opening_door.mp4", "hitting_baseball.mp4")  # indoor rooms, first frames
NOISE_SIGMA = 2.0  # grey levels: a camera's sensor noise, new each frame
NOISE_FRAMES = 16
SCALES = ((2, "1/2"), (3, "1/3"))
#: Where a small version goes: (x, y) of its top left corner as fractions of the room's
#: free space (0: left/top, 1: right/bottom), two per scale, cycled over the clips.
PLACES = ((0.1, 0.9), (0.9, 0.2), (0.5, 0.5), (0.0, 0.1), (1.0, 1.0), (0.3, 0.0))
MOVE = 0.05  # a box side moving by more than this of the box's size is a move
GOAL_RECOVERED, GOAL_RATIO, GOAL_FULL_DROP, GOAL_MOVES = 0.9, 0.8, 0.02, 1.0

#: The settings cross-validation chooses among (every combination).
GRID = {
    "shape": ("region", "square", "picture"),
    "margin": (0.0, 0.1),
    "hold_s": (2.0, 4.0),
    "shrink_after_s": (0.4, 1.0),
    "whole_above": (0.5, 0.8),
    "grow_headroom": (0.0, 0.25),
    "new_view_below": (0.0, 0.5),
}
#: The first step a live box can be found at (motion needs two frames, and the box waits
#: for it to last; 3 is where most of the defaults' boxes come): for the late fixed box.
LATE_STEP = 3


@dataclass
class Clip:
    name: str
    frames: list[tuple[float, np.ndarray]]  # (t, RGB) at the model's 5 fps
    index: int = 0  # its place among every clip of --videos (where its versions go)
    small: dict[int, list[np.ndarray]] = field(default_factory=dict)  # shrunk, per scale

    @property
    def seconds(self) -> float:
        return self.frames[-1][0] + 1.0 / MODEL_FPS


@dataclass
class Version:
    """A clip as the model gets it: full size, or pasted small into a room."""

    key: int
    clip: Clip
    kind: str  # "full", "1/2" or "1/3"
    frame_at: Callable[[int], np.ndarray]
    place: Optional[tuple[int, int, int, int]] = None  # the pasted clip, x0 y0 x1 y1

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        for i, (t, _) in enumerate(self.clip.frames):
            yield t, self.frame_at(i)


def load_clip(path: Path, index: int = 0) -> Clip:
    sampler = FrameSampler(MODEL_FPS)
    frames = []
    with FileSource(path) as source:
        while (frame := source.read()) is not None:
            if sampler.is_due(frame.timestamp):
                frames.append((frame.timestamp, frame.rgb))
    return Clip(path.stem, frames, index)


def rooms(videos: Path = SHARED / "videos") -> list[list[np.ndarray]]:
    """Each background room at 640x480, as :data:`NOISE_FRAMES` noisy copies."""
    rng = np.random.default_rng(27)
    out = []
    for name in BACKGROUNDS:
        with FileSource(videos / name) as source:
            first = source.read()
        assert first is not None
        room = cv2.resize(first.rgb, ROOM, interpolation=cv2.INTER_AREA).astype(np.float32)
        out.append([np.clip(room + rng.normal(0, NOISE_SIGMA, room.shape), 0, 255)
                    .astype(np.uint8) for _ in range(NOISE_FRAMES)])
    return out


def versions(clips: Sequence[Clip], backgrounds: list[list[np.ndarray]]) -> list[Version]:
    out: list[Version] = []
    for clip in clips:
        n = clip.index
        out.append(Version(len(out), clip, "full", lambda i, c=clip: c.frames[i][1]))
        for s, (divisor, kind) in enumerate(SCALES):
            height = ROOM[1] // divisor
            h0, w0 = clip.frames[0][1].shape[:2]
            width = min(ROOM[0], round(w0 * height / h0))
            clip.small[divisor] = [cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
                                   for _, rgb in clip.frames]
            for copy in range(2):
                fx, fy = PLACES[(2 * (n + s) + copy) % len(PLACES)]
                x0 = round(fx * (ROOM[0] - width))
                y0 = round(fy * (ROOM[1] - height))
                room = backgrounds[(n + s + copy) % len(backgrounds)]
                place = (x0, y0, x0 + width, y0 + height)
                out.append(Version(len(out), clip, kind, _paster(clip.small[divisor], room, place),
                                   place))
    return out


def _paster(small: list[np.ndarray], room: list[np.ndarray],
            place: tuple[int, int, int, int]) -> Callable[[int], np.ndarray]:
    x0, y0, x1, y1 = place

    def frame_at(i: int) -> np.ndarray:
        picture = room[i % len(room)].copy()
        picture[y0:y1, x0:x1] = small[i]
        return picture

    return frame_at


# -- running the model -------------------------------------------------------------------------


class Scorer:
    """Streams versions through the model with given boxes; remembers each result."""

    def __init__(self, model: Path, labels: Path, threads: int, history: str = HISTORY) -> None:
        spec = history if history == "auto" else float(history)
        self.clf = StreamingClassifier.from_file(model, load_labels(labels), threads=threads,
                                                 history=history_policy(spec, MODEL_FPS))
        self._done: dict[tuple, np.ndarray] = {}
        self.steps = 0
        self.seconds = 0.0

    def probs(self, version: Version, boxes: Sequence[Optional[Box]],
              fresh: frozenset[int] = frozenset()) -> np.ndarray:
        """Its probabilities after the last step, with ``boxes[i]`` read at step ``i`` and
        the model started afresh at the steps in ``fresh``."""
        key = (version.key, tuple(None if is_whole(b) else tuple(round(v, 6) for v in b)
                                  for b in boxes), fresh)
        if key not in self._done:
            started = time.perf_counter()
            self.clf.reset()
            probs = None
            for i, ((_, picture), box) in enumerate(zip(version.frames(), boxes)):
                if i in fresh:
                    self.clf.new_view()  # as the app does: a fresh stream (auto: a fork)
                probs = self.clf.step(picture if is_whole(box) else crop(picture, box))
            self.steps += len(boxes)
            self.seconds += time.perf_counter() - started
            self._done[key] = np.array(probs)
        return self._done[key]

    def label(self, index: int) -> str:
        return self.clf.labels[index]


def auto_boxes(version: Version, settings: AutoRoiSettings,
               min_size: tuple[int, int]) -> tuple[list[Box], frozenset[int]]:
    """The box at each step, and the steps where it moved to a new view (the app starts
    the model afresh there)."""
    roi = AutoRoi(min_size, settings, fps=MODEL_FPS)
    boxes, fresh = [], set()
    for i, (t, picture) in enumerate(version.frames()):
        boxes.append(roi.update(picture, t))
        if roi.new_view:
            fresh.add(i)
    return boxes, frozenset(fresh)


def moves_per_second(boxes: Sequence[Box], seconds: float) -> float:
    moves = 0
    for a, b in zip(boxes, boxes[1:]):
        scale = (max(a[2], b[2]), max(a[3], b[3]), max(a[2], b[2]), max(a[3], b[3]))
        edges_a = (a[0], a[1], a[0] + a[2], a[1] + a[3])
        edges_b = (b[0], b[1], b[0] + b[2], b[1] + b[3])
        moves += any(abs(p - q) > MOVE * s for p, q, s in zip(edges_a, edges_b, scale))
    return moves / seconds


@dataclass
class Outcome:
    """How one version came out with one way of choosing boxes."""

    version: Version
    label: int  # top-1 after the last step
    score: float  # its probability
    ref_score: float  # the probability of the full-size clip's top-1
    moves: float  # per second


def outcome(scorer: Scorer, version: Version, boxes: Sequence[Optional[Box]],
            reference: dict[str, tuple[int, float]],
            fresh: frozenset[int] = frozenset()) -> Outcome:
    probs = scorer.probs(version, boxes, fresh)
    ref_label, _ = reference[version.clip.name]
    top = int(np.argmax(probs))
    steady = [b or WHOLE for b in boxes]
    return Outcome(version, top, float(probs[top]), float(probs[ref_label]),
                   moves_per_second(steady, version.clip.seconds))


@dataclass
class Figures:
    recovered: int = 0
    small: int = 0
    ratios: list[float] = field(default_factory=list)
    kept: int = 0
    full: int = 0
    worst_moves: float = 0.0
    unsteady: int = 0

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else 0.0

    def rank(self) -> tuple:
        """Better first: full frames kept; then small actors recovered, a version whose box
        moves more than once a second counting as one lost; then their median score."""
        return (self.kept - self.full, self.recovered - self.unsteady, self.median_ratio)


def figures(outcomes: Sequence[Outcome], reference: dict[str, tuple[int, float]]) -> Figures:
    f = Figures()
    for o in outcomes:
        ref_label, ref_score = reference[o.version.clip.name]
        f.worst_moves = max(f.worst_moves, o.moves)
        f.unsteady += o.moves > GOAL_MOVES
        if o.version.kind == "full":
            f.full += 1
            f.kept += o.label == ref_label and o.ref_score >= ref_score - GOAL_FULL_DROP
        else:
            f.small += 1
            f.recovered += o.label == ref_label
            f.ratios.append(o.ref_score / ref_score)
    return f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=SHARED / "videos")
    parser.add_argument("--model", type=Path,
                        default=SHARED / "models" / "movinet_a0_stream_int8.tflite")
    parser.add_argument("--labels", type=Path,
                        default=SHARED / "labels" / "kinetics600_label_map.txt")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--defaults-only", action="store_true",
                        help="score AutoRoiSettings() only (no cross-validation)")
    parser.add_argument("--history", default=HISTORY, choices=("inf", "auto"),
                        help="the model's memory (default inf, the plain model)")
    parser.add_argument("--rooms", type=Path, default=SHARED / "videos",
                        help=f"the folder whose {' and '.join(BACKGROUNDS)} are the rooms "
                             "(default ../shared/videos)")
    parser.add_argument("--clips", nargs="+", metavar="NAME",
                        help="only these clips of --videos (names without the extension)")
    args = parser.parse_args()
    missing = [name for name in BACKGROUNDS if not (args.rooms / name).is_file()]
    if missing:
        parser.error(f"--rooms: {args.rooms} has no {', '.join(missing)}")
    started = time.perf_counter()
    cv2.setNumThreads(1)
    paths = sorted(p for p in args.videos.iterdir() if is_clip(p))  # .mp4, .mkv, .webm...
    stems = [p.stem for p in paths]
    if len(set(stems)) < len(stems):  # (versions are known by the clip's name)
        twice = sorted({s for s in stems if stems.count(s) > 1})
        parser.error(f"--videos: two clips named {', '.join(twice)}: rename one")
    wanted = set(args.clips or (p.stem for p in paths))
    if wanted - {p.stem for p in paths}:
        parser.error(f"--clips: {sorted(wanted - {p.stem for p in paths})} not in {args.videos}")
    if len(wanted) < (1 if args.defaults_only else args.folds):
        parser.error(f"{len(wanted)} clips: cross-validation needs at least --folds "
                     f"({args.folds}), --defaults-only one")
    # each clip keeps its place among them all, so a subset's versions are the same
    clips = [load_clip(p, i) for i, p in enumerate(paths) if p.stem in wanted]
    all_versions = versions(clips, rooms(args.rooms))
    scorer = Scorer(args.model, args.labels, args.threads, args.history)
    min_size = scorer.clf.input_size
    memory = "the plain model" if args.history == "inf" else "the default memory"
    print(f"A0 int8, --history {args.history} ({memory}), {len(clips)} clips, "
          f"{len(all_versions)} versions; loaded in {time.perf_counter() - started:.0f} s",
          flush=True)

    whole: dict[int, Outcome] = {}
    reference: dict[str, tuple[int, float]] = {}
    for v in all_versions:
        if v.kind == "full":
            probs = scorer.probs(v, [None] * len(v.clip.frames))
            reference[v.clip.name] = (int(np.argmax(probs)), float(np.max(probs)))
    for v in all_versions:
        whole[v.key] = outcome(scorer, v, [None] * len(v.clip.frames), reference)

    grid = [AutoRoiSettings()] if args.defaults_only else [
        AutoRoiSettings(**dict(zip(GRID, values))) for values in itertools.product(*GRID.values())]
    runs: dict[AutoRoiSettings, dict[int, Outcome]] = {}
    for n, settings in enumerate(grid):
        runs[settings] = {}
        for v in all_versions:
            boxes, fresh = auto_boxes(v, settings, min_size)
            runs[settings][v.key] = outcome(scorer, v, boxes, reference, fresh)
        print(f"  settings {n + 1}/{len(grid)} done ({time.perf_counter() - started:.0f} s, "
              f"{scorer.steps} model steps)", flush=True)

    report(clips, all_versions, whole, runs, reference, scorer,
           None if args.defaults_only else args.folds, args.history)
    print(f"({time.perf_counter() - started:.0f} s, {scorer.steps} model steps, "
          f"{1000 * scorer.seconds / max(1, scorer.steps):.2f} ms a step)")


def choose(runs: dict[AutoRoiSettings, dict[int, Outcome]], keys: set[int],
           reference: dict[str, tuple[int, float]],
           among: Optional[Callable[[AutoRoiSettings], bool]] = None) -> AutoRoiSettings:
    candidates = [s for s in runs if among is None or among(s)]
    return max(candidates, key=lambda s: figures([runs[s][k] for k in keys], reference).rank())


def cross_validated(runs: dict[AutoRoiSettings, dict[int, Outcome]], all_versions: list[Version],
                    clips: list[Clip], folds: int, reference: dict[str, tuple[int, float]],
                    among: Optional[Callable[[AutoRoiSettings], bool]] = None
                    ) -> tuple[list[Outcome], list[AutoRoiSettings]]:
    """Out-of-fold outcomes: each fold's clips scored by the settings the others chose."""
    names = [c.name for c in clips]
    fold_of = {name: i % folds for i, name in enumerate(names)}
    out: list[Outcome] = []
    chosen = []
    for fold in range(folds):
        train = {v.key for v in all_versions if fold_of[v.clip.name] != fold}
        test = [v.key for v in all_versions if fold_of[v.clip.name] == fold]
        settings = choose(runs, train, reference, among)
        chosen.append(settings)
        out += [runs[settings][k] for k in test]
    return out, chosen


def describe(s: AutoRoiSettings) -> str:
    return (f"shape {s.shape}, margin {s.margin:g}, hold {s.hold_s:g} s, shrink after "
            f"{s.shrink_after_s:g} s, whole above {s.whole_above:g}, grow headroom "
            f"{s.grow_headroom:g}, new view below {s.new_view_below:g}")


def summary(name: str, f: Figures) -> str:
    share = 100 * f.recovered / max(1, f.small)
    return (f"{name}: recovered {f.recovered}/{f.small} ({share:.0f} %, goal >= "
            f"{100 * GOAL_RECOVERED:.0f} %), median score ratio {f.median_ratio:.2f} "
            f"(goal >= {GOAL_RATIO}); full frames kept {f.kept}/{f.full} (goal all, score >= "
            f"full - {GOAL_FULL_DROP}); worst {f.worst_moves:.2f} moves/s (goal <= {GOAL_MOVES:g})")


def oracle_boxes(version: Version, min_size: tuple[int, int],
                 late: int = 0) -> list[Optional[Box]]:
    """One fixed box on the pasted clip (it knows where and how big the clip is: an upper
    bound for a live box), from step ``late`` on (the whole picture before); None for a
    full-size clip."""
    steps = len(version.clip.frames)
    if version.place is None:
        return [None] * steps
    x0, y0, x1, y1 = version.place
    w, h = max(x1 - x0, min_size[0]), max(y1 - y0, min_size[1])
    x = min(max((x0 + x1 - w) / 2, 0), ROOM[0] - w)
    y = min(max((y0 + y1 - h) / 2, 0), ROOM[1] - h)
    box = (x / ROOM[0], y / ROOM[1], w / ROOM[0], h / ROOM[1])
    return [None] * min(late, steps) + [box] * max(0, steps - late)


def cell(x: Outcome, reference: dict[str, tuple[int, float]], scorer: Scorer) -> str:
    """``ok 0.93 (0.99)``: right or the label given, its score, the score ratio."""
    ref_label, ref_score = reference[x.version.clip.name]
    mark = "ok" if x.label == ref_label else scorer.label(x.label)[:18]
    return f"{mark} {x.score:.2f} ({x.ref_score / ref_score:.2f})"


def report(clips: list[Clip], all_versions: list[Version], whole: dict[int, Outcome],
           runs: dict[AutoRoiSettings, dict[int, Outcome]],
           reference: dict[str, tuple[int, float]], scorer: Scorer,
           folds: Optional[int], history: str = HISTORY) -> None:
    keys = {v.key for v in all_versions}
    best = choose(runs, keys, reference)
    oof_by_key: dict[int, Outcome] = {}
    print(f"\n{'chosen on every clip' if folds else 'the defaults'}: {describe(best)}")
    if folds:
        oof, chosen = cross_validated(runs, all_versions, clips, folds, reference)
        oof_by_key = {o.version.key: o for o in oof}
        for i, settings in enumerate(chosen):
            print(f"  fold {i + 1} of {folds} chose: {describe(settings)}")
    print(f"\n{'clip':<22} {'version':<8} {'whole picture: top-1':<32} "
          f"{'--roi auto: top-1 (ratio)':<34} {'out-of-fold':<12} {'moves/s':>7}")
    for v in all_versions:
        ref_label = reference[v.clip.name][0]
        auto = runs[best][v.key]
        held = oof_by_key.get(v.key)
        oof_cell = "-" if held is None else "ok" if held.label == ref_label else "missed"
        print(f"{v.clip.name if v.kind == 'full' else '':<22} {v.kind:<8} "
              f"{cell(whole[v.key], reference, scorer):<32} "
              f"{cell(auto, reference, scorer):<34} {oof_cell:<12} {auto.moves:>7.2f}")
    base = figures(list(whole.values()), reference)
    in_sample = figures(list(runs[best].values()), reference)
    print("\n" + summary("whole picture (no --roi)", base))
    for name, late, fresh in (
            ("one fixed box on the pasted clip (knows the future)", 0, frozenset()),
            (f"the same from step {LATE_STEP}, the whole picture before", LATE_STEP, frozenset()),
            (f"the same from step {LATE_STEP}, the model afresh there", LATE_STEP,
             frozenset({LATE_STEP}))):
        oracle = [outcome(scorer, v, oracle_boxes(v, scorer.clf.input_size, late), reference,
                          fresh if v.place else frozenset()) for v in all_versions]
        print(summary(name, figures(oracle, reference)))
    which = "in-sample" if folds else "the defaults"
    print(summary(f"--roi auto, {which}", in_sample))
    line = (f"summary: --roi auto ({describe(best)}), A0 int8, --history {history}: "
            f"{which} {_short(in_sample)}")
    if folds:
        out_of_fold = figures(list(oof_by_key.values()), reference)
        print(summary(f"--roi auto, out-of-fold ({folds} folds)", out_of_fold))
        for name in ("shape", "margin", "new_view_below"):
            print(f"\nby {name} (the other settings chosen the same way):")
            for value in GRID[name]:
                def among(s: AutoRoiSettings, name: str = name, value: object = value) -> bool:
                    return bool(getattr(s, name) == value)
                chosen = figures(list(runs[choose(runs, keys, reference, among)].values()),
                                 reference)
                held = figures(cross_validated(runs, all_versions, clips, folds, reference,
                                               among)[0], reference)
                print("  " + summary(f"{value!s:<8} in-sample", chosen))
                print("  " + summary(f"{value!s:<8} out-of-fold", held))
        line += f"; out-of-fold {_short(out_of_fold)}"
    print("\n" + line + f"; whole picture {_short(base)}")


def _short(f: Figures) -> str:
    return (f"recovered {f.recovered}/{f.small} ({100 * f.recovered / max(1, f.small):.0f} %), "
            f"median ratio {f.median_ratio:.2f}, full kept {f.kept}/{f.full}, "
            f"worst {f.worst_moves:.2f} moves/s")


if __name__ == "__main__":
    main()
