"""Downloads onto a disk that is full or read-only: one clear error, nothing left behind.

Runs the real downloader in a child process, in a private mount namespace with a small
tmpfs as the models folder (as root; skipped where mounting is not allowed), against a
local HTTP server serving the real A0 model.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tmpfs import run_on_tmpfs

CHILD = textwrap.dedent("""
    import json, os, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from movinet_pi import MovinetPiError
    from movinet_pi.model.download import download_model
    from movinet_pi.model.catalogue import get_spec

    where, model = sys.argv[1], sys.argv[2]
    data = open(model, "rb").read()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/a0.tflite"
    try:
        download_model(get_spec("a0"), where, url=url, progress=False)
        result = {"ok": True}
    except MovinetPiError as e:
        result = {"error": str(e)}
    server.shutdown()
    result["files"] = sorted(os.listdir(where))
    print(json.dumps(result))
""")


def _download_into_tmpfs(tmp_path: Path, options: str, a0_model: Path) -> dict[str, object]:
    return run_on_tmpfs(tmp_path, options, CHILD, str(a0_model))


def test_a_full_disk_is_one_clear_error_and_leaves_no_partial_file(
    tmp_path: Path, a0_model: Path
) -> None:
    got = _download_into_tmpfs(tmp_path, "size=1m", a0_model)  # A0 is 3.3 MB
    error = str(got.get("error", ""))
    assert "No space left on device" in error and "free some space" in error, got
    assert "\n" not in error
    assert got["files"] == []  # no .part, no half model


def test_a_read_only_folder_is_one_clear_error(tmp_path: Path, a0_model: Path) -> None:
    got = _download_into_tmpfs(tmp_path, "ro,size=8m", a0_model)
    error = str(got.get("error", ""))
    assert "Read-only file system" in error and "choose a folder you can write to" in error, got
    assert got["files"] == []


def test_enough_space_downloads_the_model(tmp_path: Path, a0_model: Path) -> None:
    got = _download_into_tmpfs(tmp_path, "size=16m", a0_model)  # the same path, succeeding
    assert got.get("ok") is True, got
    assert got["files"] == ["movinet_a0_stream_int8.tflite"]
