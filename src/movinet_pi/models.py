"""The model catalogue, finding a model on disk, and downloading it.

Models are looked up, first match wins, in:

1. ``--model-path FILE`` (any streaming MoViNet .tflite);
2. ``$MOVINET_PI_MODELS``;
3. ``./models/`` (the project's own folder, or wherever the app is run from);
4. the user cache, ``$XDG_CACHE_HOME/movinet-pi`` (``~/.cache/movinet-pi``).

Downloads land in the cache unless a folder is given; the labels go in the same
folder as the models, where :func:`find_labels_file` looks.

A download never leaves a half-written model behind: the response is streamed to
``<file>.part`` next to the destination, the one .tflite it holds is unpacked to
``<file>.unpacked.part``, checked (sha256 when the catalogue knows it, otherwise
loaded and its streaming signature read), and only then renamed over
``<file>``. Every temp file is removed whatever happens. A ``.part`` left by a
run that was killed is simply overwritten: downloads start over, they do not
resume (the files are a few MB, and a fresh start needs no server support).
"""

from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import socket
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Iterable, Iterator

from movinet_pi import __version__
from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.progress import ProgressBar, ProgressFn, megabytes

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

#: Largest download (and largest unpacked archive) accepted, in bytes.
MAX_DOWNLOAD_BYTES = 200_000_000
MAX_LABELS_BYTES = 1_000_000
#: More members than this in a model archive is not a model archive.
MAX_ARCHIVE_MEMBERS = 1000
DOWNLOAD_TIMEOUT = 30.0
_CHUNK = 64 * 1024
#: A TFLite flatbuffer carries this identifier at byte 4.
TFLITE_MAGIC = b"TFL3"
#: How gzip, bzip2 and xz streams start; a plain tar has "ustar" at byte 257.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")

MODEL_NAMES = ("a0", "a1", "a2")
QUANTS = ("int8", "float16")
MODEL_FPS = 5.0


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
            f"unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)} "
            "or give a file with --model-path"
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


def find_labels_file(filename: str = KINETICS600_LABELS_FILE) -> Path | None:
    """The Kinetics-600 label map next to the models, or in ./labels/, if present."""
    for d in [*search_dirs(), Path.cwd() / "labels"]:
        for candidate in (d / filename, d.parent / "labels" / filename):
            if candidate.is_file():
                return candidate
    return None


# --- downloading -------------------------------------------------------------


class _DownloadError(Exception):
    """Why a download failed and what to do, as one phrase; turned into a MovinetPiError."""


def model_url(spec: ModelSpec) -> str:
    """Where ``spec`` is downloaded from: Kaggle, or ``$MOVINET_PI_DOWNLOAD_BASE`` instead."""
    base = os.environ.get(DOWNLOAD_BASE_ENV)
    if not base:
        return spec.url
    return spec.url.replace(KAGGLE_BASE, base.rstrip("/"), 1)


def labels_url() -> str:
    """Where the Kinetics-600 labels come from (``$MOVINET_PI_LABELS_URL`` overrides)."""
    return os.environ.get(LABELS_URL_ENV) or KINETICS600_LABELS_URL


@contextmanager
def _reporter(progress: ProgressFn | bool, label: str) -> Iterator[ProgressFn | None]:
    """What to report bytes to: our bar for ``True``, the caller's function, or nothing."""
    if progress is False:
        yield None
    elif progress is True:
        bar = ProgressBar(label)
        try:
            yield bar
        except BaseException:
            bar.abort()
            raise
        bar.finish()
    else:
        yield progress


def _say(progress: ProgressFn | bool, message: str) -> None:
    """A status line on stderr, only when the caller asked for our own progress output."""
    if progress is True:
        print(message, file=sys.stderr, flush=True)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _not_found_hint(what: str, env: str) -> str:
    """What to check when the server has no such file (the env override, if it is set)."""
    return f"check {what} and ${env}" if os.environ.get(env) else f"check {what}"


def _http_error(url: str, error: urllib.error.HTTPError, not_found: str) -> _DownloadError:
    advice = not_found if error.code == 404 else "run the command again later"
    return _DownloadError(f"{url} answered HTTP {error.code} {error.reason}: {advice}")


