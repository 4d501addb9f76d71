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
it got wrong.
"""

from __future__ import annotations

import difflib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.model.catalogue import MODEL_FPS
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels, load_labels
from movinet_pi.model.runtime import default_threads
from movinet_pi.progress import ProgressBar
from movinet_pi.sources.opencv import FileSource
from movinet_pi.timing import FrameSampler

PROG = "movinet-pi eval"
TOP_K = 5
OTHER = "(other)"
#: File name endings taken as clips (case-insensitive); other files in class folders
#: (notes, annotations, thumbnails) are ignored.
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
    ".3gp", ".ogv", ".gif",
})
CLIP_KINDS = ".mp4, .avi, .mkv, .mov, .webm, .gif and other video files"
#: How many misclassified clips the text report lists per model (JSON lists them all).
MAX_LISTED_MISTAKES = 20


# --- folders and labels ----------------------------------------------------------------------


def normalise_label(name: str) -> str:
    """The form folder names and labels are compared in: case-folded, ``_`` as a space,
    runs of spaces as one."""
    return " ".join(name.replace("_", " ").split()).casefold()


def match_label(folder: str, labels: Labels) -> int:
    """The class index a folder name stands for, or a one-line error naming the closest."""
    for i, name in enumerate(labels.names):
        if name == folder:
            return i
    key = normalise_label(folder)
    hits = [i for i, name in enumerate(labels.names) if normalise_label(name) == key]
    if len(hits) == 1:
        return hits[0]
    if hits:
        both = " and ".join(repr(labels[i]) for i in hits[:2])
        raise MovinetPiError(
            f"clip folder {folder!r} matches several labels of {labels.source} ({both}): "
            "rename it to one of them exactly"
        )
    normalised = [normalise_label(n) for n in labels.names]
    closest = difflib.get_close_matches(key, normalised, n=1, cutoff=0.0)
    hint = f" (closest: {labels[normalised.index(closest[0])]!r})" if closest else ""
    raise MovinetPiError(
        f"clip folder {folder!r} is not a label of {labels.source}{hint}: name each folder "
        "after its label (case, '_' and spaces do not matter)"
    )


def is_clip(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not _hidden(path)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def find_class_folders(clip_dir: Path) -> dict[str, list[Path]]:
    """Folder name -> its clips (any depth below it, sorted), for every visible sub-folder."""
    if not clip_dir.exists():
        raise MovinetPiError(f"clip folder not found: {clip_dir}")
    if not clip_dir.is_dir():
        raise MovinetPiError(
            f"{clip_dir} is not a folder: pass a folder with one sub-folder of clips per class"
        )
    folders = sorted(p for p in clip_dir.iterdir() if p.is_dir() and not _hidden(p))
    if not folders:
        loose = sum(1 for p in clip_dir.iterdir() if is_clip(p))
        found = f" (it holds {loose} clips but no class folders)" if loose else ""
        raise MovinetPiError(
            f"no class folders in {clip_dir}{found}: put each class's clips in a folder "
            f"named after its label, e.g. {clip_dir}/<label>/clip.mp4"
        )
    return {
        folder.name: sorted(
            p for p in folder.rglob("*")
            if is_clip(p) and not any(_hidden(q) for q in p.relative_to(folder).parents
                                      if q.name)
        )
        for folder in folders
    }


# --- models ---------------------------------------------------------------------------------


def load_model(model_path: Path, labels: Labels | None, threads: int) -> StreamingClassifier:
    """A classifier for ``model_path`` (any streaming MoViNet: input size, class count and
    signature key are read from the model)."""
    return StreamingClassifier.load(model_path, threads, labels)


def display_names(paths: Sequence[Path]) -> list[str]:
    """Short column names: file stems; stems shared by several files get their folder
    (``a/model``, ``b/model``) or, for one file given twice, a number (``model#2``)."""
    stems = [p.stem for p in paths]
    names = []
    seen: dict[str, int] = {}
    for path, stem in zip(paths, stems):
        group = [q for q in paths if q.stem == stem]
        if len(group) == 1:
            names.append(stem)
        elif len({q.parent for q in group}) == len(group):
            names.append(f"{path.parent.name}/{stem}")
        else:
            seen[stem] = seen.get(stem, 0) + 1
            names.append(f"{stem}#{seen[stem]}")
    return names


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
    top: list[int]  # the model's top-k class indices, best first
    score: float  # probability of the top class


@dataclass
class ModelRun:
    """What one model did over the clips; :meth:`report` turns it into numbers."""

    name: str
    clf: StreamingClassifier
    results: list[ClipResult] = field(default_factory=list)
    step_seconds: float = 0.0
    steps: int = 0

    @property
    def k(self) -> int:
        return min(TOP_K, self.clf.num_classes)

    def report(self, classes: Sequence[ClassInfo], model_index: int,
               skipped: Sequence[dict[str, str]]) -> dict[str, Any]:
        """Everything reported about the model, as the ``--json`` object."""
        labels = self.clf.labels
        column_of = {info.indices[model_index]: col for col, info in enumerate(classes)}
        has_other = self.clf.num_classes > len(classes)
        columns = len(classes) + (1 if has_other else 0)
        matrix = np.zeros((len(classes), columns), dtype=np.int64)
        top1 = np.zeros(len(classes), dtype=np.int64)
        topk = np.zeros(len(classes), dtype=np.int64)
        mistakes = []
        for r in self.results:
            truth = classes[r.true_row].indices[model_index]
            matrix[r.true_row, column_of.get(r.top[0], columns - 1)] += 1
            top1[r.true_row] += r.top[0] == truth
            topk[r.true_row] += truth in r.top
            if r.top[0] != truth:
                mistakes.append({"clip": r.clip, "true": labels[truth],
                                 "predicted": labels[r.top[0]], "score": round(r.score, 4)})
        counts = matrix.sum(axis=1)
        n = int(counts.sum())
        return {
            "model": self.name,
            "path": self.clf.model_path,
            "labels": labels.source,
            "signature": self.clf.signature.key,
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
    sampler = FrameSampler(fps)
    last: list[np.ndarray | None] = [None] * len(runs)
    with FileSource(path) as source:
        while True:
            frame = source.read()
            if frame is None:
                break
            if not sampler.is_due(frame.timestamp):
                continue
            for i, run in enumerate(runs):
                started = time.perf_counter()
                probs = run.clf.step(frame.rgb)
                run.step_seconds += time.perf_counter() - started
                run.steps += 1
                last[i] = probs
    if any(p is None for p in last):  # FileSource reads a first frame or refuses the file
        raise MovinetPiError(f"no frames in {path}", exit_code=1)
    return [np.array(p) for p in last]  # copies: the classifier reuses its buffer


def _top(probs: np.ndarray, k: int) -> list[int]:
    idx = np.argpartition(probs, -k)[-k:]
    return [int(i) for i in idx[np.argsort(-probs[idx], kind="stable")]]


def _check_plot_path(plot: Path) -> None:
    """Refuse a plot file that cannot be written before spending minutes on clips."""
    if not plot.parent.is_dir():
        raise MovinetPiError(f"--plot: folder {plot.parent} does not exist")
    if not cv2.haveImageWriter(str(plot)):
        raise MovinetPiError(f"--plot: OpenCV cannot write {plot.name!r}: use a .png file name")


def evaluate(
    clip_dir: Path,
    model_paths: Sequence[Path],
    labels_path: Path | None = None,
    *,
    threads: int | None = None,
    progress: bool = False,
    err: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Run every model over the clip folder; one report dict per model (the JSON form)."""
    err = err if err is not None else sys.stderr
    if not model_paths:
        raise MovinetPiError("eval needs at least one --model-path FILE")
    folders = find_class_folders(clip_dir)
    labels = load_labels(labels_path) if labels_path is not None else None
    threads = threads or default_threads()
    paths = [Path(p) for p in model_paths]
    runs = [ModelRun(name, load_model(path, labels, threads))
            for name, path in zip(display_names(paths), paths)]

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
                top = _top(probs, run.k)
                run.results.append(ClipResult(rel, row, top, float(probs[top[0]])))
        bar(len(clips), len(clips))
    finally:
        bar.clear()
    if len(skipped) == len(clips):
        raise MovinetPiError(
            f"none of the {len(clips)} clips in {clip_dir} could be read "
            f"(first: {skipped[0]['reason']})",
            exit_code=1,
        )
    return [run.report(classes, i, skipped) for i, run in enumerate(runs)]


def _classes(folders: dict[str, list[Path]], runs: Sequence[ModelRun], clip_dir: Path,
             warn: Callable[[str], None]) -> list[ClassInfo]:
    """Match every folder to a class of every model; order them as the first model's
    classes. Folders without clips are skipped with a warning."""
    by_label: dict[int, str] = {}
    classes = []
    for folder, clips in folders.items():
        indices = tuple(match_label(folder, run.clf.labels) for run in runs)
        first = indices[0]
        if first in by_label:
            raise MovinetPiError(
                f"clip folders {by_label[first]!r} and {folder!r} are the same label "
                f"{runs[0].clf.labels[first]!r}: merge them"
            )
        by_label[first] = folder
        if not clips:
            warn(f"no clips in {folder}/ (looked for {CLIP_KINDS}): class left out")
            continue
        classes.append(ClassInfo(folder, runs[0].clf.labels[first], tuple(clips), indices))
    if not classes:
        raise MovinetPiError(
            f"no video clips in the class folders of {clip_dir} (looked for {CLIP_KINDS})"
        )
    classes.sort(key=lambda c: c.indices[0])
    return classes


# --- text report ----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f} %"


def format_report(reports: Sequence[dict[str, Any]], clip_dir: Path) -> str:
    """The side-by-side table, then each model's confusion matrix and mistakes."""
    first = reports[0]
    n_classes = len(first["per_class"])
    skipped = f", {first['skipped']} skipped" if first["skipped"] else ""
    lines = [
        f"{first['clips']} clips in {n_classes} classes from {clip_dir}{skipped}; "
        f"{MODEL_FPS:g} fps, states reset for each clip, prediction after the last step",
        "",
    ]
    k_note = {r["top5_k"] for r in reports}
    top_k_name = "top-5" if k_note == {TOP_K} else f"top-{'/'.join(map(str, sorted(k_note)))}"
    rows: list[tuple[str, list[str]]] = [
        ("input", [f"{r['input_size'][0]}x{r['input_size'][1]}" for r in reports]),
        ("classes", [str(r["num_classes"]) for r in reports]),
        ("top-1", [_pct(r["top1"]) for r in reports]),
        (top_k_name, [_pct(r["top5"]) for r in reports]),
        ("ms per step", [f"{r['ms_per_step']:.2f}" for r in reports]),
        ("recall per class", ["" for _ in reports]),
    ]
    # Every report lists the same classes in the same order (their names may differ).
    per_class = [list(r["per_class"].values()) for r in reports]
    for row, (label, stats) in enumerate(first["per_class"].items()):
        rows.append((f"  {label} ({stats['clips']})",
                     [_pct(classes[row]["recall"]) for classes in per_class]))
    head = max(len(name) for name, _ in rows)
    widths = [max(len(r["model"]), *(len(v[i]) for _, v in rows)) for i, r in enumerate(reports)]
    lines.append(" " * head + "".join(f"  {r['model']:>{w}}" for r, w in zip(reports, widths)))
    for name, values in rows:
        line = f"{name:<{head}}" + "".join(f"  {v:>{w}}" for v, w in zip(values, widths))
        lines.append(line.rstrip())
    for r in reports:
        lines += ["", *format_confusion(r)]
        mistakes = r["misclassified"]
        if mistakes:
            lines.append(f"misclassified by {r['model']} (top-1): {len(mistakes)}")
            for m in mistakes[:MAX_LISTED_MISTAKES]:
                lines.append(f"  {m['clip']}: {m['predicted']} {m['score']:.2f} "
                             f"(true: {m['true']})")
            if len(mistakes) > MAX_LISTED_MISTAKES:
                lines.append(f"  ... and {len(mistakes) - MAX_LISTED_MISTAKES} more (--json "
                             "lists them all)")
    return "\n".join(lines)


def format_confusion(report: dict[str, Any]) -> list[str]:
    """Rows true classes, columns predicted; short names as headers, else numbers."""
    rows, columns = report["confusion"]["rows"], report["confusion"]["columns"]
    matrix = report["confusion"]["matrix"]
    by_name = len(columns) <= 10 and all(len(c) <= 16 for c in columns)
    if by_name:
        headers = list(columns)
        row_names = list(rows)
    else:
        headers = [str(i + 1) for i in range(len(rows))] + (["other"] if len(columns) > len(rows)
                                                              else [])
        row_names = [f"{i + 1:>{len(str(len(rows)))}} {name}" for i, name in enumerate(rows)]
    other = " (other: a class not in the folder)" if len(columns) > len(rows) else ""
    width = max(len(str(max((max(row) for row in matrix), default=0))),
                *(len(h) for h in headers))
    name_w = max(len(n) for n in row_names)
    out = [f"confusion, {report['model']}: rows true, columns predicted{other}",
           " " * (name_w + 2) + "".join(f"  {h:>{width}}" for h in headers)]
    for name, row in zip(row_names, matrix):
        out.append(f"  {name:<{name_w}}" + "".join(f"  {v:>{width}}" for v in row))
    return out


# --- plot -----------------------------------------------------------------------------------

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_DARK = (110, 45, 15)  # BGR of a full cell: dark blue


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    return text.encode("ascii", "replace").decode("ascii")


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(_ascii(text), _FONT, scale, 1)[0][0]


def draw_confusion(report: dict[str, Any]) -> np.ndarray:
    """One model's confusion matrix as a BGR picture: cells shaded by the share of the row
    (recall on the diagonal), counts written in, true classes down the left, predicted
    across the top by number."""
    rows = report["confusion"]["rows"]
    matrix = np.asarray(report["confusion"]["matrix"], dtype=np.float64)
    n_rows, n_cols = matrix.shape
    cell = int(np.clip(480 // max(n_cols, 1), 14, 56))
    scale = 0.45
    row_names = [f"{i + 1} {_ascii(name)}" for i, name in enumerate(rows)]
    col_names = [str(i + 1) for i in range(n_rows)] + (["o"] if n_cols > n_rows else [])
    left = 12 + max(_text_width(n, scale) for n in row_names) + 8
    title = f"{report['model']}: top-1 {_pct(report['top1'])}, top-5 {_pct(report['top5'])}"
    note = "rows: true class; columns: predicted (same numbers" + (", o = other)" if
                                                                   n_cols > n_rows else ")")
    top = 64
    width = max(left + n_cols * cell + 16, 24 + _text_width(title, 0.6),
                24 + _text_width(note, scale))
    height = top + n_rows * cell + 16
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(image, _ascii(title), (12, 22), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, note, (12, 42), _FONT, scale, (80, 80, 80), 1, cv2.LINE_AA)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    for c, name in enumerate(col_names):
        x = left + c * cell + (cell - _text_width(name, scale)) // 2
        cv2.putText(image, name, (x, top - 6), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    for r in range(n_rows):
        y0 = top + r * cell
        cv2.putText(image, row_names[r], (12, y0 + cell // 2 + 5), _FONT, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for c in range(n_cols):
            x0 = left + c * cell
            f = share[r, c]
            colour = tuple(round(w + f * (d - w)) for w, d in zip(_WHITE, _DARK))
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), colour, -1)
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), 1)
            count = int(matrix[r, c])
            if count and cell >= 18:
                text = str(count)
                cs = min(scale, 0.9 * cell / max(1, _text_width(text, 1.0)))
                tw, th = cv2.getTextSize(text, _FONT, cs, 1)[0]
                ink = _WHITE if f > 0.5 else (0, 0, 0)
                cv2.putText(image, text, (x0 + (cell - tw) // 2, y0 + (cell + th) // 2),
                            _FONT, cs, ink, 1, cv2.LINE_AA)
    return image


def write_plot(reports: Sequence[dict[str, Any]], path: Path) -> None:
    """All models' confusion matrices side by side in one picture."""
    panels = [draw_confusion(r) for r in reports]
    height = max(p.shape[0] for p in panels)
    gap = 24  # white between panels
    padded = [
        cv2.copyMakeBorder(p, 0, height - p.shape[0], 0, gap if i < len(panels) - 1 else 0,
                           cv2.BORDER_CONSTANT, value=_WHITE)
        for i, p in enumerate(panels)
    ]
    image = np.hstack(padded) if len(padded) > 1 else padded[0]
    try:
        ok = cv2.imwrite(str(path), image)
    except cv2.error as e:
        raise MovinetPiError(f"cannot write plot {path}: {one_line(e)}", exit_code=1) from e
    if not ok:
        raise MovinetPiError(f"cannot write plot {path}", exit_code=1)


# --- the command ----------------------------------------------------------------------------


def run_eval(
    clip_dir: Path,
    model_paths: Sequence[Path],
    labels_path: Path | None = None,
    *,
    threads: int | None = None,
    plot: Path | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
    progress: bool = True,
    err: TextIO | None = None,
) -> int:
    """``movinet-pi eval``: evaluate, print the table (or JSON lines), write the plot.

    Raises :class:`MovinetPiError` for every bad input: exit code 2 for a bad folder,
    model, label file or plot path, 1 when no clip could be read or the plot not written.
    """
    out = out if out is not None else sys.stdout
    if plot is not None:
        _check_plot_path(plot)
    reports = evaluate(clip_dir, model_paths, labels_path, threads=threads, progress=progress,
                       err=err)
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


__all__ = ["evaluate", "format_report", "match_label", "normalise_label", "run_eval",
           "write_plot"]
