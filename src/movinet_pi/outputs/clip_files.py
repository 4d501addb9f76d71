"""Event clip files on disk: a clip being written, its sidecar, names, safe writes, size cap.

Files appear atomically: the video is written as ``DIR/.NAME.part.mp4`` (the
``.mp4`` must stay last, as OpenCV picks the container from the extension) and
renamed to ``DIR/NAME.mp4`` when complete, then ``DIR/NAME.json`` (label, start,
end, peak, mean, frames, fps, files, ...) is written the same way (as
``DIR/.NAME.json.part`` first). Before the video is opened, its part's sidecar
``DIR/.NAME.part.json`` names these temporary files as this app's; it goes when they
do. A crash leaves all three: at the next start, only the files such a sidecar names,
and that match these names, are removed, never another hidden ``.part`` file. Names are
``YYYYmmdd-HHMMSS_label-slug.mp4`` by the wall clock at the clip's start. With a
size cap, the oldest clips (and their sidecars) are deleted once the
directory's clips add up to more; only clips this app wrote count and go: those
whose sidecar it wrote (``"app": "movinet-pi"`` and the ``files`` it names),
never other files that happen to match the name pattern.
:mod:`movinet_pi.outputs.clip_writer` decides when clips start and end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError

MB = 1024 * 1024
#: (fourcc, extension) to try, in order: MP4 first, Motion-JPEG AVI where the
#: OpenCV build has no MP4 writer (AVI/MJPG is built into OpenCV itself).
CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))
CLIP_NAME = re.compile(r"^\d{8}-\d{6}_.+\.(mp4|avi|json)$")
#: NAME: the wall-clock time at the clip's start and its label's slug (``-2``, ... if taken).
NAME = r"\d{8}-\d{6}_[a-z0-9-]+"
#: A clip's part's sidecar, ``.NAME.part.json``, and the temporary sidecar it may name.
PART_SIDECAR = re.compile(rf"^\.({NAME})\.part\.json$")
TEMPORARY_SIDECAR = re.compile(rf"^\.({NAME})\.json\.part$")
#: What a sidecar says it was written by: the size cap deletes only such clips.
APP = "movinet-pi"


class VideoWriterLike(Protocol):
    def isOpened(self) -> bool: ...  # OpenCV's name

    def write(self, image: np.ndarray) -> bool | None: ...  # OpenCV 4.5 says None

    def release(self) -> None: ...


def open_video_writer(path: Path, fourcc: str, fps: float, size: tuple[int, int]
                      ) -> VideoWriterLike:
    """A ``cv2.VideoWriter`` (tests replace this to simulate failing disks: the recorder
    looks it up here for every clip)."""
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)


class NullWriter:
    """Stands in for a writer that could not be opened or has failed."""

    def isOpened(self) -> bool:  # OpenCV's name
        return False

    def write(self, image: np.ndarray) -> bool | None:
        return None

    def release(self) -> None:
        pass


@dataclass(frozen=True)
class EventSnapshot:
    """An event as it was at one step (events are mutated on the inference thread)."""

    id: int
    label: str
    start: float
    end: float | None  # None while it lasts
    peak: float
    mean: float
    steps: int
    json: dict[str, object]


@dataclass
class Clip:
    """A clip being written: its files, its writer, the events it holds."""

    name: str  # without extension
    part: Path
    final: Path
    writer: VideoWriterLike
    fps: float
    size: tuple[int, int]
    first_t: float
    events: dict[int, EventSnapshot] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)
    stop_after: float | None = None  # the source time after which it is done
    frames: int = 0
    first_picture_t: float | None = None
    last_picture_t: float | None = None
    dropped_at_start: int = 0
    failed: bool = False
    waiting: bool = False  # begun before any picture: the writer opens once two give size and fps
    pending: list = field(default_factory=list)  # pictures held until then
    stamp: str = ""  # the wall-clock part of its name
    checked_t: float = float("-inf")  # when its size and the disk's free space were looked at

    def top_event(self) -> EventSnapshot:
        """The event with the highest peak (the first one on a tie): the clip's name."""
        events = [self.events[i] for i in sorted(self.events)]
        return max(events, key=lambda e: e.peak)

    def sidecar(self, pre_seconds: float, post_seconds: float,
                frames_dropped: int) -> dict[str, object]:
        """What the clip's JSON sidecar says (``frames_dropped``: the recorder's count so far)."""
        events = [self.events[i] for i in sorted(self.events)]
        first = events[0]
        top = self.top_event()
        steps = sum(e.steps for e in events)
        mean = sum(e.mean * e.steps for e in events) / steps if steps else 0.0
        ends = [e.end for e in events]
        return {
            "app": APP,
            "label": top.label,
            "labels": sorted({e.label for e in events}),
            "start": round(first.start, 3),
            "end": None if any(t is None for t in ends) else round(max(ends), 3),  # type: ignore[type-var]
            "peak": round(max(e.peak for e in events), 5),
            "mean": round(mean, 5),
            "frames": self.frames,
            "clip_start": _rounded(self.first_picture_t),  # source times of its first and
            "clip_end": _rounded(self.last_picture_t),  # last pictures
            "fps": round(self.fps, 3),
            "duration_s": round(self.frames / self.fps, 3),
            "width": self.size[0],
            "height": self.size[1],
            "pre_seconds": pre_seconds,
            "post_seconds": post_seconds,
            "dropped_frames": frames_dropped - self.dropped_at_start,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": {"video": self.final.name, "sidecar": self.final.with_suffix(".json").name},
            "events": [e.json for e in events],
        }


