"""The first hour of a new user (issue #18): getting a picture, finding models and labels,
no noise and no surprises."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sinks import StopAfter

from movinet_pi.cli import main, play_at_own_speed
from movinet_pi.display.base import Display
from movinet_pi.display.overlay import (
    OverlayState,
    draw_overlay,
    status_line,
    wrap_text,
)
from movinet_pi.flags import build_run_parser
from movinet_pi.loading import catalogue_model
from movinet_pi.model.catalogue import identify
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import Labels
from movinet_pi.model.predictions import Prediction
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.open import open_source


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", os.pathsep.join(
        [str(shared / "models"), str(shared / "models" / "untrained"), str(shared / "labels")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def nothing_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No models anywhere, no labels anywhere: a machine fresh from `pip install`."""
    monkeypatch.delenv("MOVINET_PI_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.fixture(scope="module")
def a0(a0_model: Path, kinetics_labels: Labels) -> StreamingClassifier:
    return StreamingClassifier.from_file(a0_model, kinetics_labels, threads=2)


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


# -- getting a picture --------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "own_speed"), [
    ([], False),                                   # headless --json: done in a blink
    (["--web", "0"], True),                        # someone watches the page
    (["--mqtt", "mqtt://broker.local/x"], True),
    (["--loop"], True),
    (["--web", "0", "--speed", "max"], False),     # asked for
    (["--speed", "1"], True),
])
def test_files_play_at_their_own_speed_when_watched(flags: list[str], own_speed: bool) -> None:
    args = build_run_parser().parse_args(["--source", "clip.mp4", *flags])
    assert play_at_own_speed(args, window=False) is own_speed
    assert play_at_own_speed(build_run_parser().parse_args([]), window=True)


def test_web_run_over_a_file_plays_it_at_its_own_speed(
    models_env: None, carving_ice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert main(["--source", str(carving_ice), "--web", "0", "--json"]) == 0
    assert time.monotonic() - started >= 4.0  # the 4.4 s clip, not 0.4 s
    out, err = capsys.readouterr()
    assert len(out.splitlines()) >= 20
    assert err.count("http://127.0.0.1:") == 1  # the URL, once




def test_loop_plays_a_file_again_with_time_running_on(
    a0: StreamingClassifier, carving_ice: Path
) -> None:
    a0.reset()
    sink = StopAfter(40)  # the 4.4 s clip gives 22 steps a play
    source = open_source(str(carving_ice), loop=True)
    pipeline = Pipeline(source, Recognizer(a0, RunConfig(top_k=3), [sink]))
    sink.pipeline = pipeline
    stats = pipeline.run()
    source.close()
    ts = [r.t for r in sink.results]
    assert len(ts) == 40 and stats.frames_read > 131
    assert all(0.15 < b - a < 0.25 for a, b in zip(ts, ts[1:]))  # never back to 0
    frames = [r.frame for r in sink.results]
    assert frames == sorted(frames) and frames[-1] > 131
    assert source.clip_time(ts[-1]) < 4.5  # the overlay's clock starts over


class HoldingDisplay(Display):
    """A window that shows frames and 'presses' ``keys`` in turn: the first after
    ``key_after`` frames, the next ones 3 frames apart."""

    def __init__(self, key_after: int, keys: str = "q") -> None:
        self.key_after = key_after
        self.keys = list(keys)
        self.frames: list[np.ndarray] = []
        self.pressed_at: list[int] = []
        self.closed = False

    def show(self, bgr: np.ndarray) -> int | None:
        self.frames.append(bgr.copy())
        if self.keys and len(self.frames) >= self.key_after + 3 * len(self.pressed_at):
            self.pressed_at.append(len(self.frames))
            return ord(self.keys.pop(0))
        return None

    def close(self) -> None:
        self.closed = True


def test_a_window_keeps_the_last_picture_until_q(
    a0: StreamingClassifier, carving_ice: Path
) -> None:
    a0.reset()
    logged: list[str] = []
    display = HoldingDisplay(key_after=150, keys="xhq")  # the clip has 131 frames
    source = open_source(str(carving_ice))
    config = RunConfig(top_k=3, realtime=True, hold_at_end=True)
    pipeline = Pipeline(source, Recognizer(a0, config), display, log=logged.append)
    stats = pipeline.run()
    source.close()
    assert 0 < stats.frames_shown < 150  # (a busy machine's display skips frames)
    x, h, q = display.pressed_at
    assert display.closed and len(display.frames) == q == 156  # held: only q closed it
    assert np.array_equal(display.frames[x], display.frames[x - 1])  # x: nothing
    assert pipeline.show_help  # h, at the end of the file, shows the keys as ever
    assert not np.array_equal(display.frames[h], display.frames[h - 1])
    assert any("press q or Esc" in line for line in logged)
    assert "end of carving_ice.mp4: q or Esc closes the window" in pipeline.message
    assert pipeline.recognizer.latest is not None
    assert pipeline.recognizer.latest.top[0].label == "carving ice"


def test_exit_at_end_closes_the_window_with_the_file(
    a0: StreamingClassifier, carving_ice: Path
) -> None:
    display = HoldingDisplay(key_after=10**9)
    source = open_source(str(carving_ice))
    stats = Pipeline(source, Recognizer(a0, RunConfig(realtime=False, hold_at_end=False)),
                     display).run()
    source.close()
    assert len(display.frames) == stats.frames_shown and display.closed


def test_a_run_ends_with_a_one_line_summary_without_verbose(
    models_env: None, carving_ice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--source", str(carving_ice), "--headless", "--top-k", "2"]) == 0
    last = _err_lines(capsys)[-1]
    assert last.startswith("movinet-pi: done: 131 frames, 22 model steps; last shown: ")
    assert "carving ice 9" in last  # the final top-k, with its percentages


# -- the overlay ---------------------------------------------------------------------------
MISSING_A2 = ("model MoViNet-A2 stream int8 not found (looked for movinet_a2_stream_int8.tflite "
              "in /home/pi/models, /home/pi/.cache/movinet-pi): run `movinet-pi download a2`; "
              "keeping the current model")


def test_a_long_message_is_wrapped_to_the_window_not_cut_off() -> None:
    lines = wrap_text(MISSING_A2, 0.36, 616)
    assert len(lines) > 1
    assert " ".join(lines) == MISSING_A2
    assert any("run `movinet-pi download a2`" in line for line in lines)  # the fix, whole
    import cv2

    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.36, 1)[0][0] <= 616
               for line in lines)


