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
* the writer thread owns everything else: the pre-roll ring buffer, the open
  ``cv2.VideoWriter``, the files.

Timing is on the source's clock (the ``t`` of frames and steps), so a clip
holds the pictures from ``pre_seconds`` before the first step that showed the
label to ``post_seconds`` after the step on which it was gone. Another recorded
event starting meanwhile (or during the post-roll) extends the same clip; a
clip longer than ``max_clip_seconds`` is closed and a new one begun.

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
next event tries again. Failing means: a write that raises or that OpenCV
reports as failed, or a finished file that cannot be read back (a full disk
truncates an MP4 silently on OpenCV builds whose ``write`` returns nothing, and
the MP4 index is written last). No clip is started with less than
``min_free_mb`` free on the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Union

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.outputs import clip_files  # clip_files.open_video_writer: looked up per clip
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.clip_files import (
    MB,
    Clip,
    EventSnapshot,
    NullWriter,
    atomic_write_text,
    claim_parts,
    enforce_max_bytes,
    even_size,
    frame_rate,
    part_sidecar,
    prepare_directory,
    probe_codec,
    readable,
    slug,
)
from movinet_pi.outputs.events import EventChange, EventTracker
from movinet_pi.timing import FrameSampler

#: Extra seconds of pictures the ring keeps beyond the pre-roll: the display
#: runs ahead of the model, so an event's start arrives after newer pictures.
RING_SLACK_S = 0.5
#: Timestamps this close count as equal (30 fps files have 0.19999... s frames).
EPS = 1e-6

@dataclass
class RecorderStats:
    clips_written: int = 0
    clips_failed: int = 0
    clips_deleted: int = 0
    frames_written: int = 0
    frames_dropped: int = 0  # the writer was behind: pictures never handed over


# -- messages from the sink's threads to the writer thread ------------------------------------
@dataclass(frozen=True)
class _Picture:
    t: float
    image: np.ndarray


@dataclass(frozen=True)
class _Change:
    kind: str  # start / update / end
    t: float  # the step's timestamp
    event: EventSnapshot


def _change(change: EventChange, t: float) -> _Change:
    e = change.event
    end = e.end if change.kind == "end" else None
    snapshot = EventSnapshot(e.id, e.label, e.start, end, e.peak, e.mean, e.steps,
                              change.to_json())
    return _Change(change.kind, t, snapshot)


class _Stop:
    pass


