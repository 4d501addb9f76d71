"""Event clips (``--record DIR``): an MP4 of each action, with a few seconds before and after.

:class:`ClipRecorder` is a :class:`~movinet_pi.outputs.FrameSink`:

* ``on_step`` (inference thread) feeds the step's shown list to an
  :class:`~movinet_pi.events.EventTracker`; starts, updates and ends of the
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

Files appear atomically: the video is written as ``DIR/.NAME.part.mp4`` (the
``.mp4`` must stay last, as OpenCV picks the container from the extension) and
renamed to ``DIR/NAME.mp4`` when complete, then ``DIR/NAME.json`` (label, start,
end, peak, mean, frames, fps, files, ...) is written the same way. Names are
``YYYYmmdd-HHMMSS_label-slug.mp4`` by the wall clock at the clip's start. With
``max_mb``, the oldest clips (and their sidecars) are deleted once the
directory's clips add up to more.

Memory bound: the ring keeps ``pre_seconds + RING_SLACK_S`` of pictures at
``max_fps`` and the hand-over at most ``queue_frames`` more, each at most
``max_width`` wide as raw BGR. With the defaults (3 s pre-roll, 15 fps, 640 px,
queue of 30) and a 4:3 picture (640x480x3 = 0.92 MB):
(3.5 s x 15 + 30) = 83 frames x 0.92 MB = about 76 MB at most (57 MB for 16:9).
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
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol, Union

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.events import EventChange, EventTracker
from movinet_pi.log import say
from movinet_pi.outputs import StepResult
from movinet_pi.timing import FrameSampler

#: Extra seconds of pictures the ring keeps beyond the pre-roll: the display
#: runs ahead of the model, so an event's start arrives after newer pictures.
RING_SLACK_S = 0.5
#: Timestamps this close count as equal (30 fps files have 0.19999... s frames).
EPS = 1e-6
MB = 1024 * 1024
#: (fourcc, extension) to try, in order: MP4 first, Motion-JPEG AVI where the
#: OpenCV build has no MP4 writer (AVI/MJPG is built into OpenCV itself).
CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))
_CLIP_NAME = re.compile(r"^\d{8}-\d{6}_.+\.(mp4|avi|json)$")


class VideoWriterLike(Protocol):
    def isOpened(self) -> bool: ...  # OpenCV's name

    def write(self, image: np.ndarray) -> bool | None: ...  # OpenCV 4.5 says None

    def release(self) -> None: ...


def open_video_writer(path: Path, fourcc: str, fps: float, size: tuple[int, int]
                      ) -> VideoWriterLike:
    """A ``cv2.VideoWriter`` (tests replace this to simulate failing disks)."""
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)


def _readable(path: Path) -> bool:
    """Whether a finished video opens and yields its first frame (one decode: cheap)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    cap = cv2.VideoCapture(str(path))
    try:
        return bool(cap.isOpened() and cap.read()[0])
    finally:
        cap.release()


def slug(label: str) -> str:
    """A label as a file-name part: ``arm wrestling`` -> ``arm-wrestling``."""
    text = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return text[:60] or "event"