def _network_error(url: str, error: BaseException) -> _DownloadError:
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, ConnectionRefusedError):
        what = f"connection refused by {_host(url)}"
    elif isinstance(reason, socket.gaierror):
        what = f"cannot resolve host {_host(url)}"
    elif isinstance(reason, (socket.timeout, TimeoutError)):
        what = f"no answer from {_host(url)} in time"
    else:
        what = f"cannot talk to {_host(url)} ({reason})"
    return _DownloadError(f"{what}: check the network and run the command again")


def _cannot_write(path: Path, error: OSError) -> _DownloadError:
    return _DownloadError(
        f"cannot write {path} ({error.strerror or error}): "
        "free some space or choose a folder you can write to"
    )


def _create(path: Path) -> IO[bytes]:
    try:
        return path.open("wb")
    except OSError as e:
        raise _cannot_write(path, e) from e


def _write_chunk(out: IO[bytes], chunk: bytes, path: Path) -> None:
    try:
        out.write(chunk)
    except OSError as e:
        raise _cannot_write(path, e) from e


def _sync(out: IO[bytes], path: Path) -> None:
    """Flush to disk before the rename, so a power cut cannot leave an empty model."""
    try:
        out.flush()
        os.fsync(out.fileno())
    except OSError as e:
        raise _cannot_write(path, e) from e


def _copy_response(
    response: http.client.HTTPResponse,
    out: IO[bytes],
    path: Path,
    limit: int,
    progress: ProgressFn | None,
) -> None:
    """Stream the body into ``out``; a body shorter than its Content-Length is an error.

    ``HTTPResponse.read`` returns ``b""`` when the server hangs up early, so
    the length has to be checked here.
    """
    total = _content_length(response)
    if total is not None and total > limit:
        raise _DownloadError(
            f"the file is {megabytes(total)} MB, over the {megabytes(limit)} MB limit: "
            "check the URL"
        )
    done = 0
    if progress:
        progress(0, total)
    while chunk := response.read(_CHUNK):
        done += len(chunk)
        if done > limit:
            raise _DownloadError(
                f"the download passed the {megabytes(limit)} MB limit: check the URL"
            )
        _write_chunk(out, chunk, path)
        if progress:
            progress(done, total)
    if total is not None and done < total:
        raise _DownloadError(
            f"the connection closed after {done} of {total} bytes: run the command again"
        )


def _fetch(
    url: str,
    dest: Path,
    *,
    timeout: float,
    limit: int,
    progress: ProgressFn | None,
    not_found: str = "check the URL",
) -> None:
    """Download ``url`` into ``dest`` (truncated first: an old partial file is started over).

    ``not_found`` is the advice given with a 404.
    """
    request = urllib.request.Request(url, headers={"User-Agent": f"movinet-pi/{__version__}"})
    with _create(dest) as out:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                _copy_response(response, out, dest, limit, progress)
        except urllib.error.HTTPError as e:
            raise _http_error(url, e, not_found) from e
        except http.client.HTTPException as e:  # IncompleteRead, a bad chunked body...
            raise _DownloadError(
                f"the connection to {_host(url)} broke ({type(e).__name__}): run the command again"
            ) from e
        except (OSError, ValueError) as e:  # URLError, timeouts, resets; ValueError: bad URL
            raise _network_error(url, e) from e
        _sync(out, dest)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str) -> None:
    got = _sha256_file(path)
    if got != expected:
        raise _DownloadError(
            f"checksum mismatch (expected {expected}, got {got}): run the command again; "
            "if it keeps failing the file on the server has changed"
        )


def _read_head(path: Path, size: int = 512) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def _is_tflite(head: bytes) -> bool:
    return head[4:8] == TFLITE_MAGIC


def _is_archive(head: bytes) -> bool:
    return head.startswith(_COMPRESSED_MAGIC) or head[257:262] == b"ustar"


