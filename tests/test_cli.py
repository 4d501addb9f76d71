"""The command line as a user meets it: help, runs over real clips, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from movinet_pi import MovinetPiError
from movinet_pi.cli import main


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path) -> None:
    """Catalogue lookups find ../shared's models and labels; nothing in the user's cache."""
    monkeypatch.setenv(
        "MOVINET_PI_MODELS",
        os.pathsep.join([str(shared / "models"), str(shared / "models" / "untrained"),
                         str(shared / "labels")]),
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "movinet_pi", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


def test_help_reads_well() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for words in ("--model", "--source", "--top-k", "--headless", "--json", "download", "q or Esc"):
        assert words in out.stdout


def test_json_lines_over_a_real_clip(models_env: None, carving_ice: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--source", str(carving_ice), "--headless", "--json", "--top-k", "2",
               "--threshold", "0"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 22
    assert [x["step"] for x in lines] == list(range(22))
    assert all({"t", "frame", "step", "top", "infer_ms"} <= x.keys() for x in lines)
    assert all(len(x["top"]) == 2 for x in lines)
    assert lines[-1]["top"][0]["label"] == "carving ice"
    assert lines[-1]["top"][0]["score"] >= 0.95
    # --history auto: the memory grows a frame a step while the scene stays. The clip
    # opens on one black frame, and the cut from it to the ice is a change: the memory
    # then counts from the ice's first frame.
    memory = [x["memory_s"] for x in lines]
    assert memory[-1] == round(21 / 5, 1)
    assert [round(b - a, 1) for a, b in zip(memory[3:], memory[4:])] == [0.2] * 18


@pytest.mark.parametrize("command", [["--headless"], ["bench", "--steps", "3"]])
def test_a_run_and_bench_keep_opencv_off_its_worker_threads(
    models_env: None, carving_ice: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    # Each call handed to OpenCV's pool costs its workers ~0.2 ms of CPU, more than the
    # small per-frame jobs of a run gain from it (issue #21); bench times what a run spends.
    import cv2

    cv2.setNumThreads(-1)  # OpenCV's default: a worker per core
    try:
        assert main([*command, "--source", str(carving_ice), "--json"]) == 0
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(-1)
    assert capsys.readouterr().out


@pytest.mark.parametrize(("history", "last"), [("2", 2.0), ("inf", 4.4)])
def test_json_lines_say_how_far_back_the_memory_reaches(
    models_env: None, carving_ice: Path, capsys: pytest.CaptureFixture[str],
    history: str, last: float
) -> None:
    assert main(["--source", str(carving_ice), "--headless", "--json",
                 "--history", history]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["memory_s"] == last and max(x["memory_s"] for x in lines) == last


def test_human_lines_when_top1_changes(models_env: None, arm_wrestling: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", str(arm_wrestling), "--headless"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out and "arm wrestling" in out[-1]
    assert len(out) < 50  # only changes, not every step


def test_a2_catalogue_lookup_uses_224_input(models_env: None, carving_ice: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", "a2", "--source", str(carving_ice), "--headless", "--json",
                 "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "input 224x224" in err and "73 states" in err


def test_threshold_and_deny(models_env: None, carving_ice: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", str(carving_ice), "--headless", "--json", "--threshold", "0.5",
                 "--leave-threshold", "0.5", "--deny", "carving ice"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(p["score"] >= 0.5 and p["label"] != "carving ice" for x in lines for p in x["top"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--threads", "0"], "--threads: must be 1 to"),
        (["--threads", "-2"], "--threads: must be 1 to"),
        (["--top-k", "0"], "--top-k: must be 1 or more"),
        (["--threshold", "1.5"], "--threshold: must be in [0, 1]"),
        (["--threshold", "x"], "--threshold: expected a number"),
        (["--history", "-1"], "--history: must be more than 0"),
        (["--frame-size", "640by480"], "--frame-size"),
        (["--camera-fps", "0"], "--camera-fps: must be more than 0"),
        (["--model", "a9"], "invalid choice: 'a9'"),
        (["--quant", "int4"], "invalid choice: 'int4'"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["--leave-threshold", "2"], "--leave-threshold: must be in [0, 1]"),
        (["--display", "hdmi"], "invalid choice: 'hdmi'"),
        (["--json", "--events"], "--events: not allowed with argument --json"),
        (["--mqtt", "ftp://host"], "--mqtt"),
        (["--web", "99999"], "--web: port must be 0..65535"),
        (["--web", "localhost:x"], "--web"),
        (["--pre-seconds", "-1"], "--pre-seconds: must be 0 or more"),
        (["--post-seconds", "x"], "--post-seconds: expected a number"),
        (["--record-max-mb", "0"], "--record-max-mb: must be more than 0"),
        (["bench", "--steps", "0"], "--steps: must be 1 or more"),
        (["eval"], "required"),
        (["--roi", "-0.1,0,0.5,0.5"], "goes as --roi=VALUE"),
        (["--ha-prefix", "ha"], "--ha-prefix goes with --mqtt"),
        (["--name", "porch"], "--name goes with --mqtt"),
        (["--mqtt-ca", "ca.pem"], "--mqtt-ca goes with --mqtt"),
        (["--web-token", "a-long-enough-token"], "--web-token goes with --web"),
        (["bench", "--source", "/"], "/ is a directory: pass a video file"),
        (["bench", "--source", "0"], "bench reads a video file, or synthetic frames"),
        (["info", "/"], "no model in folder /: looked for movinet_a0_stream_int8.tflite"),
        (["info", "x.tflite", "--model", "a0"], ", not a file and --model"),
        (["info", "--model-path", "x.tflite", "--model", "a0"], ", not --model-path and --model"),
        (["--pre-seconds", "2"], "--pre-seconds goes with --record"),
        (["--post-seconds", "5"], "--post-seconds goes with --record"),
        (["--record-max-mb", "5"], "--record-max-mb goes with --record"),
        (["--record-labels", "yoga"], "--record-labels goes with --record"),
        (["a.mp4", "b.mp4"], "'b.mp4' would be a second source; a run reads one"),
        (["a.mp4", "--treshold", "0.5"], "did you mean `--threshold`?"),
        (["--src", "a.mp4"], "did you mean `--source`?"),  # two letters off
        (["a.mp4", "--sorce", "x", "--hedless"],
         "did you mean `--source` for `--sorce`, `--headless` for `--hedless`?"),
        (["--window-size", "10"], "--window-size: bad size '10': use WIDTHxHEIGHT"),
        (["--threshold", "0.2", "--leave-threshold", "0.5"],
         "--leave-threshold 0.5 is above --threshold 0.2"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2(args: list[str], words: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2
    assert words in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--no-ha-discovery"], "--no-ha-discovery goes with --mqtt"),
        (["--event-min-s", "2"], "--event-min-s goes with an output of events (--events, "),
        (["--headless", "--window-size", "300x300"],
         "--window-size is for the window, and --headless shows none: drop one of them"),
        (["--display", "none", "--exit-at-end"],
         "--exit-at-end is for the window, and --display none shows none"),
        (["--headless", "--mirror"], "--mirror is for the window, and --headless shows none"),
        (["http://cam/video.mjpg", "--camera-fps", "5"], "--camera-fps is asked of a camera"),
        (["rtsp://cam/stream", "--frame-size", "320x240"], "--frame-size is asked of a camera"),
    ],
)
def test_flags_that_could_never_act_are_noted_in_a_run_and_refused_in_a_unit(
        args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A unit written by an earlier version may hold them: it must go on starting (a note),
    where `service --print` writes no new unit with them."""
    from movinet_pi.cli import check_run_flags, take_source_argument
    from movinet_pi.flags import build_run_parser

    parsed = build_run_parser().parse_args(args)
    assert take_source_argument(parsed) == 0
    check_run_flags(parsed)
    err = capsys.readouterr().err
    assert err.startswith("movinet-pi: note: ") and words in err and err.count("\n") == 1
    with pytest.raises(MovinetPiError, match=re.escape(words)):
        check_run_flags(parsed, strict=True)
    assert main(["service", "--print", *args]) == 2
    assert words in _one_line_error(capsys)


