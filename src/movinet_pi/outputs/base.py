"""What every output is: a Sink of StepResults (a FrameSink also gets the picture as shown).

Every output is a :class:`Sink`: it gets each model step as a :class:`StepResult`
and is closed once at the end (flushing what it holds). Sinks run on the
inference thread, so they must be quick; anything slow belongs on a thread of
its own (as :class:`~movinet_pi.outputs.mqtt.MqttSink` does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from movinet_pi.model.predictions import Prediction


@dataclass(frozen=True)
class StepResult:
    """One model step: when, on which frame, and what it saw."""

    t: float  # seconds into the source (the fed frame's timestamp)
    frame: int  # the fed frame's index in the source
    step: int  # model step number since the stream (re)started, from 0
    top: Sequence[Prediction]  # what is shown: after the threshold, filters and smoothing
    infer_ms: float
    model: str = ""  # the model that made it (a live switch changes it mid-run)
    memory_s: float | None = None  # how far back the model's memory reaches (--history)
    roi: tuple[float, float, float, float] | None = None  # the part the model read (--roi)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "t": round(self.t, 4),
            "frame": self.frame,
            "step": self.step,
            "top": [{"label": p.label, "score": round(p.score, 5)} for p in self.top],
            "infer_ms": round(self.infer_ms, 3),
        }
        if self.memory_s is not None:
            out["memory_s"] = round(self.memory_s, 1)
        if self.roi is not None:
            out["roi"] = [round(v, 4) for v in self.roi]
        return out


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



def json_line(obj: Mapping[str, object]) -> str:
    """One compact JSON object, as every JSON-lines output writes it."""
    return json.dumps(obj, separators=(",", ":"))
