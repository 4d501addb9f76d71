"""A plain reference loop, the way the TF tutorials run a streaming MoViNet.

Signature runner, a dict of states fed back each call, numpy argsort. Tests
compare our classifier against it; benchmarks time us against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np


def sampled_rgb_frames(video: Path, fps: float = 5.0) -> Iterator[np.ndarray]:
    """RGB frames of ``video`` at the model fps: the first frame at or after each tick."""
    cap = cv2.VideoCapture(str(video))
    native = cap.get(cv2.CAP_PROP_FPS) or 30.0
    index, next_due, period = 0, 0.0, 1.0 / fps
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            t = index / native
            index += 1
            if t + 1e-3 >= next_due:
                next_due = (int((t + 1e-3) / period) + 1) * period
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def to_model_input(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return (resized.astype(np.float32) / 255.0)[np.newaxis, np.newaxis]


class ReferenceLoop:
    """States in a dict, ``runner(**states)`` per frame, like the TF tutorial."""

    def __init__(self, model_path: Path, threads: int = 2) -> None:
        from movinet_pi.model.runtime import find_runtime

        interpreter = find_runtime().interpreter_class(
            model_path=str(model_path), num_threads=threads
        )
        self.runner = interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        self.image_shape = details["image"]["shape"]
        self._zeros = {
            name: np.zeros(d["shape"], dtype=d["dtype"])
            for name, d in details.items()
            if name != "image"
        }
        self.reset()

    def reset(self) -> None:
        """A new stream: every state back to zero."""
        self.states = dict(self._zeros)

    def step(self, rgb: np.ndarray) -> np.ndarray:
        _, _, h, w, _ = self.image_shape
        outputs = self.runner(image=to_model_input(rgb, h, w), **self.states)
        logits = outputs.pop("logits")
        self.states = outputs
        return logits[0]


def top1(logits: np.ndarray) -> tuple[int, float]:
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    order = np.argsort(probs)[::-1]
    return int(order[0]), float(probs[order[0]])
