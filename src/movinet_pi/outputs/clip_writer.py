"""The writer thread's side of ``--record``: the pre-roll ring, when a clip starts, grows,
splits and ends, its pictures into a video and its files into place.

:class:`ClipWriter` is driven by one thread only, the recorder's writer thread
(:class:`~movinet_pi.outputs.recording.ClipRecorder` hands it :class:`Picture` and
:class:`Change` messages); it owns the ring of recent pictures, the clip being written and
its ``cv2.VideoWriter``.

Timing is on the source's clock (the ``t`` of frames and steps), so a clip holds the
pictures from ``pre_seconds`` before the first step that showed the label to
``post_seconds`` after the step on which it was gone. Another recorded event starting
meanwhile (or during the post-roll) extends the same clip; a clip longer than
``max_clip_seconds``, or half of ``max_bytes``, is closed and a new one begun; on a disk
under ``min_free_bytes`` free, it is closed (kept) and none begun until the next event.

A failing clip (a write that raises or that OpenCV reports as failed, a finished file that
cannot be read back: a full disk truncates an MP4 silently on OpenCV builds whose ``write``
returns nothing, and the MP4 index is written last) is logged and its files removed
(:meth:`ClipWriter.fail`); the next event tries again. No clip is started with less than
``min_free_bytes`` free on the disk. Names, sidecars and the size cap are
:mod:`movinet_pi.outputs.clip_files`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from movinet_pi.outputs import clip_files  # clip_files.open_video_writer: looked up per clip
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
    readable,
    slug,
)

#: Timestamps this close count as equal (30 fps files have 0.19999... s frames).
EPS = 1e-6


@dataclass
class RecorderStats:
    clips_written: int = 0
    clips_failed: int = 0
    clips_deleted: int = 0
    frames_written: int = 0
    frames_dropped: int = 0  # the writer was behind: pictures never handed over


# -- messages from the recorder's threads to the writer thread --------------------------------
@dataclass(frozen=True)
class Picture:
    t: float
    image: np.ndarray


@dataclass(frozen=True)
class Change:
    kind: str  # start / update / end
    t: float  # the step's timestamp
    event: EventSnapshot


class ClipWriter:
    """The ring and the current clip, on the recorder's writer thread; see the module docs.

    ``stats`` and ``clips`` are the recorder's: ``stats.frames_dropped`` is counted by the
    recorder (read here for the sidecar), the rest here; ``clips`` gets every video written.
    """

    def __init__(
        self,
        directory: Path,
        fourcc: str,
        extension: str,
        *,
        pre_seconds: float,
        post_seconds: float,
        ring_s: float,
        max_fps: float | None,
        max_clip_seconds: float,
        max_bytes: int | None,
        min_free_bytes: int,
        stats: RecorderStats,
        clips: deque[Path],
        log: Callable[[str], None],
    ) -> None:
        self.directory = directory
        self.fourcc, self.extension = fourcc, extension
        self.pre_seconds = pre_seconds
        self.post_seconds = post_seconds
        self.ring_s = ring_s
        self.max_fps = max_fps
        self.max_clip_seconds = max_clip_seconds
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.stats = stats
        self.clips = clips
        self.log = log
        self._ring: deque[Picture] = deque()
        self._clip: Clip | None = None

    def on_picture(self, picture: Picture) -> None:
        ring = self._ring
        if ring and picture.t < ring[-1].t - 1.0:
            ring.clear()  # the source restarted (a reset, a reconnect): old pictures are stale
        ring.append(picture)
        keep_from = picture.t - self.ring_s
        while ring and ring[0].t < keep_from - EPS:
            ring.popleft()
        clip = self._clip
        if clip is None:
            return
        if clip.stop_after is not None and picture.t > clip.stop_after + EPS:
            self.finish()
        elif (ending := self._ends_here(clip, picture.t)) is not None:
            # Close it, kept, and go on in a new clip while its events last (no pre-roll: it
            # is in this one), but not on a nearly full disk.
            active = [clip.events[i] for i in sorted(clip.active)]
            self.finish()
            if active and ending != "disk":
                self._start_clip(active, picture.t, [picture])
        else:
            self._write(clip, picture)

    def _ends_here(self, clip: Clip, t: float) -> str | None:
        """Why the clip must end at ``t``, if it must: "long", over ``max_clip_seconds``
        (while its events last: a post-roll always ends its own clip); looked at once a
        second, "big", half of ``max_bytes`` (the oldest clips are deleted meanwhile, so
        that those kept and the one being written stay within the cap), or "disk", under
        ``min_free_bytes`` free (what is written is kept, rather than lost to a full disk)."""
        if clip.stop_after is None and t - clip.first_t > self.max_clip_seconds + EPS:
            return "long"
        if clip.failed or clip.waiting or t - clip.checked_t < 1.0:
            return None
        clip.checked_t = t
        with contextlib.suppress(OSError):
            if self.max_bytes is not None:
                size = clip.part.stat().st_size
                if size >= self.max_bytes / 2:
                    self.log(f"record: {clip.name} is half of --record-max-mb: it ends here")
                    return "big"
                self.stats.clips_deleted += enforce_max_bytes(
                    self.directory, self.max_bytes - size, clip.final, self.log)
            free = shutil.disk_usage(self.directory).free
            if free < self.min_free_bytes:
                self.log(f"record: {clip.name} ends here: only {free // MB} MB free on "
                         f"{self.directory}")
                return "disk"
        return None

    def on_change(self, change: Change) -> None:
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

    def _estimate_fps(self, pictures: list[Picture]) -> float:
        """The clip's frame rate, from its pictures' timestamps (else the ring's)."""
        ts = [p.t for p in pictures] if len(pictures) >= 2 else [p.t for p in self._ring]
        return frame_rate(ts, float(self.max_fps or 15.0))

    def _size_for(self, pictures: list[Picture]) -> tuple[int, int] | None:
        """The clip's size, from its first picture (else the newest one seen); None
        before any picture has arrived."""
        source = pictures[0] if pictures else (self._ring[-1] if self._ring else None)
        return None if source is None else even_size(source.image)

    def _free_name(self, stamp: str, label: str) -> str:
        name, n = f"{stamp}_{slug(label)}", 2
        while any((self.directory / f"{name}{ext}").exists() for ext in (self.extension, ".json")):
            name, n = f"{stamp}_{slug(label)}-{n}", n + 1
        return name

    def _start_clip(self, events: list[EventSnapshot], t: float, pictures: list[Picture]
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

    def _write(self, clip: Clip, picture: Picture, force: bool = False) -> None:
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

    def finish(self) -> None:
        """Finish the current clip with what it has: its video and sidecar into place."""
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

    def fail(self, error: Exception) -> None:
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
