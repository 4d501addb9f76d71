"""Downloading models and labels, against a real HTTP server on 127.0.0.1.

Nothing here touches the internet: ``$MOVINET_PI_DOWNLOAD_BASE`` and
``$MOVINET_PI_LABELS_URL`` point the downloader at a local server that serves
archives built in tmp_path from the real files in ../shared.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from movinet_pi import MovinetPiError
from movinet_pi.model import download
from movinet_pi.model.catalogue import (
    DOWNLOAD_BASE_ENV,
    KINETICS600_LABELS_FILE,
    KINETICS600_LABELS_SHA256,
    LABELS_URL_ENV,
    ModelSpec,
    find_labels_file,
    find_model,
    get_spec,
    model_url,
)
from movinet_pi.model.download import download_labels, download_model, download_models
from movinet_pi.progress import ProgressBar

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "download_models.sh"

A0 = get_spec("a0")
A1 = get_spec("a1")
A2 = get_spec("a2")
A1_SHA256 = "7f64d1c91bd1070e0d0cbf4f19e0669ba2de06cff8cca16aaebbb898d139f712"


# --- fixtures: shared data, archives, a local server ---------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A tar.gz built in memory from (header, data) pairs."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/passwd"
    return info, data


@dataclass
class Reply:
    """What the test server answers on one path."""

    body: bytes = b""
    status: int = 200
    cut_after: Optional[int] = None  # hang up after this many body bytes (Content-Length stays)
    stall: float = 0.0  # sleep this long after the first body bytes


@dataclass
class Server:
    base: str
    routes: dict[str, Reply] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)  # ends stalls early
    close: Callable[[], None] = lambda: None  # stop serving, wait for every handler thread

    def serve_model(self, spec: ModelSpec, reply: Reply | bytes) -> None:
        path = f"/models/{spec.variation}/1/download"
        self.routes[path] = reply if isinstance(reply, Reply) else Reply(reply)

    def serve_labels(self, reply: Reply | bytes) -> None:
        self.routes["/labels.txt"] = reply if isinstance(reply, Reply) else Reply(reply)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # the client went away (e.g. over the size limit): nothing to report
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer()

        def _answer(self) -> None:
            server.requests.append(self.path)
            reply = server.routes.get(self.path, Reply(b"not found", status=404))
            self.send_response(reply.status)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
            if reply.stall:
                self.wfile.write(body[:1000])
                self.wfile.flush()
                server.closing.wait(reply.stall)
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _TestServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() waits for every handler thread


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port); the env points downloads at it."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    state = Server(base="")
    httpd = _TestServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv(DOWNLOAD_BASE_ENV, f"{state.base}/models")
    monkeypatch.setenv(LABELS_URL_ENV, f"{state.base}/labels.txt")
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def close() -> None:
        if not state.closing.is_set():
            state.closing.set()
            httpd.shutdown()
            httpd.server_close()  # joins the handler threads: none outlives its test

    state.close = close
    yield state
    close()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache, an empty cwd and no $MOVINET_PI_MODELS: only downloads are found."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MOVINET_PI_MODELS", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "xdg" / "movinet-pi"


@pytest.fixture()
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "dest"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def a0_bytes(shared: Path) -> bytes:
    return (shared / "models" / "movinet_a0_stream_int8.tflite").read_bytes()


@pytest.fixture(scope="module")
def a0_tgz(a0_bytes: bytes) -> bytes:
    return tar_gz([member("./1.tflite", a0_bytes)])


@pytest.fixture(scope="module")
def labels_bytes(shared: Path) -> bytes:
    return (shared / "labels" / "kinetics600_label_map.txt").read_bytes()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` (recursively) and its sha256."""
    return {str(p.relative_to(folder)): sha256(p) for p in folder.rglob("*") if p.is_file()}


