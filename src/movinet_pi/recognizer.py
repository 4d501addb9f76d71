"""The model side of a run: the classifier stepped on due frames, what is shown, the outputs.

:class:`Recognizer` does it; :class:`RunConfig` is what the user chose for the run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from movinet_pi.display.shown import LabelFilter, ShownList
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.outputs.base import Sink, StepResult
from movinet_pi.sources.base import Frame
from movinet_pi.sources.roi import AUTO, Box, RoiSpec, model_input
from movinet_pi.sources.roi_auto import AutoRoi
from movinet_pi.timing import RateMeter

__all__ = ["Recognizer", "RunConfig", "model_input"]


@dataclass
class RunConfig:
    """What the user chose on the command line, as the pipeline needs it."""

    top_k: int = 5
    threshold: float = 0.0  # a label is shown from this probability on...
    leave_threshold: float | None = None  # ...until it falls below this (default: half)
    label_filter: LabelFilter | None = None
    model_fps: float = 5.0
    mirror: bool = False
    realtime: bool = True  # pace files to their own timestamps (a window wants this)
    pace_headless: bool = False  # ...also with no display (--web, --mqtt, --loop, --speed 1)
    hold_at_end: bool = False  # a window keeps a file's last picture up until a key
    model_name: str = ""
    reconnect_max_s: float = 10.0
    roi: Optional[RoiSpec] = None  # the part of the picture the model reads (--roi), or "auto"


class Recognizer:
    """The model side: steps the classifier on due frames and tells the sinks.

    ``request_reset()`` may be called from any thread (a key, a signal); the
    reset happens on the inference thread before the next step.

    :meth:`close` waits for a step that is telling the sinks, and a step still
    in the model when it is called tells them nothing: no output hears of a
    step after it was closed (no ``--events`` line after the closing ``end``).
    """

    def __init__(
        self, classifier: StreamingClassifier, config: RunConfig, sinks: Sequence[Sink] = ()
    ) -> None:
        self.classifier = classifier
        self.config = config
        self.sinks = list(sinks)
        self.latest: StepResult | None = None
        self.model_rate = RateMeter()
        self.infer_ms_recent: deque[float] = deque(maxlen=25)
        self._infer_ms_p50 = 0.0
        self.shown = self._shown_list(classifier)
        self._reset_requested = threading.Event()
        self._swap_lock = threading.Lock()
        self._pending: tuple[StreamingClassifier, str] | None = None
        self._deliver_lock = threading.Lock()  # a step telling the sinks, or close()
        self.closed = False
        self._losses = 0  # source_lost() calls: a step begun before one is not told
        #: --roi auto: where the action is, frame by frame
        self.auto_roi = (AutoRoi(classifier.input_size, fps=config.model_fps)
                         if config.roi == AUTO else None)

    def _shown_list(self, classifier: StreamingClassifier) -> ShownList:
        label_filter = self.config.label_filter
        if label_filter is not None and len(label_filter.mask) != classifier.num_classes:
            label_filter = None  # a switch to a model with other classes: no filter applies
        return ShownList(classifier.labels, self.config.top_k, self.config.threshold,
                         self.config.leave_threshold, label_filter,
                         logit_step=classifier.logit_step)

    def request_reset(self) -> None:
        self._reset_requested.set()

    def source_lost(self) -> None:
        """The live source stopped delivering (any thread): the outputs hear at once that
        nothing is seen now (open events end, the state says "no action") rather than
        holding the last action through the outage, and the stream starts afresh with the
        next frame (the frames before the gap are not the ones before it)."""
        self.request_reset()
        with self._deliver_lock:
            self._losses += 1  # a step still in the model now is of before: not told
            latest = self.latest
            if self.closed or latest is None or not latest.top:
                return
            self.latest = replace(latest, top=[], infer_ms=0.0)
            for sink in self.sinks:
                sink.on_step(self.latest)

    def request_swap(self, classifier: StreamingClassifier, title: str) -> None:
        """Use another (loaded) classifier from the next step on, from a fresh stream.

        Any thread may call this; the swap happens on the inference thread, so a
        step never sees half of one model and half of another.
        """
        with self._swap_lock:
            self._pending = (classifier, title)

    def _apply_pending(self) -> None:
        with self._swap_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.classifier, self.config.model_name = pending
            self.shown = self._shown_list(self.classifier)
            self.infer_ms_recent.clear()
            if self.auto_roi is not None:
                self.auto_roi.min_size = self.classifier.input_size
            self._reset_requested.set()

    def _box(self, frame: Frame) -> Optional[Box]:
        """The part of ``frame`` the model reads (None: no --roi)."""
        roi = self.config.roi
        if roi is None:
            return None
        if self.auto_roi is not None:
            bgr = frame.bgr
            return self.auto_roi.update(frame.rgb if bgr is None else bgr, frame.timestamp)
        return frame.model_box or roi  # type: ignore[return-value]  # what the camera cropped

    def _model_input(self, frame: Frame, box: Optional[Box] = None) -> np.ndarray:
        return model_input(frame, self.classifier.input_size, box)

    def process(self, frame: Frame) -> StepResult:
        if self._pending is not None:
            self._apply_pending()
        losses = self._losses
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            self.classifier.reset()
            self.shown.reset()
            if self.auto_roi is not None:
                self.auto_roi.reset()
        started = time.perf_counter()
        box = self._box(frame)
        if self.auto_roi is not None and self.auto_roi.new_view:
            self.classifier.new_view()  # what the model saw before is of another picture
        probs = self.classifier.step(self._model_input(frame, box))
        infer_ms = (time.perf_counter() - started) * 1000.0
        top = self.shown.update(probs)
        memory_s = self.classifier.history.memory_steps / self.config.model_fps
        result = StepResult(frame.timestamp, frame.index, self.classifier.steps - 1, top,
                            infer_ms, self.config.model_name, memory_s, box)
        with self._deliver_lock:
            # the run ended, or the source was lost, while this step was in the model
            if self.closed or self._losses != losses:
                return result
            self.latest = result
            self.model_rate.tick()
            self.infer_ms_recent.append(infer_ms)
            self._infer_ms_p50 = float(np.median(self.infer_ms_recent))
            for sink in self.sinks:
                sink.on_step(result)
        return result

    @property
    def infer_ms_p50(self) -> float:
        """The median of the recent steps' times (worked out once a step, not per frame)."""
        return self._infer_ms_p50 if self.infer_ms_recent else 0.0

    def close(self) -> None:
        """Close every sink, even when one fails (a closed pipe must not keep the MQTT
        sink from saying goodbye); then raise the first failure. Waits for a step that
        is telling the sinks; later steps tell them nothing. Once only."""
        with self._deliver_lock:
            if self.closed:
                return
            self.closed = True
        failure: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure
