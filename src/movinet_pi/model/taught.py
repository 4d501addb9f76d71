"""A taught head: new classes learnt on top of a stock streaming MoViNet, in numpy.

What the stock classifier head sees each step is the head pool's mean (its running
sum over its count, :class:`~movinet_pi.model.pools.PoolSlot`). ``movinet-pi teach``
(:mod:`movinet_pi.tools.teach`) collects those means from a few clips per new class
and fits a small head on them here: a multinomial logistic regression or class
prototypes (cosine similarity), whichever cross-validates better. Every fit weighs each
class the same and, within a class, each clip the same (:func:`example_weights`): a
long clip does not outvote a short one, nor a class with many clips one with few.

The taught model is ONE file: a byte copy of the base model with a zip appended (the
way TFLite metadata carries a label file, :func:`~movinet_pi.model.labels.embedded_labels`),
holding ``labels.txt`` and ``taught_head.json``. The flatbuffer is untouched, so any
runtime loads the file as the base model; :class:`~movinet_pi.model.classifier.StreamingClassifier`
sees the head and gives the taught classes' probabilities instead of the base logits.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.predictions import softmax

HEAD_MEMBER = "taught_head.json"
LABELS_MEMBER = "labels.txt"
FORMAT = 1
#: prototypes: probabilities are softmax(cosine similarity * this)
PROTOTYPE_SCALE = 20.0
MAX_HEAD_BYTES = 64 << 20


@dataclass
class TaughtHead:
    """A linear head on standardised head-pool means: ``softmax(W @ z + b)`` with
    ``z = (x - mean) / std``; for prototypes ``W`` holds unit class centres, ``b`` is 0
    and ``z`` is normalised to unit length first (cosine similarity)."""

    kind: str  # "logistic" | "prototypes"
    labels: tuple[str, ...]
    weights: np.ndarray  # (classes, features)
    bias: np.ndarray  # (classes,)
    mean: np.ndarray  # (features,)
    std: np.ndarray  # (features,)
    threshold: float = 0.0  # best-class probability below it: "other" (with reject)
    reject: bool = False
    base_sha256: str = ""
    base_size: int = 0
    examples: int = 0
    clips: int = 0
    slot: str = ""  # the head pool's state name

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Logits for one feature vector (or a batch, one a row)."""
        z = (np.asarray(features, np.float32) - self.mean) / self.std
        if self.kind == "prototypes":
            z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-6)
            return PROTOTYPE_SCALE * (z @ self.weights.T)
        return z @ self.weights.T + self.bias

    def probs(self, features: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Probabilities of the taught classes; with ``reject``, all zero when the best is
        below the threshold (nothing is shown: "no action")."""
        p = _softmax(self.scores(features))
        if self.reject:
            low = np.max(p, axis=-1, keepdims=True) < self.threshold
            p = np.where(low, 0.0, p).astype(np.float32)
        if out is None:
            return p
        np.copyto(out, p)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "kind": self.kind, "labels": list(self.labels),
            "weights": self.weights.tolist(), "bias": self.bias.tolist(),
            "mean": self.mean.tolist(), "std": self.std.tolist(),
            "threshold": self.threshold, "reject": self.reject,
            "base_sha256": self.base_sha256, "base_size": self.base_size,
            "examples": self.examples, "clips": self.clips, "slot": self.slot,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str) -> TaughtHead:
        try:
            if d.get("format") != FORMAT:
                raise ValueError(f"format {d.get('format')!r}, this version reads {FORMAT}")
            f32 = np.float32
            head = cls(
                kind=str(d["kind"]), labels=tuple(str(x) for x in d["labels"]),
                weights=np.asarray(d["weights"], f32), bias=np.asarray(d["bias"], f32),
                mean=np.asarray(d["mean"], f32), std=np.asarray(d["std"], f32),
                threshold=float(d["threshold"]), reject=bool(d["reject"]),
                base_sha256=str(d["base_sha256"]), base_size=int(d["base_size"]),
                examples=int(d["examples"]), clips=int(d["clips"]), slot=str(d["slot"]),
            )
            n, k = len(head.labels), head.mean.shape[0]
            if head.kind not in ("logistic", "prototypes") or head.weights.shape != (n, k) \
                    or head.bias.shape != (n,) or head.std.shape != (k,) or n < 2:
                raise ValueError("shapes do not agree")
        except (KeyError, TypeError, ValueError) as e:
            raise MovinetPiError(f"the taught head inside {source} is damaged: {e}") from None
        return head


def _softmax(logits: np.ndarray) -> np.ndarray:
    return softmax(logits).astype(np.float32)


# --- the file ----------------------------------------------------------------------------------


def read_taught(model_path: str | Path) -> TaughtHead | None:
    """The taught head appended to a model file, if it carries one; checked against the
    base model it was taught on (the bytes before the zip)."""
    try:
        archive = zipfile.ZipFile(model_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    with archive:
        try:
            info = archive.getinfo(HEAD_MEMBER)
        except KeyError:
            return None
        if info.file_size > MAX_HEAD_BYTES:
            raise MovinetPiError(f"the taught head inside {model_path} is too big")
        try:
            d = json.loads(archive.read(info))
        except Exception as e:  # zlib, json, encoding: a damaged member
            raise MovinetPiError(f"the taught head inside {model_path} is damaged: {e}") from None
    head = TaughtHead.from_json(d, str(model_path))
    with open(model_path, "rb") as f:
        base = f.read(head.base_size)
    if hashlib.sha256(base).hexdigest() != head.base_sha256:
        raise MovinetPiError(
            f"{model_path}: the model before its taught head is not the one it was taught on "
            f"(sha256 {head.base_sha256[:12]}): teach it again")
    return head


def write_taught_model(base_path: Path, out_path: Path, head: TaughtHead) -> None:
    """The base model's bytes, then a zip with the labels and the head; written to a
    temporary file and renamed, so a failed write leaves no half model."""
    base = base_path.read_bytes()
    head.base_sha256 = hashlib.sha256(base).hexdigest()
    head.base_size = len(base)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(LABELS_MEMBER, "\n".join(head.labels) + "\n")
        z.writestr(HEAD_MEMBER, json.dumps(head.to_json()))
    tmp = out_path.with_name(f".{out_path.name}.part")
    try:
        tmp.write_bytes(base + buf.getvalue())
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)


# --- fitting ------------------------------------------------------------------------------------


def example_weights(y: np.ndarray, clip: np.ndarray | None = None) -> np.ndarray:
    """Each example's weight, summing to 1: every class weighs the same and, within a
    class, every clip (``clip``: each example's clip id; None: one clip a class), however
    many examples it has. So a long clip does not outvote a short one."""
    clip = np.zeros(len(y), np.int64) if clip is None else np.asarray(clip)
    pairs, pair_of, examples = np.unique(np.stack([y, clip], axis=1), axis=0,
                                         return_inverse=True, return_counts=True)
    classes, clips_per_class = np.unique(pairs[:, 0], return_counts=True)
    clips = clips_per_class[np.searchsorted(classes, y)]
    weight = 1.0 / (examples[pair_of.reshape(-1)] * clips)
    return weight / weight.sum()


def standardise(x: np.ndarray, weight: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The features' mean and spread (weighted by ``weight`` if given), the spread
    floored so that a constant feature does not divide by zero."""
    mean = np.average(x, axis=0, weights=weight)
    std = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weight))
    return mean.astype(np.float32), np.maximum(std, 1e-3 * max(float(std.max()), 1e-6) + 1e-6
                                               ).astype(np.float32)


