"""``movinet-pi teach``: a taught model from a few seconds of the shared clips, its file
round trip (info, eval, a run, a stock runtime), the head's numbers, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_shared

from movinet_pi import MovinetPiError
from movinet_pi.cli import main
from movinet_pi.model.runtime import load_interpreter
from movinet_pi.model.signature import read_signature
from movinet_pi.model.taught import (
    TaughtHead,
    cross_validate,
    fit,
    read_taught,
    write_taught_model,
)

DATA = Path(__file__).resolve().parent / "data"
CLASSES = ("carving_ice", "arm_wrestling", "squat")


def cut(src: Path, dst: Path, seconds: float, start: float = 0.0) -> Path:
    """``seconds`` of ``src`` from ``start``, at 160x120, as an mp4v clip."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.set(cv2.CAP_PROP_POS_MSEC, start * 1000.0)
    dst.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for _ in range(max(1, round(seconds * fps))):
        ok, bgr = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(bgr, (160, 120), interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 2.4 s clips per class, from the start and the middle of each shared clip."""
    root = tmp_path_factory.mktemp("teach") / "clips"
    for name in CLASSES:
        src = require_shared("videos", f"{name}.mp4")
        cut(src, root / name / "a.mp4", 2.4)
        cut(src, root / name / "b.mp4", 2.4, start=2.0)
    return root


@pytest.fixture(scope="module")
def taught(clips: Path, a0_model: Path) -> Path:
    out = clips.parent / "mine.tflite"
    assert main(["teach", str(clips), "--model-path", str(a0_model), "-o", str(out),
                 "--threads", "2"]) == 0
    return out


def test_the_file_is_the_base_model_with_a_zip_after_it(taught: Path, a0_model: Path) -> None:
    base = a0_model.read_bytes()
    assert taught.read_bytes()[:len(base)] == base
    head = read_taught(taught)
    assert head is not None and head.labels == ("arm wrestling", "carving ice", "squat")
    assert head.examples > 0 and head.clips == 6 and head.kind in ("logistic", "prototypes")
    interpreter, _ = load_interpreter(taught, 1)  # a stock runtime loads it unchanged
    assert read_signature(interpreter).num_classes == 600
    interpreter.invoke()


def test_info_says_what_was_taught(taught: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["info", str(taught)]) == 0
    text = capsys.readouterr().out
    head = read_taught(taught)
    assert head is not None
    assert f"taught        3 classes, {head.examples} examples, from {head.base_sha256[:12]}" \
        in text
    assert main(["info", str(taught), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["taught"]["classes"] == 3 and info["first_labels"][0] == "arm wrestling"


def test_eval_scores_it(taught: Path, clips: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(clips), "--model-path", str(taught), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_classes"] == 3 and report["clips"] == 6
    assert report["top1"] >= 5 / 6


def test_a_run_shows_the_taught_labels(taught: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    clip = cut(require_shared("videos", "squat.mp4"), tmp_path / "squat.mp4", 3.0, start=6.0)
    assert main(["--model-path", str(taught), "--source", str(clip), "--headless",
                 "--json", "--threads", "2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    labels = {p["label"] for line in lines for p in line["top"]}
    assert labels and labels <= {"carving ice", "arm wrestling", "squat"}
    assert lines[-1]["top"][0]["label"] == "squat"


def test_a_changed_base_is_refused(taught: Path, tmp_path: Path) -> None:
    data = bytearray(taught.read_bytes())
    data[100] ^= 0xFF
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data))
    with pytest.raises(MovinetPiError, match="not the one it was taught on"):
        read_taught(bad)


# --- the head's numbers ---------------------------------------------------------------------


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, 16))
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + rng.normal(0, 1, (len(y), 16))
    clip = np.repeat(np.arange(12), 10)  # four clips a class
    return x.astype(np.float32), y, clip


@pytest.mark.parametrize("kind", ["logistic", "prototypes"])
def test_both_heads_separate_blobs_held_out(kind: str) -> None:
    x, y, clip = blobs()
    pred, best = cross_validate(kind, x, y, clip, ["a", "b", "c"])
    assert np.mean(pred == y) > 0.95 and np.all((best > 0) & (best <= 1))
    head = fit(kind, x, y, ["a", "b", "c"])
    assert np.mean(np.argmax(head.probs(x), axis=1) == y) > 0.95


def test_reject_answers_nothing_below_the_threshold(tmp_path: Path) -> None:
    x, y, _ = blobs()
    head = fit("logistic", x, y, ["a", "b", "c"])
    head.reject, head.threshold = True, 0.9
    mixed = x[[0, 40, 80]].mean(axis=0)  # between the classes: unsure
    assert np.all(head.probs(mixed) == 0.0)
    assert np.max(head.probs(x[0])) >= 0.9
    base = tmp_path / "base.bin"
    base.write_bytes(b"not a model, just bytes")
    out = tmp_path / "out.tflite"
    write_taught_model(base, out, head)
    back = read_taught(out)
    assert isinstance(back, TaughtHead) and back.reject and back.threshold == 0.9
    assert np.allclose(back.probs(x[0]), head.probs(x[0]))


# --- bad input: one line, exit 2 ------------------------------------------------------------


def teach_error(capsys: pytest.CaptureFixture, clip_dir: Path, model: Path, out: Path,
                *extra: str) -> str:
    assert main(["teach", str(clip_dir), "--model-path", str(model), "-o", str(out),
                 *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("movinet-pi: error: ")
    return err[-1]


def test_bad_input(clips: Path, taught: Path, a0_model: Path, tmp_path: Path,
                   capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out.tflite"
    assert "exists: pass --force" in teach_error(capsys, clips, a0_model, taught)
    one = tmp_path / "one"
    cut(clips / "squat" / "a.mp4", one / "squat" / "a.mp4", 1.0)
    assert "at least two classes" in teach_error(capsys, one, a0_model, out)
    broken = tmp_path / "broken"
    cut(clips / "squat" / "a.mp4", broken / "squat" / "a.mp4", 1.0)
    (broken / "jump").mkdir()
    (broken / "jump" / "x.mp4").write_text("not a video\n")
    assert "no readable clip in the class folder 'jump'" in teach_error(
        capsys, broken, a0_model, out)
    short = tmp_path / "short"
    cut(clips / "squat" / "a.mp4", short / "squat" / "a.mp4", 1.0)
    cut(clips / "arm_wrestling" / "a.mp4", short / "wave" / "a.mp4", 0.04)
    assert "shorter than one model step" in teach_error(capsys, short, a0_model, out)
    for model in ("image_classifier.tflite", "bad_image_shape.tflite"):
        teach_error(capsys, short, DATA / model, out)
    assert "already a taught model" in teach_error(capsys, clips, taught, out)
    assert not out.exists()


def _first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, path
    return frame.astype(np.int16)


def test_record_from_a_file_takes_its_next_stretch_each_time_with_no_countdown(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = require_shared("videos", "paragliding.mp4")  # 2.3 s
    clip_dir = tmp_path / "mine"
    for _ in range(2):
        assert main(["teach", str(clip_dir), "--record", "gliding", "--seconds", "1.5",
                     "--source", str(clip)]) == 0
    err = capsys.readouterr().err
    assert "in 3..." not in err and "do it now" not in err
    takes = sorted(p.name for p in (clip_dir / "gliding").iterdir())
    assert takes == ["paragliding@0.00-1.50s.mp4", "paragliding@1.50-2.33s.mp4"]
    second = _first_frame(clip_dir / "gliding" / takes[1])
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_MSEC, 1500)
    ok, at_1_5 = cap.read()
    cap.release()
    assert ok
    # the second take starts 1.5 s in, not at the file's first picture again
    assert np.abs(second - at_1_5.astype(np.int16)).mean() < 8
    assert np.abs(second - _first_frame(clip_dir / "gliding" / takes[0])).mean() > 8
    assert main(["teach", str(clip_dir), "--record", "gliding", "--source", str(clip)]) == 2
    assert "every stretch of paragliding.mp4 is taken already" in capsys.readouterr().err


def test_record_writes_clips_teach_can_read(tmp_path: Path, a0_model: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    clip_dir = tmp_path / "mine"
    for name, label in (("squat.mp4", "bending"), ("arm_wrestling.mp4", "pushing")):
        for _ in range(2):
            assert main(["teach", str(clip_dir), "--record", label, "--seconds", "1.5",
                         "--source", str(require_shared("videos", name))]) == 0
    err = capsys.readouterr().err
    assert "recording 'bending' from squat.mp4, 1.5 s to 3.0 s" in err
    assert "2 clips of 'pushing' now" in err
    clips = sorted(clip_dir.rglob("*.mp4"))
    assert len(clips) == 4
    cap = cv2.VideoCapture(str(clips[0]))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert 20 <= frames <= 23  # 1.5 s at 15 fps
    out = tmp_path / "mine.tflite"
    assert main(["teach", str(clip_dir), "--model-path", str(a0_model), "-o", str(out)]) == 0
    assert read_taught(out).labels == ("bending", "pushing")  # type: ignore[union-attr]
    assert main(["teach", str(clip_dir)]) == 2
    assert "-o FILE" in capsys.readouterr().err