def test_the_wrapped_message_gets_room_on_the_picture() -> None:
    def bottom_strip_rows(message: str) -> int:
        image = np.full((480, 640, 3), 200, np.uint8)
        draw_overlay(image, OverlayState(model_name="MoViNet-A0 stream int8", message=message))
        return int((image[:, 630, 0] < 200).sum())  # darkened rows at the right edge

    assert bottom_strip_rows(MISSING_A2) > bottom_strip_rows("short") > 0


def _label_pixels(score: float) -> np.ndarray:
    image = np.zeros((480, 640, 3), np.uint8)
    draw_overlay(image, OverlayState(predictions=[Prediction("carving ice", score, 0)]))
    return image[:40]


def test_the_label_column_stays_put_as_percentages_change() -> None:
    columns = []
    for score in (0.051, 0.5, 0.999, 1.0):
        text = _label_pixels(score)[:, 170:]  # right of the bar: the percentage and label
        lit = np.flatnonzero((text > 100).any(axis=(0, 2)))
        columns.append(text[:, lit[-1] - 60 : lit[-1] + 1])  # the label's last 60 px
        assert lit[-1] == np.flatnonzero((_label_pixels(0.5)[:, 170:] > 100)
                                         .any(axis=(0, 2)))[-1]
    assert all(np.array_equal(columns[0], c) for c in columns[1:])


def test_no_action_is_centred() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    draw_overlay(image, OverlayState())
    lit = np.flatnonzero((image[:40] > 60).any(axis=(0, 2)))
    assert abs((lit[0] + lit[-1]) / 2 - 320) < 12


