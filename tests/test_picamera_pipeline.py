"""The whole pipeline on a (fake) Pi camera: picamera2 → sampler → model → sinks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_picamera2 import install, paced, pattern_frames
from reference_loop import sampled_rgb_frames
from sinks import StopAfter

from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.open import open_source
from movinet_pi.sources.picamera import PicameraSource


def every_frame(video: Path) -> list[np.ndarray]:
    """Every frame of a clip, RGB."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames

def test_pi_camera_end_to_end(monkeypatch: pytest.MonkeyPatch, a0_model: Path,
                              kinetics_labels: Labels, carving_ice: Path) -> None:
    frames = every_frame(carving_ice)  # as a 30 fps camera would see them
    camera = install(monkeypatch, frames=paced(frames, 30.0))

    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=2)
    sink = StopAfter(steps=len(list(sampled_rgb_frames(carving_ice))) - 1)
    source = open_source("picamera", frame_size=(640, 480), fps=30.0, timeout=2.0)
    pipeline = Pipeline(source, Recognizer(clf, RunConfig(top_k=3), [sink]))
    sink.pipeline = pipeline
    try:
        stats = pipeline.run()
    finally:
        source.close()

    assert camera.delivered >= 120
    assert stats.frames_read >= 120
    # the model ran on the 5 fps grid of the sensor's own timestamps
    ts = [r.t for r in sink.results]
    assert ts[0] == 0.0
    assert all(abs(b - a - 0.2) < 0.04 for a, b in zip(ts, ts[1:]))
    # colour order was right all the way through (RGB888 is BGR in memory)
    best = sink.results[-1].top[0]
    assert best.label == "carving ice"
    assert best.score >= 0.9
    # the camera was released
    assert camera.instances and not any(cam.is_open for cam in camera.instances)
    assert not camera.acquired


class PictureSink(StopAfter):
    """Also wants the picture as shown (a FrameSink, like --web or --record)."""

    def __init__(self, steps: int) -> None:
        super().__init__(steps)
        self.pictures: list[tuple[int, ...]] = []

    def on_frame(self, bgr: object, t: float) -> None:
        self.pictures.append(getattr(bgr, "shape", ()))


@pytest.mark.parametrize("with_pictures", [False, True])
def test_a_run_on_the_drm_preview_updates_the_overlay_not_a_picture(
    monkeypatch: pytest.MonkeyPatch, a0_model: Path, kinetics_labels: Labels,
    with_pictures: bool
) -> None:
    """The DRM display (shows_picture=False) gets the overlay's state, never a frame; the
    camera draws the picture itself."""
    from fake_picamera2 import pattern_frames

    from movinet_pi.display.drm import DrmDisplay

    system = install(monkeypatch, frames=paced(pattern_frames((640, 480)), 30.0))
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=2)
    sink = PictureSink(steps=8) if with_pictures else StopAfter(steps=8)
    source = open_source("picamera", frame_size=(640, 480), fps=30.0, timeout=2.0)
    try:
        display = DrmDisplay(source, (640, 480), max_fps=1000.0)
        updates: list[object] = []
        overlays: list[object] = []
        real_update, real_set = display.update, display._set_overlay

        def update(state: object) -> None:
            updates.append(state)
            real_update(state)  # type: ignore[arg-type]

        def set_overlay(rgba: object) -> None:
            overlays.append(None if rgba is None else rgba.shape)  # type: ignore[attr-defined]
            real_set(rgba)  # type: ignore[arg-type]

        display.update = update  # type: ignore[method-assign]
        display._set_overlay = set_overlay  # type: ignore[method-assign]
        display.show = lambda bgr: pytest.fail("the DRM display was sent a picture")  # type: ignore[method-assign]
        pipeline = Pipeline(source, Recognizer(clf, RunConfig(top_k=3), [sink]), display)
        sink.pipeline = pipeline
        stats = pipeline.run()
        camera = system.instances[-1]
    finally:
        source.close()
    assert len(sink.results) == 8
    # one overlay update per frame shown (a slow display may miss frames, never updates)
    assert stats.frames_shown == len(updates) > 0
    # the overlay was drawn with predictions, as RGBA at the preview's size; closing clears it
    assert any(getattr(s, "predictions", ()) for s in updates)
    assert (480, 640, 4) in overlays and overlays[-1] is None
    assert camera.overlay is None
    if with_pictures:  # picture outputs still get the rendered frame
        assert len(sink.pictures) == stats.frames_shown  # type: ignore[attr-defined]
        assert sink.pictures[0] == (480, 640, 3)  # type: ignore[attr-defined]


