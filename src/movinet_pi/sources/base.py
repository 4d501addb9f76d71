"""What every source is: a :class:`Frame`, the :class:`Source` interface, and its clock.

Every source hands out :class:`Frame` objects holding a fresh, C-contiguous RGB
``uint8`` array, a timestamp in seconds since the source's first frame and a
0-based index. Files end with ``None``; live sources (cameras, streams) never
end but raise :class:`SourceLost` when they stop delivering, and the pipeline
calls :meth:`Source.reopen` with backoff. Index and timestamps keep increasing
across reopens (:class:`Timeline`), so downstream code never sees time go
backwards.

Every source reads its first frame while opening. A file that OpenCV "opens" but
cannot decode, or a camera node that delivers nothing, is refused right there
with a one-line :class:`~movinet_pi.errors.MovinetPiError` instead of failing later.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Callable, Optional

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError


class Frame:
    """One video frame.

    ``rgb`` is H x W x 3 ``uint8`` in RGB order, C-contiguous and owned by this
    frame (never a reused buffer). ``timestamp`` is seconds since the source's
    first frame: a file's own presentation time, a camera's capture time.

    A source that decodes BGR (OpenCV, the Pi camera's RGB888) makes its frames with
    :meth:`from_bgr`: ``bgr`` is then that picture as decoded, which the window shows
    as it is, and ``rgb`` is converted from it only when something asks for it (the
    model's due frames, at its own size: see ``Recognizer``), so a displayed frame
    costs no colour conversion at all.

    ``model_rgb``, when a source has it, is the same moment already scaled down near
    the model's input size by the camera's ISP (the Pi camera's lores stream): the
    model reads it instead of resizing ``rgb``. It is made (``model_rgb_of``) only when
    asked for, so the frames the model does not take cost no conversion. ``model_box``
    says which part of the picture it shows, when the camera cropped it for the model
    (``--roi`` on a Pi 5: ``(x, y, w, h)`` in fractions of the picture); None: all of it.
    """

    __slots__ = ("_bgr", "_bgr_of", "_rgb", "_shape", "index", "model_box", "model_rgb_of",
                 "timestamp")

    def __init__(self, rgb: Optional[np.ndarray], timestamp: float, index: int,
                 model_rgb_of: Optional[Callable[[], np.ndarray]] = None, *,
                 bgr: Optional[np.ndarray] = None,
                 bgr_of: Optional[Callable[[], np.ndarray]] = None,
                 shape: Optional[tuple[int, ...]] = None,
                 model_box: Optional[tuple[float, float, float, float]] = None) -> None:
        picture = rgb if rgb is not None else bgr
        if picture is None and (bgr_of is None or shape is None):
            raise ValueError("a Frame needs its picture: rgb, bgr, or bgr_of and its shape")
        self._rgb = rgb
        self._bgr = bgr
        self._bgr_of = bgr_of
        self._shape = picture.shape if picture is not None else shape
        self.timestamp = timestamp
        self.index = index
        self.model_rgb_of = model_rgb_of
        self.model_box = model_box

    @classmethod
    def from_bgr(cls, bgr: np.ndarray | Callable[[], np.ndarray], timestamp: float,
                 index: int, model_rgb_of: Optional[Callable[[], np.ndarray]] = None,
                 shape: Optional[tuple[int, ...]] = None,
                 model_box: Optional[tuple[float, float, float, float]] = None) -> Frame:
        """A frame of a BGR picture (H x W x 3, C-contiguous, owned by the frame), or of
        a function making it (with its ``shape``), called only if the picture is wanted
        (with the Pi camera's own preview on screen, often it is not)."""
        if callable(bgr):
            return cls(None, timestamp, index, model_rgb_of, bgr_of=bgr, shape=shape,
                       model_box=model_box)
        return cls(None, timestamp, index, model_rgb_of, bgr=bgr, model_box=model_box)

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:  # (two threads asking at once both get the same pixels)
            self._rgb = cv2.cvtColor(self.bgr, cv2.COLOR_BGR2RGB)
        return self._rgb

    @property
    def bgr(self) -> Optional[np.ndarray]:
        """The picture as the source decoded it, in BGR order (None: the source gave RGB)."""
        if self._bgr is None and self._bgr_of is not None:
            self._bgr = self._bgr_of()
        return self._bgr

    @property
    def shape(self) -> tuple[int, ...]:
        """The picture's shape (H, W, 3), without converting it."""
        assert self._shape is not None
        return self._shape

    @property
    def model_rgb(self) -> Optional[np.ndarray]:
        return None if self.model_rgb_of is None else self.model_rgb_of()

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, timestamp={self.timestamp:.3f}, shape={self.shape})"


class SourceLost(MovinetPiError):
    """A live source stopped delivering frames; ``reopen()`` may bring it back."""

    exit_code = 1


class Timeline:
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
