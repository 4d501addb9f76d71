"""The model catalogue (MoViNet-A0/A1/A2, int8 and float16) and where its files are found.

Models are looked up, first match wins, in:

1. ``--model-path FILE`` (any streaming MoViNet .tflite; the CLI checks that one itself);
2. ``$MOVINET_PI_MODELS``;
3. ``./models/`` (the project's own folder, or wherever the app is run from);
4. the user cache, ``$XDG_CACHE_HOME/movinet-pi`` (``~/.cache/movinet-pi``).

Downloads (:mod:`movinet_pi.model.download`) land in the cache unless a folder
is given; the labels go in the same folder as the models, where
:func:`find_labels_file` looks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say

KAGGLE_BASE = "https://www.kaggle.com/api/v1/models/google/movinet/tfLite"
KAGGLE_URL = KAGGLE_BASE + "/{variation}/1/download"
#: Replaces :data:`KAGGLE_BASE` in model URLs (a mirror, or a local server in tests).
DOWNLOAD_BASE_ENV = "MOVINET_PI_DOWNLOAD_BASE"
#: Replaces :data:`KINETICS600_LABELS_URL`.
LABELS_URL_ENV = "MOVINET_PI_LABELS_URL"
KINETICS600_LABELS_URL = (
    "https://raw.githubusercontent.com/tensorflow/models/master/"
    "official/projects/movinet/files/kinetics_600_labels.txt"
)
KINETICS600_LABELS_FILE = "kinetics600_label_map.txt"
KINETICS600_LABELS_SHA256 = "8dfca4202520ea8291ce0242ef33b006d0a0772b409663c090a2876bc1978dcf"
KINETICS600_CLASSES = 600

MODEL_NAMES = ("a0", "a1", "a2")
QUANTS = ("int8", "float16")
MODEL_FPS = 5.0
#: A stream's first second of model steps, while the model's memory fills: what it shows
#: then is mostly noise (``teach`` takes no examples from it, events count nothing in it).
STREAM_WARMUP_STEPS = int(MODEL_FPS)


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry: a MoViNet stream model trained on Kinetics-600."""

    name: str
    quant: str
    input_size: int
    size_mb: float
    top1: float
    pixel4_ms: float
    sha256: str | None = None
    fps: float = MODEL_FPS

    @property
    def variation(self) -> str:
        return f"{self.name}-stream-kinetics-600-classification-tflite-{self.quant}"

    @property
    def filename(self) -> str:
        return f"movinet_{self.name}_stream_{self.quant}.tflite"

    @property
    def url(self) -> str:
        return KAGGLE_URL.format(variation=self.variation)

    @property
    def title(self) -> str:
        return f"MoViNet-{self.name.upper()} stream {self.quant}"


_KNOWN_SHA256 = {
    ("a0", "int8"): "6125b36e2485eeb5cc1fd6206cf5e5d70235593fbc84610d1dce97fe3aa9c2ac",
}
_FACTS = {  # name: (input size, int8 MB, Kinetics-600 top-1 %, Pixel 4 one-thread ms)
    "a0": (172, 3.1, 65.0, 5.0),
    "a1": (172, 4.5, 70.0, 8.0),
    "a2": (224, 5.1, 72.0, 15.0),
}

CATALOGUE: dict[tuple[str, str], ModelSpec] = {
    (name, quant): ModelSpec(
        name=name,
        quant=quant,
        input_size=size,
        size_mb=mb if quant == "int8" else round(mb * 2.2, 1),
        top1=top1,
        pixel4_ms=ms,
        sha256=_KNOWN_SHA256.get((name, quant)),
    )
    for name, (size, mb, top1, ms) in _FACTS.items()
    for quant in QUANTS
}


def get_spec(name: str, quant: str = "int8") -> ModelSpec:
    """The catalogue entry for ``--model NAME --quant QUANT``."""
    key = (name.lower(), quant.lower())
    if key[0] not in MODEL_NAMES:
        raise MovinetPiError(
            f"unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)} (a model of "
            "your own runs with --model-path FILE)"
        )
    if key[1] not in QUANTS:
        raise MovinetPiError(f"unknown quantization {quant!r}: choose one of {', '.join(QUANTS)}")
    return CATALOGUE[key]