def test_the_model_reads_the_isp_lores_stream_not_a_resized_full_frame(
    monkeypatch: pytest.MonkeyPatch, a0_model: Path, kinetics_labels: Labels, carving_ice: Path
) -> None:
    frames = every_frame(carving_ice)
    camera = install(monkeypatch, frames=paced(frames, 30.0))
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=2)
    fed: list[tuple[int, ...]] = []
    step = clf.step
    monkeypatch.setattr(clf, "step", lambda rgb: (fed.append(rgb.shape), step(rgb))[1])
    from movinet_pi.sources import picamera

    converted: list[str] = []
    to_rgb = picamera.rgb_from_picamera
    monkeypatch.setattr(picamera, "rgb_from_picamera",
                        lambda array, fmt, width: (converted.append(fmt),
                                                   to_rgb(array, fmt, width))[1])
    sink = StopAfter(steps=len(list(sampled_rgb_frames(carving_ice))) - 1)
    source = open_source("picamera", frame_size=(640, 480), fps=30.0, timeout=2.0,
                         model_size=clf.input_size)
    pipeline = Pipeline(source, Recognizer(clf, RunConfig(top_k=3), [sink]))
    sink.pipeline = pipeline
    try:
        stats = pipeline.run()
        lores = camera.instances[-1].camera_configuration()["lores"]
    finally:
        source.close()
    assert lores["size"] == clf.input_size and lores["format"] == "YUV420"
    assert fed and set(fed) == {(172, 172, 3)}  # never the 640x480 picture
    # the lores picture is converted only for the frames the model takes (5 of 30 a second)
    assert converted.count("YUV420") == len(fed) < stats.frames_read / 3
    assert "RGB888" not in converted  # the main picture stays as the camera gave it (BGR)
    best = sink.results[-1].top[0]
    assert best.label == "carving ice" and best.score >= 0.8


def test_a_model_larger_than_the_picture_gets_no_lores(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    camera = install(monkeypatch)
    with open_source("picamera", frame_size=(160, 120), model_size=(172, 172)) as source:
        frame = source.read()
        assert camera.instances[-1].camera_configuration()["lores"] is None
    assert frame is not None and frame.model_rgb is None


def _lores_run(monkeypatch: pytest.MonkeyPatch, a0_model: Path, kinetics_labels: Labels,
               **camera: object) -> tuple[list[tuple[int, ...]], list[str], object]:
    """What the model is given over two steps and what was said, on a camera set up with
    ``camera`` (the fake's lores_adjust / lores_refused); also the source."""
    install(monkeypatch, frames=pattern_frames((640, 480)), **camera)
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1)
    said: list[str] = []
    source = PicameraSource(frame_size=(640, 480), timeout=2.0, model_size=clf.input_size,
                            log=said.append)
    fed: list[tuple[int, ...]] = []
    step = clf.step
    monkeypatch.setattr(clf, "step", lambda rgb: (fed.append(rgb.shape), step(rgb))[1])
    recognizer = Recognizer(clf, RunConfig())
    try:
        for _ in range(2):
            frame = source.read()
            recognizer.process(frame)
        source.reopen()  # a reconnect says nothing new
        recognizer.process(source.read())
    finally:
        source.close()
    return fed, said, source


def test_a_lores_size_the_camera_adjusted_is_resized_for_the_model(
    monkeypatch: pytest.MonkeyPatch, a0_model: Path, kinetics_labels: Labels
) -> None:
    fed, said, source = _lores_run(monkeypatch, a0_model, kinetics_labels,
                                   lores_adjust=(192, 172))
    assert source.lores_size == (192, 172) and source.model_lores  # type: ignore[attr-defined]
    assert said == ["the Pi camera gave a 192x172 lores stream, not 172x172: the model "
                    "resizes that small frame"]
    assert fed == [(172, 192, 3)] * 3  # the small frame, never the 640x480 one


def test_a_lores_stream_smaller_than_the_model_means_the_full_frame(
    monkeypatch: pytest.MonkeyPatch, a0_model: Path, kinetics_labels: Labels
) -> None:
    fed, said, source = _lores_run(monkeypatch, a0_model, kinetics_labels,
                                   lores_adjust=(128, 172))
    assert not source.model_lores  # type: ignore[attr-defined]
    assert said == ["the Pi camera gave a 128x172 lores stream, not 172x172: smaller than "
                    "the model's input, so the model resizes the full frame instead"]
    assert fed == [(172, 172, 3)] * 3  # the full frame resized on the CPU (as a BGR frame)


def test_a_refused_lores_stream_means_the_full_frame_said_once(
    monkeypatch: pytest.MonkeyPatch, a0_model: Path, kinetics_labels: Labels
) -> None:
    fed, said, source = _lores_run(monkeypatch, a0_model, kinetics_labels, lores_refused=True)
    assert source.lores_size is None and not source.model_lores  # type: ignore[attr-defined]
    assert len(said) == 1 and said[0].startswith("the Pi camera refused a 172x172 lores stream")
    assert said[0].endswith("the model resizes the full frame instead")
    assert fed == [(172, 172, 3)] * 3
