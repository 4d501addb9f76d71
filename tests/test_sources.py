"""Frame sources: real video files, generated files, open errors, streams and the Pi camera.

The Pi camera runs against ``fake_picamera2`` (picamera2 only exists on Raspberry
Pi OS); everything else uses the real OpenCV.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
import pytest
from conftest import require_shared
from fake_picamera2 import encode, hide, install, pattern_frames, solid_frames

from movinet_pi import MovinetPiError
from movinet_pi.sources.base import Frame, SourceLost
from movinet_pi.sources.open import default_source_spec, open_source, parse_frame_size
from movinet_pi.sources.opencv import CameraSource, FileSource, StreamSource, redact_url
from movinet_pi.sources.picamera import PicameraSource
from movinet_pi.sources.picamera_lib import PICAMERA2_HINT

#: (file, frames OpenCV decodes, seconds); the clips' nominal numbers are close to these.
CLIPS = [("carving_ice.mp4", 131, 4.4), ("arm_wrestling.mp4", 280, 10.0)]

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(scope="module")
def videos() -> Path:
    return require_shared("videos")


def read_all(source: Any) -> list[Frame]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def assert_one_line_error(error: MovinetPiError, exit_code: int, *needles: str) -> None:
    message = str(error)
    assert "\n" not in message and message.strip() == message and message
    assert error.exit_code == exit_code, message
    for needle in needles:
        assert needle in message, message


def bars_rgb(width: int = 64, height: int = 48) -> np.ndarray:
    """Four vertical colour bars (red, green, blue, white) at even column boundaries."""
    image = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate([RED, GREEN, BLUE, WHITE]):
        image[:, i * width // 4 : (i + 1) * width // 4] = colour
    return image


# --- Real video files -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count", "seconds"), CLIPS)
def test_real_clip_reads_every_frame_with_presentation_times(
    videos: Path, name: str, count: int, seconds: float
) -> None:
    with open_source(str(videos / name)) as source:
        assert isinstance(source, FileSource)
        assert source.name == name and source.live is False
        assert source.fps is not None and 25 < source.fps < 31
        frames = read_all(source)
        assert source.read() is None  # stays at the end
        assert source.read() is None

    assert len(frames) == count
    assert [f.index for f in frames] == list(range(count))
    times = np.array([f.timestamp for f in frames])
    assert times[0] == 0.0
    steps = np.diff(times)
    assert (steps > 0).all()
    assert np.allclose(steps, 1.0 / source.fps, rtol=0.03)
    assert abs(times[-1] + 1.0 / source.fps - seconds) < 0.2
    height, width = frames[0].rgb.shape[:2]
    assert source.frame_size == (width, height)


@pytest.mark.parametrize(("name", "count", "seconds"), CLIPS)
def test_real_clip_is_rgb_and_matches_opencv(
    videos: Path, name: str, count: int, seconds: float
) -> None:
    cap = cv2.VideoCapture(str(videos / name))
    expected = []
    for _ in range(5):
        ok, bgr = cap.read()
        assert ok
        expected.append(bgr[..., ::-1])
    cap.release()

    with open_source(str(videos / name)) as source:
        frames = [source.read() for _ in range(5)]
    for frame, rgb in zip(frames, expected):
        assert frame is not None
        assert frame.rgb.dtype == np.uint8 and frame.rgb.ndim == 3 and frame.rgb.shape[2] == 3
        assert frame.rgb.flags.c_contiguous and frame.rgb.flags.owndata
        np.testing.assert_array_equal(frame.rgb, rgb)
    assert not np.shares_memory(frames[0].rgb, frames[1].rgb)


def test_close_is_idempotent_and_reading_after_close_is_an_error(videos: Path) -> None:
    source = open_source(str(videos / "carving_ice.mp4"))
    assert source.read() is not None
    source.close()
    source.close()
    with pytest.raises(ValueError, match="closed"):
        source.read()
    with source:  # exiting closes again, harmlessly
        pass


# --- Generated files ------------------------------------------------------------------------


def write_avi(path: Path, colours: list[tuple[int, int, int]], fps: float = 10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for rgb in colours:
        writer.write(np.full((48, 64, 3), rgb[::-1], np.uint8))  # VideoWriter takes BGR
    writer.release()


def dominant(frame: Frame) -> tuple[int, int, int]:
    """Which channels of the frame's centre are bright, as a 0/255 RGB triple."""
    height, width = frame.rgb.shape[:2]
    centre = frame.rgb[height // 2, width // 2]
    return tuple(255 if value > 128 else 0 for value in centre)  # type: ignore[return-value]


def test_generated_mjpg_avi_reads_in_order(tmp_path: Path) -> None:
    colours = [RED, GREEN, BLUE] * 4
    write_avi(tmp_path / "clip.avi", colours, fps=10.0)
    with open_source(str(tmp_path / "clip.avi")) as source:
        assert source.fps == pytest.approx(10.0)
        assert source.frame_size == (64, 48)
        frames = read_all(source)
    assert [dominant(f) for f in frames] == colours
    assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(12)])


