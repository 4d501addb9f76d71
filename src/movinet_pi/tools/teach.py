"""``movinet-pi teach``: new actions from a few clips, on the Pi itself, without TensorFlow.

The folder holds one sub-folder of clips per new class (the layout ``eval`` reads; the
folder's name is the class's label, ``_`` read as a space, so ``jumping_jacks/`` and
``jumping jacks/`` are one class, taught from both, as it says). A clip that cannot be
read, or is shorter than one model step, is skipped with a warning naming it. Each
clip is streamed from fresh states at 5 fps through the stock model, as the app streams
a camera; after each step the head pool's mean (what the stock classifier head sees) is
one example, except in the clip's first second (at most its first half), while the
model's memory fills.

Two heads are fitted in numpy (:mod:`movinet_pi.model.taught`): a multinomial logistic
regression and class prototypes (cosine similarity). Both are cross-validated by clip,
never scoring a frame of a clip the fit saw; the better one (mean recall over the
classes) is fitted on everything and written with the labels into one file: the base
model's bytes with a zip appended, which any runtime loads as the base model. Examples
are recorded by :mod:`movinet_pi.tools.teach_record`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.adaptive import AUTO, HistorySpec, history_policy
from movinet_pi.model.catalogue import MODEL_FPS, STREAM_WARMUP_STEPS
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.runtime import default_threads, model_not_found
from movinet_pi.model.taught import (
    REJECT_AT_MOST,
    TaughtHead,
    cross_validate,
    fit,
    fold_groups,
    per_class_accuracy,
    read_taught,
    reject_threshold,
    thin,
    write_taught_model,
)
from movinet_pi.outputs.clip_files import check_takes_files
from movinet_pi.progress import ProgressBar, size_text
from movinet_pi.sources.opencv import FileSource
from movinet_pi.timing import FrameSampler
from movinet_pi.tools.clip_folders import CLIP_KINDS, find_class_folders, normalise_label
from movinet_pi.tools.teach_record import PROG  # the prefix of teach's messages

KINDS = ("logistic", "prototypes")
#: the final fit's examples a class, at most (evenly spread over them)
FIT_PER_CLASS = 1000


def load_base(model_path: Path, threads: int | None = None,
              history: HistorySpec = AUTO) -> StreamingClassifier:
    """The stock model to teach on; a model that already carries a taught head is refused."""
    if not model_path.is_file():
        raise model_not_found(model_path)
    if read_taught(model_path) is not None:
        raise MovinetPiError(f"{model_path} is already a taught model: teach from the model "
                             "it was taught on")
    return StreamingClassifier.from_file(model_path, threads=threads or default_threads(),
                                         history=history_policy(history, MODEL_FPS))


def clip_features(clf: StreamingClassifier, path: Path, start: float = 0.0,
                  end: float = float("inf"), fps: float = MODEL_FPS) -> np.ndarray:
    """The head pool's mean after every step of ``path`` streamed from fresh states at
    ``fps``, from ``start`` to ``end`` seconds into it: (steps, features)."""
    clf.reset()
    sampler = FrameSampler(fps)
    rows = []
    with FileSource(path) as source:
        while (frame := source.read()) is not None:
            if frame.timestamp < start:
                continue
            if frame.timestamp >= end:
                break
            if sampler.is_due(frame.timestamp - start):
                clf.step(frame.rgb)
                rows.append(clf.head_features())
    width = len(clf.head_features())
    return np.array(rows, np.float32).reshape(-1, width)


def examples_of(features: np.ndarray) -> np.ndarray:
    """The steps taken as examples: all but the first second (at most half the steps)."""
    return features[min(STREAM_WARMUP_STEPS, len(features) // 2):]


def class_label(folder: str) -> str:
    return " ".join(folder.replace("_", " ").split())


def class_folders(clip_dir: Path, err: TextIO) -> dict[str, list[Path]]:
    """Label -> its clips. Folders whose names read as one label are one class, taught
    from all their clips; that is said in one line, never done silently."""
    classes: dict[str, list[Path]] = {}
    folders: dict[str, list[str]] = {}
    labels: dict[str, str] = {}  # compared as eval compares them; named as the first folder
    for folder, clips in find_class_folders(clip_dir).items():
        label = labels.setdefault(normalise_label(folder), class_label(folder))
        classes.setdefault(label, []).extend(clips)
        folders.setdefault(label, []).append(folder)
    for label, names in folders.items():
        if len(names) > 1:
            err.write(f"{PROG}: the folders {' and '.join(map(repr, names))} are one class, "
                      f"{label!r}: teaching it from the clips of both\n")
    return classes


def usable_features(clf: StreamingClassifier, clip: Path) -> np.ndarray:
    """The clip's features (:func:`clip_features`), or a MovinetPiError saying why the
    clip cannot teach: unreadable, or shorter than one model step."""
    feats = clip_features(clf, clip)
    if len(feats) < 2:
        raise MovinetPiError(f"shorter than one model step ({1 / MODEL_FPS:g} s at "
                             f"{MODEL_FPS:g} fps)")
    return feats


@dataclass
class TeachResult:
    head: TaughtHead
    scores: dict[str, list[float]]  # kind -> cross-validated recall per class
    clips_per_class: list[int]
    examples_per_class: list[int]
    cv_how: str
    seconds: float
    skipped: list[str]
    fit_seconds: float = 0.0


def fit_best(x: np.ndarray, y: np.ndarray, clip: np.ndarray, labels: list[str],
             reject: bool = False) -> tuple[TaughtHead, dict[str, list[float]], str]:
    """Cross-validate both kinds of head, fit the better one on everything."""
    groups, how = fold_groups(y, clip)
    scores: dict[str, list[float]] = {}
    held_out = {}
    for kind in KINDS:
        pred, best = cross_validate(kind, x, y, groups, labels)
        scores[kind] = per_class_accuracy(pred, y, len(labels))
        held_out[kind] = (pred, best)
    kind = max(KINDS, key=lambda k: float(np.mean(scores[k])))
    keep = thin(y, FIT_PER_CLASS)
    head = fit(kind, x[keep], y[keep], labels, clip[keep])
    head.examples = len(y)
    pred, best = held_out[kind]
    head.threshold = reject_threshold(pred, best, y)
    head.reject = reject
    head.clips = len(np.unique(clip))
    return head, scores, how


def check_output(out_path: Path, *, force: bool = False) -> None:
    """Refuse, before any teaching, a taught model's file that could not be written: in a
    folder that is not there, a folder or a device itself, or a file there already (without
    ``force``)."""
    folder = out_path.parent
    if not folder.is_dir():
        raise MovinetPiError(f"{folder} is not a folder: make it first, or give -o a file "
                             "in a folder that exists")
    if out_path.is_dir():
        raise MovinetPiError(f"{out_path} is a folder: give -o a file name, such as "
                             f"{out_path / 'mine.tflite'}")
    if out_path.exists() and not out_path.is_file():  # /dev/null: --force must not replace it
        raise MovinetPiError(f"{out_path} is not a regular file: give -o a file name, such "
                             f"as {folder / 'mine.tflite'}")
    if out_path.exists() and not force:
        raise MovinetPiError(f"{out_path} exists: pass --force to replace it")
    try:  # teaching can take minutes on a Pi: find out now that the folder takes a file
        check_takes_files(folder)
    except OSError as e:
        raise MovinetPiError(f"cannot write in {folder} ({e.strerror or e}): give -o a file "
                             "in a folder you can write to") from None


def teach(clip_dir: Path, model_path: Path, out_path: Path, *, force: bool = False,
          reject: bool = False, threads: int | None = None, history: HistorySpec = AUTO,
          progress: bool = False, err: TextIO | None = None) -> TeachResult:
    """Teach the classes in ``clip_dir`` on ``model_path``; write the taught model."""
    err = err if err is not None else sys.stderr
    started = time.monotonic()
    check_output(out_path, force=force)
    if out_path.exists() and out_path.resolve() == model_path.resolve():
        raise MovinetPiError(f"{out_path} is the base model: write the taught model elsewhere")
    folders = class_folders(clip_dir, err)
    if len(folders) < 2:
        raise MovinetPiError(f"{clip_dir} has {len(folders)} class folder: teaching needs at "
                             "least two classes (one folder of clips each)")
    for name, clips in folders.items():
        if not clips:
            raise MovinetPiError(f"no clips in the class folder {name!r} of {clip_dir} "
                                 f"(looked for {CLIP_KINDS})")
    clf = load_base(model_path, threads, history)
    labels = list(folders)
    bar = ProgressBar("teach", err, unit="clips", width=20, interval=0.0, verb=None,
                      enabled=progress)
    xs, ys, ids, skipped = [], [], [], []
    total = sum(len(c) for c in folders.values())
    done = 0
    try:
        for row, (name, clips) in enumerate(folders.items()):
            readable = 0
            for clip in clips:
                bar(done, total, clip.name)
                done += 1
                rel = clip.relative_to(clip_dir).as_posix()
                try:
                    feats = usable_features(clf, clip)
                except MovinetPiError as e:
                    bar.clear()
                    err.write(f"{PROG}: warning: skipped {rel}: {e}\n")
                    skipped.append(rel)
                    continue
                ex = examples_of(feats)
                xs.append(ex)
                ys.append(np.full(len(ex), row))
                ids.append(np.full(len(ex), len(ids)))
                readable += 1
            if not readable:
                raise MovinetPiError(f"no usable clip for the class {name!r} in {clip_dir} "
                                     "(each was unreadable or too short: see the warnings)")
        bar(total, total)
    finally:
        bar.clear()
    x, y, clip = np.concatenate(xs), np.concatenate(ys), np.concatenate(ids)
    fit_started = time.monotonic()
    head, scores, how = fit_best(x, y, clip, labels, reject)
    fit_seconds = time.monotonic() - fit_started
    head.slot = clf._find_head_slot().name
    write_taught_model(model_path, out_path, head)
    return TeachResult(head, scores,
                       [len(np.unique(clip[y == c])) for c in range(len(labels))],
                       [int(np.sum(y == c)) for c in range(len(labels))], how,
                       time.monotonic() - started, skipped, fit_seconds)


def format_summary(result: TeachResult, out_path: Path) -> str:
    head = result.head
    width = max(len("class"), *(len(n) for n in head.labels))
    lines = [f"{'class':<{width}}  clips  examples  logistic  prototypes  (cross-validated "
             f"recall, {result.cv_how})"]
    for i, name in enumerate(head.labels):
        lines.append(f"{name:<{width}}  {result.clips_per_class[i]:>5}  "
                     f"{result.examples_per_class[i]:>8}  "
                     f"{result.scores['logistic'][i]:>8.2f}  "
                     f"{result.scores['prototypes'][i]:>10.2f}")
    means = {k: float(np.mean(v)) for k, v in result.scores.items()}
    lines.append(f"{'mean':<{width}}  {sum(result.clips_per_class):>5}  {head.examples:>8}  "
                 f"{means['logistic']:>8.2f}  {means['prototypes']:>10.2f}")
    reject = (f"below {head.threshold:.2f} it answers nothing (--reject)" if head.reject
              else f"a best score below {head.threshold:.2f} is unsure (--reject to hide it)")
    lines.append(f"kept: {head.kind}; {reject}")
    if head.reject and head.threshold >= REJECT_AT_MOST:
        lines.append("note: the clips the fit did not see were all answered near-certainly: "
                     "the clips may be much alike; teach from more varied ones to learn how "
                     "sure new footage is")
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)} clips (unreadable or too short)")
    chance = 1.0 / len(head.labels)
    weak = [f"{name!r} {score:.2f}" for name, score in zip(head.labels, result.scores[head.kind])
            if score < chance]
    if weak:
        lines.append(f"warning: {', '.join(weak)}: recognised less often than chance "
                     f"({chance:.2f}) on clips the fit did not see: add more clips of them, "
                     "or more varied ones")
    lines.append(f"wrote {out_path} ({size_text(out_path.stat().st_size)}) in "
                 f"{result.seconds:.1f} s (fitting {result.fit_seconds:.1f} s): "
                 f"run it with --model-path {out_path}")
    return "\n".join(lines)


def run_teach(clip_dir: Path, model_path: Path, out_path: Path, *, force: bool = False,
              reject: bool = False, threads: int | None = None, history: HistorySpec = AUTO,
              out: TextIO | None = None, progress: bool = True) -> int:
    out = out if out is not None else sys.stdout
    result = teach(clip_dir, model_path, out_path, force=force, reject=reject,
                   threads=threads, history=history, progress=progress)
    out.write(format_summary(result, out_path) + "\n")
    out.flush()
    return 0


__all__ = ["clip_features", "run_teach", "teach"]
