"""``--roi auto`` for ``benchmarks/reaction.py``: each stream's box, as the app draws it.

A stream keeps an :class:`~movinet_pi.sources.roi_auto.AutoRoi` on its own 5 fps clock
(the time grows across loops and clip changes, so a loop's wrap or a change of clip is
motion, as it would be live), starts a new view of its classifier where the box moves to
one (``StreamingClassifier.new_view``: a fork for ``--history auto``, a reset for the
plain and windowed memories, as the recognizer does) and gives the model the part of the
frame inside the box. The clips are kept larger than the model's input for the box to be
cut from: at most :data:`WIDTH` pixels wide, their aspect kept.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np

from movinet_pi.sources.roi import crop, is_whole
from movinet_pi.sources.roi_auto import AutoRoi

#: The widest a clip is kept with --roi (a camera's picture; the box is cut from it).
WIDTH = 640


def shrunk(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` at most :data:`WIDTH` pixels wide, its aspect kept (INTER_AREA)."""
    height, width = rgb.shape[:2]
    if width <= WIDTH:
        return rgb
    size = (WIDTH, max(1, round(height * WIDTH / width)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class AutoBox:
    """One stream's ``--roi auto``: frames in, the model's input out (see the module)."""

    def __init__(self, clf: Any, fps: float) -> None:
        self.clf = clf
        self.step_s = 1.0 / fps
        self.roi = AutoRoi(clf.input_size, fps=fps)
        self.t = 0.0

    def reset(self) -> None:
        """A fresh stream: the box starts from the whole picture."""
        self.roi.reset()
        self.t = 0.0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        box = self.roi.update(rgb, self.t)
        self.t += self.step_s
        if self.roi.new_view:
            self.clf.new_view()
        return rgb if is_whole(box) else crop(rgb, box)

    def save(self) -> tuple:
        return copy.deepcopy((self.roi, self.t))

    def restore(self, saved: tuple) -> None:
        self.roi, self.t = copy.deepcopy(saved)