def test_generated_animated_gif_reads(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    images = [np.full((48, 64, 3), rgb[::-1], np.uint8) for rgb in (RED, GREEN, BLUE)]
    assert cv2.imwritemulti(str(path), images)
    with open_source(str(path)) as source:
        frames = read_all(source)
    assert [dominant(f) for f in frames] == [RED, GREEN, BLUE]
    assert frames[0].timestamp == 0.0
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)


# --- Errors when opening --------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MovinetPiError) as info:
        open_source(str(tmp_path / "nope.mp4"))
    assert_one_line_error(info.value, 2, "no such file", "nope.mp4")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"this is a text file, not a video\n", "is a text file"),
        (np.random.default_rng(7).bytes(50_000), "no video"),
    ],
    ids=["zero-length", "text", "random-bytes"],
)
def test_not_a_video(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(MovinetPiError) as info:
        open_source(str(path))
    assert_one_line_error(info.value, 2, needle, "clip.mp4")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MovinetPiError) as info:
        open_source(str(tmp_path))
    assert_one_line_error(info.value, 2, "directory")


def test_corrupted_video_is_refused_at_open(videos: Path, tmp_path: Path) -> None:
    """Container intact (OpenCV opens it), every compressed frame zeroed: nothing decodes."""
    data = bytearray((videos / "carving_ice.mp4").read_bytes())
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    assert 0 < mdat < moov
    start, end = mdat + 12, moov - 8  # past the 64-bit box size, up to the moov header
    data[start:end] = bytes(end - start)
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    assert cv2.VideoCapture(str(path)).isOpened()  # the case this test is about
    with pytest.raises(MovinetPiError) as info:
        open_source(str(path))
    assert_one_line_error(info.value, 2, "cannot decode", "corrupt.mp4")


@pytest.mark.parametrize("spec", ["7", "/dev/video7"])
def test_camera_index_without_camera(spec: str) -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    with pytest.raises(MovinetPiError) as info:
        open_source(spec)
    assert_one_line_error(info.value, 1, "no camera at index 7", "ls /dev/video*")


def test_unreachable_url_fails_fast_without_showing_the_password() -> None:
    start = time.monotonic()
    with pytest.raises(MovinetPiError) as info:
        open_source("rtsp://admin:hunter2@127.0.0.1:9/x", timeout=3)
    assert time.monotonic() - start < 5
    assert_one_line_error(info.value, 1, "rtsp://admin:***@127.0.0.1:9/x")
    assert "hunter2" not in str(info.value)


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for connection in accepted:
        connection.close()


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_silent_server_times_out_instead_of_hanging(black_hole: int, scheme: str) -> None:
    start = time.monotonic()
    with pytest.raises(MovinetPiError) as info:
        open_source(f"{scheme}://127.0.0.1:{black_hole}/stream", timeout=1.5)
    assert time.monotonic() - start < 6
    assert_one_line_error(info.value, 1, "cannot open stream")


