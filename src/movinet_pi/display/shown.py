"""What is shown: the classes that may be reported, and the hysteresis that keeps labels still.

:class:`ShownList` turns each step's probabilities into the list the overlay
draws and events follow (``--top-k``, ``--threshold``, ``--leave-threshold``);
:class:`LabelFilter` is ``--allow`` / ``--deny``.
"""

from __future__ import annotations

import difflib
import math
from typing import Sequence

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.labels import Labels
from movinet_pi.model.predictions import Prediction, top_k_indices


def require_known(labels: Labels, names: Sequence[str], flag: str, *,
                  ignore_case: bool = False) -> None:
    """A one-line error for the first of ``names`` that is not one of the model's labels."""
    known = set(labels.names)
    if ignore_case:
        known = {name.lower() for name in known}
    for name in names:
        if (name.lower() if ignore_case else name) not in known:
            closest = difflib.get_close_matches(name, labels.names, n=1, cutoff=0.6)
            hint = f" (closest: {closest[0]!r})" if closest else ""
            raise MovinetPiError(f"unknown label {name!r} in {flag}{hint}: use names from "
                                 f"{labels.source}")


class LabelFilter:
    """Which classes may be reported: an allow list, a deny list, or both."""

    def __init__(
        self, labels: Labels, allow: Sequence[str] = (), deny: Sequence[str] = ()
    ) -> None:
        known = {name: i for i, name in enumerate(labels.names)}
        require_known(labels, (*allow, *deny), "--allow/--deny")
        both = [name for name in allow if name in deny]
        if both:  # it could never be shown: a slip, not a wish
            raise MovinetPiError(f"{both[0]!r} is in both --allow and --deny: give it to one")
        mask = np.zeros(len(labels), dtype=bool)
        if allow:
            mask[[known[n] for n in allow]] = True
        else:
            mask[:] = True
        if deny:
            mask[[known[n] for n in deny]] = False
        self.mask = mask
        self.active = bool(allow or deny)


class ShownList:
    """Which actions are shown, with hysteresis so a label near the threshold does not blink.

    A label enters the list when its probability reaches ``enter`` and stays
    until it falls below ``leave`` (< ``enter``); the list holds at most ``k``,
    the most probable first (but for the hold below). An empty list is the "no
    action" state. Events (``--events``, MQTT, clips) start and end with this list,
    so the hysteresis here is what keeps them from flapping.

    The label on top keeps its place until another leads it by two steps of the
    model's answer (``logit_step``, the grid an int8 model's logits lie on:
    :attr:`~movinet_pi.model.classifier.StreamingClassifier.logit_step`). A lead of one
    step can be the rounding of almost none, a tie the model cannot break: swapping
    the two on it, as the answer wobbles, would be noise.
    """

    def __init__(
        self,
        labels: Labels,
        k: int,
        enter: float = 0.0,
        leave: float | None = None,
        label_filter: LabelFilter | None = None,
        logit_step: float = 0.0,
    ) -> None:
        self.labels = labels
        self.k = k
        # Leads are whole steps: 1.5 steps lies between one and two, clear of float error.
        self.hold_ratio = math.exp(1.5 * max(0.0, logit_step))
        self.enter = enter
        self.leave = enter / 2 if leave is None else min(leave, enter)
        self.mask = label_filter.mask if label_filter is not None and label_filter.active else None
        self._shown: list[int] = []

    def reset(self) -> None:
        self._shown = []

    def update(self, probs: np.ndarray) -> list[Prediction]:
        """This step's shown list from its class probabilities."""
        if self.mask is not None:
            probs = np.where(self.mask, probs, -1.0)
        k = min(self.k, probs.shape[-1])
        best = top_k_indices(probs, k)
        staying = {i for i in self._shown if probs[i] >= self.leave and probs[i] >= 0.0}
        entering = {int(i) for i in best if probs[i] >= self.enter and probs[i] >= 0.0}
        # Equal probabilities keep the order shown: the int8 model's logits lie on a
        # grid, so ties are common, and one must not swap the top label.
        before = {i: rank for rank, i in enumerate(self._shown)}
        ranked = sorted(staying | entering, key=lambda i: (-probs[i], before.get(i, k), i))
        self._shown = ranked = self._keep_top(ranked, probs)[:k]
        return [Prediction(self.labels[i], float(probs[i]), i) for i in ranked]

    def _keep_top(self, ranked: list[int], probs: np.ndarray) -> list[int]:
        """``ranked`` with the label shown on top before kept there, if it is still shown
        and no label leads it by two steps of the answer's grid."""
        if not self._shown or not ranked or ranked[0] == self._shown[0]:
            return ranked
        top = self._shown[0]
        if top in ranked and probs[ranked[0]] <= probs[top] * self.hold_ratio:
            ranked.remove(top)
            ranked.insert(0, top)
        return ranked
