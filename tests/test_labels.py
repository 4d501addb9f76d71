"""Label files as users write them, and labels carried inside a model."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from movinet_pi import MovinetPiError
from movinet_pi.cli import main
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.model.labels import embedded_labels, load_labels, parse_labels


def test_bom_crlf_and_trailing_blank_lines_are_handled() -> None:
    labels = parse_labels(b"\xef\xbb\xbfwave\r\nclap\r\n\r\n\r\n", "x.txt")
    assert labels.names == ("wave", "clap")


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", "empty"), (b"\n\n", "empty"), (b"\x00\x01\x02abc", "not text"),
     (b"\xff\xfe\xfa", "not UTF-8"),
     (b"run\n\nwalk\nsit\n", "line 2 is empty: remove it"),
     (b"run\nwalk\nsit\nwalk\n", r"line 4 repeats line 2 \('walk'\): give each class its own")],
)
def test_bad_label_files(data: bytes, words: str) -> None:
    with pytest.raises(MovinetPiError, match=words):
        parse_labels(data, "bad.txt")


def test_missing_label_file(tmp_path: Path) -> None:
    with pytest.raises(MovinetPiError, match="label file not found"):
        load_labels(tmp_path / "none.txt")


names = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
            max_size=20).map(str.strip).filter(bool),
    min_size=1, max_size=30, unique=True,  # (a repeated name is refused: test_bad_label_files)
)


@given(names=names, crlf=st.booleans(), bom=st.booleans(), blank_tail=st.integers(0, 3))
def test_any_written_label_list_reads_back(names: list[str], crlf: bool, bom: bool,
                                           blank_tail: int) -> None:
    eol = "\r\n" if crlf else "\n"
    text = eol.join(names) + eol * (1 + blank_tail)
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    assert parse_labels(data, "gen.txt").names == tuple(names)


def model_with_labels(model: Path, dest: Path, labels: list[str]) -> Path:
    """A .tflite with TFLite-metadata-style associated files: a zip appended to it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("labels.txt", "\n".join(labels) + "\n")
    dest.write_bytes(model.read_bytes() + buffer.getvalue())
    return dest


def test_labels_inside_a_model_are_used(a0_model: Path, tmp_path: Path) -> None:
    inside = [f"inside {i}" for i in range(600)]
    model = model_with_labels(a0_model, tmp_path / "with_labels.tflite", inside)
    labels = embedded_labels(model)
    assert labels is not None and labels.names == tuple(inside)
    clf = StreamingClassifier.from_file(model, threads=1)  # the interpreter still loads it
    assert clf.labels.names[0] == "inside 0"


def test_plain_model_has_no_embedded_labels(a0_model: Path) -> None:
    assert embedded_labels(a0_model) is None


def test_explicit_labels_win_and_info_says_which(
    a0_model: Path, kinetics_labels_path: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = model_with_labels(a0_model, tmp_path / "m.tflite", [f"in {i}" for i in range(600)])
    assert main(["info", str(model), "--json"]) == 0
    assert "inside the model" in json.loads(capsys.readouterr().out)["labels"]
    assert main(["info", str(model), "--labels", str(kinetics_labels_path), "--json"]) == 0
    assert "(--labels)" in json.loads(capsys.readouterr().out)["labels"]


def appended_zip(dest: Path, text: bytes, *, compression: int = zipfile.ZIP_STORED,
                 patch: Callable[[bytearray], None] | None = None) -> Path:
    """A stand-in model (a few bytes) with a zip holding labels.txt appended; ``patch``
    edits the zip's bytes first."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("labels.txt", text)
    data = bytearray(buffer.getvalue())
    if patch is not None:
        patch(data)
    dest.write_bytes(b"TFL3" + b"\0" * 60 + bytes(data))
    return dest


def set_field(data: bytearray, signature: bytes, offset: int, value: int) -> None:
    """Set a 2-byte little-endian field at ``offset`` in the header starting with ``signature``."""
    at = data.index(signature) + offset
    data[at:at + 2] = value.to_bytes(2, "little")


def test_a_zip_bomb_of_labels_is_a_one_line_error(tmp_path: Path) -> None:
    bomb = appended_zip(tmp_path / "bomb.tflite", b"a\n" * (3 << 20),
                        compression=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(MovinetPiError, match="too big") as e:
        embedded_labels(bomb)
    assert "\n" not in str(e.value)
    with pytest.raises(MovinetPiError, match="too big"):
        embedded_labels(appended_zip(tmp_path / "small.tflite", b"x\n" * 100), max_bytes=100)


def test_a_zip_header_that_lies_about_the_size_still_stops_at_the_limit(tmp_path: Path) -> None:
    def lie(data: bytearray) -> None:  # uncompressed size 10 in both headers
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.index(signature) + offset
            data[at:at + 4] = (10).to_bytes(4, "little")

    model = appended_zip(tmp_path / "liar.tflite", b"a\n" * (3 << 20),
                         compression=zipfile.ZIP_DEFLATED, patch=lie)
    with pytest.raises(MovinetPiError, match="labels inside the model") as e:
        embedded_labels(model, max_bytes=1000)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("name", "patch"), [
    # an unknown compression method: zipfile raises NotImplementedError
    ("method", lambda d: (set_field(d, b"PK\x03\x04", 8, 99),
                          set_field(d, b"PK\x01\x02", 10, 99))),
    # the encrypted flag: zipfile raises RuntimeError (a password is required)
    ("encrypted", lambda d: (set_field(d, b"PK\x03\x04", 6, 1),
                             set_field(d, b"PK\x01\x02", 8, 1))),
])
def test_unreadable_embedded_labels_are_one_line_errors(
    tmp_path: Path, name: str, patch: Callable[[bytearray], None]
) -> None:
    model = appended_zip(tmp_path / f"{name}.tflite", b"a\nb\n", patch=patch)
    with pytest.raises(MovinetPiError, match="cannot read the labels inside") as e:
        embedded_labels(model)
    assert "\n" not in str(e.value)


def test_corrupt_deflate_data_is_a_one_line_error(tmp_path: Path) -> None:
    def corrupt(data: bytearray) -> None:  # the compressed bytes after the local header
        start = data.index(b"PK\x03\x04") + 30 + len("labels.txt")
        data[start:start + 8] = b"\xff" * 8

    model = appended_zip(tmp_path / "corrupt.tflite", b"some label\n" * 50,
                         compression=zipfile.ZIP_DEFLATED, patch=corrupt)
    with pytest.raises(MovinetPiError, match="cannot read the labels inside") as e:
        embedded_labels(model)
    assert "\n" not in str(e.value)


def test_a_label_file_packed_with_a_model_is_preferred_to_other_text(
        a0_model: Path, tmp_path: Path) -> None:
    # A fine-tuned export may carry a readme beside its labels: the labels are read.
    model = tmp_path / "mine.tflite"
    model.write_bytes(a0_model.read_bytes())
    with zipfile.ZipFile(model, "a") as z:
        z.writestr("readme.txt", "made by me\n")
        z.writestr("my_labels.txt", "wave\nclap\n")
    labels = embedded_labels(model)
    assert labels is not None and labels.names == ("wave", "clap")
