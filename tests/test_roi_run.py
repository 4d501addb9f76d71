"""``--roi`` through a run: the flag, the crop reaching every model, the box drawn on the
picture (window, camera previews, web), ``--json``, ``eval``, ``service`` and ``bench``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fake_picamera2 import install, pattern_frames

from movinet_pi.cli import main
from movinet_pi.display.overlay import ROI_COLOUR, OverlayState, draw_roi, render_overlay_rgba
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.outputs.base import StepResult
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.opencv import FileSource
from movinet_pi.sources.roi import AUTO, crop, is_whole, pixel_rect
from movinet_pi.timing import FrameSampler

BOX = (0.25, 0.25, 0.5, 0.5)
BOX_TEXT = "0.25,0.25,0.5,0.5"


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", os.pathsep.join(
        [str(shared / "models"), str(shared / "labels")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


# --- the flag -------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "says"), [
    (["--roi", "0.5,0.5"], "expected X,Y,W,H"),
    (["--roi", "0.6,0,0.6,1"], "must end inside the picture"),
    (["--roi=-1,0,0.5,0.5"], "X and Y"),
    (["--roi", "0,0,0,1"], "W and H"),
    (["--roi", "automatic"], "expected X,Y,W,H"),
    (["eval", ".", "--model", "a0", "--roi", "1,1,1,1"], "must end inside the picture"),
    (["service", "--print", "--roi", "half"], "expected X,Y,W,H"),
])
def test_a_bad_roi_is_one_line_and_exit_2(argv: list[str], says: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "argument --roi" in err and says in err


def test_help_says_what_roi_takes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--roi X,Y,W,H|auto" in text and "rpicam-apps" in text


# --- the crop reaches the model, for every model and source --------------------------------


def recorded(clf: StreamingClassifier, monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    fed: list[np.ndarray] = []
    step = clf.step
    monkeypatch.setattr(clf, "step", lambda rgb: (fed.append(np.array(rgb)), step(rgb))[1])
    return fed


def resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def taught_model(a0_model: Path, tmp_path: Path) -> Path:
    """A0 taught two made-up classes (random prototypes): a taught model's file."""
    from movinet_pi.model.taught import fit, write_taught_model

    clf = StreamingClassifier.from_file(a0_model, threads=1)
    clf.step(np.zeros((172, 172, 3), np.uint8))
    features = len(clf.head_features())
    rng = np.random.default_rng(0)
    head = fit("prototypes", rng.normal(size=(20, features)).astype(np.float32),
               np.arange(20) % 2, ["one", "two"])
    out = tmp_path / "taught.tflite"
    write_taught_model(a0_model, out, head)
    return out


@pytest.fixture(scope="module")
def small_actor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of arm_wrestling.mp4 shrunk to a third of a 640x480 grey room's height."""
    from conftest import require_shared

    source = cv2.VideoCapture(str(require_shared("videos", "arm_wrestling.mp4")))
    out = tmp_path_factory.mktemp("roi") / "small_actor.mp4"
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 28.0, (640, 480))
    for _ in range(140):
        ok, bgr = source.read()
        assert ok
        room = np.full((480, 640, 3), 120, np.uint8)
        room[300:460, 400:612] = cv2.resize(bgr, (212, 160), interpolation=cv2.INTER_AREA)
        writer.write(room)
    writer.release()
    source.release()
    return out


