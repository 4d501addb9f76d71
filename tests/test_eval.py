"""``movinet-pi eval``: accuracy over a folder of labelled clips.

The tiny hand-weighted models in tests/data classify synthetic clips (a coloured square,
still or bouncing) with certainty, so every number here is known in advance; the clips are
written into tmp_path at test time. The real Kinetics-600 A0 runs on the shared clips.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import require_shared
from make_test_models import write_clip

from movinet_pi import MovinetPiError
from movinet_pi.model.labels import Labels
from movinet_pi.tools.clip_folders import match_label, normalise_label
from movinet_pi.tools.eval import evaluate, run_eval

DATA = Path(__file__).resolve().parent / "data"
RGB = DATA / "tiny_rgb_stream.tflite"
RGB_F16 = DATA / "tiny_rgb_stream_f16.tflite"
RGB_LABELS = DATA / "tiny_rgb_labels.txt"
MOTION_CALL = DATA / "tiny_motion_call.tflite"  # signature key `call`, labels inside
MOTION_224 = DATA / "tiny_motion_224.tflite"
MOTION_LABELS = DATA / "tiny_motion_labels.txt"


def make_clips(root: Path, spec: dict[str, list[tuple[str, bool]]]) -> Path:
    """``{folder: [(colour, moving), ...]}`` -> root/folder/clipN.mp4."""
    for folder, clips in spec.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, (colour, moving) in enumerate(clips):
            write_clip(root / folder / f"clip{i}.mp4", colour, moving)
    return root


def run_json(clip_dir: Path, models: list[Path], labels: Path | None = None,
             **kwargs: object) -> list[dict]:
    out = io.StringIO()
    assert run_eval(clip_dir, models, labels, as_json=True, out=out, progress=False,
                    err=io.StringIO(), **kwargs) == 0  # type: ignore[arg-type]
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def colour_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two still clips per colour; folder names in mixed case (they still match)."""
    root = tmp_path_factory.mktemp("colour")
    return make_clips(root, {"red": [("red", False)] * 2, "Green": [("green", False)] * 2,
                             "BLUE": [("blue", False)] * 2})


@pytest.fixture(scope="module")
def motion_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clip per colour x motion; folder names with '_' for the labels' spaces."""
    root = tmp_path_factory.mktemp("motion")
    return make_clips(root, {
        f"{colour}_{'moving' if moving else 'still'}": [(colour, moving)]
        for colour in ("red", "green", "blue") for moving in (False, True)
    })


# --- the tiny models: numbers known in advance -------------------------------------------------


def test_colour_model_and_its_float16_copy_are_perfect(colour_clips: Path) -> None:
    reports = run_json(colour_clips, [RGB, RGB_F16], RGB_LABELS)
    assert [r["model"] for r in reports] == ["tiny_rgb_stream", "tiny_rgb_stream_f16"]
    for r in reports:
        assert r["clips"] == 6 and r["skipped"] == 0
        assert r["top1"] == 1.0 and r["top5"] == 1.0 and r["top5_k"] == 3
        assert r["steps"] == 6 * 10  # 2 s clips at 5 fps, every clip from a fresh state
        assert r["ms_per_step"] > 0
        assert r["per_class"] == {
            label: {"folder": folder, "clips": 2, "recall": 1.0, "top5": 1.0}
            for label, folder in (("red", "red"), ("green", "Green"), ("blue", "BLUE"))
        }
        assert r["confusion"] == {"rows": ["red", "green", "blue"],
                                  "columns": ["red", "green", "blue"],
                                  "matrix": [[2, 0, 0], [0, 2, 0], [0, 0, 2]]}
        assert r["misclassified"] == []


def test_call_signature_six_classes_labels_inside_the_model(motion_clips: Path) -> None:
    (report,) = run_json(motion_clips, [MOTION_CALL])  # no --labels: they are in the model
    assert report["signature"] == "call"
    assert report["input_size"] == [172, 172]
    assert report["num_classes"] == 6 and report["clips"] == 6
    assert report["top1"] == 1.0
    assert report["labels"].endswith("tiny_motion_call.tflite:labels.txt")
    assert list(report["per_class"]) == MOTION_LABELS.read_text().split("\n")[:6]


