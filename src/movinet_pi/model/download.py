"""Downloading catalogue models and the Kinetics-600 labels: fetch, unpack, verify, rename.

A download never leaves a half-written model behind: the response is streamed to
``<file>.part`` next to the destination (:mod:`movinet_pi.model.fetch`), the one
.tflite it holds is unpacked to ``<file>.unpacked.part``, checked (sha256 when
the catalogue knows it, otherwise loaded and its streaming signature read), and
only then renamed over ``<file>``. Every temp file is removed whatever happens.
A ``.part`` left by a run that was killed is simply overwritten: downloads start
over, they do not resume (the files are a few MB, and a fresh start needs no
server support).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterable, Iterator

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.model.catalogue import (
    DOWNLOAD_BASE_ENV,
    KINETICS600_CLASSES,
    KINETICS600_LABELS_FILE,
    KINETICS600_LABELS_SHA256,
    LABELS_INSTEAD,
    LABELS_URL_ENV,
    MODEL_INSTEAD,
    ModelSpec,
    cache_dir,
    copy_instead,
    find_labels_file,
    find_model,
    get_spec,
    labels_url,
    model_url,
    sha256_file,
)
from movinet_pi.model.fetch import DownloadError, fetch, unpack_model
from movinet_pi.model.labels import parse_labels
from movinet_pi.model.runtime import find_runtime, load_interpreter
from movinet_pi.model.signature import read_signature
from movinet_pi.progress import ProgressBar, ProgressFn, status

#: Largest download (and largest unpacked archive) accepted, in bytes.
MAX_DOWNLOAD_BYTES = 200_000_000
MAX_LABELS_BYTES = 1_000_000
DOWNLOAD_TIMEOUT = 30.0


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
        status(message)


def _not_found_hint(what: str, env: str) -> str:
    """What to check when the server has no such file (the env override, if it is set)."""
    return f"check {what} and ${env}" if os.environ.get(env) else f"check {what}"


def _check_sha256(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise DownloadError(
            f"checksum mismatch (expected {expected}, got {got}): run the command again; "
            "if it keeps failing the file on the server has changed"
        )


def _check_signature(spec: ModelSpec, path: Path) -> None:
    """For models with no known checksum: it must load and be a streaming MoViNet of spec's size."""
    try:
        runtime = find_runtime()
    except MovinetPiError as e:
        raise DownloadError(f"checking the model needs a TFLite runtime ({e})") from e
    try:
        interpreter, _ = load_interpreter(path, threads=1, runtime=runtime)
        signature = read_signature(interpreter)
    except MovinetPiError as e:
        raise DownloadError(
            f"the file is not a usable streaming MoViNet ({e}): check the URL"
        ) from e
    del interpreter
    size = spec.input_size
    got_w, got_h = signature.input_size
    if (got_w, got_h) != (size, size):
        raise DownloadError(
            f"the model takes {got_w}x{got_h} frames but {spec.title} takes {size}x{size}: "
            "check the URL"
        )
    if signature.num_classes != KINETICS600_CLASSES:
        raise DownloadError(
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
    if folder.exists() and not folder.is_dir():
        raise MovinetPiError(f"{folder} is a file, not a folder: choose a folder to download "
                             "into")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MovinetPiError(
            f"cannot create folder {folder} ({e.strerror or e}): choose a folder you can write to"
        ) from e
    return folder


@contextmanager
def _attempt(what: str, offline: str, *temps: Path) -> Iterator[None]:
    """Turn any failure into a one-line MovinetPiError; remove ``temps`` whatever happens.
    A failed fetch or check also says ``offline``: where to copy the file by hand."""
    try:
        yield
    except DownloadError as e:
        raise MovinetPiError(one_line(f"download of {what} failed: {e}; {offline}"),
                             exit_code=1) from e
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
    offline = copy_instead(spec.filename, folder, MODEL_INSTEAD)
    with _attempt(spec.title, offline, part, unpacked):
        with _reporter(progress, f"{spec.name} {spec.quant}") as report:
            fetch(
                source,
                part,
                timeout=timeout,
                limit=MAX_DOWNLOAD_BYTES,
                progress=report,
                not_found=_not_found_hint("the model name and quantization", DOWNLOAD_BASE_ENV),
            )
        model = unpack_model(part, unpacked, MAX_DOWNLOAD_BYTES)
        _check_model(spec, model)
        os.replace(model, final)
    _say(progress, f"{spec.name} {spec.quant}: saved {final}")
    return final


def _labels_valid(path: Path) -> bool:
    return path.is_file() and sha256_file(path) == KINETICS600_LABELS_SHA256


def _check_labels(path: Path) -> None:
    try:
        count = len(parse_labels(path.read_bytes(), str(path)))
    except MovinetPiError as e:
        raise DownloadError(f"{e}: check the URL") from e
    if count != KINETICS600_CLASSES:
        raise DownloadError(
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
    offline = copy_instead(KINETICS600_LABELS_FILE, folder, LABELS_INSTEAD)
    with _attempt("the Kinetics-600 labels", offline, part):
        with _reporter(progress, "labels") as report:
            fetch(
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
    except (DownloadError, OSError) as e:
        return str(e).split(":", 1)[0]
    return None


def _found_elsewhere(spec: ModelSpec) -> Path | None:
    """A valid copy of ``spec`` where a run looks for it, outside the cache; else None."""
    try:
        found = find_model(spec)
    except MovinetPiError:
        return None
    return found if found.parent != cache_dir() and _model_problem(spec, found) is None else None


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
        found = _found_elsewhere(spec) if dest_dir is None and not force else None
        if found is not None:  # where a run finds it ($MOVINET_PI_MODELS, ./models)
            _say(progress, f"{label}: already present at {found}")
            paths.append(found)
            continue
        if path.is_file() and not force:
            problem = _model_problem(spec, path)
            if problem is None:
                _say(progress, f"{label}: already present at {path}")
                paths.append(path)
                continue
            _say(progress, f"{label}: {path} is not valid ({problem}), downloading again")
        paths.append(download_model(spec, folder, progress=progress, timeout=timeout))
    labels = (find_labels_file(near=paths[0] if paths else None)
              if dest_dir is None and not force else None)
    if labels is not None and _labels_valid(labels):
        _say(progress, f"labels: already present at {labels}")
        paths.append(labels)
        return paths
    paths.append(download_labels(folder, progress=progress, timeout=timeout))
    return paths
