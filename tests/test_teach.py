"""``movinet-pi teach``: a taught model from a few seconds of the shared clips, its file
round trip (info, eval, a run, a stock runtime), the head's numbers, and bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_shared

from movinet_pi import MovinetPiError
from movinet_pi.cli import main
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.runtime import load_interpreter
from movinet_pi.model.signature import read_signature
from movinet_pi.model.taught import (
    TaughtHead,
    cross_validate,
    example_weights,
    fit,
    read_taught,
    write_taught_model,
)
from movinet_pi.tools.teach import TeachResult, format_summary

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


#: (start, seconds) of the two clips a class is taught from: the first 3.2 s of each shared
#: clip; what comes after is held back (carving_ice.mp4 is 4.4 s long, the others 10 s or more)
TAUGHT_FROM = ((0.0, 2.4), (1.2, 2.0))
#: (start, seconds) of the held-back clips: never a frame the teaching saw
HELD_BACK = ((3.2, 1.2), (6.0, 2.4))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clips per class, from the first 3.2 s of each shared clip."""
    root = tmp_path_factory.mktemp("teach") / "clips"
    for name in CLASSES:
        src = require_shared("videos", f"{name}.mp4")
        for part, (start, seconds) in zip("ab", TAUGHT_FROM):
            cut(src, root / name / f"{part}.mp4", seconds, start=start)
    return root


@pytest.fixture(scope="module")
def held_back(clips: Path) -> Path:
    """Clips of the same classes from after what was taught (as far as each source goes)."""
    assert min(start for start, _ in HELD_BACK) >= max(s + d for s, d in TAUGHT_FROM)
    root = clips.parent / "held_back"
    for name in CLASSES:
        src = require_shared("videos", f"{name}.mp4")
        for i, (start, seconds) in enumerate(HELD_BACK):
            clip = cut(src, root / name / f"{i}.mp4", seconds, start=start)
            cap = cv2.VideoCapture(str(clip))
            frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            cap.release()
            if frames < 6:
                clip.unlink()  # the source ended before it
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


