"""Where results go besides the screen: JSON lines and a human log.

Every output is a :class:`Sink`: it gets each model step as a :class:`StepResult`
and is closed once at the end (flushing what it holds). Sinks run on the
inference thread, so they must be quick; anything slow belongs on a thread of
its own.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import IO, Protocol, Sequence, runtime_checkable

import numpy as np

from movinet_pi.classifier import Prediction


@dataclass(frozen=True)
class StepResult:
    """One model step: when, on which frame, and what it saw."""

    t: float  # seconds into the source (the fed frame's timestamp)
    frame: int  # the fed frame's index in the source
    step: int  # model step number since the stream (re)started, from 0
    top: Sequence[Prediction]  # what is shown: after the threshold, filters and smoothing
    infer_ms: float

    def to_json(self) -> dict[str, object]:
        return {
            "t": round(self.t, 4),
            "frame": self.frame,
            "step": self.step,
            "top": [{"label": p.label, "score": round(p.score, 5)} for p in self.top],
            "infer_ms": round(self.infer_ms, 3),
        }


class Sink(Protocol):
    """Gets every model step; closed once at the end (flush, release, say goodbye)."""

    def on_step(self, result: StepResult) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSink(Sink, Protocol):
    """A sink that also wants the picture as shown (BGR, overlay drawn), e.g. web or clips.

    ``on_frame`` is called on the display thread for every displayed frame, with
    an image the caller reuses: copy what you keep, return quickly.
    """

    def on_frame(self, bgr: np.ndarray, t: float) -> None: ...


class JsonLinesSink:
    """One JSON object per model step, one per line (``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def on_step(self, result: StepResult) -> None:
        self.stream.write(json.dumps(result.to_json(), separators=(",", ":")) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class HumanSink:
    """A compact line each time the top-1 label changes (the default without ``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last: str | None = None

    def on_step(self, result: StepResult) -> None:
        label = result.top[0].label if result.top else "no action"
        if label == self._last:
            return
        self._last = label
        score = f" {result.top[0].score * 100:5.1f}%" if result.top else ""
        self.stream.write(f"{result.t:8.2f}s  step {result.step:5d}  {label}{score}\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