def test_models_of_different_input_sizes_side_by_side(motion_clips: Path) -> None:
    out = io.StringIO()
    run_eval(motion_clips, [MOTION_CALL, MOTION_224], MOTION_LABELS, out=out, progress=False,
             err=io.StringIO())
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "tiny_motion_call" in line)
    assert header.split() == ["tiny_motion_call", "tiny_motion_224"]
    rows = {line.split("  ")[0]: line.split()[-2:] for line in text.splitlines()
            if line and not line.startswith(" ")}
    assert rows["input"] == ["172x172", "224x224"]
    assert text.count("100.0 %") == 2 * (2 + 6)  # top-1, top-5 and 6 recalls, twice
    assert "confusion, tiny_motion_call" in text and "confusion, tiny_motion_224" in text
    assert "  red moving (1)" in text


def test_a_known_confusion(tmp_path: Path) -> None:
    """A blue clip filed under red: top-1 4/5, red recall 2/3, and the mistake lands in
    the `(other)` column since blue has no folder of its own."""
    clips = make_clips(tmp_path / "clips", {"red": [("red", False), ("red", True),
                                                     ("blue", False)],
                                            "green": [("green", False), ("green", True)]})
    (r,) = run_json(clips, [RGB], RGB_LABELS)
    assert r["clips"] == 5
    assert r["top1"] == pytest.approx(4 / 5)
    assert r["top5"] == 1.0  # 3 classes: the top-3 always holds the truth
    assert r["per_class"]["red"]["recall"] == pytest.approx(2 / 3)
    assert r["per_class"]["green"]["recall"] == 1.0
    assert r["confusion"] == {"rows": ["red", "green"], "columns": ["red", "green", "(other)"],
                              "matrix": [[2, 0, 1], [0, 2, 0]]}
    (mistake,) = r["misclassified"]
    assert mistake["clip"] == "red/clip2.mp4"
    assert (mistake["true"], mistake["predicted"]) == ("red", "blue")
    assert mistake["score"] > 0.9


def test_json_lines_one_object_per_model(colour_clips: Path) -> None:
    reports = run_json(colour_clips, [RGB, RGB_F16, RGB], RGB_LABELS)
    assert len(reports) == 3
    assert [r["model"] for r in reports] == ["tiny_rgb_stream#1", "tiny_rgb_stream_f16",
                                             "tiny_rgb_stream#2"]
    for r in reports:
        assert {"top1", "top5", "per_class", "ms_per_step", "clips", "confusion"} <= r.keys()
        assert 0.0 <= r["top1"] <= 1.0 and 0.0 <= r["top5"] <= 1.0


def test_plot_is_a_png_with_a_panel_per_model(colour_clips: Path, tmp_path: Path) -> None:
    plot = tmp_path / "confusion.png"
    out = io.StringIO()
    run_eval(colour_clips, [RGB, RGB_F16], RGB_LABELS, plot=plot, out=out, progress=False,
             err=io.StringIO())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(plot))
    assert image is not None and image.shape[1] > image.shape[0]  # two panels side by side
    dark = (image.sum(axis=2) < 300).mean()
    assert dark > 0.05  # the filled diagonal cells
    assert f"confusion plot: {plot}" in out.getvalue()


