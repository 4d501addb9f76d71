"""``movinet-pi eval``: how well streaming models classify a folder of labelled clips.

The folder holds one sub-folder of clips per class, the layout fine-tuning tutorials use::

    clips/
      carving_ice/   a.mp4 b.mp4 ...
      arm wrestling/ c.avi ...

A folder name is a label of the model: exactly, or once case is ignored and ``_`` and
spaces are taken as the same (``Arm_Wrestling`` is ``arm wrestling``). Anything else is
refused, naming the closest label, before a single clip is decoded.

Each clip is decoded once and streamed, from zero states, through every model at the model
frame rate, with the same frame sampling as the live app (:class:`FrameSampler` on the
file's own timestamps). A clip's prediction is the model's output after its last step, the
way a clip-level MoViNet classifies it. A clip that cannot be decoded is skipped with a
warning and counted (``skipped``), so one broken file does not void a long run; if none can
be read the run fails.

Reported per model: top-1 and top-5 accuracy (top-k with k = min(5, classes)), recall per
class, a confusion matrix whose columns are the classes in the folder plus ``other`` (any
class of the model not in the folder: a Kinetics model has 600), the mean milliseconds per
step (resize + normalise + invoke + state carry + softmax, as the app steps), and the clips
it got wrong. With ``--roi`` each model reads only that part of each frame (``auto``: a box
that follows the motion, from the whole picture at each clip's start), as the live app does.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TextIO

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.adaptive import AUTO, HistorySpec, history_policy
from movinet_pi.model.catalogue import MODEL_FPS
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels, load_labels
from movinet_pi.model.predictions import top_k_indices
from movinet_pi.model.runtime import default_threads
from movinet_pi.model.signature import catalogue_title
from movinet_pi.progress import ProgressBar
from movinet_pi.sources.opencv import FileSource
from movinet_pi.sources.roi import AUTO as ROI_AUTO
from movinet_pi.sources.roi import Box, RoiSpec, crop, is_whole
from movinet_pi.sources.roi_auto import AutoRoi
from movinet_pi.timing import FrameSampler
from movinet_pi.tools.clip_folders import CLIP_KINDS, find_class_folders, match_label
from movinet_pi.tools.eval_report import (
    check_plot_path,
    display_names,
    format_report,
    write_plot,
)

PROG = "movinet-pi eval"
TOP_K = 5
OTHER = "(other)"


# --- models ---------------------------------------------------------------------------------


def load_model(
    model_path: Path, labels: Labels | None, threads: int, history: HistorySpec = AUTO
) -> StreamingClassifier:
    """A classifier for ``model_path`` (any streaming MoViNet: input size, class count and
    signature key are read from the model)."""
    return StreamingClassifier.load(model_path, threads, labels,
                                    history=history_policy(history, MODEL_FPS))


def model_names(paths: Sequence[Path], clfs: Sequence[StreamingClassifier]) -> list[str]:
    """Column names: a catalogue model's own name (``MoViNet-A0 stream int8``, as a run
    shows it) when no other column would get the same; else :func:`display_names`."""
    titles = [catalogue_title(p, c.interpreter, c.signature, c.num_classes)
              for p, c in zip(paths, clfs)]
    stems = display_names(paths)
    return [t if t is not None and titles.count(t) == 1 else s for t, s in zip(titles, stems)]


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassInfo:
    """One evaluated class: its folder and, per model, its class index."""

    folder: str
    label: str  # the first model's label for it (the name shown)
    clips: tuple[Path, ...]
    indices: tuple[int, ...]  # per model


@dataclass
class ClipResult:
    clip: str  # path relative to the clip folder
    true_row: int  # index into the evaluated classes
    top: list[int]  # the model's top-k class indices, best first (empty: no answer)
    score: float  # probability of the top class


@dataclass
class ModelRun:
    """What one model did over the clips; :meth:`report` turns it into numbers."""

    name: str
    clf: StreamingClassifier
    results: list[ClipResult] = field(default_factory=list)
    step_seconds: float = 0.0
    steps: int = 0
    roi: Optional[RoiSpec] = None  # the part of each frame the model reads (--roi)
    auto: Optional[AutoRoi] = None  # --roi auto's box, reset for each clip

    def box(self, rgb: np.ndarray, t: float) -> Optional[Box]:
        """The part of this frame the model reads (None: all of it)."""
        if self.roi != ROI_AUTO:
            return None if self.roi is None or is_whole(self.roi) else self.roi  # type: ignore
        self.auto = self.auto or AutoRoi(self.clf.input_size, fps=MODEL_FPS)
        return self.auto.update(rgb, t)

    @property
    def k(self) -> int:
        return min(TOP_K, self.clf.num_classes)

    def report(self, classes: Sequence[ClassInfo], model_index: int,
               skipped: Sequence[dict[str, str]]) -> dict[str, Any]:
        """Everything reported about the model, as the ``--json`` object."""
        labels = self.clf.labels
        column_of = {info.indices[model_index]: col for col, info in enumerate(classes)}
        # a last column for what is none of them: other classes, or no answer at all
        # (a taught model's --reject gives every class 0 when it is unsure)
        has_other = self.clf.num_classes > len(classes) or any(not r.top for r in self.results)
        columns = len(classes) + (1 if has_other else 0)
        matrix = np.zeros((len(classes), columns), dtype=np.int64)
        top1 = np.zeros(len(classes), dtype=np.int64)
        topk = np.zeros(len(classes), dtype=np.int64)
        mistakes = []
        for r in self.results:
            truth = classes[r.true_row].indices[model_index]
            predicted = r.top[0] if r.top else None
            matrix[r.true_row, column_of.get(predicted, columns - 1)] += 1
            top1[r.true_row] += predicted == truth
            topk[r.true_row] += truth in r.top
            if predicted != truth:
                mistakes.append({"clip": r.clip, "true": labels[truth],
                                 "predicted": "none" if predicted is None else labels[predicted],
                                 "score": round(r.score, 4)})
        counts = matrix.sum(axis=1)
        n = int(counts.sum())
        return {
            "model": self.name,
            "path": self.clf.model_path,
            "labels": labels.source,
            "signature": self.clf.signature.key,
            "roi": list(self.roi) if isinstance(self.roi, tuple) else self.roi,
            "input_size": list(self.clf.input_size),
            "num_classes": self.clf.num_classes,
            "clips": n,
            "skipped": len(skipped),
            "steps": self.steps,
            "top1": float(top1.sum() / n) if n else 0.0,
            "top5": float(topk.sum() / n) if n else 0.0,
            "top5_k": self.k,
            "ms_per_step": round(1000.0 * self.step_seconds / self.steps, 4) if self.steps else 0.0,
            "per_class": {
                labels[info.indices[model_index]]: {
                    "folder": info.folder,
                    "clips": int(counts[row]),
                    "recall": float(top1[row] / counts[row]) if counts[row] else None,
                    "top5": float(topk[row] / counts[row]) if counts[row] else None,
                }
                for row, info in enumerate(classes)
            },
            "confusion": {
                "rows": [labels[info.indices[model_index]] for info in classes],
                "columns": [labels[info.indices[model_index]] for info in classes]
                + ([OTHER] if has_other else []),
                "matrix": matrix.tolist(),
            },
            "misclassified": mistakes,
            "skipped_clips": list(skipped),
        }


# --- running --------------------------------------------------------------------------------


def stream_clip(path: Path, runs: Sequence[ModelRun], fps: float = MODEL_FPS) -> list[np.ndarray]:
    """Decode ``path`` once and step every model, from fresh states, on the frames the app
    would feed at ``fps``. Returns each model's probabilities after its last step."""
    for run in runs:
        run.clf.reset()
        if run.auto is not None:
            run.auto.reset()
    sampler = FrameSampler(fps)
    last: list[np.ndarray | None] = [None] * len(runs)
    with FileSource(path) as source:
        while True:
            frame = source.read()
            if frame is None:
                break
            if not sampler.is_due(frame.timestamp):
                continue
            rgb = frame.rgb
            for i, run in enumerate(runs):
                started = time.perf_counter()
                box = run.box(rgb, frame.timestamp)
                if run.auto is not None and run.auto.new_view:
                    run.clf.new_view()  # as the app does: the box moved to a new view
                probs = run.clf.step(rgb if box is None else crop(rgb, box))
                run.step_seconds += time.perf_counter() - started
                run.steps += 1
                last[i] = probs
    if any(p is None for p in last):  # FileSource reads a first frame or refuses the file
        raise MovinetPiError(f"no frames in {path}", exit_code=1)
    return [np.array(p) for p in last]  # copies: the classifier reuses its buffer