def test_picamera_without_picamera2(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch)
    with pytest.raises(MovinetPiError) as info:
        open_source("picamera")
    assert_one_line_error(info.value, 2, "sudo apt install -y python3-picamera2")
    assert str(info.value) == PICAMERA2_HINT
    assert default_source_spec() == "0"


def test_default_source_is_picamera_when_picamera2_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch)
    assert default_source_spec() == "picamera"
    with open_source(None, frame_size=(64, 48)) as source:
        assert isinstance(source, PicameraSource)


def test_a_usb_webcam_that_libcamera_lists_is_read_through_opencv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libcamera lists USB webcams too, after the Pi's cameras: they would give YUYV or MJPEG
    where the Pi camera source asks for RGB. A Pi with only a webcam defaults to OpenCV's
    camera 0; a webcam named as a Pi camera is refused, saying what to give instead."""
    install(monkeypatch, cameras=0, usb_cameras=1)
    assert default_source_spec() == "0"
    with pytest.raises(MovinetPiError) as info:
        open_source("picamera")
    assert_one_line_error(info.value, 2, "camera 0 is a USB camera (HD Pro Webcam C920), "
                          "not a Pi camera: read it with --source 0")
    install(monkeypatch, cameras=1, usb_cameras=1)  # a Pi camera and a webcam
    assert default_source_spec() == "picamera"
    with open_source("picamera:0", frame_size=(64, 48)) as source:
        assert isinstance(source, PicameraSource)
    with pytest.raises(MovinetPiError, match="camera 1 is a USB camera"):
        open_source("picamera:1")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [("", "empty source"), ("   ", "empty source"), ("ftp://host/clip.mp4", "ftp://")],
)
def test_bad_specs(spec: str, needle: str) -> None:
    with pytest.raises(MovinetPiError) as info:
        open_source(spec)
    assert_one_line_error(info.value, 2, needle)


# --- parse_frame_size and URL redaction -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("640x480", (640, 480)), ("1280X720", (1280, 720)), (" 320 x 240 ", (320, 240))],
)
def test_parse_frame_size(text: str, size: tuple[int, int]) -> None:
    assert parse_frame_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "640", "640x", "x480", "0x480", "640x0", "-640x480", "640*480", "abc",
             "640x480x3", "1.5x2", "99999x480"],
)  # fmt: skip
def test_parse_frame_size_rejects(text: str) -> None:
    with pytest.raises(MovinetPiError) as info:
        parse_frame_size(text)
    assert_one_line_error(info.value, 2, "use WIDTHxHEIGHT, e.g. 640x480")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:pw@cam:554/live", "rtsp://admin:***@cam:554/live"),
        ("rtsp://admin@cam/live", "rtsp://admin@cam/live"),
        ("http://cam/video?channel=1&password=pw", "http://cam/video?channel=1&password=***"),
        ("https://cam/s?token=abc", "https://cam/s?token=***"),
        ("rtsp://cam/live", "rtsp://cam/live"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# --- A live HTTP stream (MJPEG, like many IP cameras) ---------------------------------------


class MjpegServer:
    """Serves ``frames`` JPEGs as multipart/x-mixed-replace to each client, then hangs up."""

    def __init__(self, frames: int) -> None:
        jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), (0, 0, 255), np.uint8))[1].tobytes()
        part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (
            len(jpeg),
            jpeg,
        )

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for _ in range(frames):
                        self.wfile.write(part)
                        self.wfile.flush()
                        time.sleep(0.005)
                except OSError:
                    pass  # the client went away

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    server = MjpegServer(frames=8)
    yield server
    server.close()


def test_http_stream_reads_then_is_lost_then_reopens(mjpeg_server: MjpegServer) -> None:
    url = f"http://viewer:secret@127.0.0.1:{mjpeg_server.port}/stream.mjpg"
    with open_source(url, timeout=3) as source:
        assert isinstance(source, StreamSource)
        assert source.live is True and "secret" not in source.name
        assert source.frame_size == (64, 48)
        frames: list[Frame] = []
        with pytest.raises(SourceLost) as info:
            while True:
                frame = source.read()
                assert frame is not None  # a live source never ends with None
                frames.append(frame)
        assert_one_line_error(info.value, 1, "stopped delivering frames")
        assert "secret" not in str(info.value)
        assert len(frames) == 8 and dominant(frames[0]) == RED

        source.reopen()  # the server serves every new client afresh
        again = source.read()
    assert again is not None
    assert again.index == 8 and again.timestamp > frames[-1].timestamp
    assert [f.index for f in frames] == list(range(8)) and frames[0].timestamp == 0.0


def test_stream_reopen_fails_with_source_lost_when_server_is_gone() -> None:
    server = MjpegServer(frames=8)  # FFmpeg needs a few frames to recognise the stream
    source = open_source(f"http://127.0.0.1:{server.port}/stream.mjpg", timeout=2)
    server.close()
    with pytest.raises(SourceLost):
        while source.read() is not None:
            pass
    with pytest.raises(SourceLost) as info:
        source.reopen()
    assert_one_line_error(info.value, 1, "still unreachable")
    source.close()


# --- OpenCV camera, with a scripted VideoCapture ----------------------------------------------


class ScriptedCapture:
    """Stands in for ``cv2.VideoCapture(index)``: delivers ``good`` frames per connection."""

    good = 3
    opened = True
    connections = 0

    def __init__(self, index: int, *args: Any) -> None:
        type(self).connections += 1
        self._left = self.good
        self.props: dict[int, float] = {}

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        if self._left == 0:
            return False, None
        self._left -= 1
        return True, np.full((48, 64, 3), (0, 0, 255), np.uint8)  # BGR red

    def release(self) -> None:
        pass


@pytest.fixture
def scripted_camera(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedCapture]:
    capture = type("Capture", (ScriptedCapture,), {"good": 3, "opened": True, "connections": 0})
    monkeypatch.setattr(cv2, "VideoCapture", capture)
    return capture


def test_opencv_camera_loses_and_reopens(scripted_camera: type[ScriptedCapture]) -> None:
    with open_source("0", frame_size=(64, 48), fps=15) as source:
        assert isinstance(source, CameraSource)
        assert source.name == "camera 0" and source.live and source.fps == 15
        frames = [source.read() for _ in range(3)]
        with pytest.raises(SourceLost) as info:
            source.read()
        assert_one_line_error(info.value, 1, "camera 0", "check the cable")
        with pytest.raises(SourceLost):
            source.read()  # stays lost until reopened

        scripted_camera.good = 0  # reconnects but the device delivers nothing
        with pytest.raises(SourceLost):
            source.reopen()
        scripted_camera.good = 3
        source.reopen()
        after = source.read()
    assert all(f is not None and dominant(f) == RED for f in frames)
    assert after is not None and after.index == 3
    assert after.timestamp > frames[-1].timestamp  # type: ignore[union-attr]


def test_opencv_camera_that_delivers_nothing(scripted_camera: type[ScriptedCapture]) -> None:
    scripted_camera.good = 0
    with pytest.raises(MovinetPiError) as info:
        open_source("2")
    assert_one_line_error(info.value, 1, "camera 2 opened but delivered no frame")


# --- The Pi camera (fake picamera2) ---------------------------------------------------------


def test_fake_lays_out_memory_like_picamera2() -> None:
    red = np.zeros((4, 6, 3), np.uint8)
    red[:] = RED
    assert encode(red, "RGB888")[0, 0].tolist() == [0, 0, 255]  # B,G,R in memory
    assert encode(red, "BGR888")[0, 0].tolist() == [255, 0, 0]
    assert encode(red, "XRGB8888")[0, 0].tolist() == [0, 0, 255, 255]
    assert encode(red, "XBGR8888")[0, 0].tolist() == [255, 0, 0, 255]
    assert encode(red, "YUV420", stride=64).shape == (6, 64)


@pytest.mark.parametrize("fmt", ["RGB888", "BGR888", "XRGB8888", "XBGR8888"])
def test_picamera_delivers_rgb_for_every_main_format(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    install(monkeypatch, frames=iter([bars_rgb()] * 3))
    with PicameraSource(frame_size=(64, 48), main_format=fmt) as source:
        frame = source.read()
    assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8
    assert frame.rgb.flags.c_contiguous
    np.testing.assert_array_equal(frame.rgb, bars_rgb())


def test_picamera_pure_red_comes_out_red(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = install(monkeypatch, frames=solid_frames(RED))
    with open_source("picamera", frame_size=(64, 48), fps=30) as source:
        assert source.name == "picamera" and source.live and source.frame_size == (64, 48)
        frame = source.read()
        config = camera.instances[-1].camera_configuration()
    assert config["main"] == {
        "format": "RGB888", "size": (64, 48), "stride": 192, "framesize": 192 * 48,
        "preserve_ar": True,  # picamera2's default for main: its crop keeps the aspect ratio
    }  # fmt: skip
    assert config["controls"]["FrameRate"] == 30.0
    assert frame is not None and (frame.rgb[..., 0] == 255).all()
    assert (frame.rgb[..., 1:] == 0).all()


@pytest.mark.parametrize("lores_size", [(32, 24), (40, 30)], ids=["padded-stride", "odd-half"])
def test_picamera_lores_yuv420_converts_to_rgb(
    monkeypatch: pytest.MonkeyPatch, lores_size: tuple[int, int]
) -> None:
    camera = install(monkeypatch, frames=iter([bars_rgb(80, 60)] * 4))
    with PicameraSource(frame_size=(80, 60), lores_size=lores_size) as source:
        stride = camera.instances[-1].camera_configuration()["lores"]["stride"]
        assert stride > lores_size[0]  # the conversion must cut the padding off
        lores = source.read_lores()
        main, paired = source.read_pair()
    expected = cv2.resize(bars_rgb(80, 60), lores_size, interpolation=cv2.INTER_AREA)
    for frame in (lores, paired):
        assert frame.rgb.shape == (lores_size[1], lores_size[0], 3)
        assert frame.rgb.flags.c_contiguous
        difference = np.abs(frame.rgb.astype(int) - expected.astype(int))
        assert difference.mean() < 4  # chroma is subsampled 2x2, so bar edges blur a little
        assert np.median(difference) <= 2
    np.testing.assert_array_equal(main.rgb, bars_rgb(80, 60))
    assert (main.index, main.timestamp) == (paired.index, paired.timestamp)
    assert lores.index == 0 and main.index == 1


def test_picamera_model_size_gives_each_frame_the_isp_scaled_picture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch, frames=iter([bars_rgb(80, 60)] * 4))
    with PicameraSource(frame_size=(80, 60), model_size=(40, 30)) as source:
        assert source.lores_size == (40, 30)
        frame = source.read()
    np.testing.assert_array_equal(frame.rgb, bars_rgb(80, 60))  # the picture is main's
    assert frame.model_rgb is not None and frame.model_rgb.shape == (30, 40, 3)
    expected = cv2.resize(bars_rgb(80, 60), (40, 30), interpolation=cv2.INTER_AREA)
    difference = np.abs(frame.model_rgb.astype(int) - expected.astype(int))
    assert difference.mean() < 4 and np.median(difference) <= 2  # YUV420's chroma, as above


def test_picamera_lores_needs_lores_size(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    with PicameraSource(frame_size=(64, 48)) as source, pytest.raises(ValueError):
        source.read_lores()


def test_picamera_timestamps_come_from_the_sensor(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, frames=pattern_frames())
    with PicameraSource(frame_size=(64, 48), fps=25) as source:
        frames = [source.read() for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp for f in frames] == pytest.approx([i * 0.04 for i in range(5)])


def test_picamera_unplug_raises_source_lost_and_reopens(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = install(monkeypatch, frames=pattern_frames())
    source = PicameraSource(frame_size=(64, 48))
    camera.unplug(after=2)
    first = [source.read(), source.read()]
    with pytest.raises(SourceLost) as info:
        source.read()
    assert_one_line_error(info.value, 1, "stopped delivering frames", "ribbon cable")
    assert not camera.acquired  # the dead camera was released

    with pytest.raises(SourceLost) as info:
        source.reopen()  # still unplugged
    assert_one_line_error(info.value, 1, "still unavailable")

    camera.plug()
    source.reopen()
    after = source.read()
    assert after.index == 2 and after.timestamp > first[-1].timestamp
    assert all(not instance.outstanding for instance in camera.instances)
    source.close()


def test_picamera_stalled_camera_times_out_into_source_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    camera = install(monkeypatch, frames=pattern_frames())
    with PicameraSource(frame_size=(64, 48), timeout=0.5) as source:
        source.read()
        camera.unplug(mode="stall")
        with pytest.raises(SourceLost):
            source.read()


def test_a_stalled_pi_camera_stays_listed_and_reopens_silent_until_it_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pulled ribbon cable: libcamera still lists the sensor, so reopening succeeds, and
    only the next read finds that nothing comes (the reconnect goes on, with backoff)."""
    camera = install(monkeypatch, frames=pattern_frames())
    source = PicameraSource(frame_size=(64, 48), timeout=0.3)
    try:
        source.read()
        camera.unplug(mode="stall")
        with pytest.raises(SourceLost):
            source.read()
        source.reopen()  # opens and starts...
        with pytest.raises(SourceLost, match="stopped delivering frames"):
            source.read()  # ...and delivers nothing
        camera.plug()
        source.reopen()
        assert source.read() is not None
    finally:
        source.close()