def test_a_file_shows_where_it_is_instead_of_machine_rates(
    a0: StreamingClassifier, carving_ice: Path
) -> None:
    line = status_line(OverlayState(model_name="M", source_time=2.4, source_duration=4.4))
    assert "clip 0:02.4 / 0:04.4" in line and "fps" not in line
    source = open_source(str(carving_ice))
    try:
        frame = source.read()
        assert frame is not None
        state = Pipeline(source, Recognizer(a0, RunConfig())).overlay_state(frame)
    finally:
        source.close()
    assert state.source_time == 0.0 and state.source_duration == pytest.approx(4.37, abs=0.1)
    assert "fps" not in status_line(state)


# -- finding models and labels ---------------------------------------------------------------
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads go to a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MOVINET_PI_DOWNLOAD_BASE", f"http://127.0.0.1:{port}")


def test_a_failed_first_download_says_what_else_works(
    nothing_found: Path, carving_ice: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    _offline(monkeypatch)
    assert main(["--source", str(carving_ice), "--headless"]) != 0
    error = _err_lines(capsys)[-1]
    for words in ("--model-path FILE", "$MOVINET_PI_MODELS", "movinet_a0_stream_int8.tflite",
                  str(nothing_found / "cache" / "movinet-pi")):
        assert words in error, error


@pytest.mark.parametrize(("source", "says"), [
    ("clip.mp4", "no such file: clip.mp4"),
    (".", "is a directory"),
    ("ftp://camera/live", "unsupported source URL scheme ftp://"),
])
def test_a_source_that_cannot_open_is_said_before_the_first_download(
    nothing_found: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    source: str, says: str
) -> None:
    # A mistyped file must not cost a model download first (or, offline, hide behind its error).
    _offline(monkeypatch)
    assert main(["--source", source, "--headless"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and says in lines[0], lines
    assert not (nothing_found / "cache" / "movinet-pi").exists()  # nothing fetched


@pytest.mark.parametrize("command", [["eval"], ["teach", "-o", "taught.tflite"]])
def test_a_clip_folder_that_is_not_there_is_said_before_the_first_download(
    nothing_found: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: list[str]
) -> None:
    _offline(monkeypatch)
    assert main([command[0], "no-such-clips", "--model", "a0", *command[1:]]) == 2
    lines = _err_lines(capsys)
    assert lines == ["movinet-pi: error: clip folder not found: no-such-clips"], lines
    assert not (nothing_found / "cache" / "movinet-pi").exists()  # nothing fetched


def test_offline_without_a_model_says_what_else_works(
    nothing_found: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--offline", "--headless"]) == 2
    error = _err_lines(capsys)[-1]
    assert "movinet-pi download a0" in error and "--model-path FILE" in error


def test_model_path_may_be_a_folder(
    models_env: None, shared: Path, carving_ice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model-path", str(shared / "models"), "--source", str(carving_ice),
                 "--headless", "--json", "--verbose"]) == 0
    out, err = capsys.readouterr()
    assert "model MoViNet-A0 stream int8: movinet_a0_stream_int8.tflite" in err
    assert json.loads(out.splitlines()[-1])["top"][0]["label"] == "carving ice"


def test_a_folder_without_the_model_asked_for_says_which_it_uses(
    models_env: None, shared: Path, carving_ice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared / "models" / "untrained"  # A1 and A2 int8, no A0 int8
    assert main(["--model-path", str(folder), "--model", "a0", "--source", str(carving_ice),
                 "--headless", "--json"]) == 0
    err = capsys.readouterr().err
    assert f"{folder} has no movinet_a0_stream_int8.tflite: using its movinet_a1_" in err


def test_a_folder_without_a_model_is_one_line(
    models_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--model-path", str(empty), "--headless"]) == 2
    error = _err_lines(capsys)
    assert len(error) == 1 and "no model in folder" in error[0]


def test_labels_beside_the_model_or_in_its_labels_folder(
    nothing_found: Path, a0_model: Path, kinetics_labels_path: Path, carving_ice: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    mine = nothing_found / "kit" / "models" / "mine.tflite"
    mine.parent.mkdir(parents=True)
    shutil.copy(a0_model, mine)
    run = ["--model-path", str(mine), "--source", str(carving_ice), "--headless", "--json",
           "--verbose"]
    assert main(run) == 2  # no labels anywhere yet: say what to pass
    assert "pass --labels FILE" in _err_lines(capsys)[-1]
    (nothing_found / "kit" / "labels").mkdir()
    shutil.copy(kinetics_labels_path, nothing_found / "kit" / "labels")  # ../labels
    assert main(run) == 0
    err = capsys.readouterr().err
    assert "kit/labels/kinetics600_label_map.txt" in err
    shutil.move(str(nothing_found / "kit" / "labels" / kinetics_labels_path.name), mine.parent)
    assert main(run) == 0  # beside the model
    err = capsys.readouterr().err
    assert "kit/models/kinetics600_label_map.txt" in err
    # a copy of the catalogue's A0 under another name is still called what it is
    assert "model MoViNet-A0 stream int8: mine.tflite" in err


def test_catalogue_models_are_recognised_by_their_signature() -> None:
    assert identify(None, 172, 600, 43, "int8") == "MoViNet-A0 stream int8"
    assert identify(None, 172, 600, 67, "float16") == "MoViNet-A1 stream float16"
    assert identify(None, 224, 600, 73, "int8") == "MoViNet-A2 stream int8"
    assert identify(None, 172, 10, 43, "int8") is None  # a fine-tuned model: its own name
    assert identify("0" * 64, 160, 600, 12, "int8") is None


def test_info_takes_a_catalogue_model(models_env: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--model", "a0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "movinet_a0_stream_int8.tflite" in json.dumps(info)
    assert main(["info"]) == 2
    assert "--model a0|a1|a2" in _err_lines(capsys)[-1]


def test_eval_takes_a_catalogue_model(models_env: None, carving_ice: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    clips = tmp_path / "clips" / "carving ice"
    clips.mkdir(parents=True)
    shutil.copy(carving_ice, clips)
    assert main(["eval", str(clips.parent), "--model", "a0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "movinet_a0_stream_int8" in json.dumps(report)
    assert report["model"] == "MoViNet-A0 stream int8"  # named as a run names it
    assert main(["eval", str(clips.parent)]) == 2
    capsys.readouterr()
    assert main(["eval", str(clips.parent), "--model", "a0", "--threads", "1"]) == 0
    assert capsys.readouterr().out.startswith("1 clip in 1 class from ")  # not "1 clips"
    # one model twice would be scored twice, the same, under made-up names ("#1", "#2")
    a0 = catalogue_model("a0", "int8", offline=True)[0]
    assert main(["eval", str(clips.parent), "--model", "a0", "--model-path", str(a0)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"movinet-pi: error: --model a0 and --model-path {a0} are the same model ({a0}): give "
        "each model once")


def test_one_thread_is_one_thread(models_env: None, carving_ice: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(carving_ice), "--headless", "--threads", "1", "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "600 classes, 43 states, " in err and ", 1 thread; labels" in err
    assert status_line(OverlayState(model_name="M", threads=1)).startswith("M  |  1 thread  |")


def test_info_names_a_catalogue_file_and_finds_its_labels_as_a_run_does(
    nothing_found: Path, a0_model: Path, kinetics_labels_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # `info models/movinet_a0_stream_int8.tflite` in a checkout whose labels/ holds the map
    (nothing_found / "work" / "models").mkdir()
    (nothing_found / "work" / "labels").mkdir()
    shutil.copy(a0_model, nothing_found / "work" / "models")
    shutil.copy(kinetics_labels_path, nothing_found / "work" / "labels")
    assert main(["info", "models/movinet_a0_stream_int8.tflite"]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["model"] == "MoViNet-A0 stream int8"
    assert rows["labels"].endswith("labels/kinetics600_label_map.txt")
    assert main(["info", "models/movinet_a0_stream_int8.tflite", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["first_labels"][:2] == ["abseiling", "acting in play"]
    (nothing_found / "work" / "labels" / kinetics_labels_path.name).unlink()
    assert main(["info", "models/movinet_a0_stream_int8.tflite"]) == 0  # no labels: says so
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert rows["labels"].startswith("none: Kinetics-600 label map not found")
    assert "(or pass --labels FILE)" in rows["labels"]


# -- noise and surprises ---------------------------------------------------------------------
def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "movinet_pi", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_no_camera_is_our_one_line_not_opencvs_warnings(shared: Path, tmp_path: Path) -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    env = {"MOVINET_PI_MODELS": f"{shared / 'models'}{os.pathsep}{shared / 'labels'}",
           "XDG_CACHE_HOME": str(tmp_path)}
    for name in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL"):
        env[name] = ""
    quiet = _run("--source", "7", "--headless", env=env)
    assert quiet.returncode == 1  # a camera may come: a service restarts on 1, not on 2
    assert quiet.stderr.strip().splitlines() == [
        "movinet-pi: error: no camera at index 7: check the cable / `ls /dev/video*`"]
    loud = _run("--source", "7", "--headless", "--debug", env=env)
    assert "WARN" in loud.stderr  # --debug shows what the libraries say


def test_a_text_file_is_not_played_as_video(
    models_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"  # FFmpeg's tty demuxer would "play" this
    notes.write_text("Some notes about the garden camera.\n" * 200)
    assert main(["--source", str(notes), "--headless"]) == 2
    error = _err_lines(capsys)
    assert len(error) == 1 and "is a text file, not a video" in error[0]


@pytest.mark.parametrize(("argv", "suggestion"), [
    (["--sorce", "clip.mp4"], "did you mean `--source`?"),
    (["--source=clip.mp4", "--hedless"], "did you mean `--headless`?"),
    (["dowload", "a0"], "did you mean `download`?"),
    (["bench", "--step", "3", "--jsn"], "did you mean `--json`?"),
])
def test_a_mistyped_flag_or_command_gets_a_suggestion(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    assert code == 2
    error = _err_lines(capsys)
    assert len(error) == 1 and suggestion in error[0], error


@pytest.mark.parametrize("command", [[], ["run"]])
def test_a_file_given_alone_is_the_source(
    models_env: None, carving_ice: Path, command: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    # `movinet-pi clip.mp4`, as with mpv and ffplay (it said "unknown command" before)
    assert main([*command, str(carving_ice), "--headless"]) == 0
    assert _err_lines(capsys)[-1].startswith("movinet-pi: done: 131 frames, 22 model steps")
    monkeypatch.chdir(carving_ice.parent)
    assert main([*command, "--headless", "--top-k", "1", carving_ice.name]) == 0  # anywhere
    assert "last shown: carving ice" in _err_lines(capsys)[-1]


@pytest.mark.parametrize(("word", "source"), [
    ("clip.mp4", True), ("/dev/video0", True), ("rtsp://cam.local/stream", True),
    ("0", True), ("picamera", True), ("videos/clip", True),
    ("dowload", False), ("a0", False), ("teach2", False),
])
def test_a_positional_word_is_a_source_when_it_looks_like_one(word: str, source: bool) -> None:
    from movinet_pi.parser import looks_like_source

    assert looks_like_source(word) is source


@pytest.mark.parametrize("argv", [["--headless", "dowload"], ["run", "dowload"]])
def test_a_word_that_is_no_source_keeps_the_did_you_mean(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    error = _err_lines(capsys)
    assert len(error) == 1 and "unknown command 'dowload': did you mean `download`?" in error[0]


def test_a_source_given_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["a.mp4", "--source", "b.mp4"]) == 2
    assert _err_lines(capsys) == [
        "movinet-pi: error: two sources, 'a.mp4' and --source 'b.mp4': give one"]


def test_text_formats_ffmpeg_plays_are_not_refused_as_text(tmp_path: Path) -> None:
    from movinet_pi.sources.opencv import _looks_like_text

    for name, text in (("a.m3u8", "#EXTM3U\n#EXT-X-VERSION:3\n"), ("b.sdp", "v=0\no=- 0 0 IN\n"),
                       ("c.txt", "ffconcat version 1.0\nfile 'a.mp4'\n")):
        (tmp_path / name).write_text(text)
        assert not _looks_like_text(tmp_path / name)
    (tmp_path / "notes.txt").write_text("just notes\n")
    assert _looks_like_text(tmp_path / "notes.txt")
