"""picamera2 itself: importing it (it exists only on Raspberry Pi OS, as a system package),
its errors in one line, and the byte order of the arrays it gives.

:mod:`movinet_pi.sources.picamera` (the source), :mod:`movinet_pi.sources.picamera_streams`
(what the camera is configured for) and :mod:`movinet_pi.display.camera_preview` build on it.
"""

from __future__ import annotations

import importlib
from typing import Any

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line

PICAMERA2_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install -y python3-picamera2` "
    "and create the venv with --system-site-packages"
)

#: Longest error text from picamera2/libcamera put into one of our messages.
REASON_LIMIT = 200


def reason(error: BaseException) -> str:
    """A picamera2/libcamera error as one short line, for our own messages."""
    return one_line(error, limit=REASON_LIMIT)


def rgb_from_picamera(array: np.ndarray, fmt: str, width: int) -> np.ndarray:
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


def import_picamera2() -> Any:
    """The picamera2 module; a one-line :class:`MovinetPiError` saying how to get it."""
    try:
        return importlib.import_module("picamera2")
    except ImportError as error:
        raise MovinetPiError(PICAMERA2_HINT) from error
    except Exception as error:  # e.g. a numpy ABI mismatch inside its dependencies
        raise MovinetPiError(
            f"picamera2 failed to import ({reason(error)}): create the venv with "
            "--system-site-packages and use the system numpy"
        ) from error


def is_usb_camera(info: dict) -> bool:
    """Whether a ``Picamera2.global_camera_info()`` entry is a USB (UVC) camera: libcamera
    lists them too, after the Pi's own, but they give YUYV or MJPEG where the Pi camera
    source asks for RGB, and OpenCV reads them as they are."""
    return "/usb" in str(info.get("Id", ""))


def has_only_usb_cameras() -> bool:
    """Whether libcamera sees cameras, and every one is a USB camera (no Pi camera)."""
    try:
        cameras = importlib.import_module("picamera2").Picamera2.global_camera_info()
    except Exception:
        return False
    return bool(cameras) and all(is_usb_camera(info) for info in cameras)


def picamera2_available() -> bool:
    """True if picamera2 imports (it only exists on Raspberry Pi OS)."""
    try:
        importlib.import_module("picamera2")
    except Exception:
        return False
    return True