def evaluate(
    clip_dir: Path,
    model_paths: Sequence[Path],
    labels_path: Path | None = None,
    *,
    threads: int | None = None,
    history: HistorySpec = AUTO,
    progress: bool = False,
    err: TextIO | None = None,
    roi: Optional[RoiSpec] = None,
) -> list[dict[str, Any]]:
    """Run every model over the clip folder; one report dict per model (the JSON form)."""
    err = err if err is not None else sys.stderr
    if not model_paths:
        raise MovinetPiError("eval needs at least one --model-path FILE")
    folders = find_class_folders(clip_dir)
    labels = load_labels(labels_path) if labels_path is not None else None
    threads = threads or default_threads()
    paths = [Path(p) for p in model_paths]
    clfs = [load_model(path, labels, threads, history) for path in paths]
    runs = [ModelRun(name, clf, roi=roi) for name, clf in zip(model_names(paths, clfs), clfs)]

    def warn(message: str) -> None:
        bar.clear()
        err.write(f"{PROG}: warning: {message}\n")
        err.flush()

    bar = ProgressBar("eval", err, enabled=False)
    classes = _classes(folders, runs, clip_dir, warn)
    clips = [(row, clip) for row, info in enumerate(classes) for clip in info.clips]
    bar = ProgressBar("eval", err, unit="clips", width=20, interval=0.0, verb=None,
                      enabled=progress)
    skipped: list[dict[str, str]] = []
    try:
        for done, (row, clip) in enumerate(clips):
            bar(done, len(clips), clip.name)
            rel = clip.relative_to(clip_dir).as_posix()
            try:
                last = stream_clip(clip, runs)
            except MovinetPiError as e:
                warn(f"skipped {rel}: {e}")
                skipped.append({"clip": rel, "reason": str(e)})
                continue
            for run, probs in zip(runs, last):
                # no answer (all 0: a taught model's --reject) is a top of its own: none
                top = [int(i) for i in top_k_indices(probs, run.k) if probs[i] > 0]
                run.results.append(ClipResult(rel, row, top, float(probs[top[0]]) if top else 0.0))
        bar(len(clips), len(clips))
    finally:
        bar.clear()
    if len(skipped) == len(clips):
        which = "the one clip" if len(clips) == 1 else f"none of the {len(clips)} clips"
        raise MovinetPiError(
            f"{which} in {clip_dir} could{' not' if len(clips) == 1 else ''} be read "
            f"(first: {skipped[0]['reason']})",
            exit_code=1,
        )
    return [run.report(classes, i, skipped) for i, run in enumerate(runs)]