def fit(kind: str, x: np.ndarray, y: np.ndarray, labels: Sequence[str],
        clip: np.ndarray | None = None, *, l2: float = 1e-2, steps: int = 300,
        lr: float = 0.5) -> TaughtHead:
    """Fit a head on features ``x`` (examples, features), class indices ``y`` and each
    example's clip id ``clip`` (None: one clip a class), weighted by
    :func:`example_weights`: the standardisation, the prototypes and the loss alike."""
    n = len(labels)
    weight = example_weights(y, clip)
    mean, std = standardise(x, weight)
    z = (x - mean) / std
    if kind == "prototypes":
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-6)
        centres = np.stack([np.average(zn[y == c], axis=0, weights=weight[y == c])
                            for c in range(n)])
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-6)
        w, b = centres, np.zeros(n)
    else:
        w, b = _logistic(z, y, weight, n, l2, steps, lr)
    return TaughtHead(kind, tuple(labels), w.astype(np.float32), b.astype(np.float32),
                      mean, std, examples=len(y))


def _logistic(z: np.ndarray, y: np.ndarray, weight: np.ndarray, n: int, l2: float,
              steps: int, lr: float) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on the L2-regularised softmax cross-entropy, each
    example weighted by ``weight`` (:func:`example_weights`)."""
    k = z.shape[1]
    z = z.astype(np.float32)
    onehot = np.eye(n, dtype=np.float32)[y]
    weight = weight.astype(np.float32)[:, None]
    w = np.zeros((n, k), np.float32)
    b = np.zeros(n, np.float32)
    lr, l2 = np.float32(lr), np.float32(l2)
    for _ in range(steps):
        g = (_softmax(z @ w.T + b) - onehot) * weight
        w -= lr * (g.T @ z + l2 * w)
        b -= lr * g.sum(axis=0)
    return w, b


def fold_groups(y: np.ndarray, clip: np.ndarray) -> tuple[np.ndarray, str]:
    """The cross-validation groups: each clip, or, for a class with one clip only, the two
    halves of it (so that class can still be held out), and how they were made."""
    groups = clip.copy()
    how = "by clip"
    next_id = int(clip.max()) + 1
    for c in np.unique(y):
        clips = np.unique(clip[y == c])
        if len(clips) == 1:
            idx = np.flatnonzero(clip == clips[0])
            groups[idx[len(idx) // 2:]] = next_id
            next_id += 1
            how = "by clip (a class with one clip: by halves of it)"
    return groups, how


def thin(y: np.ndarray, per_class: int) -> np.ndarray:
    """A mask keeping at most ``per_class`` examples of each class, evenly spread:
    neighbouring steps of a stream are nearly the same example, and the fit's time grows
    with the examples."""
    keep = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep[idx[np.linspace(0, len(idx) - 1, min(per_class, len(idx))).astype(int)]] = True
    return keep


def cross_validate(kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                   labels: Sequence[str], folds: int = 5,
                   per_class: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Held-out predictions and best-class probabilities for every example: each group
    (clip) is scored by a head fitted without it (on at most ``per_class`` examples a
    class). Groups are dealt round-robin within each class into at most ``folds`` folds."""
    fold_of: dict[int, int] = {}
    for c in np.unique(y):
        for i, g in enumerate(np.unique(groups[y == c])):
            fold_of.setdefault(int(g), i % folds)
    fold = np.array([fold_of[int(g)] for g in groups])
    pred = np.zeros(len(y), np.int64)
    best = np.zeros(len(y), np.float32)
    for f in np.unique(fold):
        test = fold == f
        train = ~test
        train[train] = thin(y[train], per_class)
        if len(np.unique(y[train])) < len(labels):  # a class with nothing left to fit
            seen = np.unique(y[train])
            head = fit(kind, x[train], np.searchsorted(seen, y[train]), [labels[i] for i in seen],
                       groups[train])
            p = head.probs(x[test])
            pred[test] = seen[np.argmax(p, axis=1)]
        else:
            p = fit(kind, x[train], y[train], labels, groups[train]).probs(x[test])
            pred[test] = np.argmax(p, axis=1)
        best[test] = np.max(p, axis=1)
    return pred, best


def per_class_accuracy(pred: np.ndarray, y: np.ndarray, n: int) -> list[float]:
    return [float(np.mean(pred[y == c] == c)) if np.any(y == c) else 0.0 for c in range(n)]


#: The highest reject threshold. Held-out answers that are nearly all certain (0.9997) say the
#: clips are much alike, not how sure new footage will be: a threshold there rejects the
#: taught actions themselves at the first small difference (a clip's last seconds).
REJECT_AT_MOST = 0.99


def reject_threshold(pred: np.ndarray, best: np.ndarray, y: np.ndarray) -> float:
    """The best-class probability that 95 % of the correct held-out answers reach, at most
    :data:`REJECT_AT_MOST`."""
    right = best[pred == y]
    return min(float(np.percentile(right, 5)), REJECT_AT_MOST) if len(right) else 0.0
