"""Opening a source from its spec (``--source``): the Pi camera, a camera, a stream or a file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from movinet_pi.errors import MovinetPiError
from movinet_pi.sources.base import Source
from movinet_pi.sources.opencv import (
    CameraSource,
    FileSource,
    StreamSource,
    check_video_file,
)
from movinet_pi.sources.picamera import PicameraSource
from movinet_pi.sources.picamera_lib import has_only_usb_cameras, picamera2_available
from movinet_pi.sources.roi import Box

URL_SCHEMES = ("rtsp", "http", "https")


def default_source_spec() -> str:
    """``"picamera"`` where picamera2 imports (but for a Pi whose only camera is a USB
    one), otherwise OpenCV camera ``"0"``."""
    return "picamera" if picamera2_available() and not has_only_usb_cameras() else "0"


_FRAME_SIZE_RE = re.compile(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*")
_PICAMERA_RE = re.compile(r"picamera(?::(\d+))?", re.IGNORECASE)
_DEVICE_RE = re.compile(r"/dev/video(\d+)")


def parse_frame_size(text: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; MovinetPiError for anything else."""
    match = _FRAME_SIZE_RE.fullmatch(text or "")
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not (0 < width <= 16384 and 0 < height <= 16384):
        raise MovinetPiError(f"bad size {text!r}: use WIDTHxHEIGHT, e.g. 640x480")
    return width, height


def check_source(spec: Optional[str]) -> None:
    """Refuse a source that cannot open, without trying: an empty spec, a URL scheme OpenCV
    does not read, a video file that is not there or is not a video. The app checks
    ``--source`` this way before anything slow (the model's first download); a camera or a
    stream is only found out by opening it. ``None`` (the default source) passes."""
    if spec is not None and _kind(spec := spec.strip()) == "file":
        check_video_file(Path(spec))


def is_video_file(spec: Optional[str]) -> bool:
    """Whether ``spec`` names a video file (it ends), not a camera or a stream."""
    return spec is not None and _kind(spec.strip()) == "file"


def is_camera(spec: Optional[str]) -> bool:
    """Whether ``spec`` names a camera (the default source is one), not a file or a stream."""
    return spec is None or _kind(spec.strip()) in ("picamera", "camera")


def _kind(spec: str) -> str:
    """What kind of source ``spec`` names: "picamera", "camera", "stream" or "file"; an
    empty spec or an unknown URL scheme is refused."""
    if not spec:
        raise MovinetPiError(
            "empty source: use `picamera`, a camera index like 0, a video file or an rtsp:// URL"
        )
    if _PICAMERA_RE.fullmatch(spec):
        return "picamera"
    if spec.isdigit() or _DEVICE_RE.fullmatch(spec):
        return "camera"
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in URL_SCHEMES:
        return "stream"
    if scheme:
        raise MovinetPiError(
            f"unsupported source URL scheme {scheme}://: use rtsp://, http:// or https://"
        )
    return "file"


def open_source(
    spec: Optional[str],
    *,
    frame_size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    timeout: float = 10.0,
    loop: bool = False,
    model_size: Optional[tuple[int, int]] = None,
    roi: Optional[Box] = None,
) -> Source:
    """Open a source from its spec.

    ``None`` picks :func:`default_source_spec`; ``"picamera"`` (or ``"picamera:1"``)
    is the Pi camera; a number (or ``/dev/videoN``) an OpenCV camera; an rtsp://,
    http:// or https:// URL a stream; anything else a video file path.
    ``frame_size`` and ``fps`` are requests to cameras; files and streams keep theirs.
    ``loop`` plays a file again and again (live sources never end anyway).
    ``model_size`` (w, h): the Pi camera's ISP scales a second stream to it for the model;
    ``roi`` (a box, fractions of the picture): that stream shows only that part of the
    picture (other sources' frames are cut for the model by ``sources.roi.model_input``).
    """
    if not (fps > 0 and timeout > 0 and min(frame_size) > 0):
        raise MovinetPiError("fps, timeout and the frame size must be positive")
    spec = default_source_spec() if spec is None else spec.strip()
    kind = _kind(spec)  # (a file is checked as the FileSource opens it)
    if kind == "picamera":
        match = _PICAMERA_RE.fullmatch(spec)
        number = int(match.group(1) or 0) if match else 0
        return PicameraSource(number, frame_size=frame_size, fps=fps, timeout=timeout,
                              model_size=model_size, roi=roi)
    if kind == "camera":
        device = _DEVICE_RE.fullmatch(spec)
        index = int(device.group(1)) if device else int(spec)
        return CameraSource(index, frame_size=frame_size, fps=fps)
    if kind == "stream":
        return StreamSource(spec, timeout=timeout)
    return FileSource(spec, loop=loop)