def test_camera_flags_are_noted_with_a_video_file_and_taken_with_a_camera(
        carving_ice: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from movinet_pi.cli import check_run_flags
    from movinet_pi.flags import build_run_parser

    for source, noted in ((str(carving_ice), True), ("0", False), ("/dev/video1", False),
                          ("picamera", False), (None, False)):
        args = build_run_parser().parse_args(
            [*(["--source", source] if source else []), "--frame-size", "1280x720",
             "--camera-fps", "15"])
        check_run_flags(args)  # a camera is asked for that size and rate; a file is not
        assert ("--frame-size is asked of a camera" in capsys.readouterr().err) is noted


def test_top_k_above_class_count(models_env: None, carving_ice: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", str(carving_ice), "--headless", "--top-k", "601"]) == 2
    assert "more than the model's 600 classes" in _one_line_error(capsys)


def test_flags_that_could_never_act_are_refused_before_the_run(
        models_env: None, carving_ice: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = ["--source", str(carving_ice), "--headless"]
    record = tmp_path / "clips"
    assert main([*run, "--record", str(record), "--record-labels", "Carving_Ice"]) == 2
    assert "unknown label 'Carving_Ice' in --record-labels" in _one_line_error(capsys)
    assert not record.exists()  # refused before any output was opened
    assert main([*run, "--labels", str(tmp_path)]) == 2
    assert "is a folder: give the label file itself" in _one_line_error(capsys)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x\n")
    assert main([*run, "--record", str(a_file)]) == 2
    assert "is a file, not a folder" in _one_line_error(capsys)
    # the recorder matches labels whatever their case: so does the check
    assert main([*run, "--record", str(record), "--record-labels", "Carving Ice"]) == 0


def test_missing_catalogue_model_names_the_download_command(
    tmp_path: Path, carving_ice: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["--model", "a1", "--offline", "--headless", "--source", str(carving_ice)]) == 2
    assert "movinet-pi download a1" in _one_line_error(capsys)


def test_a_web_token_in_the_environment_is_no_flag_given(
        models_env: None, carving_ice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service's environment may hold the token for every run; only a --web-token typed
    without --web is refused."""
    monkeypatch.setenv("MOVINET_PI_WEB_TOKEN", "a-long-enough-token")
    assert main(["--source", str(carving_ice), "--headless"]) == 0


@pytest.mark.parametrize("command", [["info", "--model", "a1"],
                                     ["eval", "CLIPS", "--model", "a1"]])
def test_info_and_eval_take_offline_as_their_hint_says(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "CLIPS" / "squat").mkdir(parents=True)
    (tmp_path / "CLIPS" / "squat" / "a.mp4").write_bytes(b"\0" * 64)
    assert main([*command, "--offline"]) == 2
    assert "movinet-pi download a1" in _one_line_error(capsys)
    assert not (tmp_path / "cache").exists()  # nothing fetched, nothing made


def test_missing_source_file(models_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", "no-such-clip.mp4", "--headless"]) == 2
    assert "no-such-clip.mp4" in _one_line_error(capsys)


def test_labels_count_mismatch_says_both_numbers(
    models_env: None, carving_ice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    assert main(["--source", str(carving_ice), "--headless", "--labels", str(labels)]) == 2
    line = _one_line_error(capsys)
    assert "3 labels" in line and "600 classes" in line


def test_custom_model_without_labels_asks_for_them(
    models_env: None, carving_ice: Path, shared: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", str(tmp_path))  # no Kinetics labels anywhere
    model = shared / "models" / "untrained" / "movinet_a1_stream_int8.tflite"
    assert main(["--model-path", str(model), "--source", str(carving_ice), "--headless"]) == 2
    assert "--labels" in _one_line_error(capsys)


def test_custom_model_with_its_labels_runs(
    models_env: None, carving_ice: Path, shared: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = tmp_path / "mine.txt"
    labels.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(f"my action {i}" for i in range(600)).encode()
                       + b"\r\n\r\n")
    model = shared / "models" / "untrained" / "movinet_a2_stream_float32.tflite"
    assert main(["--model-path", str(model), "--labels", str(labels), "--source",
                 str(carving_ice), "--headless", "--json", "--top-k", "1", "--threshold", "0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines and lines[0]["top"][0]["label"].startswith("my action ")


def test_info_describes_a_model(a0_model: Path, kinetics_labels_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(a0_model), "--labels", str(kinetics_labels_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_size"] == [172, 172]
    assert info["num_classes"] == 600
    assert info["states"] == 43
    assert info["quantization"] == "int8"
    assert info["io"] == {"image": "float32", "logits": "float32"}  # quantized inside
    assert info["state_kinds"] == {"pool": 32, "stream": 11}
    assert info["model_fps"] == 5.0 and info["runtime"].startswith("ai-edge-litert")
    assert info["sha256"] == "6125b36e2485eeb5cc1fd6206cf5e5d70235593fbc84610d1dce97fe3aa9c2ac"
    # as the classifier runs it: the stream states and the image as int8
    assert len(info["int8_states"]) == 11 and info["int8_image"] is True
    assert all(name.endswith("_stream_buffer") for name in info["int8_states"])
    assert 0.6e6 < info["carried_bytes"] < 0.7e6 < info["state_bytes"] / 3


def test_info_says_how_a_float_model_is_run(a0_float_model: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(a0_float_model)]) == 0
    out = capsys.readouterr().out
    assert "as run" in out and "int8" not in out.split("as run")[1]


def test_info_refuses_labels_of_the_wrong_count(
        a0_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    three = tmp_path / "three.txt"
    three.write_text("a\nb\nc\n")
    assert main(["info", str(a0_model), "--labels", str(three)]) == 2
    assert "has 3 labels but the model has 600 classes" in capsys.readouterr().err


def test_info_of_a_taught_model_names_its_classes_and_not_the_catalogue_model(
        a0_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from movinet_pi.model.catalogue import identify
    from movinet_pi.model.taught import TaughtHead, write_taught_model

    width = 480  # A0's head pool
    head = TaughtHead("logistic", ("a", "b", "c"), np.zeros((3, width), np.float32),
                      np.zeros(3, np.float32), np.zeros(width, np.float32),
                      np.ones(width, np.float32), slot="state_head_pool_buffer")
    taught = tmp_path / "taught.tflite"
    write_taught_model(a0_model, taught, head)
    assert main(["info", str(taught), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_classes"] == 600 and info["taught"]["classes"] == 3
    assert info["model"] is None  # its own classes: not the catalogue's A0
    assert identify(None, 172, 600, 43, "int8") == "MoViNet-A0 stream int8"
    assert identify(None, 172, 3, 43, "int8") is None  # a Kinetics-600 model's shape only


def test_models_in_movinet_pi_models_are_found_before_those_in_models(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.model.catalogue import find_model, get_spec

    spec = get_spec("a0")
    for folder in ("env", "cwd/models"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / spec.filename).write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("MOVINET_PI_MODELS", str(tmp_path / "env"))
    assert find_model(spec) == tmp_path / "env" / spec.filename


def test_info_refuses_a_non_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "notes.tflite"
    bogus.write_text("hello")
    assert main(["info", str(bogus)]) == 2
    assert "not a TFLite model" in _one_line_error(capsys)


def test_bench_json_reports_every_stage(models_env: None, carving_ice: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--steps", "12", "--json", "--source", str(carving_ice)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 12 and result["input"] == [172, 172]
    assert result["frame"] == [172, 172]  # the clip's own size
    assert result["source"] == "carving_ice.mp4" and result["model"].startswith("MoViNet-A0")
    assert result["threads"] >= 1 and result["runtime"]
    stages = ("capture", "preprocess", "invoke", "carry", "answer", "overlay")
    for stage in stages:  # every stage takes some time; its p99 is at least its median
        assert 0 < result[f"{stage}_ms_p50"] <= result[f"{stage}_ms_p99"], stage
    assert result["bare_invoke_ms_p50"] > 0
    # a step's total is at least each of its stages, and invoke + carry at least either part
    # (medians of step-by-step sums: each sum is at least its parts)
    assert all(result["total_ms_p50"] >= result[f"{s}_ms_p50"] for s in stages)
    assert result["step_ms_p50"] >= max(result["invoke_ms_p50"], result["carry_ms_p50"])
    assert result["total_ms_p50"] >= result["step_ms_p50"]
    # the ratios are what their definitions say, from the same medians
    bare = result["bare_invoke_ms_p50"]
    assert result["overhead_pct"] == pytest.approx(
        (result["step_ms_p50"] / bare - 1) * 100, abs=0.05)
    assert result["invoke_pct"] == pytest.approx(
        (result["invoke_ms_p50"] / bare - 1) * 100, abs=0.05)
    assert result["carry_pct"] == pytest.approx(result["carry_ms_p50"] / bare * 100, abs=0.05)
    assert result["steps_per_s"] == pytest.approx(1000 / result["total_ms_p50"], rel=1e-3)


def test_bench_table_on_synthetic_frames(models_env: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", "a2", "--steps", "3", "--frame-size", "320x240"]) == 0
    out = capsys.readouterr().out
    assert "input 224x224" in out and "synthetic frames (320x240)" in out
    assert "bare invoke of the same file" in out
    # a short table and one plain sentence, not signed percentages to decode
    assert "A step takes" in out and "steps a second" in out
    # at most the sentences' (the step against a bare invoke, --roi auto's share)
    assert out.count("%") <= 2
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        numbers = [p.replace(".", "").isdigit() for p in parts[-2:]]
        if len(parts) >= 3 and all(numbers) and "ms" not in parts:
            rows[" ".join(parts[:-2])] = (float(parts[-2]), float(parts[-1]))
    stages = {"capture (read a frame)", "preprocess (resize, normalise)", "invoke (the model)",
              "carry (states, memory)", "of it, memory (auto)", "answer (softmax, shown)",
              "overlay (draw the labels)", "bare invoke of the same file"}
    assert stages <= set(rows), rows
    assert all(0 <= p50 <= p99 for p50, p99 in rows.values()), rows
    assert rows["of it, memory (auto)"][0] <= rows["carry (states, memory)"][0]


def test_bench_missing_video_is_one_line(models_env: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--source", "nope.mp4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("movinet-pi: error: video file not found: nope.mp4 (bench reads")
    assert len(err.splitlines()) == 1


def test_eval_on_the_shared_clips(models_env: None, a0_model: Path, kinetics_labels_path: Path,
                                  carving_ice: Path, arm_wrestling: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for clip, folder in ((carving_ice, "carving_ice"), (arm_wrestling, "arm wrestling")):
        (tmp_path / "clips" / folder).mkdir(parents=True)
        (tmp_path / "clips" / folder / clip.name).symlink_to(clip)
    assert main(["eval", str(tmp_path / "clips"), "--model-path", str(a0_model),
                 "--labels", str(kinetics_labels_path), "--json"]) == 0
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert result["top1"] == 1.0 and result["top5"] == 1.0 and result["clips"] == 2


def test_every_command_takes_a_folder_of_the_catalogues_files_as_a_run_does(
        a0_model: Path, carving_ice: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = a0_model.parent  # as `--model-path DIR` in a run, which the hints suggest
    (tmp_path / "clips" / "carving ice").mkdir(parents=True)
    (tmp_path / "clips" / "carving ice" / carving_ice.name).symlink_to(carving_ice)
    assert main(["eval", str(tmp_path / "clips"), "--model-path", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "MoViNet-A0 stream int8"
    for info in (["info", str(folder)], ["info", "--model-path", str(folder)]):
        assert main([*info, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["path"] == str(a0_model)


def test_display_auto_without_desktop_uses_the_camera_drm_preview(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from fake_picamera2 import install, pattern_frames

    from movinet_pi.display import select as display_module
    from movinet_pi.display.drm import DrmDisplay
    from movinet_pi.display.open import open_display
    from movinet_pi.sources.open import open_source

    monkeypatch.setattr(display_module, "X11_SOCKET_DIR", tmp_path)  # no desktop running
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    install(monkeypatch, frames=pattern_frames((640, 480)))
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        args = argparse.Namespace(headless=False, display="auto", window_size=None, web=None,
                                  mirror=False)
        assert isinstance(open_display(args, source), DrmDisplay)
        assert "using the camera's DRM preview on HDMI" in capsys.readouterr().err
    finally:
        source.close()


def test_display_auto_falls_back_to_headless_when_drm_is_taken(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from fake_picamera2 import install, pattern_frames

    from movinet_pi.display import select as display_module
    from movinet_pi.display.open import open_display
    from movinet_pi.sources.open import open_source

    monkeypatch.setattr(display_module, "X11_SOCKET_DIR", tmp_path)
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    install(monkeypatch, frames=pattern_frames((640, 480)), desktop=True)
    source = open_source("picamera", frame_size=(640, 480), timeout=2.0)
    try:
        auto = argparse.Namespace(headless=False, display="auto", window_size=None, web=None,
                                  mirror=False)
        assert open_display(auto, source) is None
        err = capsys.readouterr().err
        assert "running headless" in err and "add --web PORT" in err
        with pytest.raises(MovinetPiError, match="desktop session"):
            drm = argparse.Namespace(headless=False, display="drm", window_size=None, web=None,
                                     mirror=False)
            open_display(drm, source)
    finally:
        source.close()


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("image_classifier.tflite", "no state tensors: an image or clip classifier, not a "
                                    "streaming model"),
        ("bad_image_shape.tflite", "image input has shape [1, 2, 64, 64, 3], expected "
                                   "[1, 1, H, W, 3]"),
    ],
)
def test_models_that_are_not_streaming_are_refused_before_the_camera_opens(
    model: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --source names a camera that does not exist: the model must be refused first.
    assert main(["--model-path", str(DATA / model), "--source", "7", "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "camera" not in err and len(err.splitlines()) == 1


def test_web_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.flags import build_run_parser

    monkeypatch.setenv("MOVINET_PI_WEB_TOKEN", "s3cret")
    assert build_run_parser().parse_args(["--web", "8080"]).web_token == "s3cret"
    assert build_run_parser().parse_args(["--web-token", "flag"]).web_token == "flag"


@pytest.mark.parametrize("output", [["--record", "clips"], ["--web", "8080"]])
def test_mirror_goes_with_headless_where_mirrored_pictures_are_kept_or_served(
        output: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Event clips and the browser view show the picture mirrored too: a unit that records
    # mirrored clips with no window must be written, not refused.
    from movinet_pi.cli import check_run_flags
    from movinet_pi.flags import build_run_parser

    parsed = build_run_parser().parse_args(["--headless", "--mirror", *output])
    check_run_flags(parsed, strict=True)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("error", [RuntimeError("boom"), OSError("boom")])
def test_an_unforeseen_error_is_one_line_without_a_traceback(
        error: Exception, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import movinet_pi.cli as cli

    def broken(args: object) -> int:
        raise error

    build, _ = cli.COMMANDS["info"]
    monkeypatch.setitem(cli.COMMANDS, "info", (build, broken))
    assert main(["info"]) == 1
    line = _one_line_error(capsys)
    assert line == (f"movinet-pi: unexpected error: {type(error).__name__}: boom "
                    "(run with --debug for details)")