@pytest.mark.parametrize("model", ["a0", "a1", "a2", "taught"])
@pytest.mark.parametrize("roi", [BOX, AUTO])
def test_the_model_reads_the_resized_crop(model: str, roi: Any, a0_model: Path,
                                          untrained_dir: Path, small_actor: Path,
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = {"a0": a0_model, "a1": untrained_dir / "movinet_a1_stream_int8.tflite",
            "a2": untrained_dir / "movinet_a2_stream_int8.tflite"}.get(model)
    clf = StreamingClassifier.from_file(path or taught_model(a0_model, tmp_path), threads=1)
    fed = recorded(clf, monkeypatch)
    recognizer = Recognizer(clf, RunConfig(roi=roi))
    boxes, expected = [], []
    sampler = FrameSampler(5.0)
    with FileSource(small_actor) as source:
        while (frame := source.read()) is not None:
            if not sampler.is_due(frame.timestamp):
                continue
            result = recognizer.process(frame)
            assert result.roi is not None
            boxes.append(result.roi)
            expected.append(resized(crop(frame.rgb, result.roi), clf.input_size))
    assert all(np.array_equal(got, want) for got, want in zip(fed, expected))
    assert all(got.shape == (*clf.input_size[::-1], 3) for got in fed)
    assert len(fed) == 25
    if roi == AUTO:  # the motion was found: the box holds the small actor
        assert is_whole(boxes[0]) and not is_whole(boxes[-1])
        x0, y0, x1, y1 = pixel_rect(boxes[-1], 640, 480)
        assert x0 <= 404 and y0 <= 304 and x1 >= 608 and y1 >= 456
    else:
        assert all(box == BOX for box in boxes)


def test_the_model_starts_afresh_where_the_auto_box_moves_to_a_new_view(
        a0_model: Path, small_actor: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clf = StreamingClassifier.from_file(a0_model, threads=1)
    fed = recorded(clf, monkeypatch)
    resets: list[int] = []  # how many steps the model had taken at each reset
    reset = clf.reset
    monkeypatch.setattr(clf, "reset", lambda: (resets.append(len(fed)), reset())[1])
    recognizer = Recognizer(clf, RunConfig(roi=AUTO))
    boxes, new_views = [], []
    sampler = FrameSampler(5.0)
    with FileSource(small_actor) as source:
        while (frame := source.read()) is not None:
            if sampler.is_due(frame.timestamp):
                boxes.append(recognizer.process(frame).roi)
                new_views.append(recognizer.auto_roi.new_view)
    entered = next(i for i, box in enumerate(boxes) if not is_whole(box))
    assert new_views[entered] and resets == [i for i, new in enumerate(new_views) if new]
    assert clf.steps == len(boxes) - resets[-1]  # the stream restarted at the last one
    # without --roi auto, nothing resets the model
    plain = StreamingClassifier.from_file(a0_model, threads=1)
    monkeypatch.setattr(plain, "reset", lambda: resets.append(-1))
    recognizer = Recognizer(plain, RunConfig(roi=BOX))
    with FileSource(small_actor) as source:
        for _ in range(10):
            frame = source.read()
            assert frame is not None
            recognizer.process(frame)
    assert -1 not in resets


def test_a_fixed_roi_reaches_the_model_on_the_pi_camera_run(
    monkeypatch: pytest.MonkeyPatch, models_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    install(monkeypatch, frames=pattern_frames((640, 480)), platform="pisp")
    monkeypatch.setattr("movinet_pi.pipeline.Pipeline.run", _two_steps)
    assert main(["--source", "picamera", "--headless", "--json", "--roi", BOX_TEXT]) == 0


def _two_steps(self: Pipeline) -> Any:
    """Instead of a run that never ends (a camera): two steps, each checked."""
    for _ in range(2):
        frame = self.source.read()
        assert frame is not None and frame.model_box == pytest.approx(BOX)  # the ISP cropped
        result = self.recognizer.process(frame)
        assert result.roi == pytest.approx(BOX)
    self.recognizer.close()
    return self.stats


# --- --json, the picture, the web view --------------------------------------------------------


def test_json_carries_the_box(models_env: None, arm_wrestling: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", str(arm_wrestling), "--headless", "--json", "--roi", BOX_TEXT]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 50 and all(line["roi"] == list(BOX) for line in lines)
    assert main(["--source", str(arm_wrestling), "--headless", "--json", "--roi", "auto"]) == 0
    boxes = [json.loads(line)["roi"] for line in capsys.readouterr().out.splitlines()]
    assert boxes[0] == [0, 0, 1, 1] and all(0 <= v <= 1 for box in boxes for v in box)
    assert main(["--source", str(arm_wrestling), "--headless", "--json"]) == 0
    assert "roi" not in json.loads(capsys.readouterr().out.splitlines()[0])


def test_a_box_smaller_than_the_model_input_is_said_once(models_env: None, carving_ice: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    assert main(["--source", str(carving_ice), "--headless", "--roi", BOX_TEXT]) == 0
    err = capsys.readouterr().err
    assert err.count("86x86 pixels of the 172x172 picture") == 1 and "enlarged" in err


def picture_box_pixels(picture: np.ndarray, box: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """The box's left edge column and its middle, in a picture as shown."""
    x0, y0, x1, y1 = pixel_rect(box, picture.shape[1], picture.shape[0])  # type: ignore[arg-type]
    middle = (y0 + y1) // 2
    return picture[middle, x0 + 1], picture[middle, (x0 + x1) // 2]


def is_roi_colour(pixel: np.ndarray) -> bool:
    return bool(np.abs(pixel.astype(int) - np.array(ROI_COLOUR)).max() < 40)


def test_the_box_is_drawn_on_the_picture_and_mirrored_with_it() -> None:
    grey = np.full((480, 640, 3), 100, np.uint8)
    image = grey.copy()
    draw_roi(image, BOX)
    edge, middle = picture_box_pixels(image, BOX)
    assert is_roi_colour(edge) and middle.tolist() == [100, 100, 100]
    image = grey.copy()
    draw_roi(image, (0.0, 0.25, 0.25, 0.5), mirror=True)  # shown flipped: on the right
    assert is_roi_colour(image[240, 640 - 160 + 1]) and not is_roi_colour(image[240, 1])
    image = grey.copy()
    draw_roi(image, (0.0, 0.0, 1.0, 1.0))  # the whole picture: nothing to show
    assert np.array_equal(image, grey)


@pytest.mark.parametrize("bgr", [True, False])
def test_a_mirrored_picture_is_rendered_with_its_box_mirrored_too(bgr: bool) -> None:
    # What the window and the web view show: the box on the left of the picture is drawn on
    # the right of its mirror image, over the same part of the picture.
    from movinet_pi.display.render import PictureRenderer

    picture = np.full((480, 640, 3), 100, np.uint8)
    state = OverlayState(roi=(0.0, 0.25, 0.25, 0.5))
    shown = PictureRenderer(mirror=True).render(picture, state, bgr=bgr)
    assert shown.shape == (480, 640, 3)
    assert is_roi_colour(shown[240, 640 - 160 + 1]) and not is_roi_colour(shown[240, 1])


def test_camera_previews_get_the_box_in_their_overlay() -> None:
    rgba = render_overlay_rgba((640, 480), OverlayState(roi=BOX))
    x0, y0, x1, y1 = pixel_rect(BOX, 640, 480)
    edge = rgba[(y0 + y1) // 2, x0 + 1]
    assert edge[3] == 255 and is_roi_colour(edge[2::-1])  # opaque, RGBA
    assert rgba[(y0 + y1) // 2, (x0 + x1) // 2, 3] == 0  # the picture shows through inside


def test_the_drm_preview_redraws_when_the_box_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.display.drm import DrmDisplay
    from movinet_pi.sources.open import open_source

    system = install(monkeypatch, frames=pattern_frames((640, 480)))
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        display = DrmDisplay(source, (640, 480), max_fps=1000.0)
        camera = system.instances[-1]
        display.update(OverlayState(roi=BOX))
        first = camera.overlay
        display.update(OverlayState(roi=(0.5, 0.5, 0.25, 0.25)))
        assert first is not None and not np.array_equal(camera.overlay, first)
        display.close()
    finally:
        source.close()


def test_the_window_and_web_pictures_show_the_box_the_model_read(
    a0_model: Path, kinetics_labels: Labels, arm_wrestling: Path
) -> None:
    clf = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1)
    with FileSource(arm_wrestling) as source:
        pipeline = Pipeline(source, Recognizer(clf, RunConfig(roi=BOX)))
        frame = source.read()
        pipeline.recognizer.process(frame)
        shown = pipeline.render(frame)  # what the window shows and --web / --record get
    assert pipeline.overlay_state(frame).roi == BOX
    edge, _ = picture_box_pixels(shown, BOX)
    assert is_roi_colour(edge)


def test_the_web_state_carries_the_box() -> None:
    import urllib.request

    from movinet_pi.outputs.web import WebSink

    sink = WebSink("127.0.0.1", 0, model_name="test", max_fps=None)
    try:
        sink.on_step(StepResult(1.0, 30, 5, [], 2.5, roi=BOX))
        with urllib.request.urlopen(sink.url + "api/state", timeout=10) as r:
            state = json.loads(r.read())
    finally:
        sink.close()
    assert state["latest"]["roi"] == list(BOX)


# --- eval, service, bench ----------------------------------------------------------------------


@pytest.fixture
def clip_dir(tmp_path: Path, small_actor: Path) -> Path:
    folder = tmp_path / "clips" / "arm wrestling"
    folder.mkdir(parents=True)
    (folder / "a.mp4").symlink_to(small_actor)
    return folder.parent


def test_eval_reads_the_box_too(clip_dir: Path, a0_model: Path, kinetics_labels_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.tools.eval import evaluate

    shapes: list[tuple[int, ...]] = []
    step = StreamingClassifier.step
    monkeypatch.setattr(StreamingClassifier, "step",
                        lambda self, rgb: (shapes.append(rgb.shape), step(self, rgb))[1])
    (fixed,) = evaluate(clip_dir, [a0_model], kinetics_labels_path, threads=1, roi=BOX)
    assert fixed["roi"] == list(BOX) and set(shapes) == {(240, 320, 3)}  # half of 640x480
    shapes.clear()
    (auto,) = evaluate(clip_dir, [a0_model], kinetics_labels_path, threads=1, roi=AUTO)
    assert auto["roi"] == "auto" and shapes[0] == (480, 640, 3)  # the whole, then the actor
    assert shapes[-1][0] < 480 and shapes[-1][1] < 640
    (plain,) = evaluate(clip_dir, [a0_model], kinetics_labels_path, threads=1)
    assert plain["roi"] is None


def test_eval_tells_the_model_where_the_auto_box_moves_to_a_new_view(
        clip_dir: Path, small_actor: Path, a0_model: Path, kinetics_labels_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.sources.roi_auto import AutoRoi
    from movinet_pi.tools.eval import evaluate

    roi, new_views, sampler = AutoRoi((172, 172)), 0, FrameSampler(5.0)
    with FileSource(small_actor) as source:  # what the app's box does on the clip
        while (frame := source.read()) is not None:
            if sampler.is_due(frame.timestamp):
                roi.update(frame.rgb, frame.timestamp)
                new_views += roi.new_view
    assert new_views >= 1
    told: list[int] = []
    new_view = StreamingClassifier.new_view
    monkeypatch.setattr(StreamingClassifier, "new_view",
                        lambda self: (told.append(1), new_view(self))[1])
    evaluate(clip_dir, [a0_model], kinetics_labels_path, threads=1, roi=BOX)
    assert not told  # a fixed box never moves
    evaluate(clip_dir, [a0_model], kinetics_labels_path, threads=1, roi=AUTO)
    assert len(told) == new_views  # the classifier hears of each new view


def test_eval_says_which_part_was_read(clip_dir: Path, a0_model: Path,
                                       kinetics_labels_path: Path) -> None:
    from movinet_pi.tools.eval import run_eval

    out = io.StringIO()
    run_eval(clip_dir, [a0_model], kinetics_labels_path, threads=1, roi=AUTO, out=out,
             progress=False)
    assert "--roi auto" in out.getvalue().splitlines()[0]


@pytest.mark.parametrize("roi", [BOX_TEXT, "auto"])
def test_service_writes_the_roi_into_the_unit(roi: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "--print", "--headless", "--roi", roi]) == 0
    exec_start = next(line for line in capsys.readouterr().out.splitlines()
                      if line.startswith("ExecStart="))
    assert exec_start.endswith(f"--headless --roi {roi}")


def test_bench_has_a_row_for_the_auto_box(models_env: None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", "a0", "--steps", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["roi_auto_ms_p50"] > 0
    assert data["roi_auto_pct"] == pytest.approx(
        data["roi_auto_ms_p50"] / data["step_ms_p50"] * 100, rel=0.01)
    assert main(["bench", "--model", "a0", "--steps", "20"]) == 0
    assert "--roi auto's box" in capsys.readouterr().out
