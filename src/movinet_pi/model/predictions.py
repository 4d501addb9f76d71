"""What a step's answer is made of: the softmax of the logits, one class and its probability
(:class:`Prediction`), and the one top-k that the classifier, the shown list and ``eval``
share. Small and free of the runtime, so that displays and outputs can import it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax over the last axis (subtracts the max first)."""
    out = np.subtract(logits, np.max(logits, axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=-1, keepdims=True)
    return out


@dataclass(frozen=True)
class Prediction:
    """One class and its probability."""

    label: str
    score: float
    index: int


def top_k_indices(probs: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` highest ``probs`` (all of them if there are fewer),
    highest first. The one top-k: the classifier's, the shown list's and ``eval``'s."""
    k = min(k, probs.shape[-1])
    best = np.argpartition(probs, -k)[-k:]
    return best[np.argsort(-probs[best], kind="stable")]
