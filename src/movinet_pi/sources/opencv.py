"""The sources OpenCV reads: video files (and animated GIFs), cameras by index, network streams."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.sources.base import Frame, Source, SourceLost, Timeline

#: Query parameters whose values are never shown in a source name.
_SECRET_QUERY_KEYS = ("pass", "pwd", "token", "key", "secret", "auth", "sig")

#: Fallback frame interval when a file does not say its frame rate.
_DEFAULT_STEP = 1.0 / 30.0


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """What OpenCV decoded (a new array per frame) as 3-channel BGR: as it is, normally;
    grey or BGRA converted, just in case. No conversion to RGB here: the window shows
    BGR, and the model converts only the frames it takes (:class:`Frame`)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _valid_fps(value: float) -> Optional[float]:
    return value if math.isfinite(value) and 0.0 < value < 1000.0 else None


class _CaptureSource(Source):
    """Shared machinery for the sources read through ``cv2.VideoCapture``."""

    def __init__(self, name: str, live: bool, step: float) -> None:
        self.name = name
        self.live = live
        self.fps: Optional[float] = None
        self.frame_size = (0, 0)
        self._cap: Optional[cv2.VideoCapture] = None
        self._pending: Optional[Frame] = None
        self._index = 0
        self._timeline = Timeline(step)
        self._closed = False

    def _raw_time(self, cap: cv2.VideoCapture) -> Optional[float]:
        """The raw clock reading (seconds) for the frame just read: for live captures,
        when it arrived (files override this with their presentation times)."""
        return time.monotonic()

    def _rewind(self) -> bool:
        """Start the source over at its end (a looping file); False: it ends."""
        return False

    def _grab(self) -> Optional[Frame]:
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok and self._rewind():
            ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        stamp = self._timeline.stamp(self._raw_time(self._cap))
        frame = Frame.from_bgr(_as_bgr(image), stamp, self._index)
        self._index += 1
        return frame

    def read_from(self, t: float) -> tuple[Optional[Frame], int]:
        if self.live or self._cap is None or self._closed:
            return super().read_from(t)
        passed = 0
        if self._pending is not None:
            if self._pending.timestamp + 1e-3 >= t:
                frame, self._pending = self._pending, None
                return frame, 0
            self._pending, passed = None, 1
        while True:
            cap = self._cap
            if not cap.grab():  # decode without converting the picture
                if not self._rewind() or not self._cap.grab():
                    break
                cap = self._cap
            stamp = self._timeline.stamp(self._raw_time(cap))
            index, self._index = self._index, self._index + 1
            if stamp + 1e-3 >= t:
                ok, image = cap.retrieve()
                if not ok or image is None or image.size == 0:
                    return None, passed
                return Frame.from_bgr(_as_bgr(image), stamp, index), passed
            passed += 1
        return None, passed

    def _start(self, cap: cv2.VideoCapture) -> bool:
        """Adopt an opened capture and read its first frame eagerly; False if none came."""
        self._cap = cap
        first = self._grab()
        if first is None:
            self._release()
            return False
        self._pending = first
        height, width = first.shape[:2]
        self.frame_size = (width, height)
        return True

    def read(self) -> Optional[Frame]:
        if self._closed:
            raise ValueError(f"read from closed source {self.name}")
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        frame = self._grab() if self._cap is not None else None
        if frame is None and self.live:
            self._release()
            raise SourceLost(self._lost_message())
        return frame

    def _lost_message(self) -> str:
        return f"{self.name} stopped delivering frames"

    def _connect(self) -> bool:
        """(Re)open a live capture and read its first frame; False if none came."""
        raise NotImplementedError

    def _reconnect(self, still_lost: str) -> None:
        """Reopen a live capture from scratch; SourceLost(``still_lost``) if it still fails."""
        self._release()
        self._pending = None
        self._closed = False
        if not self._connect():
            raise SourceLost(still_lost)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def close(self) -> None:
        self._release()
        self._pending = None
        self._closed = True


class FileSource(_CaptureSource):
    """A video file or animated GIF, decoded by OpenCV. Timestamps are presentation times."""

    def __init__(self, path: str | Path, *, loop: bool = False) -> None:
        self.path = Path(path).expanduser()
        super().__init__(self.path.name, live=False, step=_DEFAULT_STEP)
        self.loop = loop
        self.duration: Optional[float] = None  # seconds, when the file says
        self._pass_starts = [0.0]  # the timestamp each play of a looping file began at
        check_video_file(self.path)
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise MovinetPiError(
                f"cannot open {self.path}: OpenCV found no video in it "
                "(use a video file such as .mp4/.avi/.mkv or an animated GIF)"
            )
        if _fourcc(cap) in _TEXT_CODECS:  # FFmpeg's tty demuxer "plays" text files
            cap.release()
            raise MovinetPiError(_not_video(self.path))
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
        if self.fps is not None:
            self._timeline.step = 1.0 / self.fps
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            if math.isfinite(count) and count > 0:
                self.duration = count / self.fps
        if not self._start(cap):
            raise MovinetPiError(
                f"cannot decode a frame of {self.path}: the file is corrupted "
                "or in a format this OpenCV build cannot decode"
            )

    def _rewind(self) -> bool:
        if not self.loop or self._closed:
            return False
        self._release()
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            return False
        self._cap = cap
        # The file's clock starts again at 0: the timeline carries on one frame later.
        self._pass_starts.append(self._timeline.stamp(None) if self._index else 0.0)
        self._timeline = _Restarted(self._timeline, self._pass_starts[-1])
        return True

    def clip_time(self, t: float) -> float:
        """Where timestamp ``t`` is within the file (a looping file's run on)."""
        start = max((s for s in self._pass_starts if s <= t + 1e-6), default=0.0)
        return t - start

    def _raw_time(self, cap: cv2.VideoCapture) -> Optional[float]:
        # After read(), CAP_PROP_POS_MSEC is the presentation time of the frame just
        # read (0.0 for the first); _Timeline falls back to index/fps when it is not.
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        return msec / 1000.0 if msec >= 0 else None

    def reopen(self) -> None:
        """A file is never lost: nothing to reconnect."""