def test_picamera_close_stops_and_closes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = install(monkeypatch)
    source = open_source("picamera", frame_size=(64, 48))
    source.read()
    instance = camera.instances[-1]
    source.close()
    source.close()
    assert (instance.stop_count, instance.close_count, instance.is_open) == (1, 1, False)
    assert not camera.acquired
    with pytest.raises(ValueError, match="closed"):
        source.read()


def test_picamera_second_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = install(monkeypatch, cameras=2)
    with open_source("picamera:1", frame_size=(64, 48)) as source:
        assert source.name == "picamera 1"
        assert camera.instances[-1].camera_idx == 1


def test_picamera_no_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, cameras=0)
    with pytest.raises(MovinetPiError) as info:
        open_source("picamera")
    # exit 1, not 2: an absent or busy camera may come back, so a service should retry
    assert_one_line_error(info.value, 1, "no Pi camera found", "rpicam-hello --list-cameras")


def test_picamera_reports_the_size_it_really_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    with open_source("picamera", frame_size=(641, 481)) as source:
        assert source.frame_size == (640, 480)  # picamera2 rounds sizes down to even numbers
        assert source.read().rgb.shape == (480, 640, 3)  # type: ignore[union-attr]


def test_picamera_refused_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    camera = install(monkeypatch)
    with pytest.raises(MovinetPiError) as info:
        PicameraSource(frame_size=(64, 48), lores_size=(128, 96))
    assert_one_line_error(info.value, 2, "refused", "128x96", "may not exceed main")
    assert not camera.acquired  # the half-opened camera was closed


