"""The Raspberry Pi camera through picamera2 (libcamera).

``picamera2`` is imported lazily, when a :class:`PicameraSource` opens: it only
exists on Raspberry Pi OS, as a system package. The camera's own previews (DRM on
HDMI without a desktop, QTGL in a desktop window) are driven by
:mod:`movinet_pi.display.drm` and :mod:`movinet_pi.display.qtgl`; this source only
keeps such a preview (:class:`CameraPreview`) running across reconnects.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import time
from typing import Any, Callable, Optional, Protocol

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.log import say
from movinet_pi.sources.base import Frame, Source, SourceLost, Timeline
from movinet_pi.sources.roi import Box, box_in, is_whole, lores_for_box, sensor_crop

PICAMERA2_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install -y python3-picamera2` "
    "and create the venv with --system-site-packages"
)

#: Longest error text from picamera2/libcamera put into one of our messages.
REASON_LIMIT = 200


def _reason(error: BaseException) -> str:
    return one_line(error, limit=REASON_LIMIT)


class CameraPreview(Protocol):
    """A preview the camera stack draws itself (:mod:`movinet_pi.display.drm`,
    :mod:`movinet_pi.display.qtgl`), brought back on every reconnect."""

    def before_start(self, camera: Any) -> None:
        """Start the preview on the configured ``Picamera2``, before ``camera.start()``."""

    def after_start(self, camera: Any) -> None:
        """Put back what the preview showed, once the camera runs."""


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


def _import_picamera2() -> Any:
    try:
        return importlib.import_module("picamera2")
    except ImportError as error:
        raise MovinetPiError(PICAMERA2_HINT) from error
    except Exception as error:  # e.g. a numpy ABI mismatch inside its dependencies
        raise MovinetPiError(
            f"picamera2 failed to import ({_reason(error)}): create the venv with "
            "--system-site-packages and use the system numpy"
        ) from error


class PicameraSource(Source):
    """The Raspberry Pi camera through picamera2 (libcamera).

    ``main`` is configured as RGB888 at ``frame_size``; with ``model_size`` (the model's
    input) the ISP scales a lores stream to it and :meth:`read` gives it to each frame as
    ``model_rgb``, so no full frame is resized on the CPU per step; with ``lores_size`` a second,
    smaller stream comes from the same sensor readout (YUV420: the only lores format
    before the Pi 5), read with :meth:`read_lores` or together with main through
    :meth:`read_pair`. Timestamps come from ``SensorTimestamp`` (the moment the
    sensor captured the frame), relative to the first frame.

    With ``roi`` (a box, fractions of the picture) the model's stream shows only that part
    and the picture stays whole (:meth:`_crop_for_the_model`); each frame's ``model_box``
    says which part the ISP really cropped (from the request's metadata).

    A preview the camera draws itself (:attr:`preview`, set by the DRM or QTGL display) is
    started again on every reconnect.
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
        model_size: Optional[tuple[int, int]] = None,
        roi: Optional[Box] = None,
        log: Callable[[str], None] = say,
    ) -> None:
        self.camera_num = camera_num
        self.name = "picamera" if camera_num == 0 else f"picamera {camera_num}"
        self.live = True
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
        self._crops: Optional[list[Any]] = None  # the last request's ScalerCrops
        self._log = log
        self.lores_size: Optional[tuple[int, int]] = (
            (int(lores_size[0]), int(lores_size[1])) if lores_size is not None else None
        )
        self._formats = {"main": main_format, "lores": lores_format}
        self._buffer_count = buffer_count
        self._timeout = timeout
        self._timeline = Timeline(1.0 / fps)
        self._index = 0
        self._camera: Any = None
        self._closed = False
        #: A preview the camera stack draws (:mod:`movinet_pi.display.drm` sets it once
        #: its preview runs): brought back on every reconnect.
        self.preview: Optional[CameraPreview] = None
        #: The picamera2 module (its ``Preview`` kinds are what a preview starts).
        self.picamera2 = _import_picamera2()
        self._connect(on_failure=self._open_error)

    @property
    def camera(self) -> Any:
        """The open ``Picamera2`` (None while disconnected), for a preview to drive."""
        return self._camera

    @property
    def main_format(self) -> str:
        """The main stream's picamera2 format ("RGB888" unless a preview needs another)."""
        return self._formats["main"]

    def set_main_format(self, fmt: str) -> None:
        """Configure the main stream as ``fmt`` from now on (also after reconnects); the
        camera must be stopped. The QTGL preview can only draw 32-bit formats."""
        self._formats["main"] = fmt
        if self._camera is not None:
            self._configure()

    @property
    def timeout(self) -> float:
        """Seconds a capture may wait for a frame before the camera counts as lost."""
        return self._timeout

    # -- opening -----------------------------------------------------------------------------

    def _open_error(self, stage: str, error: BaseException) -> MovinetPiError:
        if stage == "open":  # absent, or busy in another program: may pass, so exit 1
            return MovinetPiError(
                f"no Pi camera found ({_reason(error)}): check the ribbon cable and "
                "that `rpicam-hello --list-cameras` lists it",
                exit_code=1,
            )
        if stage == "configure":
            return MovinetPiError(
                f"the Pi camera refused {self._describe_config()} ({_reason(error)}): "
                "use an even size such as 640x480"
            )
        return MovinetPiError(
            f"the Pi camera did not start ({_reason(error)}): check the cable, "
            "and that no other program uses the camera",
            exit_code=1,
        )

    def _lost_error(self, stage: str, error: BaseException) -> MovinetPiError:
        return SourceLost(f"the Pi camera is still unavailable ({_reason(error)})")

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
            self._camera = self.picamera2.Picamera2(self.camera_num)
            stage = "configure"
            self._configure()
            if self.preview is not None:  # a reconnect brings the preview back too
                stage = "preview"
                self.preview.before_start(self._camera)
            stage = "start"
            self._camera.start()
            if self.preview is not None:
                self.preview.after_start(self._camera)
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

    def _configure(self) -> None:
        """Configure the camera; if it refuses the model's lores stream, configure it
        without one (the model then resizes the full frame), saying so."""
        try:
            self._camera.configure(self._make_config())
        except Exception as error:
            if not self.model_lores or self.lores_size is None:
                raise
            width, height = self.lores_size
            self.model_lores, self.lores_size = False, None
            self._log(f"the Pi camera refused a {width}x{height} lores stream for the model "
                      f"({_reason(error)}): the model resizes the full frame instead")
            self._camera.configure(self._make_config())
        self._adopt_configured_sizes()
        if self.roi is not None and self.model_lores:
            self._crop_for_the_model()

    def _crop_for_the_model(self) -> None:
        """Crop the model's stream to :attr:`roi`: by the ISP where each output has a crop
        of its own (``ScalerCrops`` is advertised: a Pi 5), else (one ``ScalerCrop`` for
        all: a Pi 4) by a lores stream large enough that the box cut from it on the CPU
        still holds the model's input size (configured again once, if it must grow)."""
        assert self.roi is not None and self.model_size is not None
        controls = getattr(self._camera, "camera_controls", {}) or {}
        self.isp_roi = "ScalerCrops" in controls
        if self.isp_roi:
            main = tuple(controls["ScalerCrops"][0])  # picamera2 gives main its default crop
            lores = sensor_crop(self.roi, main, tuple(controls["ScalerCrop"][1]))
            self._camera.set_controls({"ScalerCrops": [main, lores]})
            return
        wanted = lores_for_box(self.roi, self.model_size, self.frame_size)
        current = self.lores_size or wanted
        if wanted[0] > current[0] or wanted[1] > current[1]:
            self.lores_size = wanted
            try:
                self._camera.configure(self._make_config())
            except Exception as error:  # the model's own size worked: back to it
                self.lores_size = current
                self._log(f"the Pi camera refused a {wanted[0]}x{wanted[1]} lores stream for "
                          f"--roi ({_reason(error)}): the box is cut from the full frame")
                self._camera.configure(self._make_config())
            self._adopt_configured_sizes()

    def _adopt_configured_sizes(self) -> None:
        """libcamera may adjust sizes while configuring; report what frames will really be."""
        config = self._camera.camera_configuration() or {}
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

    # -- reading -----------------------------------------------------------------------------

    def _model_box(self) -> Optional[Box]:
        """The part of the picture the ISP cropped the model's stream to (None: all)."""
        if not self.isp_roi:
            return None
        crops = self._crops
        if not crops or len(crops) < 2:
            return self.roi
        return box_in(tuple(crops[1]), tuple(crops[0]))

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
                f"the Pi camera stopped delivering frames ({_reason(error)}): "
                "check the ribbon cable"
            ) from error
        try:
            arrays = [request.make_array(name) for name in names]
            metadata = request.get_metadata()
        finally:
            request.release()
        self._crops = metadata.get("ScalerCrops")
        sensor_ns = metadata.get("SensorTimestamp")
        raw = sensor_ns / 1e9 if isinstance(sensor_ns, (int, float)) else time.monotonic()
        index = self._index
        self._index += 1
        return arrays, self._timeline.stamp(raw), index

    def _frame(self, name: str, array: np.ndarray, timestamp: float, index: int,
               model_rgb_of: Optional[Callable[[], np.ndarray]] = None) -> Frame:
        fmt = self._formats[name]
        model_box = self._model_box() if model_rgb_of is not None else None
        if fmt == "RGB888":  # B,G,R in memory: shown as it is, converted for the model only
            return Frame.from_bgr(np.ascontiguousarray(array), timestamp, index, model_rgb_of,
                                  model_box=model_box)
        if fmt == "XRGB8888":  # B,G,R,X (the QTGL preview's): dropping X only if it is wanted
            height, width = array.shape[:2]
            bgr = functools.partial(cv2.cvtColor, array, cv2.COLOR_BGRA2BGR)
            return Frame.from_bgr(bgr, timestamp, index, model_rgb_of, shape=(height, width, 3),
                                  model_box=model_box)
        size = self.lores_size if name == "lores" and self.lores_size else self.frame_size
        rgb = rgb_from_picamera(array, fmt, size[0])
        return Frame(rgb, timestamp, index, model_rgb_of, model_box=model_box)

    def read(self) -> Frame:
        if self.model_lores:  # the picture and the model's input from one sensor readout
            (main, lores), timestamp, index = self._capture(("main", "lores"))
            assert self.lores_size is not None
            small = functools.partial(rgb_from_picamera, lores, self._formats["lores"],
                                      self.lores_size[0])  # converted only if the model asks
            return self._frame("main", main, timestamp, index, model_rgb_of=small)
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


def picamera2_available() -> bool:
    """True if picamera2 imports (it only exists on Raspberry Pi OS)."""
    try:
        importlib.import_module("picamera2")
    except Exception:
        return False
    return True
