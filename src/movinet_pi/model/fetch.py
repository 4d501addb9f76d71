"""Untrusted bytes onto disk, safely: an HTTP download into a file, the one .tflite out of a tar.

:func:`fetch` streams a URL into a file with a size limit, checks the body is as
long as the server said, syncs it to disk, and turns every failure (HTTP
status, network, a full or read-only disk) into a :class:`DownloadError` that
says what to do. :func:`unpack_model` accepts a bare .tflite or a tar archive
(gzip, bzip2, xz or plain) holding exactly one, checks every member before
copying anything (no absolute paths, no ``..``, no links or devices, a bounded
size and member count), and copies the member's bytes to a name of our own.
"""

from __future__ import annotations

import http.client
import lzma
import os
import socket
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from movinet_pi.progress import ProgressFn, megabytes
from movinet_pi.version import __version__

#: More members than this in a model archive is not a model archive.
MAX_ARCHIVE_MEMBERS = 1000
_CHUNK = 64 * 1024
#: A TFLite flatbuffer carries this identifier at byte 4.
TFLITE_MAGIC = b"TFL3"
#: How gzip, bzip2 and xz streams start; a plain tar has "ustar" at byte 257.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class DownloadError(Exception):
    """Why a download failed and what to do, as one phrase; the downloader turns it into
    a :class:`~movinet_pi.errors.MovinetPiError`."""


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _http_error(url: str, error: urllib.error.HTTPError, not_found: str) -> DownloadError:
    advice = not_found if error.code == 404 else "run the command again later"
    return DownloadError(f"{url} answered HTTP {error.code} {error.reason}: {advice}")


def _network_error(url: str, error: BaseException) -> DownloadError:
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, ConnectionRefusedError):
        what = f"connection refused by {_host(url)}"
    elif isinstance(reason, socket.gaierror):
        what = f"cannot resolve host {_host(url)}"
    elif isinstance(reason, (socket.timeout, TimeoutError)):
        what = f"no answer from {_host(url)} in time"
    else:
        what = f"cannot talk to {_host(url)} ({reason})"
    return DownloadError(f"{what}: check the network and run the command again")


def _cannot_write(path: Path, error: OSError) -> DownloadError:
    return DownloadError(
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
        raise DownloadError(
            f"the file is {megabytes(total)} MB, over the {megabytes(limit)} MB limit: "
            "check the URL"
        )
    done = 0
    if progress:
        progress(0, total)
    while chunk := response.read(_CHUNK):
        done += len(chunk)
        if done > limit:
            raise DownloadError(
                f"the download passed the {megabytes(limit)} MB limit: check the URL"
            )
        _write_chunk(out, chunk, path)
        if progress:
            progress(done, total)
    if total is not None and done < total:
        raise DownloadError(
            f"the connection closed after {done} of {total} bytes: run the command again"
        )


def fetch(
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
            raise DownloadError(
                f"the connection to {_host(url)} broke ({type(e).__name__}): run the command again"
            ) from e
        except (OSError, ValueError) as e:  # URLError, timeouts, resets; ValueError: bad URL
            raise _network_error(url, e) from e
        _sync(out, dest)


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


def _pick_tflite_member(archive: tarfile.TarFile, limit: int) -> tarfile.TarInfo:
    """The one .tflite in ``archive``, after checking every member is a safe plain file.

    Reading every header also reads the whole (compressed) stream, so a
    truncated download fails here.
    """
    models: list[tarfile.TarInfo] = []
    total = 0
    for count, member in enumerate(archive, start=1):
        problem = _unsafe_member(member)
        if problem:
            raise DownloadError(f"the archive is unsafe ({problem}): check the URL")
        total += member.size
        if count > MAX_ARCHIVE_MEMBERS or total > limit:
            raise DownloadError(
                f"the archive unpacks to over {MAX_ARCHIVE_MEMBERS} files or "
                f"{megabytes(limit)} MB: check the URL"
            )
        if member.isreg() and member.name.lower().endswith(".tflite"):
            models.append(member)
    if len(models) != 1:
        names = ", ".join(m.name for m in models) or "none"
        raise DownloadError(
            f"the archive holds {len(models)} .tflite files ({names}), expected exactly one: "
            "check the URL"
        )
    return models[0]


def unpack_model(download: Path, dest: Path, limit: int) -> Path:
    """The .tflite file in ``download``: itself when it is a bare model, else unpacked to ``dest``
    (an archive unpacking to over ``limit`` bytes is refused).

    Nothing is ever extracted under a name taken from the archive; the member's
    bytes are copied to ``dest``, so a hostile path cannot escape the folder.
    """
    head = _read_head(download)
    if _is_tflite(head):
        return download
    if not _is_archive(head):
        raise DownloadError(
            "the server sent neither a .tflite model nor a tar archive: check the URL"
        )
    damaged = "the archive is damaged or truncated: run the command again"
    # Writes raise DownloadError, so an OSError here is a bad gzip/bz2 stream.
    try:
        with tarfile.open(download, "r:*") as archive:
            member = _pick_tflite_member(archive, limit)
            source = archive.extractfile(member)
            if source is None:  # pragma: no cover - isreg() members always have data
                raise DownloadError(damaged)
            with source, _create(dest) as out:
                while block := source.read(_CHUNK):
                    _write_chunk(out, block, dest)
                _sync(out, dest)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        raise DownloadError(damaged) from e
    return dest
