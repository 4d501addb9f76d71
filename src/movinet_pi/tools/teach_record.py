"""``movinet-pi teach --record LABEL``: record examples of a new action for ``teach``.

From a camera, after a countdown; from a video file, each take the next stretch of it
(``name@START-ENDs.mp4``), so that one long file gives several examples. A take is written
to a hidden file and renamed into ``DIR/LABEL/`` only when whole.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from movinet_pi.errors import MovinetPiError
from movinet_pi.progress import counted

PROG = "movinet-pi teach"  # the prefix of its messages, and of teach's


RECORD_FPS = 15.0
#: The shortest take: teach leaves each clip's first second out (the stream settling), so a
#: take needs a second more to give any examples.
SHORTEST_TAKE_S = 2.0
DEFAULT_TAKE_S = 8.0  # long enough for a few repeats of most actions
DEFAULT_COUNTDOWN = 3  # seconds to step in front of the camera
#: A take from a file is named after the stretch it holds: ``squat@4.00-8.00s.mp4`` (to
#: 0.01 s: a frame of a 60 fps file is 0.017 s long).
_TAKE_RE = re.compile(r"@(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)s\.mp4$")


def next_stretch(clip_dir: Path, file_stem: str) -> float:
    """Where the next take from a file starts: where the takes from it so far (in any
    class folder of ``clip_dir``) end, else at its start."""
    ends = [float(m.group(2)) for p in clip_dir.glob(f"*/{glob.escape(file_stem)}@*s.mp4")
            if (m := _TAKE_RE.search(p.name))]
    return max(ends, default=0.0)


def record_clip(clip_dir: Path, label: str, seconds: float, source_spec: str | None = None,
                *, countdown: int = DEFAULT_COUNTDOWN, err: TextIO | None = None) -> Path:
    """Record ``seconds`` of the camera (or any source) into ``clip_dir/label/`` as an
    example of ``label``; the clip's path. A camera gets a countdown on ``err`` first; a
    file gives each take the next stretch of it (``name@START-ENDs.mp4``). A take that
    fails leaves no folder it made behind."""
    err = err if err is not None else sys.stderr
    if not label.strip() or "/" in label or label.startswith("."):
        raise MovinetPiError(f"--record {label!r}: give the new action's name, e.g. waving")
    folder = clip_dir / label.strip()
    made = _make_folders(folder)
    try:
        path, length, short = _record(clip_dir, folder, label, seconds, source_spec,
                                      countdown, err)
    except BaseException:  # no clip: an empty class folder would stop the next teach
        for created in made:
            with contextlib.suppress(OSError):
                created.rmdir()  # (only when empty)
        raise
    clips = sum(1 for _ in folder.glob("*.mp4"))
    held = f"; {length:.1f} s, where the file ends" if short else ""
    err.write(f"{PROG}: saved {path} ({counted(clips, 'clip')} of {label!r} now{held})\n")
    return path


def _make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` (and its parents); the ones made, innermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MovinetPiError(f"cannot make {folder} ({e.strerror or e}): record into a "
                             "folder you can write to") from None
    return missing


def _record(clip_dir: Path, folder: Path, label: str, seconds: float,
            source_spec: str | None, countdown: int, err: TextIO) -> tuple[Path, float, bool]:
    """Record one take into ``folder``: its path, its length, and whether the file ended
    before ``seconds``."""
    from movinet_pi.sources.open import open_source

    with open_source(source_spec) as source:
        if source.live:
            start = None
            for n in range(countdown, 0, -1):
                err.write(f"{PROG}: recording {label!r} in {n}...\n")
                err.flush()
                time.sleep(1.0)
            err.write(f"{PROG}: recording {label!r} for {seconds:g} s: do it now\n")
        else:
            start = _file_start(clip_dir, source, seconds, label, err)
        err.flush()
        part = folder / f".recording-{os.getpid()}.mp4"
        try:
            length = _write_take(source, part, seconds, start)
            short = start is not None and length < seconds - 0.5 / (source.fps or RECORD_FPS)
            if short and length < SHORTEST_TAKE_S:  # (the file's own length was wrong)
                raise _too_short(Path(source.path).name, start or 0.0, start + length,
                                 clip_dir)
            path = _take_path(folder, source, start, length)
            os.replace(part, path)
        finally:
            with contextlib.suppress(OSError):
                part.unlink()
    return path, length, short


def _file_start(clip_dir: Path, source: Any, seconds: float, label: str, err: TextIO) -> float:
    """Where a take from a file starts (after the takes before it), said on ``err``; a file
    with less than :data:`SHORTEST_TAKE_S` left after them is refused."""
    name = Path(source.path).name
    start = next_stretch(clip_dir, Path(source.path).stem)
    if source.duration is not None and source.duration - start < SHORTEST_TAKE_S:
        raise _too_short(name, start, source.duration, clip_dir)
    err.write(f"{PROG}: recording {label!r} from {name}, {start:.1f} s to "
              f"{start + seconds:.1f} s\n")
    return start


def _too_short(name: str, start: float, length: float, clip_dir: Path) -> MovinetPiError:
    """What is left of a file after its takes is too short to teach from."""
    least = f"too short to teach from (at least {SHORTEST_TAKE_S:g} s)"
    if start <= 0.0:
        return MovinetPiError(f"{name} is {length:.1f} s long, {least}: record from a longer "
                              "file")
    return MovinetPiError(f"the takes from {name} hold it up to {start:.1f} s of its "
                          f"{length:.1f} s, and what is left is {least}: record from another "
                          f"file, or move its takes out of {clip_dir}")


def _take_path(folder: Path, source: Any, start: float | None, length: float) -> Path:
    """A free name for a take: the time it was recorded (a camera), else the file's name and
    the stretch it holds."""
    stem = (time.strftime("%Y%m%d-%H%M%S") if start is None
            else f"{Path(source.path).stem}@{start:.2f}-{start + length:.2f}s")
    path, n = folder / f"{stem}.mp4", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.mp4"
    return path


def _write_take(source: Any, path: Path, seconds: float, start: float | None) -> float:
    """Write ``seconds`` of ``source`` (from ``start`` s into a file, else from now) to
    ``path`` at RECORD_FPS; the seconds of the source it holds. A camera that stops early
    has its last picture held to the end; a file's take ends with the file."""
    import cv2

    writer = None
    first = None if start is None else start
    tick = 0  # the clip is written at RECORD_FPS: frames dropped or held to match
    bgr = None
    length = seconds  # (unless the file ends first)
    try:
        frame = source.read() if start is None else source.read_from(start)[0]
        while frame is not None:
            first = frame.timestamp if first is None else first
            t = frame.timestamp - first
            if t >= seconds:
                break
            length = t + 1.0 / (source.fps or RECORD_FPS)
            if writer is None:
                h, w = frame.rgb.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"),
                                         RECORD_FPS, (w, h))
                if not writer.isOpened():
                    raise MovinetPiError(f"cannot write {path}", exit_code=1)
            bgr = None
            while tick / RECORD_FPS <= t:
                bgr = cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR) if bgr is None else bgr
                writer.write(bgr)
                tick += 1
            frame = source.read()
        while start is None and tick / RECORD_FPS < seconds and bgr is not None:
            writer.write(bgr)  # (a camera that stopped: hold its last picture to the end)
            tick += 1
    finally:
        if writer is not None:
            writer.release()
    if writer is None:
        raise MovinetPiError("the source gave no frames to record", exit_code=1)
    return seconds if frame is not None else min(seconds, length)