_Message = Union[_Picture, _Change, _Stop]


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
        # writer-thread state
        self._ring: deque[_Picture] = deque()
        self._clip: Clip | None = None
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
            self._inbox.append(_Picture(t, image))
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
        while True:
            with self._cond:
                while not self._inbox:
                    self._cond.wait()
                message = self._inbox.popleft()
                if isinstance(message, _Picture):
                    self._pictures_waiting -= 1
            try:
                if isinstance(message, _Stop):
                    self._finish_clip()
                elif isinstance(message, _Picture):
                    self._on_picture(message)
                else:
                    self._on_change(message)
            except Exception as e:  # never let one bad clip end the recorder
                self._fail_clip(e)
            if isinstance(message, _Stop):
                return

    def _on_picture(self, picture: _Picture) -> None:
        ring = self._ring
        if ring and picture.t < ring[-1].t - 1.0:
            ring.clear()  # the source restarted (a reset, a reconnect): old pictures are stale
        ring.append(picture)
        keep_from = picture.t - self._ring_s
        while ring and ring[0].t < keep_from - EPS:
            ring.popleft()
        clip = self._clip
        if clip is None:
            return
        if clip.stop_after is not None and picture.t > clip.stop_after + EPS:
            self._finish_clip()
        elif clip.stop_after is None and picture.t - clip.first_t > self.max_clip_seconds + EPS:
            # Too long: close it and go on in a new clip (no pre-roll: it is in this one).
            # (Only while events last: a post-roll always ends its own clip.)
            active = [clip.events[i] for i in sorted(clip.active)]
            self._finish_clip()
            if active:
                self._start_clip(active, picture.t, [picture])
        else:
            self._write(clip, picture)

    def _on_change(self, change: _Change) -> None:
        event = change.event
        clip = self._clip
        if clip is None:
            if change.kind == "start":  # (told once shown for event_min_s: dated back)
                start = event.start - self.pre_seconds - EPS
                self._start_clip([event], change.t, [p for p in self._ring if p.t >= start])
            return  # an update or end of an event whose clip is already done
        if change.kind == "start":
            clip.events[event.id] = event
            clip.active.add(event.id)
            clip.stop_after = None  # a new event during the post-roll extends the clip
        elif event.id in clip.events:
            clip.events[event.id] = event
            if change.kind == "end" and event.id in clip.active:
                clip.active.discard(event.id)
                if not clip.active:
                    clip.stop_after = change.t + self.post_seconds

    def _estimate_fps(self, pictures: list[_Picture]) -> float:
        """The clip's frame rate, from its pictures' timestamps (else the ring's)."""
        ts = [p.t for p in pictures] if len(pictures) >= 2 else [p.t for p in self._ring]
        return frame_rate(ts, float(self.max_fps or 15.0))

    def _size_for(self, pictures: list[_Picture]) -> tuple[int, int] | None:
        """The clip's size, from its first picture (else the newest one seen); None
        before any picture has arrived."""
        source = pictures[0] if pictures else (self._ring[-1] if self._ring else None)
        return None if source is None else even_size(source.image)

    def _free_name(self, stamp: str, label: str) -> str:
        name, n = f"{stamp}_{slug(label)}", 2
        while any((self.directory / f"{name}{ext}").exists() for ext in (self.extension, ".json")):
            name, n = f"{stamp}_{slug(label)}-{n}", n + 1
        return name

    def _start_clip(self, events: list[EventSnapshot], t: float, pictures: list[_Picture]
                    ) -> None:
        label = events[0].label
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = self._free_name(stamp, label)
        final = self.directory / f"{name}{self.extension}"
        part = self.directory / f".{name}.part{self.extension}"
        size = self._size_for(pictures)
        # Until its writer is open the clip records nothing, but it still follows its
        # events, so a clip that cannot be written ends when they do, like any other.
        clip = Clip(name, part, final, NullWriter(), self._estimate_fps(pictures),
                     size or (0, 0), t,
                     events={e.id: e for e in events}, active={e.id for e in events},
                     dropped_at_start=self.stats.frames_dropped, failed=True, stamp=stamp)
        self._clip = clip
        free = shutil.disk_usage(self.directory).free
        if free < self.min_free_bytes:
            self.stats.clips_failed += 1
            self.log(f"record: not recording {label!r}: only {free // MB} MB free on "
                     f"{self.directory}")
            return
        clip.failed = False
        if size is None:  # the event began with the first picture: open on its arrival
            clip.waiting = True
            return
        self._open_writer(clip)
        for picture in pictures:
            self._write(clip, picture)

    def _open_writer(self, clip: Clip) -> None:
        claim_parts(clip.part, clip.final.with_suffix(".json"))  # ours, should we crash
        writer = clip_files.open_video_writer(clip.part, self.fourcc, clip.fps, clip.size)
        if not writer.isOpened():
            writer.release()
            raise OSError(f"cannot open {clip.part} for writing")
        clip.writer, clip.waiting = writer, False

    def _write(self, clip: Clip, picture: _Picture, force: bool = False) -> None:
        """Write a picture to the clip; a clip begun before any picture holds its first
        until a second gives the frame rate (``force``: open with what it has)."""
        if clip.failed:
            return
        if clip.waiting:
            clip.pending.append(picture)
            if len(clip.pending) < 2 and not force:
                return  # one picture tells the size, not the frame rate
            pending, clip.pending = clip.pending, []
            clip.size = self._size_for(pending) or clip.size
            clip.fps = self._estimate_fps(pending)
            self._open_writer(clip)
            for held in pending:
                self._write(clip, held)
            return
        image = picture.image
        if (image.shape[1], image.shape[0]) != clip.size:
            image = cv2.resize(image, clip.size, interpolation=cv2.INTER_AREA)
        if clip.writer.write(image) is False:  # newer OpenCV says so; older ones say nothing
            raise OSError("cannot write a frame (disk full?)")
        clip.frames += 1
        if clip.first_picture_t is None:
            clip.first_picture_t = picture.t
        clip.last_picture_t = picture.t
        self.stats.frames_written += 1

    def _finish_clip(self) -> None:
        clip = self._clip
        if clip is None:
            return
        if clip.failed:
            self._clip = None
            return
        if clip.waiting and clip.pending:  # a single picture: open with the default rate
            self._write(clip, clip.pending.pop(), force=True)
        clip.writer.release()
        clip.writer = NullWriter()
        if clip.frames == 0:
            clip.part.unlink(missing_ok=True)
            part_sidecar(clip.part).unlink(missing_ok=True)
            self._clip = None
            self.log(f"record: {clip.name}: no pictures arrived; nothing written")
            return
        if not readable(clip.part):  # a full disk truncates silently: MP4's index comes last
            raise OSError(f"{clip.part.name} cannot be read back after writing (disk full?)")
        top = clip.top_event().label
        if slug(top) != slug(clip.events[min(clip.events)].label):
            # overlapping events: the clip is named after the one with the highest peak
            clip.name = self._free_name(clip.stamp, top)
            clip.final = self.directory / f"{clip.name}{self.extension}"
            claim_parts(clip.part, clip.final.with_suffix(".json"))
        sidecar = clip.final.with_suffix(".json")
        os.replace(clip.part, clip.final)
        sidecar_json = clip.sidecar(self.pre_seconds, self.post_seconds, self.stats.frames_dropped)
        atomic_write_text(sidecar, json.dumps(sidecar_json, indent=2) + "\n")
        part_sidecar(clip.part).unlink(missing_ok=True)
        self._clip = None
        self.stats.clips_written += 1
        self.clips.append(clip.final)
        self.log(f"record: wrote {clip.final} ({clip.frames} frames, "
                 f"{clip.frames / clip.fps:.1f} s)")
        if self.max_bytes is not None:
            self.stats.clips_deleted += enforce_max_bytes(self.directory, self.max_bytes,
                                                          clip.final, self.log)

    def _fail_clip(self, error: Exception) -> None:
        """Log, remove the clip's files, and let the rest of its events go unrecorded."""
        self.stats.clips_failed += 1
        clip = self._clip
        if clip is None:
            self.log(f"record: {error}")
            return
        self.log(f"record: {clip.name} failed, removed its files: {error}")
        with contextlib.suppress(Exception):
            clip.writer.release()
        for path in (clip.part, part_sidecar(clip.part), clip.final,
                     clip.final.with_suffix(".json")):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        clip.writer, clip.failed = NullWriter(), True
        if clip.stop_after is not None or not clip.active:
            self._clip = None  # it was ending anyway: the next event starts a fresh clip