#: Codecs OpenCV's FFmpeg reports for a text file it "plays" (the tty demuxer).
_TEXT_CODECS = ("ansi", "tty")


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    if code <= 0:
        return ""
    return bytes((code >> s) & 0xFF for s in (0, 8, 16, 24)).decode("latin-1").strip("\0 ")


#: Text files that FFmpeg rightly reads as media: HLS playlists, SDP (RTP), concat lists.
_TEXT_MEDIA_PREFIXES = (b"#EXTM3U", b"v=0", b"ffconcat")


def _looks_like_text(path: Path) -> bool:
    """Whether the file starts like text (no NUL byte, valid UTF-8) and is not one of the
    text formats FFmpeg plays: video containers and GIFs always hold NUL bytes in their
    first few hundred bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if not head or b"\x00" in head or head.lstrip(b"\xef\xbb\xbf \r\n").startswith(
            _TEXT_MEDIA_PREFIXES):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # only a character cut at the end
    return True


def _not_video(path: Path) -> str:
    return (f"{path} is a text file, not a video: pass a video file such as .mp4/.avi/.mkv "
            "or an animated GIF")


class _Restarted(Timeline):
    """A timeline that goes on from ``offset`` after a looping file starts over: the
    file's own presentation times are kept, shifted to follow the last play."""

    def __init__(self, before: Timeline, offset: float) -> None:
        super().__init__(before.step)
        self.offset = offset

    def stamp(self, raw: Optional[float]) -> float:
        return self.offset + super().stamp(raw)


def check_video_file(path: Path) -> None:
    """Refuse a path that is no video file: missing, a directory, empty, or text."""
    if not path.exists():
        raise MovinetPiError(
            f"no such file: {path} (a source is `picamera`, a camera index like 0, "
            "a video file or an rtsp:// URL)"
        )
    if path.is_dir():
        raise MovinetPiError(f"{path} is a directory: pass a video file")
    if path.stat().st_size == 0:
        raise MovinetPiError(f"{path} is empty (0 bytes): pass a video file")
    if _looks_like_text(path):
        raise MovinetPiError(_not_video(path))


class CameraSource(_CaptureSource):
    """A camera that OpenCV opens by index (USB webcams, ``/dev/videoN``)."""

    def __init__(
        self,
        index: int,
        *,
        frame_size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
    ) -> None:
        super().__init__(f"camera {index}", live=True, step=1.0 / fps)
        self.index = index
        self._requested = (frame_size, fps)
        if not self._connect():  # exit 1: a camera plugged in late or busy may come (a
            if not self._opened_once:  # service restarts on it), as a Pi camera or a stream
                raise MovinetPiError(
                    f"no camera at index {index}: check the cable / `ls /dev/video*`",
                    exit_code=1,
                )
            raise MovinetPiError(
                f"camera {index} opened but delivered no frame: it may be busy in another "
                "program, or not a capture device (try another index, see `ls /dev/video*`)",
                exit_code=1,
            )

    def _connect(self) -> bool:
        (width, height), fps = self._requested
        cap = cv2.VideoCapture(self.index)
        self._opened_once = cap.isOpened()
        if not self._opened_once:
            cap.release()
            return False
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, fps)
        # Keep the driver queue short: a classifier wants the newest frame, not a backlog.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS)) or fps
        return self._start(cap)

    def _lost_message(self) -> str:
        return f"camera {self.index} stopped delivering frames: check the cable"

    def reopen(self) -> None:
        self._reconnect(f"camera {self.index} is still not delivering frames")


def redact_url(url: str) -> str:
    """The URL with any password (and secret-looking query values) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [
                (k, "***" if any(s in k.lower() for s in _SECRET_QUERY_KEYS) else v)
                for k, v in pairs
            ],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class StreamSource(_CaptureSource):
    """A network stream (rtsp/http/https) through OpenCV's FFmpeg backend."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(redact_url(url), live=True, step=_DEFAULT_STEP)
        self._url = url
        self._timeout_ms = max(1, round(timeout * 1000))
        if not self._connect():
            raise MovinetPiError(
                f"cannot open stream {self.name}: unreachable, wrong URL or no video "
                f"within {timeout:g} s (check the address and that the camera is on)",
                exit_code=1,
            )

    def _connect(self) -> bool:
        # Both timeouts bound FFmpeg's network waits, so a dead host fails instead of hanging.
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout_ms,
        ]  # fmt: skip
        cap = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return False
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
        if self.fps is not None:
            self._timeline.step = 1.0 / self.fps
        return self._start(cap)

    def reopen(self) -> None:
        self._reconnect(f"stream {self.name} is still unreachable")
