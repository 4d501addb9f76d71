"""``--roi`` on the Pi camera, against the fake picamera2's crops (tests/fake_scaler_crop.py).

The fake follows libcamera's Raspberry Pi pipeline handler and picamera2: crops in sensor
pixels, the largest being ScalerCropMaximum; each output's default crop keeps its aspect
ratio; a Pi 5 (PiSP) crops each output on its own (``ScalerCrops``), a Pi 4 (VC4) has one
crop for all; a crop is made at least the ISP's minimum about its centre and moved inside.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from fake_picamera2 import CONTROL_LATENCY_FRAMES, install

from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.picamera import PicameraSource
from movinet_pi.sources.roi import crop, model_input

BOX = (0.25, 0.25, 0.5, 0.5)
#: The sensor configuration PicameraSource asks for: the 2x2 binned mode, the whole field.
FULL_FIELD = {"imx708": {"output_size": (2304, 1296)}, "imx219": {"output_size": (1640, 1232)},
              "imx477": {"output_size": (2028, 1520)}}


def scene(width: int = 640, height: int = 480) -> np.ndarray:
    """A picture with detail everywhere (a gradient and a grid), RGB."""
    y, x = np.mgrid[0:height, 0:width]
    checker = ((x // 40 + y // 40) % 2) * 64 + 96  # (mild: YUV420 halves the chroma)
    image = np.stack([x * 255 // width, y * 255 // height, checker], axis=2).astype(np.uint8)
    return image


def scenes() -> Any:
    while True:
        yield scene()


def camera(monkeypatch: pytest.MonkeyPatch, platform: str, lores: bool = True,
           model: str = "imx708", **config: Any) -> Any:
    system = install(monkeypatch, frames=scenes(), platform=platform, model=model)
    cam = system.module.Picamera2()
    cam.configure(cam.create_video_configuration(
        main={"format": "RGB888", "size": (640, 480)},
        lores={"size": (172, 172)} if lores else None, sensor=FULL_FIELD[model], **config))
    return cam


def close(a: np.ndarray, b: np.ndarray, mean: float = 4.0) -> bool:
    """Equal but for YUV420's chroma and the ISP's rounding."""
    return float(np.abs(a.astype(int) - b.astype(int)).mean()) < mean


# --- the fake's crops, as libcamera reports and applies them -----------------------------------


@pytest.mark.parametrize("platform", ["pisp", "vc4"])
def test_crops_are_in_sensor_pixels_within_the_maximum(monkeypatch: pytest.MonkeyPatch,
                                                       platform: str) -> None:
    system = install(monkeypatch, platform=platform)
    cam = system.module.Picamera2()
    assert cam.camera_properties["ScalerCropMaximum"] == (0, 0, 0, 0)  # until configured
    cam.configure(cam.create_video_configuration(main={"size": (640, 480)},
                                                 sensor=FULL_FIELD["imx708"]))
    assert cam.camera_properties["ScalerCropMaximum"] == (0, 0, 4608, 2592)  # imx708
    minimum, maximum, default = cam.camera_controls["ScalerCrop"]
    assert maximum == (0, 0, 4608, 2592) and minimum == (0, 0, 64, 64)  # 32x32 ISP pixels
    assert default == (576, 0, 3456, 2592)  # a 4:3 picture: the middle of a 16:9 sensor
    cam.start()
    assert cam.capture_metadata()["ScalerCrop"] == default


@pytest.mark.parametrize(("model", "middle"), [("imx708", (768, 432, 3072, 1728)),
                                              ("imx219", (1000, 752, 1280, 960)),
                                              ("imx477", (696, 528, 2664, 1980))])
def test_left_to_itself_a_small_picture_reads_the_middle_of_the_sensor_and_ours_does_not(
        monkeypatch: pytest.MonkeyPatch, model: str, middle: tuple[int, ...]) -> None:
    """libcamera picks the sensor mode nearest the raw size, main's by default: for 640x480,
    a mode that reads only the middle of the array (a narrower view of the room). The Pi
    camera source asks for the 2x2 binned mode, which sees the whole field."""
    system = install(monkeypatch, frames=scenes(), model=model)
    cam = system.module.Picamera2()
    cam.configure(cam.create_video_configuration(main={"size": (640, 480)}))
    assert cam.camera_properties["ScalerCropMaximum"] == middle
    cam.close()
    source = PicameraSource(frame_size=(640, 480), model_size=(172, 172))
    try:
        whole = (0, 0, *system.instances[-1].camera_properties["PixelArraySize"])
        assert system.instances[-1].camera_properties["ScalerCropMaximum"] == whole
        assert system.instances[-1].camera_config["sensor"] == FULL_FIELD[model]
    finally:
        source.close()


def test_a_picamera2_without_the_sensor_configuration_still_opens(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """picamera2 before 0.3.13 has no ``sensor=``: the camera opens with libcamera's mode."""
    system = install(monkeypatch, frames=scenes(), model="imx219")
    real = system.module.Picamera2.create_video_configuration

    def older(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "sensor" in kwargs:
            raise TypeError("create_video_configuration() got an unexpected keyword 'sensor'")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(system.module.Picamera2, "create_video_configuration", older)
    with PicameraSource(frame_size=(640, 480), model_size=(172, 172)) as source:
        assert source.read() is not None
        assert system.instances[-1].camera_properties["ScalerCropMaximum"] == (1000, 752, 1280,
                                                                                960)


def test_the_lores_stream_is_asked_in_the_colour_space_its_conversion_assumes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV turns the lores YUV420 into RGB with BT.601's matrix: the camera is asked for
    libcamera's Smpte170m, where picamera2 would pick Rec709 for a 1280x720 main stream."""
    import sys
    import types

    smpte170m = object()
    libcamera = types.ModuleType("libcamera")
    libcamera.ColorSpace = types.SimpleNamespace(  # type: ignore[attr-defined]
        Smpte170m=lambda: smpte170m)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    system = install(monkeypatch, frames=scenes())
    with PicameraSource(frame_size=(1280, 720), model_size=(172, 172)) as source:
        assert source.read() is not None
        assert system.instances[-1].camera_config["colour_space"] is smpte170m


def test_a_pi5_crops_each_output_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    cam = camera(monkeypatch, "pisp")
    main, lores, _ = cam.camera_controls["ScalerCrops"]  # the two default crops (min, max)
    assert main == (576, 0, 3456, 2592) and lores == (1008, 0, 2592, 2592)  # lores is square
    cam.set_controls({"ScalerCrops": [main, (1440, 648, 1728, 1296)]})
    cam.start()
    request = cam.capture_request()
    metadata = request.get_metadata()
    assert metadata["ScalerCrops"] == [main, (1440, 648, 1728, 1296)]
    assert metadata["ScalerCrop"] == main  # the first output's
    whole = cv2.cvtColor(request.make_array("main"), cv2.COLOR_BGR2RGB)
    small = cv2.cvtColor(request.make_array("lores"), cv2.COLOR_YUV2RGB_I420)[:, :172]
    request.release()
    np.testing.assert_array_equal(whole, scene())  # the picture stays whole
    expected = cv2.resize(scene()[120:360, 160:480], (172, 172), interpolation=cv2.INTER_AREA)
    assert close(small, expected)  # lores: the middle of the picture


def test_picamera2_gives_lores_the_main_crop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """picamera2's configure sets ScalerCrops itself: lores (preserve_ar False) gets main's."""
    cam = camera(monkeypatch, "pisp")
    cam.start()
    main = cam.camera_controls["ScalerCrops"][0]
    assert cam.capture_metadata()["ScalerCrops"] == [main, main]


def test_a_pi4_has_one_crop_for_every_output(monkeypatch: pytest.MonkeyPatch) -> None:
    cam = camera(monkeypatch, "vc4")
    assert "ScalerCrops" not in cam.camera_controls
    with pytest.raises(RuntimeError, match="not advertised"):
        cam.set_controls({"ScalerCrops": [(0, 0, 4608, 2592), (1440, 648, 1728, 1296)]})
    cam.set_controls({"ScalerCrop": (1440, 648, 1728, 1296)})
    cam.start()
    request = cam.capture_request()
    assert "ScalerCrops" not in request.get_metadata()
    assert request.get_metadata()["ScalerCrop"] == (1440, 648, 1728, 1296)
    whole = cv2.cvtColor(request.make_array("main"), cv2.COLOR_BGR2RGB)
    small = cv2.cvtColor(request.make_array("lores"), cv2.COLOR_YUV2RGB_I420)[:, :172]
    request.release()
    middle = scene()[120:360, 160:480]
    expected = cv2.resize(middle, (640, 480), interpolation=cv2.INTER_AREA)
    assert close(whole, expected, 1.0)  # the picture is cropped too: why --roi avoids it
    # and so is lores, with the same crop (VC4 has one ScalerCrop for every output)
    assert close(small, cv2.resize(middle, (172, 172), interpolation=cv2.INTER_AREA))


def test_a_crop_is_moved_inside_and_kept_above_the_minimum(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    cam = camera(monkeypatch, "pisp")
    main = cam.camera_controls["ScalerCrops"][0]
    cam.set_controls({"ScalerCrops": [main, (4000, 2000, 1000, 1000)]})
    cam.start()
    assert cam.capture_metadata()["ScalerCrops"][1] == (3608, 1592, 1000, 1000)  # inside
    cam.stop()
    cam.set_controls({"ScalerCrops": [main, (1000, 1000, 10, 10)]})
    cam.start()
    # at least 32x32 ISP pixels (64x64 here), about the same centre
    assert cam.capture_metadata()["ScalerCrops"][1] == (972, 972, 64, 64)
    cam.stop()
    cam.set_controls({"ScalerCrops": [main, (0, 0, 0, 0)]})
    cam.start()
    assert cam.capture_metadata()["ScalerCrops"][1] == (0, 0, 64, 64)  # empty: 1x1, enlarged


def test_crops_set_while_running_arrive_a_few_frames_later(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    cam = camera(monkeypatch, "pisp")
    cam.start()
    main = cam.camera_controls["ScalerCrops"][0]
    cam.set_controls({"ScalerCrops": [main, (1440, 648, 1728, 1296)]})
    seen = [cam.capture_metadata()["ScalerCrops"][1] for _ in range(CONTROL_LATENCY_FRAMES + 1)]
    assert seen[0] == main and seen[-1] == (1440, 648, 1728, 1296)


def test_a_new_configuration_resets_the_crops(monkeypatch: pytest.MonkeyPatch) -> None:
    cam = camera(monkeypatch, "pisp")
    main = cam.camera_controls["ScalerCrops"][0]
    cam.set_controls({"ScalerCrops": [main, (1440, 648, 1728, 1296)]})
    cam.configure(cam.create_video_configuration(main={"size": (640, 480)},
                                                 lores={"size": (172, 172)},
                                                 sensor=FULL_FIELD["imx708"]))
    cam.start()
    assert cam.capture_metadata()["ScalerCrops"] == [main, main]


# --- PicameraSource with --roi --------------------------------------------------------------


def test_on_a_pi5_the_isp_crops_the_model_stream_and_the_picture_stays_whole(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    install(monkeypatch, frames=scenes(), platform="pisp")
    with PicameraSource(frame_size=(640, 480), model_size=(172, 172), roi=BOX) as source:
        frame = source.read()
        assert source.isp_roi and source.lores_size == (172, 172)
        crops = source.camera.capture_metadata()["ScalerCrops"]
        source.reopen()  # a reconnect crops again
        again = source.read()
    assert crops[1] == (1440, 648, 1728, 1296)  # the box, in sensor pixels
    assert frame.model_box == pytest.approx(BOX) and again.model_box == pytest.approx(BOX)
    np.testing.assert_array_equal(frame.rgb, scene())  # the picture, whole
    expected = cv2.resize(crop(scene(), BOX), (172, 172), interpolation=cv2.INTER_AREA)
    assert frame.model_rgb.shape == (172, 172, 3) and close(frame.model_rgb, expected)


def test_on_a_pi4_a_larger_lores_stream_is_cut_on_the_cpu(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    system = install(monkeypatch, frames=scenes(), platform="vc4")
    with PicameraSource(frame_size=(640, 480), model_size=(172, 172), roi=BOX) as source:
        frame = source.read()
        assert not source.isp_roi and source.lores_size[0] >= 346  # the box holds 172
        configured = system.instances[-1].camera_configuration()
        source.reopen()
        assert source.lores_size == configured["lores"]["size"]  # the same again
    assert configured["lores"]["format"] == "YUV420" and frame.model_box is None
    np.testing.assert_array_equal(frame.rgb, scene())  # no ScalerCrop: the picture, whole
    expected = cv2.resize(crop(scene(), BOX), (172, 172), interpolation=cv2.INTER_AREA)
    part = model_input(frame, (172, 172), BOX)
    assert part.shape[0] >= 172 and part.shape[1] >= 172  # cut from lores, not from main
    assert close(cv2.resize(part, (172, 172), interpolation=cv2.INTER_AREA), expected)


def test_a_refused_larger_lores_stream_means_the_box_from_the_full_frame(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    system = install(monkeypatch, frames=scenes(), platform="vc4")
    configure = system.module.Picamera2.configure

    def refuse_large_lores(self: Any, config: Any) -> None:
        if config.get("lores") and config["lores"]["size"][0] > 172:
            raise RuntimeError("Configuration failed: too large")
        configure(self, config)

    monkeypatch.setattr(system.module.Picamera2, "configure", refuse_large_lores)
    said: list[str] = []
    with PicameraSource(frame_size=(640, 480), model_size=(172, 172), roi=BOX,
                        log=said.append) as source:
        frame = source.read()
        assert source.lores_size == (172, 172) and source.model_lores
    assert len(said) == 1 and "refused a 346x346 lores stream for --roi" in said[0]
    np.testing.assert_array_equal(frame.rgb, scene())
    expected = cv2.resize(crop(scene(), BOX), (172, 172), interpolation=cv2.INTER_AREA)
    got = model_input(frame, (172, 172), BOX)  # cut from main: the lores is too small
    assert got.shape == (172, 172, 3) and close(got, expected, 1.0)


@pytest.mark.parametrize("platform", ["pisp", "vc4"])
def test_the_model_reads_the_box_from_the_pi_camera(monkeypatch: pytest.MonkeyPatch,
                                                    platform: str, a0_model: Any,
                                                    kinetics_labels: Any) -> None:
    from movinet_pi.model.classifier import StreamingClassifier

    install(monkeypatch, frames=scenes(), platform=platform)
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1)
    fed: list[np.ndarray] = []
    step = clf.step
    monkeypatch.setattr(clf, "step", lambda rgb: (fed.append(rgb.copy()), step(rgb))[1])
    recognizer = Recognizer(clf, RunConfig(roi=BOX))
    with PicameraSource(frame_size=(640, 480), model_size=clf.input_size, roi=BOX) as source:
        results = [recognizer.process(source.read()) for _ in range(3)]
    expected = cv2.resize(crop(scene(), BOX), (172, 172), interpolation=cv2.INTER_AREA)
    for rgb in fed:
        assert close(cv2.resize(rgb, (172, 172), interpolation=cv2.INTER_AREA), expected)
    assert all(r.roi == pytest.approx(BOX) for r in results)
