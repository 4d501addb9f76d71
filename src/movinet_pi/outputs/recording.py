"""Event clips (``--record DIR``): an MP4 of each action, with a few seconds before and after.

:class:`ClipRecorder` is a :class:`~movinet_pi.outputs.base.FrameSink`:

* ``on_step`` (inference thread) feeds the step's shown list to an
  :class:`~movinet_pi.outputs.events.EventTracker`; starts, updates and ends of the
  events whose label is recorded become small control messages;
* ``on_frame`` (display thread) keeps one picture per tick of a ``max_fps``
  grid on the source's clock, downscaled to at most ``max_width`` pixels wide,
  and hands it over: it never waits for the disk. The hand-over holds at most
  ``queue_frames`` pictures; when the writer falls behind, new pictures are
  dropped and counted (``stats.frames_dropped``, and per clip in its sidecar);
* the writer thread owns everything else (:class:`~movinet_pi.outputs.clip_writer.ClipWriter`):
  the pre-roll ring buffer, when clips start, grow and end, the open
  ``cv2.VideoWriter``, the files.

Files appear atomically, under names from the clip's start and label, and with
``max_mb`` the oldest clips are deleted first (:mod:`movinet_pi.outputs.clip_files`).

Memory bound: the ring keeps ``pre_seconds + event_min_s + RING_SLACK_S`` of pictures
at ``max_fps`` (an event is told ``event_min_s`` after its start) and the hand-over at
most ``queue_frames`` more, each at most ``max_width`` wide as raw BGR. With the
defaults (3 s pre-roll, no minimum, 15 fps, 640 px, queue of 30) and a 4:3 picture
(640x480x3 = 0.92 MB): (3.5 s x 15 + 30) = 83 frames x 0.92 MB = about 76 MB at most
(57 MB for 16:9); the app's 1 s minimum adds 15 frames, 14 MB.
:meth:`ClipRecorder.memory_bound_bytes` computes it for other settings.

Errors: a directory that cannot be created or written, or a machine that can
write neither MP4 nor AVI, is a :class:`MovinetPiError` in the constructor. At
run time a failing clip is logged, its files removed, and the app goes on; the
next event tries again (:meth:`~movinet_pi.outputs.clip_writer.ClipWriter.fail`).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Union

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.clip_files import MB, EventSnapshot, prepare_directory, probe_codec
from movinet_pi.outputs.clip_writer import Change, ClipWriter, Picture, RecorderStats
from movinet_pi.outputs.events import EventChange, EventTracker
from movinet_pi.timing import FrameSampler

#: Extra seconds of pictures the ring keeps beyond the pre-roll: the display
#: runs ahead of the model, so an event's start arrives after newer pictures.
RING_SLACK_S = 0.5


# -- messages from the sink's threads to the writer thread (and Picture) ----------------------
def _change(change: EventChange, t: float) -> Change:
    e = change.event
    end = e.end if change.kind == "end" else None
    snapshot = EventSnapshot(e.id, e.label, e.start, end, e.peak, e.mean, e.steps,
                              change.to_json())
    return Change(change.kind, t, snapshot)


class _Stop:
    pass


_Message = Union[Picture, Change, _Stop]


class ClipRecorder:
    """Records an MP4 (+ JSON sidecar) for every recorded event; see the module docs.

    ``labels``: record only these (case-insensitive); None or empty: every event.
    Note that with every label recorded and no ``--threshold``, the shown list is
    never empty, so one event or another always lasts: recording is then
    continuous, in clips of ``max_clip_seconds``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        labels: Iterable[str] | None = None,
        pre_seconds: float = 3.0,
        post_seconds: float = 2.0,
        max_mb: float | None = None,
        max_fps: float | None = 15.0,
        max_width: int = 640,
        queue_frames: int = 30,
        max_clip_seconds: float = 600.0,
        min_free_mb: float = 20.0,
        log: Callable[[str], None] | None = None,
        event_min_s: float = 0.0,
    ) -> None:
        if pre_seconds < 0 or post_seconds < 0:
            raise MovinetPiError("--pre-seconds and --post-seconds must be 0 or more")
        if max_mb is not None and not max_mb > 0:
            raise MovinetPiError(f"--record-max-mb must be more than 0, got {max_mb}")
        self.directory = Path(directory)
        self.labels = {label.strip().lower() for label in labels or () if label.strip()}
        self.pre_seconds = pre_seconds
        self.post_seconds = post_seconds
        self.max_bytes = None if max_mb is None else int(max_mb * MB)
        self.max_fps = max_fps
        self.max_width = max_width
        self.queue_frames = queue_frames
        self.max_clip_seconds = max_clip_seconds
        self.min_free_bytes = int(min_free_mb * MB)
        self.log = log or say
        self.stats = RecorderStats()
        self.clips: deque[Path] = deque(maxlen=1000)  # the newest videos written, in order

        prepare_directory(self.directory, self.min_free_bytes, self.log)
        self.fourcc, self.extension = probe_codec(self.directory, self.log)

        self._tracker = EventTracker(event_min_s)
        #: An event's start is told ``event_min_s`` after it: the ring keeps that much more.
        self._ring_s = pre_seconds + event_min_s + RING_SLACK_S
        self._tracker_lock = threading.Lock()
        self._cond = threading.Condition()
        self._inbox: deque[_Message] = deque()
        self._pictures_waiting = 0
        self._last_kept_t: float | None = None
        self._sampler = FrameSampler(max_fps) if max_fps else None
        self._closed = False
        self._writer = ClipWriter(
            self.directory, self.fourcc, self.extension, pre_seconds=pre_seconds,
            post_seconds=post_seconds, ring_s=self._ring_s, max_fps=max_fps,
            max_clip_seconds=max_clip_seconds, max_bytes=self.max_bytes,
            min_free_bytes=self.min_free_bytes, stats=self.stats, clips=self.clips, log=self.log)
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def memory_bound_bytes(self, height_for_width: float = 0.75) -> int:
        """Most bytes of pictures held at once (ring + hand-over), for a picture aspect."""
        fps = self.max_fps or 30.0  # unlimited: assume a 30 fps source
        frames = self._ring_s * fps + self.queue_frames
        w = self.max_width
        return int(frames * w * round(w * height_for_width) * 3)

    # -- the sink (called on the pipeline's threads) ---------------------------------------
    def records(self, label: str) -> bool:
        return not self.labels or label.lower() in self.labels

    def on_step(self, result: StepResult) -> None:
        with self._tracker_lock:
            changes = self._tracker.update(result.t, result.top, result.step)
            messages = [_change(c, result.t) for c in changes if self.records(c.event.label)]
        self._post(messages)

    def on_frame(self, bgr: np.ndarray, t: float) -> None:
        if self._closed:
            return
        last = self._last_kept_t
        if self._sampler is not None:
            if last is not None and t < last - 1.0:
                self._sampler.reset(t)  # the source went back (reopened, looped): start over
            if not self._sampler.is_due(t):
                return  # over max_fps: one picture per tick of a max_fps grid, no drift
        if self._pictures_waiting >= self.queue_frames:  # racy read: at worst one more
            with self._cond:
                self.stats.frames_dropped += 1
            return
        self._last_kept_t = t
        h, w = bgr.shape[:2]
        if w > self.max_width:
            size = (self.max_width, max(2, round(h * self.max_width / w)))
            image = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        else:
            image = bgr.copy()  # the caller reuses its buffer
        with self._cond:
            self._inbox.append(Picture(t, image))
            self._pictures_waiting += 1
            self._cond.notify()

    def close(self) -> None:
        """End open events, finish the current clip with what it has, join the writer."""
        if self._closed:
            return
        with self._tracker_lock:
            changes = self._tracker.finish()
            messages: list[_Message] = [
                _change(c, c.event.end) for c in changes if self.records(c.event.label)
            ]
        messages.append(_Stop())
        self._post(messages)
        self._closed = True
        self._thread.join(timeout=30.0)
        if self._thread.is_alive():
            self.log("record: the clip writer did not finish within 30 s (slow disk?)")

    def _post(self, messages: list[_Message]) -> None:
        if messages:
            with self._cond:
                self._inbox.extend(messages)
                self._cond.notify()

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        writer = self._writer
        while True:
            with self._cond:
                while not self._inbox:
                    self._cond.wait()
                message = self._inbox.popleft()
                if isinstance(message, Picture):
                    self._pictures_waiting -= 1
            try:
                if isinstance(message, _Stop):
                    writer.finish()
                elif isinstance(message, Picture):
                    writer.on_picture(message)
                else:
                    writer.on_change(message)
            except Exception as e:  # never let one bad clip end the recorder
                writer.fail(e)
            if isinstance(message, _Stop):
                return
