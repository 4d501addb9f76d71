"""The Raspberry Pi ISP's crops (``ScalerCrop``, ``rpi::ScalerCrops``) for the fake picamera2.

As libcamera's Raspberry Pi pipeline handler applies and reports them
(src/libcamera/pipeline/rpi/common/pipeline_base.cpp: ``configure``, ``applyScalerCrop``,
``fillRequestMetadata``; pisp.cpp and vc4.cpp for the default crops), in its integer
arithmetic:

* Crops are rectangles ``(x, y, width, height)`` in the sensor's native pixels. The
  largest is the sensor mode's analogue crop: the ``ScalerCropMaximum`` property, and the
  maximum of the ``ScalerCrop`` control (``camera_controls["ScalerCrop"]`` is
  ``(min, max, default)``; the minimum is the ISP's smallest crop, 32x32 ISP pixels).
* Each output's default crop is the largest centred one with the output's aspect ratio.
* A Pi 5 (PiSP) crops each ISP output on its own: with two outputs (main and lores) the
  ``ScalerCrops`` control is advertised, its ``(min, max)`` holding the two default crops
  (libcamera's way to report them), and each request's metadata carries ``ScalerCrops``
  (one per output) besides ``ScalerCrop`` (the first). A Pi 4 (VC4) has one crop for every
  output, from the largest stream; ``ScalerCrops`` is not advertised there.
* A crop set is moved into ISP pixels, made at least the minimum size (enlarged to the
  crop's own aspect ratio) about the same centre, then moved (and cut) to lie inside the
  sensor mode; a crop of zero size is taken as 1x1 at the origin.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import cv2
import numpy as np

Rect = tuple[int, int, int, int]  # x, y, width, height
Size = tuple[int, int]

#: Per sensor: its pixel array, and its full-field 2x2 binned mode.
SENSORS: dict[str, tuple[Size, Size]] = {
    "imx708": ((4608, 2592), (2304, 1296)),  # Camera Module 3 (16:9)
    "imx219": ((3280, 2464), (1640, 1232)),  # Camera Module 2 (4:3)
    "imx477": ((4056, 3040), (2028, 1520)),  # HQ camera (4:3)
}
#: Per sensor: its smaller modes that read only the middle of the array (mode size, analogue
#: crop), as the kernel drivers list them: what libcamera picks for a small raw stream.
CROPPED_MODES: dict[str, list[tuple[Size, Rect]]] = {
    "imx708": [((1536, 864), (768, 432, 3072, 1728))],
    "imx219": [((640, 480), (1000, 752, 1280, 960))],
    "imx477": [((1332, 990), (696, 528, 2664, 1980))],
}


def sensor_mode(model: str, wanted: Size) -> tuple[Size, Rect]:
    """The mode libcamera's Raspberry Pi pipeline picks for a raw size of ``wanted`` (the
    sensor configuration's ``output_size``, else main's size): the smallest mode holding
    it, else the largest (the full array is always one). (Size, analogue crop.)"""
    pixel_array, binned = SENSORS.get(model, SENSORS["imx708"])
    full: Rect = (0, 0, *pixel_array)
    modes = [*CROPPED_MODES.get(model, []), (binned, full), (pixel_array, full)]
    holding = [m for m in modes if m[0][0] >= wanted[0] and m[0][1] >= wanted[1]]
    return min(holding, key=lambda m: m[0][0] * m[0][1]) if holding else modes[-1]
ISP_MIN_CROP: Size = (32, 32)


def bounded_to_aspect(size: Size, ratio: Size) -> Size:
    """libcamera ``Size::boundedToAspectRatio``."""
    r1, r2 = size[0] * ratio[1], ratio[0] * size[1]
    return (r2 // ratio[1], size[1]) if r1 > r2 else (size[0], r1 // ratio[0])


def expanded_to_aspect(size: Size, ratio: Size) -> Size:
    """libcamera ``Size::expandedToAspectRatio``."""
    r1, r2 = size[0] * ratio[1], ratio[0] * size[1]
    return (r2 // ratio[1], size[1]) if r1 < r2 else (size[0], r1 // ratio[0])


def centred(size: Size, centre: tuple[int, int]) -> Rect:
    """libcamera ``Size::centeredTo``."""
    return centre[0] - size[0] // 2, centre[1] - size[1] // 2, size[0], size[1]


def centre_of(rect: Rect) -> tuple[int, int]:
    return rect[0] + rect[2] // 2, rect[1] + rect[3] // 2


def enclosed_in(rect: Rect, boundary: Rect) -> Rect:
    """libcamera ``Rectangle::enclosedIn``: cut to the boundary's size, then moved inside."""
    width, height = min(rect[2], boundary[2]), min(rect[3], boundary[3])
    x = min(max(rect[0], boundary[0]), boundary[0] + boundary[2] - width)
    y = min(max(rect[1], boundary[1]), boundary[1] + boundary[3] - height)
    return x, y, width, height


