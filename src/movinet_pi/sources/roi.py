"""The part of the picture the model reads (``--roi``): a box, and the model's input from it.

A box is ``(x, y, w, h)`` in fractions of the picture's width and height, as rpicam-apps'
``--roi`` takes them: ``0.25,0.25,0.5,0.5`` is the middle quarter. The picture as shown
stays whole; only the model's input is cut from it, before the resize to the model's
input size. ``--roi auto`` lets :class:`~movinet_pi.sources.roi_auto.AutoRoi` choose the
box frame by frame.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.sources.base import Frame

Box = tuple[float, float, float, float]
#: The whole picture.
WHOLE: Box = (0.0, 0.0, 1.0, 1.0)
#: ``--roi auto``: the box follows the action.
AUTO = "auto"
#: What ``--roi`` holds: a fixed box, or :data:`AUTO`.
RoiSpec = Union[Box, str]

#: How far past an edge a box may reach and still count as inside (rounding in the text).
EDGE_TOLERANCE = 1e-6
ROI_FORM = "X,Y,W,H (fractions of the picture, e.g. 0.25,0.25,0.5,0.5) or 'auto'"


def parse_roi(text: str) -> RoiSpec:
    """``"auto"``, or ``"X,Y,W,H"`` (fractions of the picture) as a box; a one-line
    MovinetPiError saying what was expected otherwise (a box covering the whole picture
    is :data:`WHOLE`)."""
    given = (text or "").strip()
    if given.lower() == AUTO:
        return AUTO
    try:
        values = [float(part) for part in given.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise MovinetPiError(f"expected {ROI_FORM}, got {given!r}")
    x, y, w, h = values
    if not all(math.isfinite(v) for v in values):
        raise MovinetPiError(f"X, Y, W and H must be finite numbers, got {given!r}")
    if x < 0 or y < 0:
        raise MovinetPiError(f"X and Y (the box's left and top edges) must be 0 or more, "
                             f"got {given!r}")
    if w <= 0 or h <= 0:
        raise MovinetPiError(f"W and H (the box's width and height) must be more than 0, "
                             f"got {given!r}")
    if x + w > 1 + EDGE_TOLERANCE or y + h > 1 + EDGE_TOLERANCE:
        raise MovinetPiError(f"the box must end inside the picture (X+W and Y+H at most 1), "
                             f"got {given!r}")
    box = (x, y, min(w, 1.0 - x), min(h, 1.0 - y))
    return WHOLE if is_whole(box) else box


def is_whole(box: Optional[Box]) -> bool:
    """True for no box or a box that covers the whole picture."""
    return box is None or box == WHOLE or (
        box[0] <= 0 and box[1] <= 0 and box[2] >= 1 and box[3] >= 1)


def describe(box: Box) -> str:
    """``0.25,0.25,0.5,0.5``: as --roi takes it."""
    return ",".join(f"{v:.4g}" for v in box)


def pixel_rect(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` in pixels of a ``width`` x ``height`` picture: (x0, y0, x1, y1), at least one
    pixel each way, inside the picture."""
    x0 = min(max(0, round(box[0] * width)), width - 1)
    y0 = min(max(0, round(box[1] * height)), height - 1)
    x1 = min(max(x0 + 1, round((box[0] + box[2]) * width)), width)
    y1 = min(max(y0 + 1, round((box[1] + box[3]) * height)), height)
    return x0, y0, x1, y1


def crop(picture: np.ndarray, box: Box) -> np.ndarray:
    """The part of ``picture`` (H x W x C) inside ``box``: a view, no copy."""
    x0, y0, x1, y1 = pixel_rect(box, picture.shape[1], picture.shape[0])
    return picture[y0:y1, x0:x1]


def mirrored(box: Box) -> Box:
    """``box`` in a picture flipped left to right."""
    return (1.0 - box[0] - box[2], box[1], box[2], box[3])


def crop_pixels(box: Box, width: int, height: int) -> tuple[int, int]:
    """The size in pixels (w, h) of ``box`` in a ``width`` x ``height`` picture."""
    x0, y0, x1, y1 = pixel_rect(box, width, height)
    return x1 - x0, y1 - y0


# -- the box on the Pi camera's sensor ------------------------------------------------------------


def sensor_crop(box: Box, main: tuple[int, ...], maximum: tuple[int, ...]) -> tuple[int, ...]:
    """``box`` (fractions of the picture) as a crop in sensor pixels ``(x, y, w, h)``: the
    picture is main's crop ``main``; the result lies within ``maximum`` (ScalerCropMaximum)."""
    x = main[0] + round(box[0] * main[2])
    y = main[1] + round(box[1] * main[3])
    w = max(1, round(box[2] * main[2]))
    h = max(1, round(box[3] * main[3]))
    x = min(max(x, maximum[0]), maximum[0] + maximum[2] - 1)
    y = min(max(y, maximum[1]), maximum[1] + maximum[3] - 1)
    return x, y, min(w, maximum[0] + maximum[2] - x), min(h, maximum[1] + maximum[3] - y)


def box_in(crop: tuple[int, ...], main: tuple[int, ...]) -> Box:
    """A crop in sensor pixels as a box in fractions of main's crop (the picture)."""
    return ((crop[0] - main[0]) / main[2], (crop[1] - main[1]) / main[3],
            crop[2] / main[2], crop[3] / main[3])


def lores_for_box(box: Box, model_size: tuple[int, int],
                  frame_size: tuple[int, int]) -> tuple[int, int]:
    """A lores size (even, within the picture's) at which ``box`` holds the model's input
    size (a pixel spare for rounding)."""
    width = min(frame_size[0], 2 * math.ceil((model_size[0] + 1) / box[2] / 2))
    height = min(frame_size[1], 2 * math.ceil((model_size[1] + 1) / box[3] / 2))
    return width, height


def model_input(frame: Frame, size: tuple[int, int], box: Optional[Box] = None) -> np.ndarray:
    """What the model reads of ``frame`` (RGB; resized by the classifier if not ``size``):
    the part inside ``box`` (None: the whole picture).

    The ISP's small picture (``frame.model_rgb``) when it shows just that part (the camera
    cropped it: ``frame.model_box``) or the whole picture, and that part of it is at least
    the model's input size; else the full frame, cut before the resize.
    A BGR frame is cut and resized first and its channels swapped after, at the model's
    size: the same pixels as swapping first (INTER_AREA works per channel), with no
    full-frame conversion."""
    whole = is_whole(box)
    width, height = size
    if frame.model_rgb_of is not None and frame.model_box in (None, box):
        small = frame.model_rgb
        assert small is not None
        part = small if whole or frame.model_box is not None else crop(small, box)  # type: ignore[arg-type]
        if part.shape[1] >= width and part.shape[0] >= height:
            return part
    bgr = frame.bgr
    if bgr is None:
        return frame.rgb if whole else crop(frame.rgb, box)  # type: ignore[arg-type]
    if not whole:
        bgr = crop(bgr, box)  # type: ignore[arg-type]
    if bgr.shape[:2] != (height, width):
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