def assert_one_line_error(error: pytest.ExceptionInfo[MovinetPiError], *fragments: str) -> None:
    text = str(error.value)
    assert "\n" not in text and "\r" not in text
    assert error.value.exit_code == 1
    for fragment in fragments:
        assert fragment in text, text
    advice = ("run the command again", "check the URL", "check the network", "check the model")
    assert any(a in text for a in advice), text


# --- happy paths ---------------------------------------------------------------------------


def test_downloads_a0_from_a_tar_gz(
    server: Server, dest: Path, a0_tgz: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    server.serve_model(A0, a0_tgz)
    path = download_model(A0, dest, progress=False)
    assert path == dest / A0.filename
    assert sha256(path) == A0.sha256
    assert sorted(os.listdir(dest)) == [A0.filename]
    assert capsys.readouterr() == ("", "")


def test_accepts_a_bare_tflite_response(server: Server, dest: Path, a0_bytes: bytes) -> None:
    server.serve_model(A0, a0_bytes)
    assert sha256(download_model(A0, dest, progress=False)) == A0.sha256
    assert sorted(os.listdir(dest)) == [A0.filename]


def test_url_argument_wins_over_the_env(server: Server, dest: Path, a0_tgz: bytes) -> None:
    server.routes["/elsewhere.tar.gz"] = Reply(a0_tgz)
    download_model(A0, dest, url=f"{server.base}/elsewhere.tar.gz", progress=False)
    assert server.requests == ["/elsewhere.tar.gz"]


def test_model_url_defaults_to_kaggle_and_the_env_replaces_its_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DOWNLOAD_BASE_ENV, raising=False)
    assert model_url(A0) == (
        "https://www.kaggle.com/api/v1/models/google/movinet/tfLite/"
        "a0-stream-kinetics-600-classification-tflite-int8/1/download"
    )
    monkeypatch.setenv(DOWNLOAD_BASE_ENV, "http://mirror.local/movinet/")
    assert model_url(A0) == (
        "http://mirror.local/movinet/a0-stream-kinetics-600-classification-tflite-int8/1/download"
    )


def test_a_model_with_no_known_checksum_is_checked_by_its_signature(
    server: Server, dest: Path, shared: Path
) -> None:
    assert A1.sha256 is None
    model = shared / "models" / "untrained" / "movinet_a1_stream_int8.tflite"
    server.serve_model(A1, tar_gz([member("model/a1.tflite", model.read_bytes())]))
    path = download_model(A1, dest, progress=False)
    assert path == dest / A1.filename
    assert sha256(path) == A1_SHA256
    assert sorted(os.listdir(dest)) == [A1.filename]


def test_a_stale_part_file_from_a_killed_run_is_started_over(
    server: Server, dest: Path, a0_tgz: bytes
) -> None:
    (dest / f"{A0.filename}.part").write_bytes(b"half of an old download")
    server.serve_model(A0, a0_tgz)
    assert sha256(download_model(A0, dest, progress=False)) == A0.sha256
    assert sorted(os.listdir(dest)) == [A0.filename]


@pytest.mark.parametrize("short_by", ["half", "one byte"])
def test_an_interrupted_download_leaves_nothing_and_the_next_run_succeeds(
    server: Server, dest: Path, a0_tgz: bytes, short_by: str
) -> None:
    cut = len(a0_tgz) // 2 if short_by == "half" else len(a0_tgz) - 1
    server.serve_model(A0, Reply(a0_tgz, cut_after=cut))
    with pytest.raises(MovinetPiError) as error:
        download_model(A0, dest, progress=False)
    assert_one_line_error(error, f"failed: the connection closed after {cut} of {len(a0_tgz)} "
                          "bytes", "run the command again")
    assert os.listdir(dest) == []

    server.serve_model(A0, a0_tgz)
    assert sha256(download_model(A0, dest, progress=False)) == A0.sha256
    assert sorted(os.listdir(dest)) == [A0.filename]


# --- failures: one line, nothing left behind, a good file untouched ---------------------------


def _corrupt(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]