def test_progress_bar_only_on_a_terminal(colour_clips: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    evaluate(colour_clips, [RGB], RGB_LABELS, progress=True, err=tty)
    evaluate(colour_clips, [RGB], RGB_LABELS, progress=True, err=pipe)
    assert "6/6 clips" in tty.getvalue() and "\r" in tty.getvalue()
    assert pipe.getvalue() == ""


# --- bad input: one line, the right exit code --------------------------------------------------


def error_of(clip_dir: Path, models: list[Path], labels: Path | None = RGB_LABELS,
             **kwargs: object) -> MovinetPiError:
    with pytest.raises(MovinetPiError) as info:
        run_eval(clip_dir, models, labels, out=io.StringIO(), progress=False,
                 err=io.StringIO(), **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    return info.value


def test_unknown_folder_names_the_closest_label(tmp_path: Path) -> None:
    clips = make_clips(tmp_path, {"red": [("red", False)], "gren": [("green", False)]})
    e = error_of(clips, [RGB])
    assert e.exit_code == 2
    assert "'gren'" in str(e) and "closest: 'green'" in str(e)


def test_two_folders_of_one_label_are_one_class_scored_on_both(tmp_path: Path) -> None:
    """As `teach` reads the same folders (case, '_' and spaces do not matter)."""
    clips = make_clips(tmp_path, {"red": [("red", False)], "Red": [("red", False)]})
    err = io.StringIO()
    (r,) = [json.loads(x) for x in _json_out(clips, [RGB], RGB_LABELS, err).splitlines()]
    assert list(r["per_class"]) == ["red"] and r["clips"] == 2
    assert "the folders 'Red' and 'red' are one class, 'red'" in err.getvalue()


@pytest.mark.parametrize("layout", ["missing", "file", "empty", "loose clips", "no clips"])
def test_bad_folders(tmp_path: Path, layout: str) -> None:
    clip_dir = tmp_path / "clips"
    if layout == "file":
        clip_dir.write_text("not a folder")
    elif layout == "empty":
        clip_dir.mkdir()
    elif layout == "loose clips":
        write_clip(clip_dir / "a.mp4", "red")
    elif layout == "no clips":
        (clip_dir / "red").mkdir(parents=True)
        (clip_dir / "red" / "notes.txt").write_text("no video here")
    e = error_of(clip_dir, [RGB])
    assert e.exit_code == 2
    expected = {"missing": "not found", "file": "not a folder", "empty": "no class folders",
                "loose clips": "holds 1 clip but no class folders",
                "no clips": "no video clips"}[layout]
    assert expected in str(e)


def test_folder_without_clips_is_left_out_with_a_warning(tmp_path: Path) -> None:
    clips = make_clips(tmp_path, {"red": [("red", False)]})
    (clips / "green").mkdir()
    err = io.StringIO()
    (r,) = [json.loads(x) for x in _json_out(clips, [RGB], RGB_LABELS, err).splitlines()]
    assert list(r["per_class"]) == ["red"]
    assert "no clips in" in err.getvalue() and "green" in err.getvalue()


def _json_out(clip_dir: Path, models: list[Path], labels: Path, err: io.StringIO) -> str:
    out = io.StringIO()
    run_eval(clip_dir, models, labels, as_json=True, out=out, progress=False, err=err)
    return out.getvalue()


def test_unreadable_clips_are_skipped_then_fatal_if_all(tmp_path: Path) -> None:
    clips = make_clips(tmp_path / "clips", {"red": [("red", False)]})
    (clips / "red" / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    err = io.StringIO()
    (r,) = [json.loads(x) for x in _json_out(clips, [RGB], RGB_LABELS, err).splitlines()]
    assert r["clips"] == 1 and r["skipped"] == 1 and r["top1"] == 1.0
    assert r["skipped_clips"][0]["clip"] == "red/broken.mp4"
    assert "warning: skipped red/broken.mp4" in err.getvalue()

    (clips / "red" / "clip0.mp4").unlink()
    e = error_of(clips, [RGB])
    assert e.exit_code == 1 and "the one clip in" in str(e) and "could not be read" in str(e)


def test_label_count_mismatch(colour_clips: Path) -> None:
    e = error_of(colour_clips, [RGB], MOTION_LABELS)
    assert e.exit_code == 2 and "6 labels but the model has 3 classes" in str(e)


def test_model_without_labels(colour_clips: Path) -> None:
    e = error_of(colour_clips, [RGB], None)
    assert e.exit_code == 2 and "pass its label file with --labels" in str(e)


@pytest.mark.parametrize("model", ["image_classifier.tflite", "bad_image_shape.tflite"])
def test_not_a_streaming_model(colour_clips: Path, model: str) -> None:
    e = error_of(colour_clips, [DATA / model])
    assert e.exit_code == 2 and "not a streaming" in str(e)


def test_bad_plot_path_is_refused_before_any_clip(colour_clips: Path, tmp_path: Path) -> None:
    e = error_of(colour_clips, [RGB], plot=tmp_path / "plot.nothing")
    assert e.exit_code == 2 and "use a .png" in str(e)
    e = error_of(colour_clips, [RGB], plot=tmp_path / "missing" / "plot.png")
    assert e.exit_code == 2 and "does not exist" in str(e)


# --- folder names -> labels --------------------------------------------------------------------


def test_matching_rules() -> None:
    labels = Labels(("arm wrestling", "Carving_Ice", "tai chi", "tai_chi"), "test")
    assert normalise_label("  Arm__Wrestling ") == "arm wrestling"
    assert match_label("arm wrestling", labels) == 0
    assert match_label("ARM_WRESTLING", labels) == 0
    assert match_label("carving ice", labels) == 1
    assert match_label("tai_chi", labels) == 3  # an exact name wins
    with pytest.raises(MovinetPiError, match="matches several labels"):
        match_label("Tai Chi", labels)
    with pytest.raises(MovinetPiError, match="closest: 'arm wrestling'"):
        match_label("arm-wrestling", labels)


# --- the real Kinetics-600 model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def kinetics_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared clips, linked into folders named the way datasets name them."""
    root = tmp_path_factory.mktemp("kinetics")
    for folder, video in (("carving_ice", "carving_ice.mp4"),
                          ("Arm Wrestling", "arm_wrestling.mp4")):
        (root / folder).mkdir()
        os.symlink(require_shared("videos", video), root / folder / video)
    return root


def test_kinetics_a0_gets_both_shared_clips_right(
    kinetics_clips: Path, a0_model: Path, kinetics_labels_path: Path
) -> None:
    (r,) = run_json(kinetics_clips, [a0_model], kinetics_labels_path)
    assert r["clips"] == 2 and r["num_classes"] == 600
    assert r["top1"] == 1.0
    assert r["per_class"]["carving ice"]["recall"] == 1.0
    assert r["per_class"]["arm wrestling"]["recall"] == 1.0
    assert r["confusion"]["columns"] == ["arm wrestling", "carving ice", "(other)"]
    assert r["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0]]
    assert r["steps"] == 22 + 50  # 4.4 s and 10 s at 5 fps


def test_kinetics_models_of_172_and_224_side_by_side(
    kinetics_clips: Path, a0_model: Path, a2_model: Path, kinetics_labels_path: Path,
    tmp_path: Path,
) -> None:
    plot = tmp_path / "plot.png"
    a0, a2 = run_json(kinetics_clips, [a0_model, a2_model], kinetics_labels_path, plot=plot)
    assert a0["input_size"] == [172, 172] and a2["input_size"] == [224, 224]
    assert a0["top1"] == 1.0
    assert a2["clips"] == 2 and a2["steps"] == a0["steps"]  # untrained: accuracy meaningless
    assert np.asarray(a2["confusion"]["matrix"]).sum() == 2
    assert cv2.imread(str(plot)) is not None


def test_no_answer_is_counted_as_none_not_as_the_first_class() -> None:
    # A taught model with --reject gives every class 0 when it is unsure: that clip is
    # answered "none" (wrong, in the last column), never its class 0.
    from types import SimpleNamespace

    from movinet_pi.tools.eval import ClassInfo, ClipResult, ModelRun

    labels = Labels(("waving", "clapping"), "test")
    clf = SimpleNamespace(labels=labels, model_path="m.tflite", num_classes=2,
                          signature=SimpleNamespace(key="serving_default"), input_size=(64, 64))
    run = ModelRun("m", clf)  # type: ignore[arg-type]
    run.results = [ClipResult("waving/a.mp4", 0, [0, 1], 0.9),
                   ClipResult("waving/b.mp4", 0, [], 0.0),
                   ClipResult("clapping/c.mp4", 1, [1, 0], 0.8)]
    classes = [ClassInfo("waving", "waving", (Path("a"), Path("b")), (0,)),
               ClassInfo("clapping", "clapping", (Path("c"),), (1,))]
    report = run.report(classes, 0, [])
    assert report["top1"] == pytest.approx(2 / 3)
    assert report["confusion"]["matrix"] == [[1, 0, 1], [0, 1, 0]]
    assert {"clip": "waving/b.mp4", "true": "waving", "predicted": "none",
            "score": 0.0} in report["misclassified"]


def test_each_clip_is_scored_from_fresh_states(colour_clips: Path) -> None:
    from movinet_pi.model.labels import load_labels
    from movinet_pi.tools.eval import ModelRun, load_model, stream_clip

    run = ModelRun("m", load_model(RGB, load_labels(RGB_LABELS), 1))
    blue = next((colour_clips / "BLUE").glob("*.mp4"))
    alone = stream_clip(blue, [run])[0]
    stream_clip(next((colour_clips / "red").glob("*.mp4")), [run])
    np.testing.assert_array_equal(stream_clip(blue, [run])[0], alone)


def test_a_model_that_answers_nothing_scores_no_clip(
        colour_clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (a --reject model's "other": every probability zero) is no class, right for none
    from movinet_pi.model.classifier import StreamingClassifier

    monkeypatch.setattr(StreamingClassifier, "probabilities",
                        lambda self: np.zeros(self.num_classes, np.float32))
    (r,) = evaluate(colour_clips, [RGB], RGB_LABELS, threads=1)
    assert r["top1"] == 0.0
    assert {m["predicted"] for m in r["misclassified"]} == {"none"}


def _report_of_four_clips() -> dict:
    """Three clips of waving (right first, second, third) and one of clapping (right first)."""
    from types import SimpleNamespace

    from movinet_pi.tools.eval import ClassInfo, ClipResult, ModelRun

    labels = Labels(("waving", "clapping", "jumping"), "test")
    clf = SimpleNamespace(labels=labels, model_path="m.tflite", num_classes=3,
                          signature=SimpleNamespace(key="serving_default"), input_size=(64, 64))
    run = ModelRun("m", clf)  # type: ignore[arg-type]
    run.results = [ClipResult("waving/a.mp4", 0, [0, 1, 2], 0.9),
                   ClipResult("waving/b.mp4", 0, [1, 0, 2], 0.6),
                   ClipResult("waving/c.mp4", 0, [2, 1, 0], 0.5),
                   ClipResult("clapping/d.mp4", 1, [1, 0, 2], 0.8)]
    classes = [ClassInfo("waving", "waving", (Path("a"),), (0,)),
               ClassInfo("clapping", "clapping", (Path("d"),), (1,))]
    return run.report(classes, 0, [])


def test_top1_counts_the_first_answer_only_and_recall_is_per_class() -> None:
    report = _report_of_four_clips()
    assert report["top1"] == pytest.approx(2 / 4) and report["top5"] == 1.0
    assert report["per_class"]["waving"]["recall"] == pytest.approx(1 / 3)


def test_the_table_shows_each_classs_recall() -> None:
    from movinet_pi.tools.eval_report import format_report

    text = format_report([_report_of_four_clips()], Path("clips"))
    (row,) = [line for line in text.splitlines() if line.startswith("  waving (3)")]
    assert row.split()[-2:] == ["33.3", "%"]


def test_one_catalogue_model_given_twice_gets_two_names(a0_model: Path) -> None:
    from movinet_pi.model.classifier import StreamingClassifier
    from movinet_pi.tools.eval import model_names

    clf = StreamingClassifier.from_file(a0_model, Labels(tuple(f"c{i}" for i in range(600)),
                                                         "test"), threads=1)
    assert len(set(model_names([a0_model, a0_model], [clf, clf]))) == 2
    assert model_names([a0_model], [clf]) == ["MoViNet-A0 stream int8"]


def test_the_list_of_mistakes_says_how_many_more_only_when_there_are_more() -> None:
    from movinet_pi.tools.eval_report import MAX_LISTED_MISTAKES, format_report

    report = _report_of_four_clips()
    mistake = report["misclassified"][0]
    for extra in (0, 1):
        report["misclassified"] = [mistake] * (MAX_LISTED_MISTAKES + extra)
        text = format_report([report], Path("clips"))
        assert ("... and 1 more" in text) == bool(extra) and "and 0 more" not in text