def _unsafe_member(member: tarfile.TarInfo) -> str | None:
    """Why an archive member must not be trusted, or None."""
    path = PurePosixPath(member.name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        return f"member {member.name!r} has an unsafe path"
    if not (member.isreg() or member.isdir()):
        return f"member {member.name!r} is a link or device, not a plain file"
    return None


def _pick_tflite_member(archive: tarfile.TarFile) -> tarfile.TarInfo:
    """The one .tflite in ``archive``, after checking every member is a safe plain file.

    Reading every header also reads the whole (compressed) stream, so a
    truncated download fails here.
    """
    models: list[tarfile.TarInfo] = []
    total = 0
    for count, member in enumerate(archive, start=1):
        problem = _unsafe_member(member)
        if problem:
            raise _DownloadError(f"the archive is unsafe ({problem}): check the URL")
        total += member.size
        if count > MAX_ARCHIVE_MEMBERS or total > MAX_DOWNLOAD_BYTES:
            raise _DownloadError(
                f"the archive unpacks to over {MAX_ARCHIVE_MEMBERS} files or "
                f"{megabytes(MAX_DOWNLOAD_BYTES)} MB: check the URL"
            )
        if member.isreg() and member.name.lower().endswith(".tflite"):
            models.append(member)
    if len(models) != 1:
        names = ", ".join(m.name for m in models) or "none"
        raise _DownloadError(
            f"the archive holds {len(models)} .tflite files ({names}), expected exactly one: "
            "check the URL"
        )
    return models[0]


def _unpack_model(download: Path, dest: Path) -> Path:
    """The .tflite file in ``download``: itself when it is a bare model, else unpacked to ``dest``.

    Nothing is ever extracted under a name taken from the archive; the member's
    bytes are copied to ``dest``, so a hostile path cannot escape the folder.
    """
    head = _read_head(download)
    if _is_tflite(head):
        return download
    if not _is_archive(head):
        raise _DownloadError(
            "the server sent neither a .tflite model nor a tar archive: check the URL"
        )
    damaged = "the archive is damaged or truncated: run the command again"
    # Writes raise _DownloadError, so an OSError here is a bad gzip/bz2 stream.
    try:
        with tarfile.open(download, "r:*") as archive:
            member = _pick_tflite_member(archive)
            source = archive.extractfile(member)
            if source is None:  # pragma: no cover - isreg() members always have data
                raise _DownloadError(damaged)
            with source, _create(dest) as out:
                while block := source.read(_CHUNK):
                    _write_chunk(out, block, dest)
                _sync(out, dest)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        raise _DownloadError(damaged) from e
    return dest


def _check_signature(spec: ModelSpec, path: Path) -> None:
    """For models with no known checksum: it must load and be a streaming MoViNet of spec's size."""
    # Imported here: classifier pulls in OpenCV, which nothing else in this module needs.
    from movinet_pi.classifier import read_signature
    from movinet_pi.runtime import find_runtime, load_interpreter

    try:
        runtime = find_runtime()
    except MovinetPiError as e:
        raise _DownloadError(f"checking the model needs a TFLite runtime ({e})") from e
    try:
        interpreter, _ = load_interpreter(path, threads=1, runtime=runtime)
        signature = read_signature(interpreter)
    except MovinetPiError as e:
        raise _DownloadError(
            f"the file is not a usable streaming MoViNet ({e}): check the URL"
        ) from e
    del interpreter
    size = spec.input_size
    got_w, got_h = signature.input_size
    if (got_w, got_h) != (size, size):
        raise _DownloadError(
            f"the model takes {got_w}x{got_h} frames but {spec.title} takes {size}x{size}: "
            "check the URL"
        )
    if signature.num_classes != KINETICS600_CLASSES:
        raise _DownloadError(
            f"the model has {signature.num_classes} classes, not the {KINETICS600_CLASSES} "
            "of Kinetics-600: check the URL"
        )


def _check_model(spec: ModelSpec, path: Path) -> None:
    if spec.sha256:
        _check_sha256(path, spec.sha256)
    else:
        _check_signature(spec, path)


def _target_dir(dest_dir: Path | str | None) -> Path:
    folder = Path(dest_dir) if dest_dir is not None else cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MovinetPiError(
            f"cannot create folder {folder} ({e.strerror or e}): choose a folder you can write to"
        ) from e
    return folder


@contextmanager
def _attempt(what: str, *temps: Path) -> Iterator[None]:
    """Turn any failure into a one-line MovinetPiError; remove ``temps`` whatever happens."""
    try:
        yield
    except _DownloadError as e:
        raise MovinetPiError(one_line(f"download of {what} failed: {e}"), exit_code=1) from e
    except OSError as e:  # unpacking, renaming: disk full, permissions
        name = e.filename or "the file"
        raise MovinetPiError(
            one_line(
                f"download of {what} failed: cannot write {name} ({e.strerror or e}): "
                "free some space or choose another folder"
            ),
            exit_code=1,
        ) from e
    finally:
        for temp in temps:
            # A read-only folder answers EROFS even for a file that is not there.
            with suppress(OSError):
                temp.unlink()


def download_model(
    spec: ModelSpec,
    dest_dir: Path | str | None = None,
    *,
    url: str | None = None,
    progress: ProgressFn | bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Download ``spec`` into ``dest_dir`` (default :func:`cache_dir`) and return its path.

    ``url`` overrides :func:`model_url`. The server may send a tar archive
    (gzip/bz2/xz or plain) holding exactly one .tflite, or the bare .tflite.
    ``progress``: ``True`` draws a :class:`ProgressBar` on stderr, ``False`` is
    silent, a function is called as a :data:`ProgressFn`. An existing file is
    replaced only by a download that passed the checks.
    """
    folder = _target_dir(dest_dir)
    source = url or model_url(spec)
    final = folder / spec.filename
    part = folder / f"{spec.filename}.part"
    unpacked = folder / f"{spec.filename}.unpacked.part"
    with _attempt(spec.title, part, unpacked):
        with _reporter(progress, f"{spec.name} {spec.quant}") as report:
            _fetch(
                source,
                part,
                timeout=timeout,
                limit=MAX_DOWNLOAD_BYTES,
                progress=report,
                not_found=_not_found_hint("the model name and quantization", DOWNLOAD_BASE_ENV),
            )
        model = _unpack_model(part, unpacked)
        _check_model(spec, model)
        os.replace(model, final)
    _say(progress, f"{spec.name} {spec.quant}: saved {final}")
    return final


def _labels_valid(path: Path) -> bool:
    return path.is_file() and _sha256_file(path) == KINETICS600_LABELS_SHA256


def _check_labels(path: Path) -> None:
    from movinet_pi.labels import parse_labels

    try:
        count = len(parse_labels(path.read_bytes(), str(path)))
    except MovinetPiError as e:
        raise _DownloadError(f"{e}: check the URL") from e
    if count != KINETICS600_CLASSES:
        raise _DownloadError(
            f"the label file has {count} labels, not {KINETICS600_CLASSES}: check the URL"
        )


def download_labels(
    dest_dir: Path | str | None = None,
    *,
    url: str | None = None,
    progress: ProgressFn | bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Put the Kinetics-600 label map in ``dest_dir`` (default :func:`cache_dir`).

    Nothing is fetched when a file with the right sha256 is already there.
    """
    folder = _target_dir(dest_dir)
    final = folder / KINETICS600_LABELS_FILE
    if _labels_valid(final):
        _say(progress, f"labels: already present at {final}")
        return final
    part = folder / f"{KINETICS600_LABELS_FILE}.part"
    with _attempt("the Kinetics-600 labels", part):
        with _reporter(progress, "labels") as report:
            _fetch(
                url or labels_url(),
                part,
                timeout=timeout,
                limit=MAX_LABELS_BYTES,
                progress=report,
                not_found=_not_found_hint("the URL", LABELS_URL_ENV),
            )
        _check_sha256(part, KINETICS600_LABELS_SHA256)
        _check_labels(part)
        os.replace(part, final)
    _say(progress, f"labels: saved {final}")
    return final


def _model_problem(spec: ModelSpec, path: Path) -> str | None:
    """Why the model already at ``path`` is not good to keep, or None if it is."""
    try:
        _check_model(spec, path)
    except (_DownloadError, OSError) as e:
        return str(e).split(":", 1)[0]
    return None


def download_models(
    names: Iterable[str],
    quant: str = "int8",
    dest_dir: Path | str | None = None,
    *,
    progress: ProgressFn | bool = True,
    force: bool = False,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> list[Path]:
    """Download the named catalogue models (those not already there) and the labels.

    Every name is checked before anything is fetched. A model already in
    ``dest_dir`` that passes the same check as a download is kept, unless
    ``force``. Returns the model paths in order, then the label file's path.
    """
    specs = list(dict.fromkeys(get_spec(name, quant) for name in names))
    folder = _target_dir(dest_dir)
    paths = []
    for spec in specs:
        path = folder / spec.filename
        label = f"{spec.name} {spec.quant}"
        if path.is_file() and not force:
            problem = _model_problem(spec, path)
            if problem is None:
                _say(progress, f"{label}: already present at {path}")
                paths.append(path)
                continue
            _say(progress, f"{label}: {path} is not valid ({problem}), downloading again")
        paths.append(download_model(spec, folder, progress=progress, timeout=timeout))
    paths.append(download_labels(folder, progress=progress, timeout=timeout))
    return paths