# --- The fake itself behaves like picamera2 -------------------------------------------------


def test_fake_capture_before_start_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch).module
    camera = module.Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (64, 48)}))
    with pytest.raises(TimeoutError):
        camera.capture_request(wait=1.0)
    with pytest.raises(RuntimeError, match="block forever"):
        camera.capture_array()
    camera.start()
    assert camera.capture_array().shape == (48, 64, 4)  # the video default is XBGR8888
    camera.close()


def test_fake_configurations_are_shaped_like_the_real_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = install(monkeypatch).module
    assert module.Picamera2.global_camera_info()[0]["Num"] == 0
    with module.Picamera2() as camera:
        video = camera.create_video_configuration()
        assert video["main"] == {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True}
        assert video["buffer_count"] == 6 and video["lores"] is None
        preview = camera.create_preview_configuration(lores={"size": (320, 240)})
        assert preview["lores"] == {"format": "YUV420", "size": (320, 240), "preserve_ar": False}
        with pytest.raises(ValueError, match="Bad key"):
            camera.create_video_configuration(main={"colour": "red"})
        assert camera.create_video_configuration(main={"size": [65, 49]})["main"]["size"] == (
            64,
            48,
        )  # creating aligns sizes to even numbers, and makes them tuples
        video["main"]["size"] = [64, 48]
        with pytest.raises(RuntimeError, match="should be \\(width, height\\)"):
            camera.configure(video)
        rgb_lores = camera.create_video_configuration(lores={"format": "RGB888"})
        with pytest.raises(RuntimeError, match="lores stream must be YUV"):
            camera.configure(rgb_lores)
        with pytest.raises(RuntimeError, match="not advertised"):
            camera.configure(camera.create_video_configuration(controls={"Zoom": 2}))


