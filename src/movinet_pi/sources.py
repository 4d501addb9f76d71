"""Frame sources: the Pi camera, OpenCV cameras, video files and network streams.

Every source hands out :class:`Frame` objects holding a fresh, C-contiguous RGB
``uint8`` array, a timestamp in seconds since the source's first frame and a
0-based index. Files end with ``None``; live sources (cameras, streams) never
end but raise :class:`SourceLost` when they stop delivering, and the pipeline
calls :meth:`Source.reopen` with backoff. Index and timestamps keep increasing
across reopens, so downstream code never sees time go backwards.

Every source reads its first frame while opening. A file that OpenCV "opens" but
cannot decode, or a camera node that delivers nothing, is refused right there
with a one-line :class:`~movinet_pi.MovinetPiError` instead of failing later.

``picamera2`` is imported lazily (only for the ``picamera`` source): it only
exists on Raspberry Pi OS, as a system package.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line

URL_SCHEMES = ("rtsp", "http", "https")

PICAMERA2_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install -y python3-picamera2` "
    "and create the venv with --system-site-packages"
)

#: Query parameters whose values are never shown in a source name.
_SECRET_QUERY_KEYS = ("pass", "pwd", "token", "key", "secret", "auth", "sig")

#: Fallback frame interval when a file does not say its frame rate.
_DEFAULT_STEP = 1.0 / 30.0


@dataclass(frozen=True)
class Frame:
    """One video frame.

    ``rgb`` is H x W x 3 ``uint8`` in RGB order, C-contiguous and owned by this
    frame (never a reused buffer). ``timestamp`` is seconds since the source's
    first frame: a file's own presentation time, a camera's capture time.
    """

    rgb: np.ndarray
    timestamp: float
    index: int


class SourceLost(MovinetPiError):
    """A live source stopped delivering frames; ``reopen()`` may bring it back."""

    exit_code = 1


def _one_line(error: BaseException) -> str:
    """An exception as one short line (library messages may span lines)."""
    return one_line(error, limit=200)


class _Timeline:
    """Turns a source's raw clock into seconds since its first frame, never going back.

    A raw time that is missing, not finite or not after the previous one (a file
    without usable presentation times, a device whose clock restarted after a
    reconnect) is replaced by "one frame interval after the previous frame", and
    later raw times continue from there.
    """

    def __init__(self, step: float) -> None:
        self.step = step
        self._origin: Optional[float] = None
        self._last: Optional[float] = None

    def stamp(self, raw: Optional[float]) -> float:
        usable = raw is not None and math.isfinite(raw)
        if self._last is None:
            self._origin = raw if usable else None
            self._last = 0.0
            return 0.0
        if usable and self._origin is not None:
            assert raw is not None
            t = raw - self._origin
            if t > self._last:
                self._last = t
                return t
        t = self._last + self.step
        self._origin = (raw - t) if usable and raw is not None else None
        self._last = t
        return t


class Source(ABC):
    """Where frames come from. Use as a context manager or call :meth:`close`."""

    name: str
    live: bool
    fps: Optional[float]
    frame_size: tuple[int, int]

    @abstractmethod
    def read(self) -> Optional[Frame]:
        """The next frame; ``None`` at the end of a file; SourceLost if a live source fails."""

    def read_from(self, t: float) -> tuple[Optional[Frame], int]:
        """The first frame stamped at or after ``t`` (within 1 ms), and how many frames
        were passed over to reach it. Sources that can skip a frame without
        converting its pixels (files) override this: a headless run over a file
        then converts only the frames the model sees."""
        passed = 0
        while True:
            frame = self.read()
            if frame is None or frame.timestamp + 1e-3 >= t:
                return frame, passed
            passed += 1

    @abstractmethod
    def reopen(self) -> None:
        """Reconnect a live source (raises SourceLost if it still fails)."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file. Safe to call more than once."""

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """A new RGB array from what OpenCV decoded (normally BGR; grey or BGRA just in case)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
        self._timeline = _Timeline(step)
        self._closed = False

    @abstractmethod
    def _raw_time(self, cap: cv2.VideoCapture) -> Optional[float]:
        """The raw clock reading (seconds) for the frame just read."""

    def _grab(self) -> Optional[Frame]:
        assert self._cap is not None
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        rgb = _bgr_to_rgb(image)
        frame = Frame(rgb, self._timeline.stamp(self._raw_time(self._cap)), self._index)
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
        cap = self._cap
        while cap.grab():  # decode without converting the picture
            stamp = self._timeline.stamp(self._raw_time(cap))
            index, self._index = self._index, self._index + 1
            if stamp + 1e-3 >= t:
                ok, image = cap.retrieve()
                if not ok or image is None or image.size == 0:
                    return None, passed
                return Frame(_bgr_to_rgb(image), stamp, index), passed
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
        height, width = first.rgb.shape[:2]
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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        super().__init__(self.path.name, live=False, step=_DEFAULT_STEP)
        _check_file(self.path)
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise MovinetPiError(
                f"cannot open {self.path}: OpenCV found no video in it "
                "(use a video file such as .mp4/.avi/.mkv or an animated GIF)"
            )
        self.fps = _valid_fps(cap.get(cv2.CAP_PROP_FPS))
        if self.fps is not None:
            self._timeline.step = 1.0 / self.fps
        if not self._start(cap):
            raise MovinetPiError(
                f"cannot decode a frame of {self.path}: the file is corrupted "
                "or in a format this OpenCV build cannot decode"
            )

    def _raw_time(self, cap: cv2.VideoCapture) -> Optional[float]:
        # After read(), CAP_PROP_POS_MSEC is the presentation time of the frame just
        # read (0.0 for the first); _Timeline falls back to index/fps when it is not.
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        return msec / 1000.0 if msec >= 0 else None

    def reopen(self) -> None:
        """A file is never lost: nothing to reconnect."""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MovinetPiError(
            f"no such file: {path} (a source is `picamera`, a camera index like 0, "
            "a video file or an rtsp:// URL)"
        )
    if path.is_dir():
        raise MovinetPiError(f"{path} is a directory: pass a video file")
    if path.stat().st_size == 0:
        raise MovinetPiError(f"{path} is empty (0 bytes): pass a video file")


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
        if not self._connect():
            if not self._opened_once:
                raise MovinetPiError(
                    f"no camera at index {index}: check the cable / `ls /dev/video*`"
                )
            raise MovinetPiError(
                f"camera {index} opened but delivered no frame: it may be busy in another "
                "program, or not a capture device (try another index, see `ls /dev/video*`)"
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

    def _raw_time(self, cap: cv2.VideoCapture) -> Optional[float]:
        return time.monotonic()

    def _lost_message(self) -> str:
        return f"camera {self.index} stopped delivering frames: check the cable"

    def reopen(self) -> None:
        self._release()
        self._pending = None
        self._closed = False
        if not self._connect():
            raise SourceLost(f"camera {self.index} is still not delivering frames")


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

    def _raw_time(self, cap: cv2.VideoCapture) -> Optional[float]:
        return time.monotonic()

    def reopen(self) -> None:
        self._release()
        self._pending = None
        self._closed = False
        if not self._connect():
            raise SourceLost(f"stream {self.name} is still unreachable")


# --- Raspberry Pi camera (picamera2) --------------------------------------------------------


def _to_rgb_from_picamera(array: np.ndarray, fmt: str, width: int) -> np.ndarray:
    """A new RGB array from a picamera2 ``make_array`` result in format ``fmt``.

    picamera2 names formats after libcamera/DRM, which list channels from the most
    significant byte: "RGB888" is B,G,R in memory, "BGR888" is R,G,B, "XRGB8888"
    is B,G,R,X and "XBGR8888" is R,G,B,X. YUV420 arrays are I420 planes shaped
    (h*3/2, stride); the stride padding is cut off after conversion.
    """
    if fmt == "RGB888":
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    if fmt == "BGR888":
        return np.array(array, dtype=np.uint8, order="C", copy=True)
    if fmt == "XRGB8888":
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    if fmt == "XBGR8888":
        return cv2.cvtColor(array, cv2.COLOR_RGBA2RGB)
    if fmt in ("YUV420", "YVU420"):
        code = cv2.COLOR_YUV2RGB_I420 if fmt == "YUV420" else cv2.COLOR_YUV2RGB_YV12
        return np.ascontiguousarray(cv2.cvtColor(array, code)[:, :width])
    raise MovinetPiError(f"unsupported Pi camera format {fmt}: use RGB888")


def _import_picamera2() -> Any:
    try:
        return importlib.import_module("picamera2")
    except ImportError as error:
        raise MovinetPiError(PICAMERA2_HINT) from error
    except Exception as error:  # e.g. a numpy ABI mismatch inside its dependencies
        raise MovinetPiError(
            f"picamera2 failed to import ({_one_line(error)}): create the venv with "
            "--system-site-packages and use the system numpy"
        ) from error


#: How long a new DRM preview may take to deliver its first frame before we call it failed.
DRM_PROBE_S = 3.0


class PicameraSource(Source):
    """The Raspberry Pi camera through picamera2 (libcamera).

    ``main`` is configured as RGB888 at ``frame_size``; with ``lores_size`` a second,
    smaller stream comes from the same sensor readout (YUV420: the only lores format
    before the Pi 5), read with :meth:`read_lores` or together with main through
    :meth:`read_pair`. Timestamps come from ``SensorTimestamp`` (the moment the
    sensor captured the frame), relative to the first frame.
    """

    def __init__(
        self,
        camera_num: int = 0,
        *,
        frame_size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        lores_size: Optional[tuple[int, int]] = None,
        lores_format: str = "YUV420",
        main_format: str = "RGB888",
        buffer_count: int = 4,
        timeout: float = 10.0,
    ) -> None:
        self.camera_num = camera_num
        self.name = "picamera" if camera_num == 0 else f"picamera {camera_num}"
        self.live = True
        self.fps = fps
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.lores_size: Optional[tuple[int, int]] = (
            (int(lores_size[0]), int(lores_size[1])) if lores_size is not None else None
        )
        self._formats = {"main": main_format, "lores": lores_format}
        self._buffer_count = buffer_count
        self._timeout = timeout
        self._timeline = _Timeline(1.0 / fps)
        self._index = 0
        self._camera: Any = None
        self._closed = False
        self._preview: Optional[str] = None  # "DRM" once start_preview() asked for it
        self._overlay: Optional[np.ndarray] = None
        self._module = _import_picamera2()
        self._connect(on_failure=self._open_error)

    # -- opening -----------------------------------------------------------------------------

    def _open_error(self, stage: str, error: BaseException) -> MovinetPiError:
        if stage == "open":  # absent, or busy in another program: may pass, so exit 1
            return MovinetPiError(
                f"no Pi camera found ({_one_line(error)}): check the ribbon cable and "
                "that `rpicam-hello --list-cameras` lists it",
                exit_code=1,
            )
        if stage == "configure":
            return MovinetPiError(
                f"the Pi camera refused {self._describe_config()} ({_one_line(error)}): "
                "use an even size such as 640x480"
            )
        return MovinetPiError(
            f"the Pi camera did not start ({_one_line(error)}): check the cable, "
            "and that no other program uses the camera",
            exit_code=1,
        )

    def _lost_error(self, stage: str, error: BaseException) -> MovinetPiError:
        return SourceLost(f"the Pi camera is still unavailable ({_one_line(error)})")

    def _describe_config(self) -> str:
        width, height = self.frame_size
        text = f"{width}x{height} at {self.fps:g} fps"
        if self.lores_size is not None:
            text += f" with a {self.lores_size[0]}x{self.lores_size[1]} lores stream"
        return text

    def _connect(self, on_failure: Callable[[str, BaseException], MovinetPiError]) -> None:
        """Open, configure and start the camera; on failure close it and raise."""
        stage = "open"
        try:
            self._camera = self._module.Picamera2(self.camera_num)
            stage = "configure"
            self._camera.configure(self._make_config())
            self._adopt_configured_sizes()
            if self._preview is not None:  # a reconnect brings the preview back too
                stage = "preview"
                self._camera.start_preview(getattr(self._module.Preview, self._preview))
            stage = "start"
            self._camera.start()
            if self._overlay is not None:
                self._camera.set_overlay(self._overlay)
        except Exception as error:
            self._shutdown()
            raise on_failure(stage, error) from error

    def _make_config(self) -> Any:
        main = {"size": self.frame_size, "format": self._formats["main"]}
        lores = None
        if self.lores_size is not None:
            lores = {"size": self.lores_size, "format": self._formats["lores"]}
        return self._camera.create_video_configuration(
            main=main,
            lores=lores,
            controls={"FrameRate": float(self.fps or 30.0)},
            buffer_count=self._buffer_count,
        )

    def _adopt_configured_sizes(self) -> None:
        """libcamera may adjust sizes while configuring; report what frames will really be."""
        config = self._camera.camera_configuration() or {}
        main = config.get("main") or {}
        width, height = main.get("size", self.frame_size)
        self.frame_size = (int(width), int(height))
        lores = config.get("lores")
        if self.lores_size is not None and lores:
            width, height = lores.get("size", self.lores_size)
            self.lores_size = (int(width), int(height))

    # -- reading -----------------------------------------------------------------------------

    def _capture(self, names: tuple[str, ...]) -> tuple[list[np.ndarray], float, int]:
        """Arrays (in memory order) for ``names`` from one request, its timestamp and index."""
        if self._closed:
            raise ValueError(f"read from closed source {self.name}")
        if self._camera is None:
            raise SourceLost("the Pi camera is disconnected")
        try:
            # A number makes picamera2 raise a timeout instead of waiting forever
            # when the camera stops (a pulled ribbon cable usually just goes silent).
            request = self._camera.capture_request(wait=self._timeout)
        except Exception as error:
            self._shutdown()
            raise SourceLost(
                f"the Pi camera stopped delivering frames ({_one_line(error)}): "
                "check the ribbon cable"
            ) from error
        try:
            arrays = [request.make_array(name) for name in names]
            metadata = request.get_metadata()
        finally:
            request.release()
        sensor_ns = metadata.get("SensorTimestamp")
        raw = sensor_ns / 1e9 if isinstance(sensor_ns, (int, float)) else time.monotonic()
        index = self._index
        self._index += 1
        return arrays, self._timeline.stamp(raw), index

    def _frame(self, name: str, array: np.ndarray, timestamp: float, index: int) -> Frame:
        size = self.lores_size if name == "lores" and self.lores_size else self.frame_size
        rgb = _to_rgb_from_picamera(array, self._formats[name], size[0])
        return Frame(rgb, timestamp, index)

    def read(self) -> Frame:
        (main,), timestamp, index = self._capture(("main",))
        return self._frame("main", main, timestamp, index)

    def _require_lores(self) -> None:
        if self.lores_size is None:
            raise ValueError("this PicameraSource has no lores stream: pass lores_size=")

    def read_lores(self) -> Frame:
        """The next frame of the lores stream only, as RGB."""
        self._require_lores()
        (lores,), timestamp, index = self._capture(("lores",))
        return self._frame("lores", lores, timestamp, index)

    def read_pair(self) -> tuple[Frame, Frame]:
        """(main, lores) frames from the same sensor readout, sharing index and timestamp."""
        self._require_lores()
        (main, lores), timestamp, index = self._capture(("main", "lores"))
        return (
            self._frame("main", main, timestamp, index),
            self._frame("lores", lores, timestamp, index),
        )

    # -- the camera's own preview (HDMI without a desktop) -------------------------------------

    def start_drm_preview(self) -> None:
        """Show the main stream full-screen through DRM/KMS, drawn by the camera stack.

        The picture then never passes through Python: it runs at the camera's rate
        whatever the model does, and :meth:`set_overlay` puts our drawing on top.
        Raises MovinetPiError when a desktop session holds the display.
        """
        camera = self._camera
        if camera is None:
            raise MovinetPiError("the Pi camera is not open")
        try:
            camera.stop()
            # start() already runs a NULL preview (picamera2's event loop): replace it.
            with contextlib.suppress(Exception):
                camera.stop_preview()
            camera.start_preview(self._module.Preview.DRM)
            camera.start()
            # Under a desktop the real picamera2 fails only at the first frame, in its
            # preview thread, and then delivers nothing: one frame proves the preview works.
            camera.capture_request(wait=min(self._timeout, DRM_PROBE_S)).release()
        except Exception as error:
            self._restore_null_preview(camera)
            reason = _one_line(error) or "no frame came through the DRM preview"
            raise MovinetPiError(
                f"the DRM preview did not start ({reason}): "
                "a desktop session may hold the display; use --display window",
                exit_code=1,
            ) from error
        self._preview = "DRM"

    @staticmethod
    def _restore_null_preview(camera: Any) -> None:
        """Back to frames without a preview after the DRM preview failed."""
        for step in (camera.stop, camera.stop_preview, camera.start):
            with contextlib.suppress(Exception):
                step()

    def set_overlay(self, rgba: Optional[np.ndarray]) -> None:
        """Draw an RGBA image (any size: scaled to the preview) over the DRM preview."""
        self._overlay = rgba
        if self._camera is not None:
            with contextlib.suppress(Exception):  # a camera mid-reconnect: shown once back
                self._camera.set_overlay(rgba)

    # -- reconnecting and closing ------------------------------------------------------------

    def reopen(self) -> None:
        self._shutdown()
        self._closed = False
        self._connect(on_failure=self._lost_error)

    def _shutdown(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        # After an unplug, stop/close may fail as well; the camera is gone either way.
        for method in ("stop", "close"):
            with contextlib.suppress(Exception):
                getattr(camera, method)()

    def close(self) -> None:
        self._shutdown()
        self._closed = True


# --- Opening by spec ------------------------------------------------------------------------


def picamera2_available() -> bool:
    """True if picamera2 imports (it only exists on Raspberry Pi OS)."""
    try:
        importlib.import_module("picamera2")
    except Exception:
        return False
    return True


def default_source_spec() -> str:
    """``"picamera"`` where picamera2 imports, otherwise OpenCV camera ``"0"``."""
    return "picamera" if picamera2_available() else "0"


_FRAME_SIZE_RE = re.compile(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*")
_PICAMERA_RE = re.compile(r"picamera(?::(\d+))?", re.IGNORECASE)
_DEVICE_RE = re.compile(r"/dev/video(\d+)")


def parse_frame_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; MovinetPiError for anything else."""
    match = _FRAME_SIZE_RE.fullmatch(text or "")
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise MovinetPiError(f"bad frame size {text!r}: use WIDTHxHEIGHT, e.g. 640x480")
    return width, height