def _classes(folders: dict[str, list[Path]], runs: Sequence[ModelRun], clip_dir: Path,
             warn: Callable[[str], None]) -> list[ClassInfo]:
    """Match every folder to a class of every model; order them as the first model's
    classes. Folders whose names read as one label are one class, scored on the clips of
    all (as ``teach`` teaches them), said in one line. Classes without clips are skipped
    with a warning."""
    grouped: dict[int, tuple[list[str], list[Path], tuple[int, ...]]] = {}
    for folder, clips in folders.items():
        indices = tuple(match_label(folder, run.clf.labels) for run in runs)
        names, all_clips, _ = grouped.setdefault(indices[0], ([], [], indices))
        names.append(folder)
        all_clips.extend(clips)
    classes = []
    for first, (names, clips, indices) in grouped.items():
        label = runs[0].clf.labels[first]
        if len(names) > 1:
            warn(f"the folders {' and '.join(map(repr, names))} are one class, {label!r}: "
                 "scoring the clips of both")
        if not clips:
            warn(f"no clips in {names[0]}/ (looked for {CLIP_KINDS}): class left out")
            continue
        classes.append(ClassInfo(names[0], label, tuple(clips), indices))
    if not classes:
        raise MovinetPiError(
            f"no video clips in the class folders of {clip_dir} (looked for {CLIP_KINDS})"
        )
    classes.sort(key=lambda c: c.indices[0])
    return classes


# --- the command ----------------------------------------------------------------------------


def run_eval(
    clip_dir: Path,
    model_paths: Sequence[Path],
    labels_path: Path | None = None,
    *,
    threads: int | None = None,
    history: HistorySpec = AUTO,
    plot: Path | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    progress: bool = True,
    err: TextIO | None = None,
    roi: Optional[RoiSpec] = None,
) -> int:
    """``movinet-pi eval``: evaluate, print the table (or JSON lines), write the plot.

    Raises :class:`MovinetPiError` for every bad input: exit code 2 for a bad folder,
    model, label file or plot path, 1 when no clip could be read or the plot not written.
    """
    out = out if out is not None else sys.stdout
    if plot is not None:
        check_plot_path(plot)
    reports = evaluate(clip_dir, model_paths, labels_path, threads=threads, history=history,
                       progress=progress, err=err, roi=roi)
    if plot is not None:
        write_plot(reports, plot)
    if as_json:
        for report in reports:
            out.write(json.dumps(report, allow_nan=False) + "\n")
    else:
        out.write(format_report(reports, clip_dir) + "\n")
        if plot is not None:
            out.write(f"\nconfusion plot: {plot}\n")
    out.flush()
    return 0


__all__ = ["evaluate", "run_eval"]