def scaled(rect: Rect, numerator: Size, denominator: Size) -> Rect:
    """libcamera ``Rectangle::scaledBy``."""
    return (rect[0] * numerator[0] // denominator[0], rect[1] * numerator[1] // denominator[1],
            rect[2] * numerator[0] // denominator[0], rect[3] * numerator[1] // denominator[1])


class IspCrops:
    """The crops of one configured camera: per output on PiSP, one for all on VC4."""

    def __init__(self, model: str, outputs: Sequence[Size], per_output: bool,
                 raw: Optional[Size] = None) -> None:
        self.mode, self.analog = sensor_mode(model, raw or outputs[0])  # (raw: main's size)
        self.per_output = per_output
        # VC4 crops once, for its largest output; PiSP once per output, in stream order
        sources = list(outputs) if per_output else [max(outputs, key=lambda s: s[0] * s[1])]
        mode_rect = (0, 0, *self.mode)
        self.defaults = [self.native(centred(bounded_to_aspect(self.mode, size),
                                             centre_of(mode_rect))) for size in sources]
        self.crops = list(self.defaults)

    def native(self, isp: Rect) -> Rect:
        """ISP (sensor mode) pixels to native sensor pixels (``scaleIspCrop``)."""
        x, y, w, h = scaled(isp, self.analog[2:], self.mode)
        return x + self.analog[0], y + self.analog[1], w, h

    def controls(self) -> dict[str, tuple[Any, Any, Any]]:
        """What ``camera_controls`` says of the crops: (min, max, default)."""
        out: dict[str, tuple[Any, Any, Any]] = {
            "ScalerCrop": (self.native((0, 0, *ISP_MIN_CROP)), self.analog, self.defaults[0])}
        if self.per_output and len(self.defaults) == 2:
            out["ScalerCrops"] = (self.defaults[0], self.defaults[1], self.defaults[0])
        return out

    def apply(self, controls: dict[str, Any]) -> None:
        """``applyScalerCrop``: ``ScalerCrops`` per output (in order), else ``ScalerCrop``
        for all."""
        per_output = controls.get("ScalerCrops")
        common = controls.get("ScalerCrop")
        for i in range(len(self.crops)):
            if per_output is not None and i < len(per_output):
                self.crops[i] = self._fit(_rect(per_output[i]))
            elif common is not None:
                self.crops[i] = self._fit(_rect(common))

    def _fit(self, crop: Rect) -> Rect:
        if not crop[2] or not crop[3]:
            crop = (0, 0, 1, 1)
        moved = (crop[0] - self.analog[0], crop[1] - self.analog[1], crop[2], crop[3])
        isp = scaled(moved, self.mode, self.analog[2:])
        least = expanded_to_aspect(ISP_MIN_CROP, crop[2:])
        size = (max(isp[2], least[0]), max(isp[3], least[1]))
        fitted = enclosed_in(centred(size, centre_of(isp)), (0, 0, *self.mode))
        return self.native(fitted)

    def metadata(self) -> dict[str, Any]:
        """``fillRequestMetadata``: ``ScalerCrop`` (the first), and ``ScalerCrops`` with
        more than one."""
        out: dict[str, Any] = {"ScalerCrop": self.crops[0]}
        if len(self.crops) > 1:
            out["ScalerCrops"] = list(self.crops)
        return out

    def crop_of(self, output: int) -> Rect:
        return self.crops[output if self.per_output else 0]

    def view(self, scene: np.ndarray, output: int) -> np.ndarray:
        """The part of ``scene`` the output shows. The fake's scenes are what the first
        output (main) shows by default; a crop reaching past that is padded with its edge."""
        crop, base = self.crop_of(output), self.defaults[0]
        if crop == base:
            return scene
        height, width = scene.shape[:2]
        x0 = round((crop[0] - base[0]) * width / base[2])
        y0 = round((crop[1] - base[1]) * height / base[3])
        x1 = max(x0 + 1, round((crop[0] + crop[2] - base[0]) * width / base[2]))
        y1 = max(y0 + 1, round((crop[1] + crop[3] - base[1]) * height / base[3]))
        pad = max(0, -x0, -y0, x1 - width, y1 - height)
        if pad:
            scene = cv2.copyMakeBorder(scene, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        return scene[y0 + pad:y1 + pad, x0 + pad:x1 + pad]


def _rect(value: Any) -> Rect:
    """A crop as given to a control: four whole numbers."""
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise TypeError(f"a crop must be (x, y, width, height), not {value!r}")
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def outputs_of(config: dict[str, Any]) -> list[Size]:
    """The ISP outputs of a configuration, in stream order (main, then lores)."""
    return [tuple(config[name]["size"]) for name in ("main", "lores")  # type: ignore[misc]
            if config.get(name) is not None]


def preserve_ar(config: dict[str, Any], name: str) -> bool:
    """A stream's ``preserve_ar`` (picamera2's defaults: main True, lores False)."""
    stream: Optional[dict[str, Any]] = config.get(name)
    return bool((stream or {}).get("preserve_ar", name == "main"))