def open_source(
    spec: Optional[str],
    *,
    frame_size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    timeout: float = 10.0,
) -> Source:
    """Open a source from its spec.

    ``None`` picks :func:`default_source_spec`; ``"picamera"`` (or ``"picamera:1"``)
    is the Pi camera; a number (or ``/dev/videoN``) an OpenCV camera; an rtsp://,
    http:// or https:// URL a stream; anything else a video file path.
    ``frame_size`` and ``fps`` are requests to cameras; files and streams keep theirs.
    """
    if not (fps > 0 and timeout > 0 and min(frame_size) > 0):
        raise MovinetPiError("fps, timeout and the frame size must be positive")
    spec = default_source_spec() if spec is None else spec.strip()
    if not spec:
        raise MovinetPiError(
            "empty source: use `picamera`, a camera index like 0, a video file or an rtsp:// URL"
        )
    picamera = _PICAMERA_RE.fullmatch(spec)
    if picamera:
        number = int(picamera.group(1) or 0)
        return PicameraSource(number, frame_size=frame_size, fps=fps, timeout=timeout)
    device = _DEVICE_RE.fullmatch(spec)
    if spec.isdigit() or device:
        index = int(device.group(1)) if device else int(spec)
        return CameraSource(index, frame_size=frame_size, fps=fps)
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in URL_SCHEMES:
        return StreamSource(spec, timeout=timeout)
    if scheme:
        raise MovinetPiError(
            f"unsupported source URL scheme {scheme}://: use rtsp://, http:// or https://"
        )
    return FileSource(spec)


__all__ = [
    "CameraSource",
    "FileSource",
    "Frame",
    "PicameraSource",
    "Source",
    "SourceLost",
    "StreamSource",
    "default_source_spec",
    "open_source",
    "parse_frame_size",
    "picamera2_available",
    "redact_url",
]