def _atomic_write_text(path: Path, text: str) -> None:
    part = path.with_name(f".{path.name}.part")
    try:
        with open(part, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise


def _round(t: float | None) -> float | None:
    return None if t is None else round(t, 3)




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
class _EventSnapshot:
    """An event as it was at one step (events are mutated on the inference thread)."""

    id: int
    label: str
    start: float
    end: float | None  # None while it lasts
    peak: float
    mean: float
    steps: int
    json: dict[str, object]


@dataclass(frozen=True)
class _Change:
    kind: str  # start / update / end
    t: float  # the step's timestamp
    event: _EventSnapshot


def _change(change: EventChange, t: float) -> _Change:
    e = change.event
    end = e.end if change.kind == "end" else None
    snapshot = _EventSnapshot(e.id, e.label, e.start, end, e.peak, e.mean, e.steps,
                              change.to_json())
    return _Change(change.kind, t, snapshot)


class _Stop:
    pass


_Message = Union[_Picture, _Change, _Stop]


@dataclass
class _Clip:
    name: str  # without extension
    part: Path
    final: Path
    writer: VideoWriterLike
    fps: float
    size: tuple[int, int]
    first_t: float
    events: dict[int, _EventSnapshot] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)
    stop_after: float | None = None  # the source time after which it is done
    frames: int = 0
    first_picture_t: float | None = None
    last_picture_t: float | None = None
    dropped_at_start: int = 0
    failed: bool = False


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

        self._prepare_directory()
        self.fourcc, self.extension = self._probe_codec()

        self._tracker = EventTracker()
        self._tracker_lock = threading.Lock()
        self._cond = threading.Condition()
        self._inbox: deque[_Message] = deque()
        self._pictures_waiting = 0
        self._last_kept_t: float | None = None
        self._sampler = FrameSampler(max_fps) if max_fps else None
        self._closed = False
        # writer-thread state
        self._ring: deque[_Picture] = deque()
        self._clip: _Clip | None = None
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    # -- setup ----------------------------------------------------------------------------
    def _prepare_directory(self) -> None:
        where = f"--record {self.directory}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MovinetPiError(f"{where}: cannot create the directory: {e.strerror or e}"
                                 ) from None
        if not self.directory.is_dir():
            raise MovinetPiError(f"{where}: not a directory")
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=self.directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise MovinetPiError(f"{where}: cannot write there: {e.strerror or e}") from None
        free = shutil.disk_usage(self.directory).free
        if free < self.min_free_bytes:
            self.log(f"record: only {free // MB} MB free on {self.directory}: clips will be "
                     "skipped until there is more")
        for stale in self.directory.glob(".*.part*"):  # left by a crash: never complete
            with contextlib.suppress(OSError):
                stale.unlink()
                self.log(f"record: removed an unfinished file from before: {stale.name}")

    def _probe_codec(self) -> tuple[str, str]:
        """The first (fourcc, extension) that can really write a file here."""
        tiny = np.zeros((16, 16, 3), np.uint8)
        for fourcc, ext in CODECS:
            path = self.directory / f".codec-test.part{ext}"
            try:
                writer = open_video_writer(path, fourcc, 10.0, (16, 16))
                ok = writer.isOpened()
                if ok:
                    writer.write(tiny)
                writer.release()
                ok = ok and path.exists() and path.stat().st_size > 0
            except (cv2.error, OSError):
                ok = False
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
            if ok:
                if ext != CODECS[0][1]:
                    self.log(f"record: this OpenCV cannot write MP4 ({CODECS[0][0]}); "
                             f"clips are {fourcc} {ext} instead")
                return fourcc, ext
        raise MovinetPiError(
            f"--record {self.directory}: OpenCV can write neither MP4 (mp4v) nor AVI (MJPG) "
            "video here (is the disk full? is this opencv build without video writing?)"
        )

    def memory_bound_bytes(self, height_for_width: float = 0.75) -> int:
        """Most bytes of pictures held at once (ring + hand-over), for a picture aspect."""
        fps = self.max_fps or 30.0  # unlimited: assume a 30 fps source
        frames = (self.pre_seconds + RING_SLACK_S) * fps + self.queue_frames
        w = self.max_width
        return int(frames * w * round(w * height_for_width) * 3)

    # -- the sink (called on the pipeline's threads) ---------------------------------------
    def records(self, label: str) -> bool:
        return not self.labels or label.lower() in self.labels

    def on_step(self, result: StepResult) -> None:
        with self._tracker_lock:
            changes = self._tracker.update(result.t, result.top)
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
        keep_from = picture.t - self.pre_seconds - RING_SLACK_S
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
            if change.kind == "start":
                start = change.t - self.pre_seconds - EPS
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
        """The clip's frame rate, from the pictures' own timestamps."""
        ts = [p.t for p in pictures] if len(pictures) >= 2 else [p.t for p in self._ring]
        if len(ts) >= 2 and ts[-1] > ts[0]:
            return float(min(60.0, max(1.0, (len(ts) - 1) / (ts[-1] - ts[0]))))
        return float(self.max_fps or 15.0)

    def _size_for(self, pictures: list[_Picture]) -> tuple[int, int]:
        if pictures:
            image: np.ndarray | None = pictures[0].image
        else:
            image = self._ring[-1].image if self._ring else None
        if image is None:
            return (self.max_width, round(self.max_width * 0.75))
        h, w = image.shape[:2]
        return (w - w % 2, h - h % 2)  # mp4v wants even sizes

    def _start_clip(self, events: list[_EventSnapshot], t: float, pictures: list[_Picture]
                    ) -> None:
        label = events[0].label
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name, n = f"{stamp}_{slug(label)}", 2
        while any((self.directory / f"{name}{ext}").exists() for ext in (self.extension, ".json")):
            name, n = f"{stamp}_{slug(label)}-{n}", n + 1
        final = self.directory / f"{name}{self.extension}"
        part = self.directory / f".{name}.part{self.extension}"
        # Until its writer is open the clip records nothing, but it still follows its
        # events, so a clip that cannot be written ends when they do, like any other.
        clip = _Clip(name, part, final, _NullWriter(), self._estimate_fps(pictures),
                     self._size_for(pictures), t,
                     events={e.id: e for e in events}, active={e.id for e in events},
                     dropped_at_start=self.stats.frames_dropped, failed=True)
        self._clip = clip
        free = shutil.disk_usage(self.directory).free
        if free < self.min_free_bytes:
            self.stats.clips_failed += 1
            self.log(f"record: not recording {label!r}: only {free // MB} MB free on "
                     f"{self.directory}")
            return
        writer = open_video_writer(part, self.fourcc, clip.fps, clip.size)
        if not writer.isOpened():
            writer.release()
            raise OSError(f"cannot open {part} for writing")
        clip.writer, clip.failed = writer, False
        for picture in pictures:
            self._write(clip, picture)

    def _write(self, clip: _Clip, picture: _Picture) -> None:
        if clip.failed:
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
        clip.writer.release()
        clip.writer = _NullWriter()
        if clip.frames == 0:
            clip.part.unlink(missing_ok=True)
            self._clip = None
            self.log(f"record: {clip.name}: no pictures arrived; nothing written")
            return
        if not _readable(clip.part):  # a full disk truncates silently: MP4's index comes last
            raise OSError(f"{clip.part.name} cannot be read back after writing (disk full?)")
        sidecar = clip.final.with_suffix(".json")
        os.replace(clip.part, clip.final)
        _atomic_write_text(sidecar, json.dumps(self._sidecar(clip), indent=2) + "\n")
        self._clip = None
        self.stats.clips_written += 1
        self.clips.append(clip.final)
        self.log(f"record: wrote {clip.final} ({clip.frames} frames, "
                 f"{clip.frames / clip.fps:.1f} s)")
        self._enforce_max_bytes(keep=clip.final)

    def _sidecar(self, clip: _Clip) -> dict[str, object]:
        events = [clip.events[i] for i in sorted(clip.events)]
        first = events[0]
        steps = sum(e.steps for e in events)
        mean = sum(e.mean * e.steps for e in events) / steps if steps else 0.0
        ends = [e.end for e in events]
        return {
            "label": first.label,
            "labels": sorted({e.label for e in events}),
            "start": round(first.start, 3),
            "end": None if any(t is None for t in ends) else round(max(ends), 3),  # type: ignore[type-var]
            "peak": round(max(e.peak for e in events), 5),
            "mean": round(mean, 5),
            "frames": clip.frames,
            "clip_start": _round(clip.first_picture_t),  # source times of its first and
            "clip_end": _round(clip.last_picture_t),  # last pictures
            "fps": round(clip.fps, 3),
            "duration_s": round(clip.frames / clip.fps, 3),
            "width": clip.size[0],
            "height": clip.size[1],
            "pre_seconds": self.pre_seconds,
            "post_seconds": self.post_seconds,
            "dropped_frames": self.stats.frames_dropped - clip.dropped_at_start,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": {"video": clip.final.name, "sidecar": clip.final.with_suffix(".json").name},
            "events": [e.json for e in events],
        }

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
        for path in (clip.part, clip.final, clip.final.with_suffix(".json")):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        clip.writer, clip.failed = _NullWriter(), True
        if clip.stop_after is not None or not clip.active:
            self._clip = None  # it was ending anyway: the next event starts a fresh clip

    def _enforce_max_bytes(self, keep: Path) -> None:
        if self.max_bytes is None:
            return
        groups: dict[str, list[Path]] = {}
        for path in self.directory.iterdir():
            if _CLIP_NAME.match(path.name) and path.is_file():
                groups.setdefault(path.stem, []).append(path)

        def size(paths: list[Path]) -> int:
            return sum(p.stat().st_size for p in paths if p.exists())

        total = sum(size(paths) for paths in groups.values())
        # oldest first: the name starts with the time; the modification time breaks ties
        order = sorted(groups, key=lambda stem: (min(p.stat().st_mtime for p in groups[stem]),
                                                 stem))
        for stem in order:
            if total <= self.max_bytes:
                break
            if stem == keep.stem:
                continue
            total -= size(groups[stem])
            for path in groups[stem]:
                with contextlib.suppress(OSError):
                    path.unlink()
            self.stats.clips_deleted += 1
            self.log(f"record: deleted {stem} (over --record-max-mb)")
        if total > self.max_bytes:
            self.log(f"record: {keep.name} alone is over --record-max-mb; kept it")


class _NullWriter:
    """Stands in for a writer that could not be opened or has failed."""

    def isOpened(self) -> bool:  # OpenCV's name
        return False

    def write(self, image: np.ndarray) -> bool | None:
        return None

    def release(self) -> None:
        pass