def test_fake_previews_and_overlays(monkeypatch: pytest.MonkeyPatch) -> None:
    system = install(monkeypatch, desktop=True)
    preview = system.module.Preview
    camera = system.module.Picamera2()
    with pytest.raises(RuntimeError, match="DRM"):
        camera.start_preview(preview.DRM)
    camera.start_preview(preview.NULL)
    with pytest.raises(RuntimeError, match="already running"):
        camera.start_preview(preview.QTGL)
    with pytest.raises(RuntimeError, match="4-channel"):
        camera.set_overlay(np.zeros((48, 64, 3), np.uint8))
    overlay = np.zeros((48, 64, 4), np.uint8)
    overlay[..., 3] = 128
    camera.set_overlay(overlay)
    assert camera.overlay is not None and camera.overlay[0, 0, 3] == 128
    camera.close()
    system.desktop = False
    camera = system.module.Picamera2()
    camera.start_preview(preview.DRM)
    camera.close()


def test_fake_stalls_when_requests_are_not_released(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch).module
    with module.Picamera2() as camera:
        camera.configure(camera.create_video_configuration(buffer_count=2))
        camera.start()
        held = [camera.capture_request(), camera.capture_request()]
        with pytest.raises(TimeoutError):
            camera.capture_request(wait=0.1)
        held[0].release()
        camera.capture_request().release()
        with pytest.raises(RuntimeError, match="negative ref_count"):
            held[0].release()


def test_fake_without_cameras_raises_index_error(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch, cameras=0).module
    assert module.Picamera2.global_camera_info() == []
    with pytest.raises(IndexError):
        module.Picamera2()


def test_closing_the_pi_camera_takes_its_preview_down_before_stopping_it(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # picamera2's stop() waits, without a timeout, on the preview's event loop: with that
    # loop dead (a DRM render error), stop() before stop_preview() never returns.
    system = install(monkeypatch, frames=pattern_frames())
    source = PicameraSource(frame_size=(64, 48))
    camera = source.camera
    camera.preview_error = RuntimeError("the preview's thread died")
    source.close()
    assert system.hung is None
    assert (camera.stop_count, camera.close_count, camera.is_open) == (1, 1, False)


def test_a_repeated_raw_time_moves_on_by_one_frame_interval() -> None:
    from movinet_pi.sources.base import Timeline

    timeline = Timeline(0.1)
    assert timeline.stamp(5.0) == 0.0
    assert timeline.stamp(5.0) == pytest.approx(0.1)  # not the same time twice
    assert timeline.stamp(5.5) == pytest.approx(0.6)  # and later ones keep their intervals