def readable(path: Path) -> bool:
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


def temporary_name(path: Path) -> str:
    """Where :func:`atomic_write_text` writes ``path`` first: ``.NAME.json.part``."""
    return f".{path.name}.part"


def atomic_write_text(path: Path, text: str) -> None:
    part = path.with_name(temporary_name(path))
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


def _rounded(t: float | None) -> float | None:
    return None if t is None else round(t, 3)


def part_sidecar(part: Path) -> Path:
    """The sidecar of a video being written: ``.NAME.part.json`` beside ``.NAME.part.mp4``."""
    return part.with_suffix(".json")


def claim_parts(part: Path, sidecar: Path | None = None) -> None:
    """Write ``part``'s sidecar, naming ``part`` and ``sidecar``'s temporary file as this
    app's (called again when the clip's final name changes)."""
    names = [part.name] + ([temporary_name(sidecar)] if sidecar is not None else [])
    with open(part_sidecar(part), "w", encoding="utf-8") as f:
        f.write(json.dumps({"app": APP, "parts": names}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def claimed_parts(claim: Path) -> list[str] | None:
    """The temporary files a part's sidecar names, if this app wrote it (else None): only
    its own video part, and a temporary sidecar of a clip begun in the same second."""
    match = PART_SIDECAR.match(claim.name)
    if match is None or claim.is_symlink() or not claim.is_file():
        return None
    try:
        data = json.loads(claim.read_text(encoding="utf-8")) if claim.stat().st_size < MB \
            else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("app") != APP or not isinstance(
            data.get("parts"), list):
        return None
    name = match.group(1)
    videos = {f".{name}.part{ext}" for _, ext in CODECS}
    return [part for part in data["parts"] if isinstance(part, str) and (
        part in videos or ((m := TEMPORARY_SIDECAR.match(part)) is not None
                           and m.group(1)[:15] == name[:15]))]


def remove_unfinished(directory: Path, log: Callable[[str], None]) -> None:
    """Remove what a crash left: the files named by part's sidecars this app wrote, then
    those sidecars. Nothing else, whatever its name."""
    for claim in sorted(directory.glob(".*.part.json")):
        parts = claimed_parts(claim)
        if parts is None:
            continue
        for name in parts:
            path = directory / name
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                    log(f"record: removed an unfinished file from before: {name}")
        with contextlib.suppress(OSError):
            claim.unlink()


def check_takes_files(folder: Path) -> None:
    """Make and remove a file in ``folder``: OSError if it takes none (no permission, a
    read-only or pseudo file system), found before any work whose result would go there."""
    fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def prepare_directory(directory: Path, min_free_bytes: int, log: Callable[[str], None]) -> None:
    """Make ``directory``, check it takes files, warn when it is nearly full, and remove the
    unfinished files a crash left there (:func:`remove_unfinished`). MovinetPiError when it
    cannot be written."""
    where = f"--record {directory}"
    if directory.exists() and not directory.is_dir():
        raise MovinetPiError(f"{where}: is a file, not a folder: give --record a folder "
                             "for the clips")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MovinetPiError(f"{where}: cannot create the directory: {e.strerror or e}"
                             ) from None
    if not directory.is_dir():
        raise MovinetPiError(f"{where}: not a directory")
    try:
        check_takes_files(directory)
    except OSError as e:
        raise MovinetPiError(f"{where}: cannot write there: {e.strerror or e}") from None
    free = shutil.disk_usage(directory).free
    if free < min_free_bytes:
        log(f"record: only {free // MB} MB free on {directory}: clips will be "
                 "skipped until there is more")
    remove_unfinished(directory, log)


def probe_codec(directory: Path, log: Callable[[str], None]) -> tuple[str, str]:
    """The first (fourcc, extension) that can really write a file here."""
    tiny = np.zeros((16, 16, 3), np.uint8)
    for fourcc, ext in CODECS:
        path = directory / f".{time.strftime('%Y%m%d-%H%M%S')}_codec-test.part{ext}"
        try:
            claim_parts(path)
            writer = open_video_writer(path, fourcc, 10.0, (16, 16))
            ok = writer.isOpened()
            if ok:
                writer.write(tiny)
            writer.release()
            ok = ok and path.exists() and path.stat().st_size > 0
        except (cv2.error, OSError):
            ok = False
        finally:
            for written in (path, part_sidecar(path)):
                with contextlib.suppress(OSError):
                    written.unlink()
        if ok:
            if ext != CODECS[0][1]:
                log(f"record: this OpenCV cannot write MP4 ({CODECS[0][0]}); "
                         f"clips are {fourcc} {ext} instead")
            return fourcc, ext
    raise MovinetPiError(
        f"--record {directory}: OpenCV can write neither MP4 (mp4v) nor AVI (MJPG) "
        "video here (is the disk full? is this opencv build without video writing?)"
    )


def written_by_us(sidecar: Path) -> list[Path]:
    """A clip's files (video, sidecar) if ``sidecar`` is one this app wrote, else []."""
    try:
        if sidecar.stat().st_size > 10 * MB:
            return []
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("app") != APP:
        return []
    files = data.get("files")
    if not isinstance(files, dict) or files.get("sidecar") != sidecar.name:
        return []
    video = files.get("video")
    if (not isinstance(video, str) or Path(video).name != video
            or Path(video).stem != sidecar.stem or not CLIP_NAME.match(video)
            or video.endswith(".json")):
        return []
    paths = [sidecar]
    if (sidecar.parent / video).is_file():
        paths.insert(0, sidecar.parent / video)
    return paths


def enforce_max_bytes(directory: Path, max_bytes: int, keep: Path,
                      log: Callable[[str], None]) -> int:
    """Delete the oldest clips (video and sidecar) until the folder's clips add up to at
    most ``max_bytes``, never ``keep``; return how many were deleted."""
    deleted = 0
    groups: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        if path.suffix == ".json" and CLIP_NAME.match(path.name) and path.is_file():
            files = written_by_us(path)
            if files:
                groups[path.stem] = files

    def size(paths: list[Path]) -> int:
        return sum(p.stat().st_size for p in paths if p.exists())

    total = sum(size(paths) for paths in groups.values())
    # oldest first: the name starts with the time; the modification time breaks ties
    order = sorted(groups, key=lambda stem: (min(p.stat().st_mtime for p in groups[stem]),
                                             stem))
    for stem in order:
        if total <= max_bytes:
            break
        if stem == keep.stem:
            continue
        total -= size(groups[stem])
        for path in groups[stem]:
            with contextlib.suppress(OSError):
                path.unlink()
        deleted += 1
        log(f"record: deleted {stem} (over --record-max-mb)")
    if total > max_bytes:
        log(f"record: {keep.name} alone is over --record-max-mb; kept it")
    return deleted


def frame_rate(times: list[float], default: float) -> float:
    """Pictures a second from their timestamps, kept within 1..60; ``default`` when
    they cannot tell (fewer than two, or no time between them)."""
    if len(times) >= 2 and times[-1] > times[0]:
        return float(min(60.0, max(1.0, (len(times) - 1) / (times[-1] - times[0]))))
    return default


def even_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of ``image`` rounded down to even numbers: mp4v wants them."""
    h, w = image.shape[:2]
    return (w - w % 2, h - h % 2)