FAILURES: dict[str, tuple[Callable[[bytes], Reply], tuple[str, ...]]] = {
    "checksum": (
        lambda model: Reply(tar_gz([member("1.tflite", _corrupt(model))])),
        ("checksum mismatch (expected 6125b36e", "run the command again"),
    ),
    "truncated": (
        lambda model: Reply(tar_gz([member("1.tflite", model)])[:1_000_000]),
        ("damaged or truncated", "run the command again"),
    ),
    "traversal": (
        lambda model: Reply(tar_gz([member("../evil.tflite", model)])),
        ("unsafe", "'../evil.tflite'", "check the URL"),
    ),
    "absolute": (
        lambda model: Reply(tar_gz([member("/tmp/evil.tflite", model)])),
        ("unsafe", "'/tmp/evil.tflite'"),
    ),
    "symlink": (
        lambda model: Reply(tar_gz([member("1.tflite", None, tarfile.SYMTYPE)])),
        ("link or device", "check the URL"),
    ),
    "hardlink": (
        lambda model: Reply(
            tar_gz([member("readme", model), member("1.tflite", None, tarfile.LNKTYPE)])
        ),
        ("link or device",),
    ),
    "device": (
        lambda model: Reply(
            tar_gz([member("1.tflite", model), member("dev", None, tarfile.CHRTYPE)])
        ),
        ("link or device",),
    ),
    "truncated-start": (
        lambda model: Reply(tar_gz([member("1.tflite", model)])[:50]),
        ("damaged or truncated",),
    ),
    "two-models": (
        lambda model: Reply(tar_gz([member("a.tflite", model), member("b.tflite", model)])),
        ("holds 2 .tflite files (a.tflite, b.tflite), expected exactly one", "check the URL"),
    ),
    "no-model": (
        lambda model: Reply(tar_gz([member("README.md", b"hello")])),
        ("holds 0 .tflite files",),
    ),
    "not-a-model": (
        lambda model: Reply(b"<html>please sign in</html>"),
        ("neither a .tflite model nor a tar archive", "check the URL"),
    ),
    "404": (
        lambda model: Reply(b"no such model", status=404),
        ("answered HTTP 404", f"check the model name and quantization and ${DOWNLOAD_BASE_ENV}"),
    ),
    "500": (
        lambda model: Reply(b"oops", status=500),
        ("answered HTTP 500", "run the command again later"),
    ),
}


@pytest.mark.parametrize("had_model", [False, True], ids=["empty-dir", "good-file-present"])
@pytest.mark.parametrize("case", list(FAILURES))
def test_a_bad_download_fails_in_one_line_and_leaves_the_folder_as_it_was(
    server: Server, dest: Path, a0_bytes: bytes, case: str, had_model: bool
) -> None:
    if had_model:
        (dest / A0.filename).write_bytes(a0_bytes)
    before = snapshot(dest)
    make_reply, fragments = FAILURES[case]
    server.serve_model(A0, make_reply(a0_bytes))
    with pytest.raises(MovinetPiError) as error:
        download_model(A0, dest, progress=False)
    assert str(error.value).startswith(f"download of {A0.title} failed: ")
    assert_one_line_error(error, *fragments)
    assert snapshot(dest) == before
    assert not (dest.parent / "evil.tflite").exists()


def test_a_model_of_the_wrong_size_is_rejected_by_the_input_size_check(
    server: Server, dest: Path, a0_tgz: bytes
) -> None:
    assert A2.sha256 is None and A2.input_size == 224
    server.serve_model(A2, a0_tgz)
    with pytest.raises(MovinetPiError) as error:
        download_model(A2, dest, progress=False)
    assert_one_line_error(error, "takes 172x172 frames but MoViNet-A2 stream int8 takes 224x224")
    assert os.listdir(dest) == []


