"""What the Pi camera is configured for, and what it gave: the main stream, a lores stream
at the model's input size (the ISP resizes for the model), the model's stream cropped to
``--roi``, and the sizes libcamera adjusted while configuring.

:class:`CameraStreams` belongs to a :class:`~movinet_pi.sources.picamera.PicameraSource`,
which configures the camera through it on every (re)connect and reads its frames by it.
The crop maths (a box on the sensor, a lores size large enough for a box) is
:mod:`movinet_pi.sources.roi`'s.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

from movinet_pi.sources.picamera_lib import reason
from movinet_pi.sources.roi import Box, box_in, is_whole, lores_for_box, sensor_crop


class CameraStreams:
    """The streams asked of the camera and the sizes it really gives.

    ``main`` is configured as ``main_format`` at ``frame_size``. With ``model_size`` (the
    model's input) and no ``lores_size``, the lores stream is the model's input, scaled by
    the ISP (:attr:`model_lores`), when it fits in main as libcamera requires; with
    ``lores_size`` a second, smaller stream comes from the same sensor readout. With
    ``roi`` (a box, fractions of the picture) the model's stream shows only that part.
    A refused or adjusted lores stream is said once through ``log``.
    """

    def __init__(
        self,
        *,
        frame_size: tuple[int, int],
        fps: float,
        lores_size: Optional[tuple[int, int]],
        model_size: Optional[tuple[int, int]],
        roi: Optional[Box],
        main_format: str,
        lores_format: str,
        buffer_count: int,
        log: Callable[[str], None],
    ) -> None:
        self.fps = fps
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        #: The model's input size: the lores stream is scaled to it by the ISP and each
        #: frame carries it as ``model_rgb`` (when no other lores size is asked for and
        #: it fits in main, as libcamera requires).
        self.model_lores = (model_size is not None and lores_size is None
                            and model_size[0] <= frame_size[0] and model_size[1] <= frame_size[1])
        if self.model_lores:
            lores_size = model_size
        self.model_size = model_size
        #: The part of the picture the model reads (None: all of it).
        self.roi = None if is_whole(roi) else roi
        #: The ISP crops the model's stream to ``roi`` (a Pi 5), from the last configure on.
        self.isp_roi = False
        self.lores_size: Optional[tuple[int, int]] = (
            (int(lores_size[0]), int(lores_size[1])) if lores_size is not None else None
        )
        #: picamera2 format by stream name ("main", "lores").
        self.formats = {"main": main_format, "lores": lores_format}
        self.buffer_count = buffer_count
        self._log = log

    def describe(self) -> str:
        """What was asked, for an error: ``640x480 at 30 fps with a 172x172 lores stream``."""
        width, height = self.frame_size
        text = f"{width}x{height} at {self.fps:g} fps"
        if self.lores_size is not None:
            text += f" with a {self.lores_size[0]}x{self.lores_size[1]} lores stream"
        return text

    def _make_config(self, camera: Any) -> Any:
        main = {"size": self.frame_size, "format": self.formats["main"]}
        lores = None
        if self.lores_size is not None:
            lores = {"size": self.lores_size, "format": self.formats["lores"]}
        options = dict(main=main, lores=lores, controls={"FrameRate": float(self.fps or 30.0)},
                       buffer_count=self.buffer_count)
        colour_space = _bt601()
        if colour_space is not None:
            options["colour_space"] = colour_space
        full_field = _full_field_mode(camera)
        if full_field is not None:
            try:
                return camera.create_video_configuration(**options,
                                                         sensor={"output_size": full_field})
            except TypeError:  # a picamera2 older than its sensor configuration (0.3.13)
                pass
        return camera.create_video_configuration(**options)

    def configure(self, camera: Any) -> None:
        """Configure ``camera`` (a ``Picamera2``); if it refuses the model's lores stream,
        configure it without one (the model then resizes the full frame), saying so."""
        try:
            camera.configure(self._make_config(camera))
        except Exception as error:
            if not self.model_lores or self.lores_size is None:
                raise
            width, height = self.lores_size
            self.model_lores, self.lores_size = False, None
            self._log(f"the Pi camera refused a {width}x{height} lores stream for the model "
                      f"({reason(error)}): the model resizes the full frame instead")
            camera.configure(self._make_config(camera))
        self._adopt_configured_sizes(camera)
        if self.roi is not None and self.model_lores:
            self._crop_for_the_model(camera)

    def _crop_for_the_model(self, camera: Any) -> None:
        """Crop the model's stream to :attr:`roi`: by the ISP where each output has a crop
        of its own (``ScalerCrops`` is advertised: a Pi 5), else (one ``ScalerCrop`` for
        all: a Pi 4) by a lores stream large enough that the box cut from it on the CPU
        still holds the model's input size (configured again once, if it must grow)."""
        assert self.roi is not None and self.model_size is not None
        controls = getattr(camera, "camera_controls", {}) or {}
        self.isp_roi = "ScalerCrops" in controls
        if self.isp_roi:
            main = tuple(controls["ScalerCrops"][0])  # picamera2 gives main its default crop
            lores = sensor_crop(self.roi, main, tuple(controls["ScalerCrop"][1]))
            camera.set_controls({"ScalerCrops": [main, lores]})
            return
        wanted = lores_for_box(self.roi, self.model_size, self.frame_size)
        current = self.lores_size or wanted
        if wanted[0] > current[0] or wanted[1] > current[1]:
            self.lores_size = wanted
            try:
                camera.configure(self._make_config(camera))
            except Exception as error:  # the model's own size worked: back to it
                self.lores_size = current
                self._log(f"the Pi camera refused a {wanted[0]}x{wanted[1]} lores stream for "
                          f"--roi ({reason(error)}): the box is cut from the full frame")
                camera.configure(self._make_config(camera))
            self._adopt_configured_sizes(camera)

    def _adopt_configured_sizes(self, camera: Any) -> None:
        """libcamera may adjust sizes while configuring; report what frames will really be."""
        config = camera.camera_configuration() or {}
        main = config.get("main") or {}
        width, height = main.get("size", self.frame_size)
        self.frame_size = (int(width), int(height))
        lores = config.get("lores")
        if self.lores_size is not None and lores:
            width, height = lores.get("size", self.lores_size)
            asked, self.lores_size = self.lores_size, (int(width), int(height))
            if self.model_lores and self.lores_size != asked:
                self._adjusted_lores(asked)

    def _adjusted_lores(self, asked: tuple[int, int]) -> None:
        """The camera gave another lores size than the model's: the model resizes that
        small frame, or, smaller than its input, reads the full frame. Said once."""
        assert self.lores_size is not None and self.model_size is not None
        got = f"{self.lores_size[0]}x{self.lores_size[1]}"
        text = f"the Pi camera gave a {got} lores stream, not {asked[0]}x{asked[1]}"
        if (self.lores_size[0] < self.model_size[0]
                or self.lores_size[1] < self.model_size[1]):
            self.model_lores = False  # (the stream stays configured, unread)
            self._log(f"{text}: smaller than the model's input, so the model resizes the "
                      "full frame instead")
        else:
            self._log(f"{text}: the model resizes that small frame")

    def model_box(self, crops: Optional[list[Any]]) -> Optional[Box]:
        """The part of the picture the ISP cropped the model's stream to (None: all), from
        a request's ``ScalerCrops`` (main's and lores's)."""
        if not self.isp_roi:
            return None
        if not crops or len(crops) < 2:
            return self.roi
        return box_in(tuple(crops[1]), tuple(crops[0]))


def _full_field_mode(camera: Any) -> tuple[int, int] | None:
    """The sensor mode to ask for: half the pixel array, the 2x2 binned mode every Pi
    camera has, which sees the whole field. Left to itself, libcamera picks the mode
    nearest the main stream's size, and for 640x480 that reads only the middle of the
    sensor (Camera Module 2: 39 % of its width; Camera Module 3: 67 %): the room seen
    through a narrower lens. The ISP scales it down at no CPU cost."""
    size = (getattr(camera, "camera_properties", None) or {}).get("PixelArraySize")
    if not size or len(size) != 2:
        return None
    return int(size[0]) // 2, int(size[1]) // 2


def _bt601() -> Any:
    """libcamera's Smpte170m (BT.601) colour space, the one OpenCV's YUV to RGB conversion
    of the lores stream assumes; picamera2 would choose Rec709 for a main stream of 1280x720
    or more, and the model's colours would shift. None without libcamera (off the Pi)."""
    try:
        return importlib.import_module("libcamera").ColorSpace.Smpte170m()
    except Exception:
        return None