def test_eval_scores_it(taught: Path, held_back: Path, capsys: pytest.CaptureFixture) -> None:
    """On held-back clips: the same scenes, later in each clip, never seen by the teaching."""
    assert main(["eval", str(held_back), "--model-path", str(taught), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_classes"] == 3 and report["clips"] == 5  # carving ice: one, 1.2 s
    assert report["top1"] >= 4 / 5


def test_a_run_shows_the_taught_labels(taught: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    clip = cut(require_shared("videos", "squat.mp4"), tmp_path / "squat.mp4", 3.0, start=6.0)
    assert main(["--model-path", str(taught), "--source", str(clip), "--headless",
                 "--json", "--threads", "2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    labels = {p["label"] for line in lines for p in line["top"]}
    assert labels and labels <= {"carving ice", "arm wrestling", "squat"}
    assert lines[-1]["top"][0]["label"] == "squat"


def test_a_two_class_model_runs_with_the_default_flags(clips: Path, a0_model: Path,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """Fewer classes than the default --top-k: the run shows them all (as `teach` says to
    run it), and only a --top-k asked for beyond them is refused."""
    two = tmp_path / "two"
    two.mkdir()
    for name in ("arm_wrestling", "squat"):
        (two / name).symlink_to(clips / name, target_is_directory=True)
    out = tmp_path / "two.tflite"
    assert main(["teach", str(two), "--model-path", str(a0_model), "-o", str(out)]) == 0
    clip = clips / "squat" / "a.mp4"
    capsys.readouterr()
    assert main(["--model-path", str(out), "--source", str(clip), "--headless", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines and lines[-1]["top"][0]["label"] == "squat"
    assert main(["--model-path", str(out), "--source", str(clip), "--headless",
                 "--top-k", "3"]) == 2
    assert "--top-k 3 is more than the model's 2 classes" in capsys.readouterr().err


def test_a_taught_heads_answer_has_no_grid_to_hold_on(taught: Path) -> None:
    # its scores are floats of its own: the shown list keeps only exact ties
    assert StreamingClassifier.from_file(taught, threads=1).logit_step == 0.0


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


def test_every_class_and_every_clip_in_a_class_weigh_the_same() -> None:
    y = np.array([0] * 10 + [0] * 2 + [1] * 5)
    clip = np.array([0] * 10 + [1] * 2 + [2] * 5)
    w = example_weights(y, clip)
    assert np.isclose(w.sum(), 1.0)
    assert np.allclose([w[clip == c].sum() for c in range(3)], [0.25, 0.25, 0.5])
    assert np.allclose(example_weights(y), np.where(y == 0, 0.5 / 12, 0.5 / 5))  # one clip


@pytest.mark.parametrize("kind", ["logistic", "prototypes"])
def test_a_longer_clip_of_the_same_does_not_change_the_head(kind: str) -> None:
    """A long clip does not outvote a short one: a clip five times over (a clip five times
    as long, showing the same) teaches the same head."""
    x, y, clip = blobs()
    x[clip == 0] += 2.0  # (a clip unlike its class's others, so that its weight shows)
    longer = np.concatenate([np.arange(len(y))] + [np.flatnonzero(clip == 0)] * 4)
    labels = ["a", "b", "c"]
    one, five = fit(kind, x, y, labels, clip), fit(kind, x[longer], y[longer], labels,
                                                   clip[longer])
    for name in ("weights", "bias", "mean", "std"):
        assert np.allclose(getattr(one, name), getattr(five, name), atol=1e-4), name
    # (weighted by class only, the longer clip would move the head)
    by_class = fit(kind, x[longer], y[longer], labels)
    assert not np.allclose(by_class.weights, fit(kind, x, y, labels).weights, atol=1e-3)


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


def test_the_reject_threshold_keeps_95_percent_of_right_answers_and_never_nears_certainty(
) -> None:
    from movinet_pi.model.taught import reject_threshold

    y = np.repeat([0, 1], 50)
    best = np.linspace(0.5, 1.0, 100)
    pred = y.copy()
    pred[::10] = 1 - y[::10]  # wrong answers do not count
    right = best[pred == y]
    assert reject_threshold(pred, best, y) == pytest.approx(np.percentile(right, 5))
    # held-out answers all near-certain (clips much alike): a threshold at 0.9997 would
    # reject the taught actions themselves at the least change, so it stops at 0.99
    saturated = np.full(100, 0.9997)
    assert reject_threshold(y, saturated, y) == 0.99
    assert reject_threshold(1 - y, best, y) == 0.0  # no right answer: nothing rejected


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
    device = tmp_path / "device"  # as /dev/null is: --force must not replace it with a model
    os.mkfifo(device)
    assert f"{device} is not a regular file: give -o a file name" in teach_error(
        capsys, clips, a0_model, device, "--force")
    assert stat.S_ISFIFO(device.stat().st_mode)
    one = tmp_path / "one"
    cut(clips / "squat" / "a.mp4", one / "squat" / "a.mp4", 1.0)
    assert "at least two classes" in teach_error(capsys, one, a0_model, out)
    broken = tmp_path / "broken"
    cut(clips / "squat" / "a.mp4", broken / "squat" / "a.mp4", 1.0)
    (broken / "jump").mkdir()
    (broken / "jump" / "x.mp4").write_text("not a video\n")
    assert "no usable clip for the class 'jump'" in teach_error(capsys, broken, a0_model, out)
    short = tmp_path / "short"
    cut(clips / "squat" / "a.mp4", short / "squat" / "a.mp4", 1.0)
    cut(clips / "arm_wrestling" / "a.mp4", short / "wave" / "a.mp4", 0.04)
    assert "no usable clip for the class 'wave'" in teach_error(capsys, short, a0_model, out)
    for model in ("image_classifier.tflite", "bad_image_shape.tflite"):
        teach_error(capsys, short, DATA / model, out)
    assert "already a taught model" in teach_error(capsys, clips, taught, out)
    assert not out.exists()
    # a file that could not be written is refused before any teaching (nothing is read)
    nowhere = tmp_path / "no-such-folder" / "out.tflite"
    assert "is not a folder: make it first" in teach_error(capsys, clips, a0_model, nowhere)
    assert "is a folder: give -o a file name" in teach_error(capsys, clips, a0_model, tmp_path)
    assert not nowhere.parent.exists()
    # a folder that takes no file (even for root): said before teaching, not as an
    # "unexpected error" after it
    assert "cannot write in /proc" in teach_error(capsys, clips, a0_model, Path("/proc/x.tflite"))


def test_record_is_refused_flags_of_teaching_and_a_folder_it_cannot_make(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = str(require_shared("videos", "paragliding.mp4"))
    for extra in (["-o", str(tmp_path / "x.tflite")], ["--reject"]):
        assert main(["teach", str(tmp_path / "mine"), "--record", "gliding", "--source", clip,
                     *extra]) == 2
        assert "is for teaching; --record LABEL only records" in capsys.readouterr().err
    assert not (tmp_path / "mine").exists() and not (tmp_path / "x.tflite").exists()
    assert main(["teach", "/proc/mine", "--record", "gliding", "--source", clip]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot make /proc/mine/gliding" in err[0]


@pytest.mark.parametrize("flag", [["--seconds", "4"], ["--countdown", "0"], ["--source", "x.mp4"]])
def test_flags_of_recording_are_refused_when_teaching(
    flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "clips" / "waving").mkdir(parents=True)
    out = tmp_path / "mine.tflite"
    assert main(["teach", str(tmp_path / "clips"), "-o", str(out), *flag]) == 2
    assert capsys.readouterr().err.strip() == (
        f"movinet-pi: error: {flag[0]} is for recording: it goes with --record LABEL (or drop "
        f"{flag[0]} to teach)")
    assert not out.exists()


def test_a_clip_too_short_is_skipped_and_named_like_an_unreadable_one(
        clips: Path, a0_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "mixed"
    for name in ("squat", "arm_wrestling"):
        cut(clips / name / "a.mp4", folder / name / "a.mp4", 2.0)
    cut(clips / "squat" / "b.mp4", folder / "squat" / "blink.mp4", 0.04)  # opens, 1 step
    (folder / "arm_wrestling" / "broken.mp4").write_text("not a video\n")
    out = tmp_path / "mixed.tflite"
    assert main(["teach", str(folder), "--model-path", str(a0_model), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning: skipped" in line]
    assert len(warnings) == 2
    assert any("squat/blink.mp4: shorter than one model step" in w for w in warnings)
    assert any("arm_wrestling/broken.mp4" in w for w in warnings)
    assert "skipped 2 clips (unreadable or too short)" in captured.out
    assert read_taught(out).clips == 2  # type: ignore[union-attr]


def test_folders_that_read_as_one_label_are_one_class_and_it_says_so(
        clips: Path, a0_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "folded"
    cut(clips / "squat" / "a.mp4", folder / "jumping_jacks" / "a.mp4", 2.0)
    cut(clips / "squat" / "b.mp4", folder / "Jumping Jacks" / "b.mp4", 2.0)  # as eval reads
    cut(clips / "arm_wrestling" / "a.mp4", folder / "arm wrestling" / "a.mp4", 2.0)
    out = tmp_path / "folded.tflite"
    assert main(["teach", str(folder), "--model-path", str(a0_model), "-o", str(out)]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "one class" in line]
    assert said == ["movinet-pi teach: the folders 'Jumping Jacks' and 'jumping_jacks' are one "
                    "class, 'Jumping Jacks': teaching it from the clips of both"]
    head = read_taught(out)
    assert head is not None and head.labels == ("Jumping Jacks", "arm wrestling")
    assert head.clips == 3  # no folder's clips dropped


def _first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, path
    return frame.astype(np.int16)


def test_record_from_a_file_takes_its_next_stretch_each_time_with_no_countdown(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = require_shared("videos", "carving_ice.mp4")  # 4.43 s
    clip_dir = tmp_path / "mine"
    assert main(["teach", str(clip_dir), "--record", "carving", "--seconds", "2",
                 "--source", str(clip)]) == 0
    assert main(["teach", str(clip_dir), "--record", "carving", "--source", str(clip)]) == 0
    err = capsys.readouterr().err
    assert "in 3..." not in err and "do it now" not in err
    takes = sorted(p.name for p in (clip_dir / "carving").iterdir())
    # (its frames end at 4.37 s, where its header's frame rate says 4.43 s)
    assert takes == ["carving_ice@0.00-2.00s.mp4", "carving_ice@2.00-4.37s.mp4"]
    # the second take asked for 8 s and got what was left: said, not left to be found out
    assert "(2 clips of 'carving' now; 2.4 s, where the file ends)" in err
    assert "where the file ends" not in err.split("2.00-4.37s")[0]  # the whole first take
    second = _first_frame(clip_dir / "carving" / takes[1])
    cap = cv2.VideoCapture(str(clip))
    cap.set(cv2.CAP_PROP_POS_MSEC, 2000)
    ok, at_2 = cap.read()
    cap.release()
    assert ok
    # the second take starts 2 s in, not at the file's first picture again
    assert np.abs(second - at_2.astype(np.int16)).mean() < 8
    assert np.abs(second - _first_frame(clip_dir / "carving" / takes[0])).mean() > 8
    assert main(["teach", str(clip_dir), "--record", "carving", "--source", str(clip)]) == 2
    assert ("the takes from carving_ice.mp4 hold it up to 4.4 s of its 4.4 s, and what is left "
            "is too short to teach from (at least 2 s)") in capsys.readouterr().err


def test_record_refuses_a_stretch_left_too_short_to_teach_from_and_keeps_no_part(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = require_shared("videos", "paragliding.mp4")  # 2.33 s: 0.33 s after a 2 s take
    clip_dir = tmp_path / "mine"
    record = ["teach", str(clip_dir), "--record", "gliding", "--seconds", "2",
              "--source", str(clip)]
    assert main(record) == 0
    capsys.readouterr()
    assert main(record) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("movinet-pi: error: the takes from paragliding.mp4 hold it up to "
                       "2.0 s of its 2.3 s, and what is left is too short to teach from (at "
                       f"least 2 s): record from another file, or move its takes out of {clip_dir}")
    assert [p.name for p in (clip_dir / "gliding").iterdir()] == ["paragliding@0.00-2.00s.mp4"]
    other = ["teach", str(tmp_path / "other"), "--record", "gliding", "--source", str(clip)]
    shorter = tmp_path / "short.mp4"
    cut(clip, shorter, 1.5)
    other[-1] = str(shorter)
    assert main(other) == 2
    assert capsys.readouterr().err.strip().endswith(
        "short.mp4 is 1.5 s long, too short to teach from (at least 2 s): record from a longer "
        "file")
    assert not (tmp_path / "other").exists()  # no empty class folder to stop the next teach


def test_record_refuses_what_is_left_of_a_file_under_two_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    clip = require_shared("videos", "playing_tennis.mp4")  # 5.0 s
    clip_dir = tmp_path / "mine"
    (clip_dir / "hit").mkdir(parents=True)
    (clip_dir / "hit" / "playing_tennis@0.00-3.20s.mp4").write_bytes(b"")  # an earlier take
    assert main(["teach", str(clip_dir), "--record", "hit", "--seconds", "2",
                 "--source", str(clip)]) == 2  # 1.8 s left: under the shortest take
    assert "what is left is too short to teach from (at least 2 s)" in capsys.readouterr().err
    assert [p.name for p in (clip_dir / "hit").iterdir()] == ["playing_tennis@0.00-3.20s.mp4"]


def test_a_recording_that_fails_leaves_no_empty_class_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "rec" / "wave").mkdir(parents=True)  # a class folder there already stays
    for label in ("clap", "wave"):
        assert main(["teach", str(tmp_path / "rec"), "--record", label, "--source",
                     str(tmp_path / "none.mp4")]) == 2
        assert "error: no such file: " in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "rec").iterdir()] == ["wave"]
    assert main(["teach", str(tmp_path / "new" / "clips"), "--record", "clap", "--source",
                 str(tmp_path / "none.mp4")]) == 2
    assert not (tmp_path / "new").exists()


def test_record_takes_last_at_least_two_seconds(capsys: pytest.CaptureFixture,
                                                 tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["teach", str(tmp_path), "--record", "wave", "--seconds", "1.5"])
    assert exit_.value.code == 2
    assert "--seconds: must be 2 or more (teach leaves out each clip's first second), " \
           "got 1.5" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_record_writes_clips_teach_can_read(tmp_path: Path, a0_model: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    clip_dir = tmp_path / "mine"
    for name, label in (("squat.mp4", "bending"), ("arm_wrestling.mp4", "pushing")):
        for _ in range(2):
            assert main(["teach", str(clip_dir), "--record", label, "--seconds", "2",
                         "--source", str(require_shared("videos", name))]) == 0
    err = capsys.readouterr().err
    assert "recording 'bending' from squat.mp4, 2.0 s to 4.0 s" in err
    assert "2 clips of 'pushing' now" in err
    clips = sorted(clip_dir.rglob("*.mp4"))
    assert len(clips) == 4
    cap = cv2.VideoCapture(str(clips[0]))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert 28 <= frames <= 31  # 2 s at 15 fps
    out = tmp_path / "mine.tflite"
    assert main(["teach", str(clip_dir), "--model-path", str(a0_model), "-o", str(out)]) == 0
    assert read_taught(out).labels == ("bending", "pushing")  # type: ignore[union-attr]
    assert main(["teach", str(clip_dir)]) == 2
    assert "-o FILE" in capsys.readouterr().err


def test_the_summary_warns_of_classes_recognised_less_often_than_chance(
    taught: Path
) -> None:
    """A taught model is written whatever its scores, but a class the held-out clips find
    less often than chance (1 / classes) is named, with what to do."""
    head = read_taught(taught)
    assert head is not None and len(head.labels) == 3  # chance: 0.33
    scores = {kind: [0.38, 0.11, 0.9] for kind in ("logistic", "prototypes")}
    weak = TeachResult(head, scores, [2, 2, 2], [12, 12, 12], "by clip", 1.0, [])
    text = format_summary(weak, taught)
    assert (f"warning: {head.labels[1]!r} 0.11: recognised less often than chance (0.33) "
            "on clips the fit did not see") in text
    good = TeachResult(head, {kind: [0.38, 0.5, 0.9] for kind in scores}, [2, 2, 2],
                       [12, 12, 12], "by clip", 1.0, [])
    assert "warning" not in format_summary(good, taught)


def test_ctrl_c_while_teaching_says_so_and_leaves_no_model(
    clips: Path, a0_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from movinet_pi.tools import teach as teach_module

    real = teach_module.clip_features
    read: list[Path] = []

    def interrupted_at_the_second_clip(clf: StreamingClassifier, path: Path) -> np.ndarray:
        read.append(path)
        if len(read) == 2:
            raise KeyboardInterrupt
        return real(clf, path)

    monkeypatch.setattr(teach_module, "clip_features", interrupted_at_the_second_clip)
    out = tmp_path / "mine.tflite"
    assert main(["teach", str(clips), "--model-path", str(a0_model), "-o", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "movinet-pi: teach: stopped (Ctrl-C); nothing was left half-written")
    assert len(read) == 2
    assert list(tmp_path.iterdir()) == []  # no model, no part of one


# -- the head's fitting, on synthetic features -------------------------------------------------
def test_a_best_score_exactly_at_the_reject_threshold_is_answered() -> None:
    x, y, _ = blobs()
    head = fit("logistic", x, y, ["a", "b", "c"])
    best = float(np.max(head.probs(x[0])))
    head.reject, head.threshold = True, best
    assert np.max(head.probs(x[0])) == pytest.approx(best)  # not below it: not "other"


def test_cross_validation_never_scores_a_clip_it_was_fitted_on() -> None:
    # Every clip a point of its own, the classes dealt to the clips at random: only a fold
    # that had seen a clip could tell its class (examples of one clip are near copies).
    rng = np.random.default_rng(1)
    clip = np.repeat(np.arange(12), 10)
    y = np.repeat(rng.permutation(np.repeat(np.arange(3), 4)), 10)
    x = (rng.normal(0, 3, (12, 16))[clip] + rng.normal(0, 0.05, (120, 16))).astype(np.float32)
    for kind in ("logistic", "prototypes"):
        pred, _ = cross_validate(kind, x, y, clip, ["a", "b", "c"])
        assert np.mean(pred == y) < 0.7, kind


def test_prototype_scores_are_cosines_whatever_the_features_scale() -> None:
    from movinet_pi.model.taught import PROTOTYPE_SCALE

    x, y, _ = blobs()
    head = fit("prototypes", x, y, ["a", "b", "c"])
    far = head.mean + 3.0 * (x - head.mean)  # the same directions, three times as far
    np.testing.assert_allclose(head.scores(far), head.scores(x), atol=1e-4)
    assert np.abs(head.scores(x)).max() <= PROTOTYPE_SCALE + 1e-4


def test_a_clips_first_second_is_no_example() -> None:
    from movinet_pi.tools.teach import examples_of

    assert examples_of(np.arange(12.0)[:, None])[0, 0] == 5.0  # from 1 s in, at 5 steps a second
    assert examples_of(np.arange(6.0)[:, None])[0, 0] == 3.0  # a short clip: at most half of it


def test_teaching_keeps_the_better_kind_of_head_with_its_own_threshold() -> None:
    # Three classes in a row along one feature: cosine prototypes cannot place the middle one.
    from movinet_pi.model.taught import fold_groups, reject_threshold
    from movinet_pi.tools.teach import fit_best

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    clip = np.repeat(np.arange(12), 10)
    x = rng.normal(0, 0.3, (120, 4))
    x[:, 0] += (y - 1) * 3.0
    x = x.astype(np.float32)
    labels = ["a", "b", "c"]
    head, scores, _ = fit_best(x, y, clip, labels)
    assert np.mean(scores["logistic"]) > np.mean(scores["prototypes"])  # (made so)
    assert head.kind == "logistic"
    pred, best = cross_validate(head.kind, x, y, fold_groups(y, clip)[0], labels)
    assert head.threshold == reject_threshold(pred, best, y)  # the kept kind's held-out answers
    np.testing.assert_array_equal(head.weights, fit(head.kind, x, y, labels, clip).weights)


def test_a_class_recognised_less_often_than_chance_is_warned(tmp_path: Path) -> None:
    x, y, _ = blobs()
    head = fit("logistic", x, y, ["a", "b", "c"])
    out = tmp_path / "m.tflite"
    out.write_bytes(b"x")
    scores = {k: [0.9, 0.30, 0.9] for k in ("logistic", "prototypes")}
    text = format_summary(TeachResult(head, scores, [2, 2, 2], [9, 9, 9], "by clip", 1.0, []),
                          out)
    assert "warning: 'b' 0.30: recognised less often than chance (0.33)" in text


def test_each_clip_is_read_from_fresh_states(a0_model: Path, carving_ice: Path) -> None:
    from movinet_pi.tools.teach import clip_features, load_base

    clf = load_base(a0_model, threads=2)
    first = clip_features(clf, carving_ice)
    np.testing.assert_array_equal(clip_features(clf, carving_ice), first)
