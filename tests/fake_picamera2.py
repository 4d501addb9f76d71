"""A faithful in-process fake of the parts of ``picamera2`` that movinet-pi uses.

picamera2 only exists on Raspberry Pi OS, so tests install this fake as the
``picamera2`` module::

    from fake_picamera2 import install, solid_frames

    def test_something(monkeypatch):
        camera = install(monkeypatch, frames=solid_frames((255, 0, 0)))
        ...  # code that does `from picamera2 import Picamera2`
        camera.unplug(after=3)  # capture_request raises RuntimeError after 3 more frames
        camera.plug()

What it reproduces from the real library (picamera2 0.3.x, read from its source):

* ``Picamera2(camera_num)`` looks the camera up in ``global_camera_info()`` and so
  raises ``IndexError`` when there is none; a camera already open in another
  ``Picamera2`` raises ``RuntimeError`` (libcamera's "acquire" fails).
* ``create_preview/video/still_configuration`` return plain dicts with the real
  defaults (video: main XBGR8888 1280x720, 6 buffers); unknown stream keys raise
  ``ValueError``. ``configure`` checks like the real one (size a tuple of even
  numbers, lores no larger than main, lores YUV on a Pi 4 or earlier, known
  controls) and adds ``stride`` and ``framesize``.
* Arrays come in the byte order the real formats have in memory: "RGB888" is
  B,G,R; "BGR888" is R,G,B; "XRGB8888" is B,G,R,X; "XBGR8888" is R,G,B,X;
  "YUV420" is I420 planes shaped (h*3/2, stride) with the stride padding kept.
* Capturing before ``start()`` blocks forever in the real library; here it raises
  ``TimeoutError`` when a numeric ``wait`` was given (as the real one then does) and
  ``RuntimeError`` otherwise, so a test never hangs. Holding ``buffer_count``
  requests without releasing them stalls the same way.
* ``SensorTimestamp`` (ns, a boot-time clock that keeps running across
  ``Picamera2`` instances) advances by the configured frame duration.
* While a desktop holds the display (``desktop=True``) the DRM preview cannot get a
  plane: picamera2 raises ``RuntimeError("Failed to reserve DRM plane")``. Where it
  does so is ``drm_failure``'s choice. ``"render"`` is what the real library does:
  ``start_preview(Preview.DRM)`` and ``start()`` succeed, the error is raised in the
  preview's event-loop thread at the first frame (printed as "Exception in thread"),
  that thread dies, and no capture ever completes again (``TimeoutError`` with a
  numeric ``wait``). ``"start"`` (the default, which the older tests were written
  against) raises it from ``start_preview`` instead. ``set_overlay`` wants
  H x W x 4 ``uint8``.
* The QTGL preview (``Preview.QTGL`` or a ``picamera2.previews.QtGlPreview`` object,
  picamera2/previews/qt_previews.py and q_gl_picamera2.py) runs Qt in a thread of its
  own and ``start`` waits, with no timeout, for that thread to show its window. When
  the thread fails first (PyQt5 missing: ``ModuleNotFoundError``; EGL unusable, as over
  X forwarding, ``qt_failure="egl"``) the error is printed as "Exception in thread" and
  ``start_preview`` never returns: the fake gives up after :data:`HANG_S` with a
  RuntimeError saying so. Without ``$DISPLAY`` Qt aborts the whole process, and a main
  stream in a 24-bit format ("RGB888", "BGR888": QGlPicamera2 only imports 32-bit and
  YUV buffers) makes the preview's slot raise at the first frame, which PyQt5 turns
  into an abort: the fake records either in ``system.aborted`` (and stalls) instead.
  Its ``set_overlay`` wants a configured camera with ``buffer_count`` >= 2; the
  overlay (RGBA, any size) is scaled to the window. The window can be closed
  (:meth:`FakeCameraSystem.close_window`): the Qt thread ends, the preview detaches
  and, with no event loop left, no capture completes.
* ``configure`` may change the sizes asked for, as libcamera's ``validate()`` does
  ("Camera configuration has been adjusted!"): ``lores_adjust`` gives the lores size
  the fake hands back; ``lores_refused`` makes any configuration with a lores stream
  fail (``RuntimeError("Configuration failed: ...")``).

Frames are RGB images from the iterable you pass (any size: each is resized to
each stream's size, as the ISP scales the sensor image). When it runs out the
camera goes silent (like a stalled camera).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, Optional

import cv2
import numpy as np
from fake_scaler_crop import SENSORS, IspCrops, outputs_of, preserve_ar

RGB_FORMATS = ("RGB888", "BGR888", "XRGB8888", "XBGR8888")
YUV_FORMATS = ("YUV420", "YVU420")
KNOWN_CONTROLS = frozenset(
    {
        "AeEnable",
        "AeExposureMode",
        "AeMeteringMode",
        "AfMode",
        "AnalogueGain",
        "AwbEnable",
        "AwbMode",
        "Brightness",
        "ColourGains",
        "Contrast",
        "ExposureTime",
        "FrameDurationLimits",
        "FrameRate",
        "NoiseReductionMode",
        "Saturation",
        "ScalerCrop",
        "Sharpness",
    }
)
#: A sensor's boot-time clock does not start at zero.
BOOT_CLOCK_START_NS = 4_321_000_000_000
#: How long the fake waits where the real library would wait forever (a QTGL thread that died).
HANG_S = 5.0
#: Controls set while the camera runs take effect this many frames later (the requests
#: already queued are captured first).
CONTROL_LATENCY_FRAMES = 3


class Preview(Enum):
    """The real ``picamera2.Preview`` values."""

    NULL = 0
    DRM = 1
    QT = 2
    QTGL = 3


def solid_frames(
    rgb: tuple[int, int, int], size: tuple[int, int] = (64, 48)
) -> Iterator[np.ndarray]:
    """An endless stream of one-colour RGB images (``size`` is width, height)."""
    image = np.empty((size[1], size[0], 3), np.uint8)
    image[:] = rgb
    while True:
        yield image.copy()


def paced(frames: Iterable[np.ndarray], fps: float) -> Iterator[np.ndarray]:
    """Deliver frames no faster than a real sensor at ``fps`` would."""
    started = time.monotonic()
    for i, frame in enumerate(frames):
        delay = started + i / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield frame


def pattern_frames(size: tuple[int, int] = (64, 48)) -> Iterator[np.ndarray]:
    """An endless stream of RGB test images: colour bars whose brightness encodes the frame."""
    width, height = size
    bars = np.zeros((height, width, 3), np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
    for i, colour in enumerate(colours):
        bars[:, i * width // 4 : (i + 1) * width // 4] = colour
    n = 0
    while True:
        yield (bars.astype(np.uint16) * (255 - n % 128) // 255).astype(np.uint8)
        n += 1


def encode(rgb: np.ndarray, fmt: str, stride: Optional[int] = None) -> np.ndarray:
    """``rgb`` as ``make_array`` returns it for stream format ``fmt`` (memory byte order)."""
    if fmt == "RGB888":
        return np.ascontiguousarray(rgb[..., ::-1])
    if fmt == "BGR888":
        return np.ascontiguousarray(rgb)
    if fmt in ("XRGB8888", "XBGR8888"):
        x = np.full((*rgb.shape[:2], 1), 255, np.uint8)
        colour = rgb[..., ::-1] if fmt == "XRGB8888" else rgb
        return np.ascontiguousarray(np.concatenate([colour, x], axis=2))
    if fmt in YUV_FORMATS:
        return _encode_i420(rgb, fmt, stride or rgb.shape[1])
    raise RuntimeError(f"Format {fmt} not supported")


def _encode_i420(rgb: np.ndarray, fmt: str, stride: int) -> np.ndarray:
    """Planar YUV 4:2:0 laid out like libcamera's buffers: rows padded to ``stride``."""
    height, width = rgb.shape[:2]
    planar = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    y = planar[: width * height].reshape(height, width)
    chroma = width * height // 4
    u = planar[width * height : width * height + chroma].reshape(height // 2, width // 2)
    v = planar[width * height + chroma :].reshape(height // 2, width // 2)
    if fmt == "YVU420":
        u, v = v, u

    def pad(plane: np.ndarray, row: int) -> np.ndarray:
        out = np.zeros((plane.shape[0], row), np.uint8)
        out[:, : plane.shape[1]] = plane
        return out.reshape(-1)

    flat = np.concatenate([pad(y, stride), pad(u, stride // 2), pad(v, stride // 2)])
    return flat.reshape(height * 3 // 2, stride)


def _stride(fmt: str, width: int) -> int:
    if fmt in YUV_FORMATS:
        return -(-width // 64) * 64  # the ISP pads YUV rows so the chroma rows stay aligned
    bytes_per_pixel = 4 if fmt.startswith("X") else 3
    return -(-width * bytes_per_pixel // 32) * 32


class FakeCameraSystem:
    """The fake "hardware": attached cameras, the frame supply and the sensor clock.

    Shared by every ``Picamera2`` the installed module creates, so a reopened
    camera continues the same scene and clock, and a test can unplug it.
    """

    def __init__(
        self,
        frames: Optional[Iterable[np.ndarray]] = None,
        *,
        cameras: int = 1,
        model: str = "imx708",
        platform: str = "vc4",
        desktop: bool = False,
        drm_failure: str = "start",
        qt: bool = True,
        qt_failure: Optional[str] = None,
        qt_shared_thread: bool = False,
        usb_cameras: int = 0,
        lores_adjust: Optional[tuple[int, int]] = None,
        lores_refused: bool = False,
    ) -> None:
        self.frames: Iterator[np.ndarray] = iter(frames if frames is not None else pattern_frames())
        self.models = [model] * cameras
        #: USB webcams libcamera also lists (after the Pi's own, as the real one sorts them)
        self.usb_cameras = usb_cameras
        self.platform = platform  # "vc4" (Pi 4 and earlier: lores must be YUV) or "pisp" (Pi 5)
        self.desktop = desktop  # True: a desktop is DRM master and the DRM preview fails
        if drm_failure not in ("start", "render"):
            raise ValueError(f"drm_failure must be 'start' or 'render', not {drm_failure!r}")
        self.drm_failure = drm_failure
        self.qt = qt  # PyQt5 and PyOpenGL are installed (the QTGL preview can import them)
        if qt_failure not in (None, "egl"):
            raise ValueError(f"qt_failure must be None or 'egl', not {qt_failure!r}")
        self.qt_failure = qt_failure
        #: newer picamera2: every Qt window runs on one thread that outlives them (a closed
        #: window only detaches its preview from the camera)
        self.qt_shared_thread = qt_shared_thread
        self._qt_thread: Optional[threading.Thread] = None
        self.lores_adjust = lores_adjust
        self.lores_refused = lores_refused
        #: why the real process would have been aborted (by Qt), if it would
        self.aborted: Optional[str] = None
        #: why the real process would have hung (a call that never returns), if it would
        self.hung: Optional[str] = None
        self.clock_ns = BOOT_CLOCK_START_NS
        self.delivered = 0
        self.unplugged = False
        self.unplug_mode = "error"
        self._unplug_at: Optional[int] = None
        self.acquired: set[int] = set()
        self.instances: list[FakePicamera2] = []
        self.module = make_module(self)

    # -- the test's switches -----------------------------------------------------------------

    def unplug(self, after: int = 0, mode: str = "error") -> None:
        """Lose the camera after ``after`` more frames.

        ``mode="error"``: capture raises ``RuntimeError``, and new ``Picamera2()`` calls
        find no camera until :meth:`plug`; ``"stall"``: frames just stop, as after a pulled
        ribbon cable (``TimeoutError`` with a numeric wait), while the sensor stays listed:
        a new ``Picamera2()`` opens and starts, and delivers nothing until :meth:`plug`.
        """
        self._unplug_at = self.delivered + after
        self.unplug_mode = mode
        self._check_unplug()

    def qt_thread(self) -> threading.Thread:
        """The one Qt thread of newer picamera2, alive as long as the process."""
        if self._qt_thread is None:
            self._qt_thread = threading.Thread(target=threading.Event().wait, name="Qt",
                                               daemon=True)
            self._qt_thread.start()
        return self._qt_thread

    def close_window(self) -> None:
        """The user closes the QTGL preview's window (its Qt thread then ends)."""
        for camera in self.instances:
            preview = camera._preview
            if isinstance(preview, QtGlPreview):
                preview.quit()

    def plug(self) -> None:
        """Reattach the camera (open instances stay broken, like after a real unplug)."""
        self.unplugged = False
        self._unplug_at = None

    # -- used by the fake module -------------------------------------------------------------

    def _check_unplug(self) -> None:
        if self._unplug_at is not None and self.delivered >= self._unplug_at:
            self.unplugged = True

    def camera_info(self) -> list[dict[str, Any]]:
        if self.unplugged and self.unplug_mode == "error":
            return []  # (a stalled CSI sensor stays listed: libcamera found it at boot)
        return [
            {
                "Model": model,
                "Location": 2,
                "Rotation": 0,
                "Id": f"/base/axi/pcie@120000/rp1/i2c@88000/{model}@1a#{num}",
                "Num": num,
            }
            for num, model in enumerate(self.models)
        ] + [
            {
                "Model": "HD Pro Webcam C920",
                "Location": 2,
                "Rotation": 0,
                "Id": f"/base/scb/pcie@7d500000/pci@0,0/usb@0,0-{n + 1}:1.0-046d:082d",
                "Num": len(self.models) + n,
            }
            for n in range(self.usb_cameras)
        ]

    def next_scene(self) -> Optional[np.ndarray]:
        self._check_unplug()
        if self.unplugged:
            return None
        try:
            return next(self.frames)
        except StopIteration:
            return None


class _NullPreview:
    def __init__(self, kind: Preview, **kwargs: Any) -> None:
        self.kind = kind
        self.options = kwargs
        self.overlay: Optional[np.ndarray] = None

    def start(self, picam2: FakePicamera2) -> None:
        picam2._preview = self

    def stop(self) -> None:
        pass

    def set_overlay(self, overlay: Optional[np.ndarray]) -> None:
        self.overlay = None if overlay is None else overlay.copy()


class QtGlPreview(_NullPreview):
    """``picamera2.previews.QtGlPreview``: a Qt window drawn with GLES, in a thread of its own."""

    def __init__(self, x: Optional[int] = None, y: Optional[int] = None, width: int = 640,
                 height: int = 480, transform: Any = None) -> None:
        super().__init__(Preview.QTGL, x=x, y=y, width=width, height=height, transform=transform)
        self.width, self.height = width, height
        self.picam2: Optional[FakePicamera2] = None
        self.thread: Optional[threading.Thread] = None  # the window's Qt thread
        self._window: Optional[threading.Thread] = None  # this window's own (the same, or not)
        self._quit = threading.Event()

    def start(self, picam2: FakePicamera2) -> None:
        shown = threading.Event()
        self._window = threading.Thread(target=self._thread_func, args=(picam2, shown),
                                        name="QtGlPreview", daemon=True)
        self._window.start()
        system = picam2._system
        self.thread = system.qt_thread() if system.qt_shared_thread else self._window
        if not shown.wait(HANG_S):  # the real one waits forever
            raise RuntimeError("fake picamera2: the QTGL preview's thread died before showing "
                               "its window; the real start_preview() would block forever")

    def _thread_func(self, picam2: FakePicamera2, shown: threading.Event) -> None:
        system = picam2._system
        try:
            if not system.qt:
                raise ModuleNotFoundError("No module named 'PyQt5'")
            if not os.environ.get("DISPLAY"):
                system.aborted = "qt.qpa.xcb: could not connect to display"  # Qt aborts
                return
            if system.qt_failure == "egl":
                raise RuntimeError("eglCreateWindowSurface failed")
        except Exception as error:
            _print_thread_exception(error)
            return
        self.picam2 = picam2
        picam2._preview = self  # attach_preview
        shown.set()
        self._quit.wait()  # app.exec()
        picam2._preview = None  # the widget's cleanup(): detach_preview
        self.picam2 = None

    def quit(self) -> None:
        self._quit.set()

    def stop(self) -> None:
        self.quit()
        if self._window is not None:
            self._window.join()

    def set_overlay(self, overlay: Optional[np.ndarray]) -> None:
        camera = self.picam2
        if camera is None or not camera.camera_config:
            raise RuntimeError("Camera must be configured before setting overlay")
        if camera.camera_config["buffer_count"] < 2:
            raise RuntimeError("Need at least buffer_count=2 to set overlay")
        super().set_overlay(overlay)


def _print_thread_exception(error: BaseException) -> None:
    """What Python prints for an exception that ends a thread."""
    sys.stderr.write(
        f"Exception in thread {threading.current_thread().name}:\n"
        + "".join(traceback.format_exception(type(error), error, error.__traceback__))
    )


class CompletedRequest:
    """A captured frame: one buffer per configured stream plus metadata."""

    def __init__(self, camera: FakePicamera2, scene: np.ndarray, metadata: dict[str, Any]) -> None:
        self._camera = camera
        self.config: Optional[dict[str, Any]] = dict(camera.camera_config or {})
        self._metadata = metadata
        self._arrays: dict[str, np.ndarray] = {}
        for output, name in enumerate(("main", "lores")):
            stream = self.config.get(name)
            if stream:
                view = camera.isp.view(scene, output) if camera.isp is not None else scene
                image = _resize(view, stream["size"])
                self._arrays[name] = encode(image, stream["format"], stream["stride"])
        self.ref_count = 1

    def _alive(self) -> None:
        if self.config is None:
            raise RuntimeError("fake picamera2: request used after release()")

    def make_array(self, name: str) -> np.ndarray:
        self._alive()
        if name not in self._arrays:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return self._arrays[name].copy()

    def make_buffer(self, name: str) -> np.ndarray:
        return self.make_array(name).reshape(-1)

    def get_metadata(self) -> dict[str, Any]:
        self._alive()
        return dict(self._metadata)

    def acquire(self) -> None:
        if self.ref_count == 0:
            raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
        self.ref_count += 1

    def release(self) -> None:
        self.ref_count -= 1
        if self.ref_count < 0:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        if self.ref_count == 0:
            self._camera.outstanding.discard(self)
            self.config = None


class MappedArray:
    """``with MappedArray(request, "main") as m: m.array[...] = ...`` edits the buffer."""

    def __init__(self, request: CompletedRequest, stream: str, reshape: bool = True) -> None:
        self._request = request
        self._stream = stream
        self.array: Optional[np.ndarray] = None

    def __enter__(self) -> MappedArray:
        self._request._alive()
        self.array = self._request._arrays[self._stream]
        return self

    def __exit__(self, *exc: object) -> None:
        self.array = None


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)


class FakePicamera2:
    """Stands in for ``picamera2.Picamera2``; bound to a system by :func:`make_module`."""

    _system: FakeCameraSystem

    def __init__(self, camera_num: int = 0, tuning: Any = None, allocator: Any = None) -> None:
        self.is_open = False
        self._preview: Optional[_NullPreview] = None
        #: the exception that killed the preview's event-loop thread (DRM under a desktop)
        self.preview_error: Optional[BaseException] = None
        info = self._system.camera_info()[camera_num]  # IndexError with no camera, as the real
        if info["Num"] in self._system.acquired:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self._system.acquired.add(info["Num"])
        self._system.instances.append(self)
        self.camera_idx = info["Num"]
        pixel_array = SENSORS.get(info["Model"], SENSORS["imx708"])[0]
        # ScalerCropMaximum is all zeros until a configuration chose the sensor mode
        self.camera_properties = {"Model": info["Model"], "PixelArraySize": pixel_array,
                                  "ScalerCropMaximum": (0, 0, 0, 0)}
        #: (min, max, default) per control: here only the crops, once configured
        self.camera_controls: dict[str, tuple[Any, Any, Any]] = {}
        self.sensor_resolution = pixel_array
        self.sensor_format = "SRGGB10_CSI2P"
        self.camera_config: Optional[dict[str, Any]] = None
        self.started = False
        self.is_open = True
        self.stop_count = 0
        self.close_count = 0
        self.outstanding: set[CompletedRequest] = set()
        self.controls_set: dict[str, Any] = {}
        self.overlay: Optional[np.ndarray] = None
        self.isp: Optional[IspCrops] = None  # the ISP's crops (fake_scaler_crop.py)
        self._pending: list[tuple[int, dict[str, Any]]] = []  # (from frame, controls)

    # -- configurations ----------------------------------------------------------------------

    @staticmethod
    def align_stream(stream_config: dict[str, Any], optimal: bool = True) -> None:
        align = 2
        if optimal:
            align = 64 if stream_config["format"] in YUV_FORMATS else 32
        width, height = stream_config["size"]
        stream_config["size"] = (width - width % align, height - height % 2)

    @staticmethod
    def _stream(defaults: dict[str, Any], updates: Optional[dict[str, Any]]) -> Optional[dict]:
        if updates is None:
            return None
        valid = ("format", "size", "stride", "preserve_ar")
        for key, value in updates.items():
            if key not in valid:
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
            defaults[key] = value
        return defaults

    def _create(
        self,
        use_case: str,
        main_defaults: dict[str, Any],
        main: dict[str, Any],
        lores: Optional[dict[str, Any]],
        buffer_count: int,
        controls: dict[str, Any],
        default_controls: dict[str, Any],
        display: Optional[str],
        encode: Optional[str],
        queue: bool,
        sensor: Optional[dict] = None,
        colour_space: Any = None,
    ) -> dict[str, Any]:
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main_cfg = self._stream(main_defaults, main)
        assert main_cfg is not None
        self.align_stream(main_cfg, optimal=False)
        lores_defaults = {"format": "YUV420", "size": main_cfg["size"], "preserve_ar": False}
        lores_cfg = self._stream(lores_defaults, lores)
        if lores_cfg is not None:
            self.align_stream(lores_cfg, optimal=False)
        config = {
            "use_case": use_case,
            "transform": None,
            "colour_space": colour_space,  # (None: picamera2 chooses by the main size)
            "buffer_count": buffer_count,
            "queue": queue,
            "main": main_cfg,
            "lores": lores_cfg,
            "raw": {"format": self.sensor_format, "size": main_cfg["size"]},
            "controls": {**default_controls, **controls},
            "display": display,
            "encode": encode,
            "sensor": dict(sensor or {}),
        }
        for stream in (display, encode):
            if stream is not None and config.get(stream) is None:
                raise RuntimeError(f"Display stream {stream} was not defined")
        return config

    def create_preview_configuration(
        self, main: Optional[dict] = None, lores: Optional[dict] = None, raw: Any = None,
        transform: Any = None, colour_space: Any = None, buffer_count: int = 4,
        controls: Optional[dict] = None, display: Optional[str] = "main",
        encode: Optional[str] = "main", queue: bool = True, sensor: Optional[dict] = None,
    ) -> dict[str, Any]:  # fmt: skip
        return self._create(
            "preview", {"format": "XBGR8888", "size": (640, 480), "preserve_ar": True},
            main or {}, lores,
            buffer_count, controls or {}, {"FrameDurationLimits": (100, 83333)},
            display, encode, queue, sensor, colour_space,
        )  # fmt: skip

    def create_video_configuration(
        self, main: Optional[dict] = None, lores: Optional[dict] = None, raw: Any = None,
        transform: Any = None, colour_space: Any = None, buffer_count: int = 6,
        controls: Optional[dict] = None, display: Optional[str] = "main",
        encode: Optional[str] = "main", queue: bool = True, sensor: Optional[dict] = None,
    ) -> dict[str, Any]:  # fmt: skip
        return self._create(
            "video", {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True},
            main or {}, lores,
            buffer_count, controls or {}, {"FrameDurationLimits": (33333, 33333)},
            display, encode, queue, sensor, colour_space,
        )  # fmt: skip

    def create_still_configuration(
        self, main: Optional[dict] = None, lores: Optional[dict] = None, raw: Any = None,
        transform: Any = None, colour_space: Any = None, buffer_count: int = 1,
        controls: Optional[dict] = None, display: Optional[str] = None,
        encode: Optional[str] = None, queue: bool = True, sensor: Optional[dict] = None,
    ) -> dict[str, Any]:  # fmt: skip
        return self._create(
            "still", {"format": "BGR888", "size": self.sensor_resolution, "preserve_ar": True},
            main or {}, lores,
            buffer_count, controls or {}, {"FrameDurationLimits": (100, 1000000000)},
            display, encode, queue, sensor, colour_space,
        )  # fmt: skip

    def _check_stream(self, stream: Any, name: str) -> None:
        if type(stream) is not dict:
            raise RuntimeError(name + " stream should be a dictionary")
        fmt = stream.get("format")
        if fmt not in RGB_FORMATS + YUV_FORMATS:
            raise RuntimeError(f"Bad format {fmt} in stream {name}")
        size = stream.get("size")
        if type(size) is not tuple or len(size) != 2:
            raise RuntimeError("size in " + name + " stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")

    def _check_config(self, config: dict[str, Any]) -> None:
        self._check_stream(config["main"], "main")
        lores = config.get("lores")
        if lores is not None:
            self._check_stream(lores, "lores")
            if lores["size"][0] > config["main"]["size"][0] or (
                lores["size"][1] > config["main"]["size"][1]
            ):
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if self._system.platform == "vc4" and lores["format"] not in YUV_FORMATS:
                raise RuntimeError("lores stream must be YUV")
        for key in config.get("controls", {}):
            if key not in KNOWN_CONTROLS:
                raise RuntimeError(f"Control {key} is not advertised by libcamera")

    def configure(self, camera_config: Any = "preview") -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if isinstance(camera_config, str):
            factory = {"preview": self.create_preview_configuration,
                       "still": self.create_still_configuration}  # fmt: skip
            camera_config = factory.get(camera_config, self.create_video_configuration)()
        config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in camera_config.items()}
        self._check_config(config)
        if config.get("lores") is not None:
            if self._system.lores_refused:
                raise RuntimeError(f"Configuration failed: {config}")
            if self._system.lores_adjust is not None:  # libcamera's validate() adjusted it
                config["lores"]["size"] = tuple(self._system.lores_adjust)
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream:
                stream["stride"] = _stride(stream["format"], stream["size"][0])
                rows = stream["size"][1] * 3 // 2 if stream["format"] in YUV_FORMATS else None
                stream["framesize"] = stream["stride"] * (rows or stream["size"][1])
        self.camera_config = config
        model = self._system.models[self.camera_idx]
        wanted = (config.get("sensor") or {}).get("output_size")  # else main's size
        self.isp = IspCrops(model, outputs_of(config), per_output=self._system.platform == "pisp",
                            raw=None if wanted is None else tuple(wanted))
        self.camera_properties["ScalerCropMaximum"] = self.isp.analog
        self.camera_controls = self.isp.controls()
        self._pending = [(0, dict(config.get("controls", {})))]
        if "ScalerCrops" in self.camera_controls:  # picamera2's configure_ sets every crop
            defaults = self.camera_controls["ScalerCrops"]
            full = self.camera_controls["ScalerCrop"][1]
            crops = [defaults[0] if preserve_ar(config, "main") else full]
            if config.get("lores") is not None:
                crops.append(defaults[1] if preserve_ar(config, "lores") else crops[0])
            self.set_controls({"ScalerCrops": crops})

    def camera_configuration(self) -> Optional[dict[str, Any]]:
        return self.camera_config

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        assert self.camera_config is not None
        return self.camera_config[name]

    def set_controls(self, controls: dict[str, Any]) -> None:
        """Delivered with the next request submitted: from the start when stopped, else
        :data:`CONTROL_LATENCY_FRAMES` frames later."""
        for key in controls:
            if key not in KNOWN_CONTROLS and key not in self.camera_controls:
                raise RuntimeError(f"Control {key} is not advertised by libcamera")
        self.controls_set.update(controls)
        when = self._system.delivered + CONTROL_LATENCY_FRAMES if self.started else 0
        self._pending.append((when, dict(controls)))

    def _apply_controls(self) -> None:
        due = [c for when, c in self._pending if when <= self._system.delivered]
        self._pending = [(w, c) for w, c in self._pending if w > self._system.delivered]
        for controls in due:
            if self.isp is not None:
                self.isp.apply(controls)

    # -- running -----------------------------------------------------------------------------

    def start(self, config: Any = None, show_preview: Any = False) -> None:
        if self.camera_config is None and config is None:
            config = "preview"
        if config is not None:
            self.configure(config)
        if show_preview is not None and self._preview is None:
            self.start_preview(show_preview)
        self._pending = [(0, c) for _, c in self._pending]  # start() delivers them all
        self._apply_controls()
        self.started = True
        preview = self._preview
        if preview is not None and preview.kind == Preview.DRM and self._system.desktop:
            self._kill_event_loop()
        main_format = (self.camera_config or {}).get("main", {}).get("format")
        if isinstance(preview, QtGlPreview) and main_format in ("RGB888", "BGR888"):
            # QGlPicamera2 raises "Format ... not supported" in a Qt slot: PyQt5 aborts
            self._system.aborted = f"Format {main_format} not supported by QGlPicamera2 preview"
            self.preview_error = RuntimeError(self._system.aborted)

    def _kill_event_loop(self) -> None:
        """What picamera2's DRM preview thread does at the first frame under a desktop."""

        def render() -> None:
            try:
                raise RuntimeError("Failed to reserve DRM plane")
            except RuntimeError as error:
                self.preview_error = error
                sys.stderr.write(
                    f"Exception in thread {threading.current_thread().name}:\n"
                    + "".join(traceback.format_exception(type(error), error, error.__traceback__))
                )

        thread = threading.Thread(target=render, name="Thread-1 (thread_func)", daemon=True)
        thread.start()
        thread.join()

    def stop(self) -> None:
        if self.started and self._preview is not None and self.preview_error is not None:
            # The real stop() hands its work to the preview's thread and waits for it with no
            # timeout: a dead thread never answers. Said here instead of hanging the test.
            self._system.hung = f"stop() waits forever on a dead preview thread " \
                                f"({self.preview_error})"
            raise RuntimeError(self._system.hung)
        if self.started:
            self.started = False
            self.stop_count += 1

    def close(self) -> None:
        self.close_count += 1
        if self._preview is not None:
            self.stop_preview()
        if not self.is_open:
            return
        self.stop()
        self._system.acquired.discard(self.camera_idx)
        self.is_open = False
        self.camera_config = None

    def __enter__(self) -> FakePicamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- previews ----------------------------------------------------------------------------

    def start_preview(self, preview: Any = False, **kwargs: Any) -> None:
        if self._preview is not None:
            raise RuntimeError("An event loop is already running")
        if preview is True:
            display = os.environ.get("DISPLAY")
            preview = Preview.DRM if display is None else Preview.QTGL
        if not preview:
            preview = Preview.NULL
        # with drm_failure="render" it fails later, in the event loop, as the real one does
        drm_refused = self._system.desktop and self._system.drm_failure == "start"
        if preview == Preview.DRM and drm_refused:
            raise RuntimeError("Failed to reserve DRM plane")
        if preview == Preview.QTGL:
            preview = QtGlPreview(**kwargs)
        if isinstance(preview, Preview):
            preview = _NullPreview(preview, **kwargs)
        preview.start(self)  # the preview attaches itself (QTGL: from its own thread)

    def stop_preview(self) -> None:
        if self._preview is None:
            raise RuntimeError("No preview specified.")
        self._preview.stop()
        self._preview = None
        self.preview_error = None  # a new preview starts a new event loop

    def set_overlay(self, overlay: Optional[np.ndarray]) -> None:
        if overlay is not None:
            if overlay.ndim != 3 or overlay.shape[2] != 4:
                raise RuntimeError("Overlay must be a 4-channel image")
            if overlay.dtype != np.uint8:
                raise TypeError("fake picamera2: overlay must be uint8 (previews copy raw bytes)")
        if self._preview is None:
            raise AttributeError("'NoneType' object has no attribute 'set_overlay'")
        self._preview.set_overlay(overlay)
        self.overlay = self._preview.overlay

    # -- capturing ---------------------------------------------------------------------------

    def _stalled(self, wait: Any, why: str) -> Exception:
        if isinstance(wait, (int, float)) and not isinstance(wait, bool):
            return TimeoutError()  # what Future.result(timeout) raises in the real library
        return RuntimeError(f"fake picamera2: {why}; the real library would block forever")

    def _event_loop_within(self, wait: Any) -> bool:
        """A request made with no event loop waits for one (as the real one's queued job
        does) for up to ``wait`` seconds (:data:`HANG_S` with no number)."""
        numeric = isinstance(wait, (int, float)) and not isinstance(wait, bool)
        deadline = time.monotonic() + (wait if numeric else HANG_S)
        while self._preview is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._preview is not None

    def _frame_duration_us(self) -> int:
        controls = (self.camera_config or {}).get("controls", {})
        if "FrameRate" in controls:
            return round(1e6 / controls["FrameRate"])
        return int(controls.get("FrameDurationLimits", (33333, 33333))[0]) or 33333

    def capture_request(self, wait: Any = None, signal_function: Any = None, flush: Any = None):
        if not self.started:
            raise self._stalled(wait, "capture before start()")
        if self.preview_error is not None:
            raise self._stalled(wait, f"the preview thread died ({self.preview_error})")
        if self._preview is None and not self._event_loop_within(wait):
            raise self._stalled(wait, "no preview runs the event loop (its window was closed?)")
        config = self.camera_config or {}
        if len(self.outstanding) >= config.get("buffer_count", 1):
            raise self._stalled(wait, "every buffer is held by an unreleased request")
        self._system._check_unplug()
        if self._system.unplugged and self._system.unplug_mode == "error":
            raise RuntimeError("Camera frontend has timed out!")
        scene = self._system.next_scene()
        if scene is None:
            raise self._stalled(wait, "no more frames")
        self._apply_controls()
        duration = self._frame_duration_us()
        self._system.clock_ns += duration * 1000
        self._system.delivered += 1
        metadata = {
            "SensorTimestamp": self._system.clock_ns,
            "FrameDuration": duration,
            "ExposureTime": min(duration, 20000),
            "AnalogueGain": 1.0,
            "DigitalGain": 1.0,
            "ColourGains": (1.8, 1.6),
            "Lux": 400.0,
            **(self.isp.metadata() if self.isp is not None else {}),
        }
        request = CompletedRequest(self, scene, metadata)
        self.outstanding.add(request)
        return request

    @contextmanager
    def captured_request(self, wait: Any = None, flush: Any = None) -> Iterator[CompletedRequest]:
        request = self.capture_request(wait=wait, flush=flush)
        try:
            yield request
        finally:
            request.release()

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None):
        with self.captured_request(wait=wait) as request:
            return request.make_array(name)

    def capture_metadata(self, wait: Any = None, signal_function: Any = None) -> dict[str, Any]:
        with self.captured_request(wait=wait) as request:
            return request.get_metadata()


def make_module(system: FakeCameraSystem) -> types.ModuleType:
    """A module object that looks like ``picamera2``, bound to ``system``."""

    class Picamera2(FakePicamera2):
        _system = system

        @staticmethod
        def global_camera_info() -> list[dict[str, Any]]:
            return system.camera_info()

    module = types.ModuleType("picamera2")
    module.__file__ = __file__
    module.Picamera2 = Picamera2  # type: ignore[attr-defined]
    module.Preview = Preview  # type: ignore[attr-defined]
    module.MappedArray = MappedArray  # type: ignore[attr-defined]
    module.CompletedRequest = CompletedRequest  # type: ignore[attr-defined]
    previews = types.ModuleType("picamera2.previews")
    previews.QtGlPreview = QtGlPreview  # type: ignore[attr-defined]
    module.previews = previews  # type: ignore[attr-defined]
    return module


def install_libcamera(monkeypatch: Any) -> None:
    """A stand-in for libcamera's ``Transform`` (the real one comes with picamera2)."""
    libcamera = types.ModuleType("libcamera")
    libcamera.Transform = lambda hflip=0, vflip=0: types.SimpleNamespace(  # type: ignore
        hflip=hflip, vflip=vflip)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)


def install(
    monkeypatch: Any,
    frames: Optional[Iterable[np.ndarray]] = None,
    **options: Any,
) -> FakeCameraSystem:
    """Make ``import picamera2`` return a fake for this test; returns its "hardware".

    ``options`` go to :class:`FakeCameraSystem` (``cameras``, ``platform``, ``desktop``,
    ``drm_failure``, ``qt``, ``qt_failure``, ``qt_shared_thread``, ``usb_cameras``,
    ``lores_adjust``, ``lores_refused``). ``qt``
    (default True) also makes ``PyQt5`` and ``OpenGL`` findable (stand-ins that do nothing)
    or not, for code that checks before starting the QTGL preview.
    """
    system = FakeCameraSystem(frames, **options)
    monkeypatch.setitem(sys.modules, "picamera2", system.module)
    monkeypatch.setitem(sys.modules, "picamera2.previews", system.module.previews)
    for name in ("PyQt5", "OpenGL"):
        monkeypatch.setitem(sys.modules, name, _stand_in(name) if system.qt else None)
    return system


def _stand_in(name: str) -> types.ModuleType:
    """An empty module ``importlib.util.find_spec`` finds."""
    import importlib.machinery

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return module


def hide(monkeypatch: Any) -> None:
    """Make ``import picamera2`` fail for this test, even on a Raspberry Pi."""
    monkeypatch.setitem(sys.modules, "picamera2", None)
