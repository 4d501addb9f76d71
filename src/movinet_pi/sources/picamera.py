"""The Raspberry Pi camera through picamera2 (libcamera).

``picamera2`` is imported lazily, when a :class:`PicameraSource` opens: it only
exists on Raspberry Pi OS, as a system package. The camera's own previews (DRM on
HDMI without a desktop, QTGL in a desktop window) are driven by
:mod:`movinet_pi.display.drm` and :mod:`movinet_pi.display.qtgl`; this source only
keeps such a preview (:class:`CameraPreview`) running across reconnects.

What the camera is configured for (sizes, formats, the model's lores stream, the ``--roi``
crop) is :mod:`movinet_pi.sources.picamera_streams`'s; importing picamera2 and its arrays'
byte orders, :mod:`movinet_pi.sources.picamera_lib`'s.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any, Callable, Optional, Protocol

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.sources.base import Frame, Source, SourceLost, Timeline
from movinet_pi.sources.picamera_lib import (
    import_picamera2,
    is_usb_camera,
    reason,
    rgb_from_picamera,
)
from movinet_pi.sources.picamera_streams import CameraStreams
from movinet_pi.sources.roi import Box


class CameraPreview(Protocol):
    """A preview the camera stack draws itself (:mod:`movinet_pi.display.drm`,
    :mod:`movinet_pi.display.qtgl`), brought back on every reconnect."""

    def before_start(self, camera: Any) -> None:
        """Start the preview on the configured ``Picamera2``, before ``camera.start()``."""

    def after_start(self, camera: Any) -> None:
        """Put back what the preview showed, once the camera runs."""


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
    and the picture stays whole (:class:`~movinet_pi.sources.picamera_streams.CameraStreams`);
    each frame's ``model_box`` says which part the ISP really cropped (from the request's
    metadata).

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
        #: What the camera is configured for, and the sizes it really gives.
        self.streams = CameraStreams(frame_size=frame_size, fps=fps, lores_size=lores_size,
                                     model_size=model_size, roi=roi, main_format=main_format,
                                     lores_format=lores_format, buffer_count=buffer_count,
                                     log=log)
        self._crops: Optional[list[Any]] = None  # the last request's ScalerCrops
        self._timeout = timeout
        self._timeline = Timeline(1.0 / fps)
        self._index = 0
        self._camera: Any = None
        self._closed = False
        #: A preview the camera stack draws (:mod:`movinet_pi.display.drm` sets it once
        #: its preview runs): brought back on every reconnect.
        self.preview: Optional[CameraPreview] = None
        #: The picamera2 module (its ``Preview`` kinds are what a preview starts).
        self.picamera2 = import_picamera2()
        self._refuse_a_usb_camera()
        self._connect(on_failure=self._open_error)

    @property
    def frame_size(self) -> tuple[int, int]:  # type: ignore[override]  # read-only here
        """The main stream's size, as the camera gives it."""
        return self.streams.frame_size

    @property
    def lores_size(self) -> Optional[tuple[int, int]]:
        """The lores stream's size, as the camera gives it (None: no lores stream)."""
        return self.streams.lores_size

    @property
    def model_lores(self) -> bool:
        """Each frame carries the lores stream as the model's input (``model_rgb``)."""
        return self.streams.model_lores

    @property
    def model_size(self) -> Optional[tuple[int, int]]:
        """The model's input size the source was opened for (None: none given)."""
        return self.streams.model_size

    @property
    def roi(self) -> Optional[Box]:
        """The part of the picture the model reads (None: all of it)."""
        return self.streams.roi

    @property
    def isp_roi(self) -> bool:
        """The ISP crops the model's stream to :attr:`roi` (a Pi 5)."""
        return self.streams.isp_roi

    @property
    def camera(self) -> Any:
        """The open ``Picamera2`` (None while disconnected), for a preview to drive."""
        return self._camera

    @property
    def main_format(self) -> str:
        """The main stream's picamera2 format ("RGB888" unless a preview needs another)."""
        return self.streams.formats["main"]

    def set_main_format(self, fmt: str) -> None:
        """Configure the main stream as ``fmt`` from now on (also after reconnects); the
        camera must be stopped. The QTGL preview can only draw 32-bit formats."""
        self.streams.formats["main"] = fmt
        if self._camera is not None:
            self.streams.configure(self._camera)

    @property
    def timeout(self) -> float:
        """Seconds a capture may wait for a frame before the camera counts as lost."""
        return self._timeout

    # -- opening -----------------------------------------------------------------------------

    def _refuse_a_usb_camera(self) -> None:
        """libcamera lists USB cameras too (after the Pi's): they give YUYV or MJPEG where
        this source asks for RGB, so they are read through OpenCV instead."""
        try:
            info = self.picamera2.Picamera2.global_camera_info()[self.camera_num]
        except Exception:  # no such camera: opening it says so
            return
        if is_usb_camera(info):
            raise MovinetPiError(
                f"camera {self.camera_num} is a USB camera ({info.get('Model', '?')}), not a "
                "Pi camera: read it with --source 0 (or its /dev/videoN)")

    def _open_error(self, stage: str, error: BaseException) -> MovinetPiError:
        if stage == "open":  # absent, or busy in another program: may pass, so exit 1
            return MovinetPiError(
                f"no Pi camera found ({reason(error)}): check the ribbon cable and "
                "that `rpicam-hello --list-cameras` lists it",
                exit_code=1,
            )
        if stage == "configure":
            return MovinetPiError(
                f"the Pi camera refused {self.streams.describe()} ({reason(error)}): "
                "use an even size such as 640x480"
            )
        return MovinetPiError(
            f"the Pi camera did not start ({reason(error)}): check the cable, "
            "and that no other program uses the camera",
            exit_code=1,
        )

    def _lost_error(self, stage: str, error: BaseException) -> MovinetPiError:
        return SourceLost(f"the Pi camera is still unavailable ({reason(error)})")

    def _connect(self, on_failure: Callable[[str, BaseException], MovinetPiError]) -> None:
        """Open, configure and start the camera; on failure close it and raise."""
        stage = "open"
        try:
            self._camera = self.picamera2.Picamera2(self.camera_num)
            stage = "configure"
            self.streams.configure(self._camera)
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
                f"the Pi camera stopped delivering frames ({reason(error)}): "
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
        fmt = self.streams.formats[name]
        model_box = self.streams.model_box(self._crops) if model_rgb_of is not None else None
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
            small = functools.partial(rgb_from_picamera, lores, self.streams.formats["lores"],
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
        # The preview first, as picamera2's own close() does: with a preview attached, stop()
        # runs on the preview's thread and waits for it, forever if that thread has died (a
        # DRM render error). After an unplug these may fail too; the camera is gone anyway.
        for method in ("stop_preview", "stop", "close"):
            with contextlib.suppress(Exception):
                getattr(camera, method)()

    def close(self) -> None:
        self._shutdown()
        self._closed = True

