"""Label files, the labels a model may carry inside itself, and which labels a model gets.

A label file has one class name per line, in the model's class order. We accept
what editors and other tools produce: a UTF-8 byte-order mark, CRLF line ends
and trailing blank lines.

A .tflite file with TFLite metadata may carry its label file as an *associated
file*: a zip archive appended to the flatbuffer. :func:`embedded_labels` reads
it without needing the tflite-support package.

:func:`resolve_labels` decides, for the app and ``eval`` alike: ``--labels``,
else the labels inside the model, else the Kinetics-600 map for 600 classes.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.model.catalogue import (
    KINETICS600_CLASSES,
    KINETICS600_LABELS_FILE,
    LABELS_INSTEAD,
    download_command,
    find_labels_file,
    get_spec,
)

#: The most a label file inside a model may hold, uncompressed (Kinetics-600's is 10 kB;
#: 21k ImageNet classes are under 1 MB): a bigger one is a zip bomb or not a label file.
MAX_EMBEDDED_LABELS_BYTES = 4 << 20

#: Names of an embedded member we take as the label file, best first.
_LABEL_MEMBER_HINTS = ("label", "class")


@dataclass(frozen=True)
class Labels:
    """Class names and where they came from (a path, or ``"<model>:member"``)."""

    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> str:
        return self.names[index]


def parse_labels(data: bytes, source: str) -> Labels:
    """Parse label-file bytes; raise :class:`MovinetPiError` if they are not text."""
    if b"\x00" in data:
        raise MovinetPiError(f"label file is not text: {source} (expected one class name a line)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MovinetPiError(
            f"label file is not UTF-8 text: {source} (expected one class name a line)"
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if "" in lines:  # a blank line inside would be a class with no name, shifting the rest
        raise MovinetPiError(f"label file {source}: line {lines.index('') + 1} is empty: "
                             "remove it (one class name a line, in the model's order)")
    if not lines:
        raise MovinetPiError(f"label file is empty: {source} (it needs one class name a "
                             "line, in the model's order)")
    _check_unique(lines, source)
    return Labels(tuple(lines), source)


def _check_unique(lines: list[str], source: str) -> None:
    """Two classes of one name could not be told apart (on the screen, in --allow, in events):
    a repeated name is most often a line pasted twice, which also shifts every name after it."""
    first: dict[str, int] = {}
    for number, name in enumerate(lines, 1):
        if name in first:
            raise MovinetPiError(f"label file {source}: line {number} repeats line "
                                 f"{first[name]} ({name!r}): give each class its own name "
                                 "(one a line, in the model's order)")
        first[name] = number


def load_labels(path: str | Path) -> Labels:
    """Read a label file from disk."""
    p = Path(path)
    if p.is_dir():
        raise MovinetPiError(f"--labels {p} is a folder: give the label file itself")
    if not p.is_file():
        raise MovinetPiError(f"label file not found: {p} (check the path, or leave out "
                             "--labels to use the model's own)")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise MovinetPiError(f"cannot read label file {p}: {e.strerror}") from None
    return parse_labels(data, str(p))


def embedded_labels(model_path: str | Path, *,
                    max_bytes: int = MAX_EMBEDDED_LABELS_BYTES) -> Labels | None:
    """Labels from the zip of associated files appended to a .tflite, if it has one.

    At most ``max_bytes`` are decompressed, whatever the zip's header claims; a
    member that cannot be read (too big, encrypted, an unsupported or broken
    compression) is a one-line :class:`MovinetPiError`.
    """
    try:
        archive = zipfile.ZipFile(model_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None  # no zip appended (or not one we can find): no labels inside
    with archive:
        try:
            members = [i for i in archive.infolist() if i.filename.lower().endswith(".txt")]
        except Exception:  # any damage to the directory: no labels inside
            return None
        if not members:
            return None
        members.sort(key=lambda i: not any(h in i.filename.lower() for h in _LABEL_MEMBER_HINTS))
        member = members[0]
        source = f"{model_path}:{member.filename}"
        too_big = MovinetPiError(
            f"the labels inside the model are too big: {source} holds more than "
            f"{max_bytes} bytes (pass the label file with --labels FILE)"
        )
        if member.file_size > max_bytes:
            raise too_big
        try:
            with archive.open(member) as f:
                data = f.read(max_bytes + 1)  # a header may lie about the size
        except Exception as e:  # zlib.error, NotImplementedError (method), RuntimeError (password)
            raise MovinetPiError(
                f"cannot read the labels inside the model {source}: {one_line(e)} "
                "(pass the label file with --labels FILE)"
            ) from None
        if len(data) > max_bytes:
            raise too_big
    return parse_labels(data, source)


def check_label_count(labels: Labels, num_classes: int) -> None:
    """The label file must name exactly one class per logit."""
    if len(labels) != num_classes:
        raise MovinetPiError(
            f"label file {labels.source} has {len(labels)} labels but the model has "
            f"{num_classes} classes: pass the label file made for this model with --labels"
        )


def resolve_labels(
    model_path: str | Path,
    num_classes: int,
    labels: Labels | None = None,
    *,
    download: Callable[[], Path] | None = None,
) -> Labels:
    """The labels for a model: ``labels`` (``--labels``) if given, else the labels inside
    the model, else, for 600 classes, the Kinetics-600 label map found on disk
    (:func:`~movinet_pi.model.catalogue.find_labels_file`) or, failing that,
    fetched by ``download`` (it returns the file's path; without it, never).
    Anything else is a one-line error saying what to pass."""
    if labels is not None:
        return labels
    inside = embedded_labels(model_path)
    if inside is not None:
        return inside
    if num_classes == KINETICS600_CLASSES:
        found = find_labels_file(near=Path(model_path))
        if found is not None:
            return load_labels(found)
        if download is not None:
            return load_labels(download())
        folder = Path(model_path).resolve().parent
        raise MovinetPiError(
            f"Kinetics-600 label map not found (looked beside {Path(model_path).name}, in "
            f"its ../labels and the model folders): copy {KINETICS600_LABELS_FILE} into "
            f"{folder} (or {LABELS_INSTEAD}), or run `{download_command(get_spec('a0'))}`"
        )
    raise MovinetPiError(
        f"model {Path(model_path).name} has {num_classes} classes and no labels inside: "
        "pass its label file with --labels FILE"
    )