def cache_dir() -> Path:
    """The per-user folder downloads go to by default."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "movinet-pi"


def search_dirs() -> list[Path]:
    """Folders searched for catalogue models and labels, in order."""
    dirs = []
    env = os.environ.get("MOVINET_PI_MODELS")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(Path.cwd() / "models")
    dirs.append(cache_dir())
    return dirs


def download_command(spec: ModelSpec) -> str:
    quant = "" if spec.quant == "int8" else f" --quant {spec.quant}"
    return f"movinet-pi download {spec.name}{quant}"


def find_model(spec: ModelSpec) -> Path:
    """The first copy of ``spec`` in :func:`search_dirs`, or a one-line error on how to get it."""
    for d in search_dirs():
        candidate = d / spec.filename
        if candidate.is_file():
            return candidate
    raise MovinetPiError(
        f"model {spec.title} not found (looked for {spec.filename} in "
        f"{', '.join(str(d) for d in search_dirs())}): run `{download_command(spec)}`"
    )


def find_labels_file(
    filename: str = KINETICS600_LABELS_FILE, near: Path | None = None
) -> Path | None:
    """The Kinetics-600 label map beside the model file ``near`` (or in its ``../labels``),
    next to the catalogue's models, or in ./labels/, if present."""
    beside = [near.parent] if near is not None else []
    for d in [*beside, *search_dirs(), Path.cwd() / "labels"]:
        for candidate in (d / filename, d.parent / "labels" / filename):
            if candidate.is_file():
                return candidate
    return None


#: What else gives a run its model or labels, said after "copy FILE into FOLDER".
MODEL_INSTEAD = ("pass --model-path FILE, a .tflite or its folder, or name its folder in "
                 "$MOVINET_PI_MODELS")
LABELS_INSTEAD = "pass --labels FILE"


def copy_instead(filename: str, folder: Path, instead: str) -> str:
    """What works without the network: the file a download would have fetched, copied by
    hand into the very folder the download would have put it in (where it is looked for)."""
    return f"without the network, copy {filename} into {folder} (or {instead})"


def other_ways(spec: ModelSpec) -> str:
    """What works besides downloading ``spec``: said after a forbidden download."""
    return f"; or, {copy_instead(spec.filename, cache_dir(), MODEL_INSTEAD)}"


def find_in_folder(folder: Path, preferred: ModelSpec) -> Path:
    """The model in ``folder`` (``--model-path DIR``): ``preferred``'s file, else another
    catalogue file, else the folder's only .tflite; else a one-line error."""
    if (folder / preferred.filename).is_file():
        return folder / preferred.filename
    for spec in CATALOGUE.values():
        if (folder / spec.filename).is_file():
            say(f"{folder} has no {preferred.filename}: using its {spec.filename}")
            return folder / spec.filename
    others = sorted(p for p in folder.glob("*.tflite") if p.is_file())
    if len(others) == 1:
        return others[0]
    found = (f"it has {len(others)} other .tflite files: name one" if others
             else "it has no .tflite file")
    raise MovinetPiError(
        f"no model in folder {folder}: looked for {preferred.filename} and the other "
        f"catalogue files ({found}), or run `{download_command(preferred)}`"
    )


#: Stream-state count of each catalogue model's signature (its fingerprint with the input size).
_STATE_COUNTS = {"a0": 43, "a1": 67, "a2": 73}


def sha256_file(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def identify_file(
    path: Path, input_size: int, num_classes: int, states: int, quant: str
) -> str | None:
    """:func:`identify` for a model file (its sha256 read here; an unreadable file is
    identified by its signature alone)."""
    try:
        digest: str | None = sha256_file(path)
    except OSError:
        digest = None
    return identify(digest, input_size, num_classes, states, quant)


def identify(
    sha256: str | None, input_size: int, num_classes: int, states: int, quant: str
) -> str | None:
    """The catalogue title (``MoViNet-A0 stream int8``) of a model file, or None if it is
    not one of the catalogue's: by its sha256 where the catalogue knows it, else by its
    signature (Kinetics-600 classes, input size and stream-state count) and quantization."""
    for spec in CATALOGUE.values():
        if sha256 is not None and spec.sha256 == sha256:
            return spec.title
    if num_classes != KINETICS600_CLASSES:
        return None
    for name, (size, *_rest) in _FACTS.items():
        if size == input_size and _STATE_COUNTS[name] == states:
            return f"MoViNet-{name.upper()} stream {quant}"
    return None


def model_url(spec: ModelSpec) -> str:
    """Where ``spec`` is downloaded from: Kaggle, or ``$MOVINET_PI_DOWNLOAD_BASE`` instead."""
    base = os.environ.get(DOWNLOAD_BASE_ENV)
    if not base:
        return spec.url
    return spec.url.replace(KAGGLE_BASE, base.rstrip("/"), 1)


def labels_url() -> str:
    """Where the Kinetics-600 labels come from (``$MOVINET_PI_LABELS_URL`` overrides)."""
    return os.environ.get(LABELS_URL_ENV) or KINETICS600_LABELS_URL