def test_a_file_that_is_not_a_streaming_model_is_rejected(
    server: Server, dest: Path, labels_bytes: bytes
) -> None:
    server.serve_model(A1, tar_gz([member("1.tflite", labels_bytes)]))
    with pytest.raises(MovinetPiError) as error:
        download_model(A1, dest, progress=False)
    assert_one_line_error(error, "not a usable streaming MoViNet", "check the URL")
    assert os.listdir(dest) == []


def test_refused_connection_says_to_check_the_network(
    server: Server, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(DOWNLOAD_BASE_ENV, f"http://127.0.0.1:{port}")
    with pytest.raises(MovinetPiError) as error:
        download_model(A0, dest, progress=False)
    assert_one_line_error(error, f"connection refused by 127.0.0.1:{port}", "check the network")
    assert os.listdir(dest) == []


def test_a_stalled_server_times_out(server: Server, dest: Path, a0_tgz: bytes) -> None:
    server.serve_model(A0, Reply(a0_tgz, stall=1.5))
    with pytest.raises(MovinetPiError) as error:
        download_model(A0, dest, progress=False, timeout=0.3)
    assert_one_line_error(error, "no answer from 127.0.0.1", "check the network")
    assert os.listdir(dest) == []


def test_a_download_over_the_size_limit_is_refused(
    server: Server, dest: Path, a0_tgz: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1_000_000)
    server.serve_model(A0, a0_tgz)
    with pytest.raises(MovinetPiError) as error:
        download_model(A0, dest, progress=False)
    assert_one_line_error(error, "over the 1.0 MB limit", "check the URL")
    assert os.listdir(dest) == []


def test_a_download_a_byte_over_the_limit_is_refused_before_its_body_is_read(
    server: Server, dest: Path, a0_tgz: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server says how long it is: that is enough to refuse it, with nothing written.
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", len(a0_tgz) - 1)
    server.serve_model(A0, a0_tgz)
    read: list[int] = []
    with pytest.raises(MovinetPiError) as error:
        download_model(A0, dest, progress=lambda done, total: read.append(done))
    assert_one_line_error(error, f"the file is {len(a0_tgz) / 1e6:.1f} MB, over the", "limit")
    assert read == [] and os.listdir(dest) == []


def test_a_download_is_on_disk_before_it_is_renamed_into_place(
    server: Server, dest: Path, a0_tgz: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A power cut right after the rename must not leave an empty model under its real name.
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[-1])
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append(f"replace {Path(str(src)).name}")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    server.serve_model(A0, a0_tgz)
    download_model(A0, dest, progress=False)
    renamed = [e for e in events if e.startswith("replace")]
    assert renamed, events
    for event in renamed:  # every file renamed into place was synced before
        synced = "fsync " + event.split(" ", 1)[1]
        assert synced in events[: events.index(event)], events


def test_the_test_server_swallows_a_client_that_goes_away_and_waits_for_it(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """What made the progress test flaky: a client hanging up mid-body (as the size limit
    does) left a handler thread writing, whose BrokenPipeError traceback landed in the next
    test's stderr."""
    server.routes["/big"] = Reply(b"\0" * 20_000_000)
    port = int(server.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /big HTTP/1.0\r\n\r\n")
        assert client.recv(1000)
    server.close()
    handlers = [t for t in threading.enumerate() if "process_request" in t.name]
    assert handlers == []
    assert capsys.readouterr() == ("", "")


# --- progress ------------------------------------------------------------------------------


def test_progress_goes_to_stderr_as_plain_lines_when_not_a_tty(
    server: Server, dest: Path, a0_tgz: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    server.serve_model(A0, a0_tgz)
    download_model(A0, dest)
    out, err = capsys.readouterr()
    assert out == ""
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0] == f"a0 int8: downloading {len(a0_tgz) / 1e6:.1f} MB"
    assert lines[1].startswith(f"a0 int8: {len(a0_tgz) / 1e6:.1f} MB in ")
    assert lines[2] == f"a0 int8: saved {dest / A0.filename}"
    assert len(lines) == 3


def test_progress_function_gets_the_byte_counts(server: Server, dest: Path, a0_tgz: bytes) -> None:
    calls: list[tuple[int, int | None]] = []
    server.serve_model(A0, a0_tgz)
    download_model(A0, dest, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, len(a0_tgz))
    assert calls[-1] == (len(a0_tgz), len(a0_tgz))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_in_place_on_a_terminal() -> None:
    stream = FakeTerminal()
    bar = ProgressBar("a0 int8", stream, interval=0)
    bar(0, 3_100_000)
    bar(1_900_000, 3_100_000)
    assert re.search(r"\ra0 int8  \[#{9}\.{7}\]  1\.9/3\.1 MB  [\d.]+ MB/s$", stream.getvalue())
    bar(3_100_000, 3_100_000)
    bar.finish()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "[################]  3.1/3.1 MB" in text
    assert " MB/s" in text


def test_a_failed_download_ends_the_bars_line_before_its_error(
    server: Server, dest: Path, a0_tgz: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    server.serve_model(A0, Reply(a0_tgz, cut_after=1000))
    with pytest.raises(MovinetPiError):
        download_model(A0, dest, progress=True)
    assert "a0 int8  [" in terminal.getvalue() and terminal.getvalue().endswith("\n")


def test_progress_bar_ends_its_line_when_a_download_fails() -> None:
    stream = FakeTerminal()
    bar = ProgressBar("a0 int8", stream, interval=0)
    bar(1000, None)
    assert "a0 int8  0.0 MB" in stream.getvalue()
    bar.abort()
    assert stream.getvalue().endswith("\n")


# --- labels --------------------------------------------------------------------------------


def test_downloads_the_labels(server: Server, dest: Path, labels_bytes: bytes) -> None:
    server.serve_labels(labels_bytes)
    path = download_labels(dest, progress=False)
    assert path == dest / KINETICS600_LABELS_FILE
    assert sha256(path) == KINETICS600_LABELS_SHA256
    assert sorted(os.listdir(dest)) == [KINETICS600_LABELS_FILE]


def test_valid_labels_already_present_are_not_fetched_again(
    server: Server, dest: Path, labels_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    (dest / KINETICS600_LABELS_FILE).write_bytes(labels_bytes)
    assert download_labels(dest) == dest / KINETICS600_LABELS_FILE
    assert server.requests == []
    assert "labels: already present" in capsys.readouterr().err


@pytest.mark.parametrize("had_labels", [False, True], ids=["empty-dir", "good-file-present"])
@pytest.mark.parametrize(
    "body",
    [pytest.param(b"just one label\n", id="wrong"), pytest.param(b"", id="empty")],
)
def test_wrong_labels_are_rejected_and_leave_the_folder_as_it_was(
    server: Server, dest: Path, labels_bytes: bytes, body: bytes, had_labels: bool
) -> None:
    if had_labels:  # a damaged copy, so the download is attempted
        (dest / KINETICS600_LABELS_FILE).write_bytes(labels_bytes[:-10])
    before = snapshot(dest)
    server.serve_labels(body)
    with pytest.raises(MovinetPiError) as error:
        download_labels(dest, progress=False)
    assert str(error.value).startswith("download of the Kinetics-600 labels failed: ")
    assert_one_line_error(error, "checksum mismatch", "run the command again")
    assert snapshot(dest) == before


def test_labels_404(server: Server, dest: Path) -> None:
    with pytest.raises(MovinetPiError) as error:
        download_labels(dest, progress=False)
    assert_one_line_error(error, "answered HTTP 404", LABELS_URL_ENV)
    assert os.listdir(dest) == []


# --- download_models -----------------------------------------------------------------------


def test_download_models_fills_the_cache_where_find_model_and_find_labels_look(
    server: Server, cache: Path, a0_tgz: bytes, labels_bytes: bytes
) -> None:
    server.serve_model(A0, a0_tgz)
    server.serve_labels(labels_bytes)
    with pytest.raises(MovinetPiError):
        find_model(A0)
    assert find_labels_file() is None

    paths = download_models(["a0"], progress=False)
    assert paths == [cache / A0.filename, cache / KINETICS600_LABELS_FILE]
    assert find_model(A0) == cache / A0.filename
    assert find_labels_file() == cache / KINETICS600_LABELS_FILE
    assert sorted(os.listdir(cache)) == sorted([A0.filename, KINETICS600_LABELS_FILE])


def test_download_keeps_to_a_copy_a_run_already_finds_elsewhere(
    server: Server, cache: Path, tmp_path: Path, a0_bytes: bytes, labels_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the model in $MOVINET_PI_MODELS (and the labels beside it), `download a0` is done
    already: nothing is fetched into the cache, where a run would not look first anyway."""
    mine = tmp_path / "mine" / "models"
    mine.mkdir(parents=True)
    (mine / A0.filename).write_bytes(a0_bytes)
    (mine.parent / "labels").mkdir()
    (mine.parent / "labels" / KINETICS600_LABELS_FILE).write_bytes(labels_bytes)
    monkeypatch.setenv("MOVINET_PI_MODELS", str(mine))
    assert download_models(["a0"]) == [mine / A0.filename,
                                       mine.parent / "labels" / KINETICS600_LABELS_FILE]
    assert server.requests == [] and not any(cache.iterdir())
    err = capsys.readouterr().err
    assert f"a0 int8: already present at {mine / A0.filename}" in err
    (mine / A0.filename).write_bytes(_corrupt(a0_bytes))  # a damaged copy is not kept to
    with pytest.raises(MovinetPiError, match="download of MoViNet-A0 stream int8 failed"):
        download_models(["a0"], progress=False)  # (the test server has no model to give)


def test_download_into_a_file_says_to_give_a_folder(dest: Path) -> None:
    afile = dest / "models"
    afile.write_text("")
    with pytest.raises(MovinetPiError) as error:
        download_models(["a0"], dest_dir=afile, progress=False)
    assert str(error.value) == f"{afile} is a file, not a folder: choose a folder to download into"
    assert error.value.exit_code == 2  # the user's input, not the network


def test_download_models_skips_what_is_present_unless_forced(
    server: Server,
    dest: Path,
    a0_tgz: bytes,
    labels_bytes: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.serve_model(A0, a0_tgz)
    server.serve_labels(labels_bytes)
    download_models(["a0"], dest_dir=dest, progress=False)
    fetched = len(server.requests)
    assert fetched == 2

    assert download_models(["A0", "a0"], dest_dir=dest) == [
        dest / A0.filename,
        dest / KINETICS600_LABELS_FILE,
    ]
    assert len(server.requests) == fetched
    err = capsys.readouterr().err
    assert f"a0 int8: already present at {dest / A0.filename}" in err
    assert "labels: already present" in err

    download_models(["a0"], dest_dir=dest, progress=False, force=True)
    assert len(server.requests) == fetched + 1  # the model again, not the labels


def test_download_models_replaces_a_damaged_model(
    server: Server, dest: Path, a0_tgz: bytes, a0_bytes: bytes, labels_bytes: bytes
) -> None:
    (dest / A0.filename).write_bytes(_corrupt(a0_bytes))
    (dest / KINETICS600_LABELS_FILE).write_bytes(labels_bytes)
    server.serve_model(A0, a0_tgz)
    download_models(["a0"], dest_dir=dest, progress=False)
    assert sha256(dest / A0.filename) == A0.sha256


def test_download_models_keeps_a_present_model_with_no_known_checksum_if_it_checks_out(
    server: Server, dest: Path, shared: Path, labels_bytes: bytes
) -> None:
    shutil.copy(shared / "models" / "untrained" / "movinet_a1_stream_int8.tflite", dest)
    (dest / KINETICS600_LABELS_FILE).write_bytes(labels_bytes)
    download_models(["a1"], dest_dir=dest, progress=False)
    assert server.requests == []


def test_download_models_refuses_an_unknown_name_first(server: Server, dest: Path) -> None:
    with pytest.raises(MovinetPiError, match="unknown model 'a9'"):
        download_models(["a0", "a9"], dest_dir=dest, progress=False)
    assert server.requests == []


# --- scripts/download_models.sh ------------------------------------------------------------


def _fake_command(folder: Path, name: str) -> None:
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} $*"\n')
    path.chmod(0o755)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("installed", [True, False], ids=["movinet-pi", "python3-m"])
def test_download_script_passes_its_arguments_and_defaults_to_a0(
    tmp_path: Path, installed: bool
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_command(bin_dir, "movinet-pi" if installed else "python3")
    bash = Path(shutil.which("bash") or "bash").parent
    env = {"PATH": f"{bin_dir}{os.pathsep}{bash}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    if not installed and shutil.which("movinet-pi", path=env["PATH"]):
        pytest.skip("a real movinet-pi is on the system PATH")
    prefix = "movinet-pi download" if installed else "python3 -m movinet_pi download"

    def run(*args: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert run() == f"{prefix} a0"
    assert run("a1", "a2", "--quant", "float16") == f"{prefix} a1 a2 --quant float16"


# --- without the network: following the errors' own advice ------------------------------------


def _copy_advice(error_line: str) -> tuple[str, Path]:
    """The file and the folder a failed download says to copy it into by hand."""
    match = re.search(r"without the network, copy (\S+) into (\S+) \(or ", error_line)
    assert match, error_line
    return match.group(1), Path(match.group(2))


def test_offline_each_failed_download_says_which_file_goes_into_which_folder(
    cache: Path, shared: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A new user with no network, as the issue tells it: run, copy what the error says
    # where it says, run again, until the clip plays.
    from movinet_pi.cli import main

    with socket.socket() as s:  # a port nobody listens on: no network
        s.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv(DOWNLOAD_BASE_ENV, f"{nowhere}/models")
    monkeypatch.setenv(LABELS_URL_ENV, f"{nowhere}/labels.txt")
    clip = str(shared / "videos" / "carving_ice.mp4")
    by_name = {p.name: p for p in [*(shared / "models").iterdir(), *(shared / "labels").iterdir()]}
    advised = []
    for _ in range(3):
        code = main(["--source", clip, "--headless"])
        err = capsys.readouterr().err.strip().splitlines()
        if code == 0:
            assert "last shown: carving ice" in err[-1]
            break
        assert code == 1 and err[-1].startswith("movinet-pi: error: download of "), err
        name, folder = _copy_advice(err[-1])
        advised.append((name, folder))
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(by_name[name], folder)
    assert advised == [(A0.filename, cache), (KINETICS600_LABELS_FILE, cache)]
    assert code == 0


def test_a_failed_labels_download_names_the_folder_and_labels_flag(
    server: Server, dest: Path, a0_tgz: bytes
) -> None:
    server.serve_model(A0, a0_tgz)  # (no labels served: 404)
    with pytest.raises(MovinetPiError) as error:
        download_models(["a0"], "int8", dest, progress=False)
    assert _copy_advice(str(error.value)) == (KINETICS600_LABELS_FILE, dest)
    assert "(or pass --labels FILE)" in str(error.value)


def test_offline_labels_are_found_beside_a_model_in_the_cache(
    cache: Path, shared: Path, carving_ice: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from movinet_pi.cli import main

    cache.mkdir(parents=True)
    shutil.copy(shared / "models" / A0.filename, cache)
    assert main(["--source", str(carving_ice), "--headless", "--offline"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"copy {KINETICS600_LABELS_FILE} into {cache} (or pass --labels FILE)" in error
    shutil.copy(shared / "labels" / KINETICS600_LABELS_FILE, cache)
    assert main(["--source", str(carving_ice), "--headless", "--offline", "--verbose"]) == 0
    assert f"labels {cache / KINETICS600_LABELS_FILE}" in capsys.readouterr().err
