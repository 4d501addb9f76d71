"""The browser view: JSON endpoints, the MJPEG stream, the token, many viewers, a real browser.

Every server here listens on 127.0.0.1 on a port the system picks (``port=0``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
from tools import require_tool

from movinet_pi import MovinetPiError
from movinet_pi.display.overlay import BAR_COLOUR, OverlayState, draw_overlay
from movinet_pi.model.predictions import Prediction
from movinet_pi.outputs import web, web_access, web_gate
from movinet_pi.outputs.base import FrameSink, StepResult
from movinet_pi.outputs.web import WebSink
from movinet_pi.outputs.web_access import parse_web_address
from movinet_pi.outputs.web_state import STALE_AFTER_S

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "build" / "web.png"
ARM = [Prediction("arm wrestling", 0.97, 5), Prediction("shaking hands", 0.02, 430)]


@pytest.fixture
def logs() -> list[str]:
    return []


@pytest.fixture
def sink(logs: list[str]) -> Iterator[WebSink]:
    s = WebSink("127.0.0.1", 0, model_name="MoViNet-A0 test", max_fps=None, log=logs.append)
    try:
        yield s
    finally:
        s.close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body), for any status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def get_json(url: str) -> dict[str, object]:
    status, ctype, body = get(url)
    assert status == 200 and ctype == "application/json"
    return json.loads(body)


def step(t: float, top: list[Prediction], n: int = 0) -> StepResult:
    return StepResult(t, round(t * 30), n, top, 2.5)


class MjpegReader:
    """A viewer of /stream.mjpg that parses the multipart stream into JPEG parts."""

    def __init__(self, port: int, path: str = "/stream.mjpg",
                 headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", path, headers=headers or {})
        self.response = self.conn.getresponse()
        ctype = self.response.getheader("Content-Type", "")
        match = re.search(r"boundary=(\S+)", ctype)
        self.boundary = match.group(1).encode() if match else b""
        self.content_type = ctype

    def next_part(self) -> tuple[dict[str, str], bytes]:
        fp = self.response.fp
        line = fp.readline()
        while line.strip() == b"":
            line = fp.readline()
        assert line.strip() == b"--" + self.boundary, line
        headers = {}
        while True:
            line = fp.readline().strip()
            if not line:
                break
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        body = fp.read(int(headers["content-length"]))
        return headers, body

    def close(self) -> None:
        self.conn.close()


class Feeder:
    """Calls ``on_frame`` from its own thread (as the display thread does) until stopped."""

    def __init__(self, sink: WebSink, frames: list[np.ndarray], interval: float = 0.02) -> None:
        self.sink, self.frames, self.interval = sink, frames, interval
        self.calls = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        buffer = np.empty_like(self.frames[0])  # one reused buffer, like the pipeline's
        while not self._stop.is_set():
            buffer[...] = self.frames[self.calls % len(self.frames)]
            self.sink.on_frame(buffer, self.calls / 30)
            self.calls += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)


def colour_frame(bgr: tuple[int, int, int], w: int = 320, h: int = 240) -> np.ndarray:
    return np.full((h, w, 3), bgr, np.uint8)


# -- addresses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("8080", ("127.0.0.1", 8080)),
    (":9000", ("127.0.0.1", 9000)),
    ("0.0.0.0:8080", ("0.0.0.0", 8080)),
    ("raspberrypi.local:80", ("raspberrypi.local", 80)),
    ("[::1]:8081", ("::1", 8081)),
    (" 0 ", ("127.0.0.1", 0)),
])
def test_parse_web_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_web_address(text) == expected


@pytest.mark.parametrize("text", ["", "web", "8080:", "host:", "70000", "-1", "1.5",
                                  "::1:8080", "[::1]8080", "[::1", "a/b:80", "user@host:80"])
def test_bad_web_addresses_are_one_line_errors(text: str) -> None:
    with pytest.raises(MovinetPiError) as e:
        parse_web_address(text)
    assert str(e.value).startswith("--web") and "\n" not in str(e.value)


def test_port_in_use_is_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MovinetPiError, match=rf"port {port} is already in use"):
            WebSink("127.0.0.1", port, log=lambda m: None)


def test_an_address_not_of_this_machine_is_one_line_error() -> None:
    with pytest.raises(MovinetPiError, match=r"192\.0\.2\.1 is not an address of this machine"):
        WebSink("192.0.2.1", 0, log=lambda m: None)  # TEST-NET-1: never local


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        s = WebSink("::1", 0, log=lambda m: None)
    except MovinetPiError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    try:
        assert s.url == f"http://[::1]:{s.port}/"
        assert get(s.url + "healthz")[0] == 200
    finally:
        s.close()


def test_every_interface_without_a_token_warns(logs: list[str]) -> None:
    s = WebSink("0.0.0.0", 0, log=logs.append)
    s.close()
    assert any("without --web-token" in line for line in logs)
    quiet: list[str] = []
    WebSink("0.0.0.0", 0, token="t" * 16, log=quiet.append).close()
    WebSink("127.0.0.1", 0, log=quiet.append).close()
    assert not any("without --web-token" in line for line in quiet)


# -- endpoints ---------------------------------------------------------------------------------
def test_state_follows_steps_and_events(sink: WebSink) -> None:
    assert isinstance(sink, FrameSink)
    base = sink.url
    state = get_json(base + "api/state")
    assert state["latest"] is None and state["events"] == [] and state["model"] == "MoViNet-A0 test"

    sink.on_step(step(1.0, ARM, 5))
    sink.on_step(step(1.2, ARM[:1], 6))  # "shaking hands" leaves the shown list
    state = get_json(base + "api/state")
    latest = state["latest"]
    assert isinstance(latest, dict)
    assert latest["step"] == 6 and [p["label"] for p in latest["top"]] == ["arm wrestling"]
    events = state["events"]
    assert isinstance(events, list)
    by_label = {e["label"]: e for e in events}
    assert by_label["shaking hands"]["type"] == "end"
    assert by_label["arm wrestling"]["type"] == "update"
    assert by_label["arm wrestling"]["start"] == 1.0
    assert set(state["fps"]) >= {"model", "display"}  # type: ignore[arg-type]
    assert isinstance(state["last_step_age_s"], float)


def test_state_says_how_far_back_the_memory_reaches(sink: WebSink) -> None:
    assert get_json(sink.url + "api/state")["memory_s"] is None
    sink.on_step(StepResult(1.0, 30, 5, ARM, 2.5, memory_s=1.2))
    state = get_json(sink.url + "api/state")
    assert state["memory_s"] == 1.2 and state["latest"]["memory_s"] == 1.2  # type: ignore[index]


def test_healthz(sink: WebSink) -> None:
    health = get_json(sink.url + "healthz")
    assert health["status"] == "ok" and health["last_step_age_s"] is None
    assert isinstance(health["uptime_s"], float) and health["uptime_s"] >= 0
    sink.on_step(step(0.0, ARM))
    health = get_json(sink.url + "healthz")
    assert isinstance(health["last_step_age_s"], float) and health["last_step_age_s"] >= 0


def test_healthz_is_503_once_the_model_has_not_stepped_for_a_while(sink: WebSink) -> None:
    """A lost camera or a stuck model: a monitor polling /healthz must see it."""
    sink.on_step(step(0.0, ARM))
    sink.state._last_step_at = time.monotonic() - STALE_AFTER_S - 1  # the last step, 11 s ago
    status, ctype, body = get(sink.url + "healthz")
    health = json.loads(body)
    assert status == 503 and ctype == "application/json"
    assert health["status"] == "stale" and health["last_step_age_s"] > STALE_AFTER_S
    sink.on_step(step(0.2, ARM))  # stepping again
    assert get(sink.url + "healthz")[0] == 200


def test_healthz_turns_stale_ten_seconds_after_the_last_step(sink: WebSink) -> None:
    sink.on_step(step(0.0, ARM))
    sink.state._last_step_at = time.monotonic() - 9.5
    assert get(sink.url + "healthz")[0] == 200
    sink.state._last_step_at = time.monotonic() - 10.5
    status, _, body = get(sink.url + "healthz")
    assert status == 503 and json.loads(body)["stale_after_s"] == 10.0


def test_healthz_is_stale_when_no_step_ever_came(sink: WebSink) -> None:
    # A model that never steps (a camera that never delivered): stale, as after a last step.
    sink.state.started = time.monotonic() - 11
    status, _, body = get(sink.url + "healthz")
    health = json.loads(body)
    assert status == 503 and health["status"] == "stale" and health["last_step_age_s"] is None


def test_head_sends_the_headers_and_no_body_on_the_wire(sink: WebSink) -> None:
    # (http.client throws away a body after HEAD: read the raw bytes.)
    with socket.create_connection(("127.0.0.1", sink.port), timeout=10) as conn:
        conn.sendall(f"HEAD /healthz HTTP/1.0\r\nHost: 127.0.0.1:{sink.port}\r\n\r\n".encode())
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and rest == b""


def test_head_answers_as_get_without_a_body(sink: WebSink) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    try:
        for path, status in (("/healthz", 200), ("/api/state", 200), ("/", 200),
                             ("/stream.mjpg", 405)):
            conn.request("HEAD", path)
            r = conn.getresponse()
            assert (r.status, r.read()) == (status, b""), path
            assert int(r.getheader("Content-Length")) > 0
    finally:
        conn.close()


def test_page_is_self_contained(sink: WebSink) -> None:
    status, ctype, body = get(sink.url)
    page = body.decode()
    assert status == 200 and ctype.startswith("text/html")
    assert "stream.mjpg" in page and "api/state" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from elsewhere
    assert get(sink.url + "nope")[0] == 404


def test_mjpeg_stream_sends_jpeg_parts_of_the_picture(sink: WebSink) -> None:
    red, blue = colour_frame((0, 0, 255)), colour_frame((255, 0, 0))
    viewer = MjpegReader(sink.port)
    feeder = Feeder(sink, [red, blue])
    try:
        assert viewer.response.status == 200
        assert viewer.content_type.startswith("multipart/x-mixed-replace")
        colours = set()
        for _ in range(6):
            headers, body = viewer.next_part()
            assert headers["content-type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
            image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (240, 320, 3)
            colours.add("red" if image[..., 2].mean() > 200 else "blue")
        assert colours == {"red", "blue"}  # frames go on changing, not one picture repeated
    finally:
        viewer.close()
        feeder.stop()


def test_snapshot_and_downscaling_to_max_width(logs: list[str]) -> None:
    s = WebSink("127.0.0.1", 0, max_width=200, log=logs.append)
    feeder = Feeder(s, [colour_frame((0, 255, 0), 640, 480)])
    try:
        status, ctype, body = get(s.url + "snapshot.jpg")
        assert status == 200 and ctype == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (150, 200, 3)
    finally:
        feeder.stop()
        s.close()


def test_no_viewer_means_on_frame_keeps_nothing(sink: WebSink) -> None:
    for i in range(50):
        sink.on_frame(colour_frame((i, i, i)), i / 30)
    assert sink.hub.offered == 50 and sink.hub.generation == 0 and sink.hub.encodes == 0


# -- token -------------------------------------------------------------------------------------
def test_token_is_required_on_every_request(logs: list[str]) -> None:
    s = WebSink("127.0.0.1", 0, token="s3cret", log=logs.append)
    s.server.failure_limit = 1000  # this test fails on purpose many times
    try:
        for path in ("", "api/state", "healthz", "stream.mjpg", "snapshot.jpg"):
            assert get(s.url + path)[0] == 403, path
            assert get(s.url + path + "?token=wrong")[0] == 403, path
            assert get(s.url + path, {"Authorization": "Bearer nope"})[0] == 403, path
        for near in ("", "s3cre", "s3cret1", "S3CRET"):  # exactly the token, nothing like it
            assert get(s.url + "healthz?token=" + near)[0] == 403, near
        assert get(s.url + "healthz", {"Authorization": "Digest s3cret"})[0] == 403
        assert get(s.url + "?token=s3cret")[0] == 200
        assert get(s.url + "api/state?token=s3cret")[0] == 200
        assert get(s.url + "healthz", {"Authorization": "Bearer s3cret"})[0] == 200
        viewer = MjpegReader(s.port, "/stream.mjpg?token=s3cret&t=1")
        assert viewer.response.status == 200
        viewer.close()
    finally:
        s.close()


def raw_get(port: int, path: str, host: str | None, address: str = "127.0.0.1"
            ) -> tuple[int, dict[str, str]]:
    """GET with exactly the Host header given (None: none at all), HTTP/1.1."""
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def test_host_header_must_name_this_server_against_dns_rebinding(sink: WebSink) -> None:
    port = sink.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}",
                 f"[::1]:{port}"):
        assert raw_get(port, "/api/state", host)[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", "127.0.0.1",
                 f"attacker.localhost.example:{port}", ""):
        assert raw_get(port, "/api/state", host)[0] == 421, host
    assert raw_get(port, "/api/state", None)[0] == 200  # HTTP/1.0 style: no browser sends that


def test_with_a_token_any_host_name_works(logs: list[str]) -> None:
    s = WebSink("127.0.0.1", 0, token="s3cret", log=logs.append)
    try:
        assert raw_get(s.port, "/api/state?token=s3cret", f"pi.example:{s.port}")[0] == 200
    finally:
        s.close()


def test_every_interface_accepts_its_own_names(logs: list[str]) -> None:
    s = WebSink("0.0.0.0", 0, log=logs.append)
    try:
        name = socket.gethostname()
        for host in (f"127.0.0.1:{s.port}", f"{name}:{s.port}", f"{name}.local:{s.port}"):
            assert raw_get(s.port, "/healthz", host)[0] == 200, host
        assert raw_get(s.port, "/healthz", f"rebind.example:{s.port}")[0] == 421
    finally:
        s.close()


def test_every_interface_of_ipv6_takes_ipv4_clients_by_their_ipv4_address(
        logs: list[str]) -> None:
    """``--web [::]:PORT`` sees an IPv4 client's request come in on ``::ffff:a.b.c.d``:
    a LAN client naming the Pi by its IPv4 address is served, not answered 421.
    (127.0.0.2 stands for the LAN address: it is this machine's, and not 127.0.0.1.)"""
    try:
        s = WebSink("::", 0, log=logs.append)
    except MovinetPiError as e:
        pytest.skip(f"no IPv6 here: {e}")
    try:
        assert raw_get(s.port, "/healthz", f"127.0.0.2:{s.port}", "127.0.0.2")[0] == 200
        assert raw_get(s.port, "/healthz", f"127.0.0.3:{s.port}", "127.0.0.2")[0] == 421
    finally:
        s.close()
    assert web_access.unmapped("::ffff:192.168.1.5") == "192.168.1.5"
    assert web_access.unmapped("192.168.1.5") == "192.168.1.5"
    assert web_access.unmapped("fe80::1") == "fe80::1"
    assert web_access.unmapped("not an address") == "not an address"


def test_several_tokens_are_refused(logs: list[str]) -> None:
    s = WebSink("127.0.0.1", 0, token="s3cret", log=logs.append)
    try:
        assert get(s.url + "api/state?token=s3cret&token=s3cret")[0] == 400
        assert get(s.url + "api/state?token=wrong&token=s3cret")[0] == 400
        assert get(s.url + "api/state?token=s3cret")[0] == 200
    finally:
        s.close()


def test_short_token_beyond_loopback_is_refused(logs: list[str]) -> None:
    with pytest.raises(MovinetPiError, match="too short") as e:
        WebSink("0.0.0.0", 0, token="x" * 15, log=logs.append)
    assert "\n" not in str(e.value)
    WebSink("127.0.0.1", 0, token="short", log=logs.append).close()  # loopback: fine
    WebSink("0.0.0.0", 0, token="x" * 16, log=logs.append).close()


def test_short_token_beyond_loopback_is_a_one_line_cli_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from movinet_pi.cli import main

    code = main(["--source", str(tmp_path / "none.mp4"), "--headless", "--web",
                 "0.0.0.0:0", "--web-token", "short"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "too short" in err


def test_repeated_failures_from_one_address_get_429(logs: list[str]) -> None:
    s = WebSink("127.0.0.1", 0, token="s3cret", log=logs.append)
    s.server.failure_limit = 3
    try:
        for _ in range(3):
            assert get(s.url + "healthz?token=wrong")[0] == 403
        status, _, _ = get(s.url + "healthz?token=s3cret")  # even the right token now
        assert status == 429
        assert raw_get(s.port, "/healthz?token=wrong", f"127.0.0.1:{s.port}")[1][
            "retry-after"] == "60"
        s.server.failure_window = 0.2
        time.sleep(0.3)
        assert get(s.url + "healthz?token=s3cret")[0] == 200
    finally:
        s.close()


def test_concurrent_streams_are_capped(sink: WebSink) -> None:
    sink.server.max_streams = 2
    viewers = [MjpegReader(sink.port) for _ in range(2)]
    try:
        assert all(v.response.status == 200 for v in viewers)
        assert get(sink.url + "stream.mjpg")[0] == 503
        assert get(sink.url + "api/state")[0] == 200  # other pages still work
    finally:
        for v in viewers:
            v.response.close()
            v.close()
    deadline = time.monotonic() + 10
    i = 0
    while sink.server._playing and time.monotonic() < deadline:
        time.sleep(0.02)
        i += 1
        sink.on_frame(colour_frame((i % 256, 2, 3)), i / 30)  # a write notices the closed viewer
    viewer = MjpegReader(sink.port)
    assert viewer.response.status == 200
    viewer.close()


def test_no_caching_and_no_framing_on_every_answer(sink: WebSink) -> None:
    for path in ("/", "/api/state", "/healthz", "/nothing"):
        _, headers = raw_get(sink.port, path, f"127.0.0.1:{sink.port}")
        assert "no-store" in headers["cache-control"], path
        assert headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
    viewer = MjpegReader(sink.port)
    try:
        headers = {k.lower(): v for k, v in viewer.response.getheaders()}
        assert "no-store" in headers["cache-control"]
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    finally:
        viewer.close()


# -- many viewers ------------------------------------------------------------------------------
def test_many_viewers_share_one_encode_per_frame(
    sink: WebSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four viewers, distinct frames: each picture is encoded at most once, never by on_frame."""
    encoders: list[str] = []
    real_encode = web.FrameHub._encode

    def spying_encode(self: web.FrameHub, frame: np.ndarray) -> bytes:
        encoders.append(threading.current_thread().name)
        return real_encode(self, frame)

    monkeypatch.setattr(web.FrameHub, "_encode", spying_encode)
    viewers = [MjpegReader(sink.port) for _ in range(4)]
    got = [0] * len(viewers)

    def read(n: int) -> None:
        for _ in range(10):
            viewers[n].next_part()
            got[n] += 1

    readers = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(4)]
    for r in readers:
        r.start()
    frames = [colour_frame((i * 8 % 256, 100, 50)) for i in range(32)]
    feeder = Feeder(sink, frames, interval=0.005)
    for r in readers:
        r.join(timeout=30)
    feeder.stop()
    for v in viewers:
        v.close()
    assert got == [10, 10, 10, 10]
    hub = sink.hub
    assert 1 <= hub.encodes <= hub.generation  # at most once per stored picture
    assert len(encoders) == hub.encodes
    assert feeder.thread.name not in encoders  # the display thread never encodes


def test_stalled_viewers_never_block_on_frame_and_close_cuts_them_off(sink: WebSink) -> None:
    """Viewers that connect and never read: on_frame goes on, close() still returns."""
    stalled = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        stalled.append(s)
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (480, 640, 3), np.uint8) for _ in range(4)]  # ~300 kB JPEGs
    done = threading.Event()

    def display_thread() -> None:
        for i in range(300):
            sink.on_frame(noise[i % 4], i / 30)
            if i % 10 == 0:
                threading.Event().wait(0.005)  # give the viewers' threads a chance to run
        done.set()

    t = threading.Thread(target=display_thread, daemon=True)
    t.start()
    assert done.wait(timeout=60), "on_frame blocked behind stalled viewers"
    assert sink.hub.offered == 300 and sink.hub.viewers == 3
    assert sink.hub.encodes <= sink.hub.generation
    sink.close()
    assert not sink.server._streams  # every stream ended
    assert not any(t.is_alive() for t in sink.server.gate._workers)  # and its thread
    for s in stalled:
        s.close()


# -- under load: idle sockets, slow heads ------------------------------------------------------
def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes (10 s at most)."""
    s.settimeout(10)
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data


def test_a_head_not_sent_in_time_is_closed_before_any_token_check(logs: list[str]) -> None:
    server = web.WebServer(web.FrameHub(), web.LiveState(), "127.0.0.1", 0, token="s3cret",
                           head_deadline_s=0.3)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.sendall(b"GET /api/state?token=s3cret HTTP/1.1\r\nHost: x\r\n")  # no end
            assert read_until_closed(slow).startswith(b"HTTP/1.0 408 ")
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            assert read_until_closed(idle).startswith(b"HTTP/1.0 408 ")
        assert server.failure_limit and not server._failures  # no token was ever checked
        with socket.create_connection(("127.0.0.1", server.port)) as big:
            start = b"GET / HTTP/1.1\r\nX-Long: "
            big.sendall(start + b"a" * (web_gate.MAX_HEAD_BYTES + 1 - len(start)))
            assert read_until_closed(big).startswith(b"HTTP/1.0 431 ")
    finally:
        server.close()


def test_beyond_max_waiting_the_longest_waiting_socket_goes(sink: WebSink) -> None:
    sink.server.gate.max_waiting = 4
    idle = [socket.create_connection(("127.0.0.1", sink.port)) for _ in range(6)]
    try:
        status, _, _ = get(sink.url + "healthz")  # its head waits a moment too: a 7th
        assert status == 200
        for s in idle[:3]:  # the three that waited longest made room
            assert read_until_closed(s).startswith(b"HTTP/1.0 503 ")
        idle[-1].sendall(f"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{sink.port}\r\n\r\n"
                         .encode())
        assert read_until_closed(idle[-1]).startswith(b"HTTP/1.0 200 ")  # still waiting
    finally:
        for s in idle:
            s.close()


def test_many_requests_at_once_use_a_bounded_pool_of_threads(sink: WebSink) -> None:
    before = threading.active_count()
    results: list[int] = []
    clients = [threading.Thread(target=lambda: results.append(get(sink.url + "healthz")[0]))
               for _ in range(40)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(30)
    assert results == [200] * 40
    assert 1 <= sink.server.gate.threads <= sink.server.max_streams + web.SPARE_WORKERS
    assert threading.active_count() - before <= sink.server.max_streams + web.SPARE_WORKERS


def threads_of(pid: int) -> int:
    """The threads of a process, as the kernel counts them (every thread, native ones too)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


def test_the_app_with_300_idle_sockets_open_answers_with_under_64_threads(
        carving_ice: Path, a0_model: Path, kinetics_labels_path: Path, tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("counts threads in /proc")
    log = tmp_path / "app.log"
    app = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(carving_ice), "--loop",
         "--headless", "--offline", "--model-path", str(a0_model), "--labels",
         str(kinetics_labels_path), "--web", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"web: open (http://\S+/)", log.read_text())):
            assert app.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # waiting for the app to start, not synchronising with it
        url = found.group(1)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert get(url + "healthz")[0] == 200
        counts = {"running": threads_of(app.pid)}
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(300)]
        took = {}
        for path in ("", "api/state", "healthz"):
            started = time.monotonic()
            status, _, _ = get(url + path)
            took[path or "/"] = time.monotonic() - started
            assert status == 200, path
            counts[f"after {path or '/'}"] = threads_of(app.pid)
        print(f"\nseconds to answer with 300 idle sockets open: {took}; threads: {counts}")
        assert max(took.values()) < 1.0, took
        assert max(counts.values()) < 64, counts
        assert app.poll() is None
    finally:
        for s in idle:
            s.close()
        app.terminate()
        app.wait(30)


# -- a real browser ----------------------------------------------------------------------------
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1280,800",
]


def chromium() -> str:
    return require_tool("chromium", "chromium-browser", package="chromium")


def run_chromium(binary: str, profile: Path, *args: str) -> str:
    done = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def overlay_frame(video: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, small = cap.read()
    cap.release()
    assert ok
    bgr = cv2.resize(small, (640, 480))
    return draw_overlay(bgr, OverlayState(predictions=ARM, model_name="MoViNet-A0 stream int8",
                                          display_fps=30.0, model_fps=5.0, infer_ms=2.4))


def test_browser_shows_the_picture_and_the_labels(arm_wrestling: Path, tmp_path: Path) -> None:
    binary = chromium()
    frame = overlay_frame(arm_wrestling)
    s = WebSink("127.0.0.1", 0, model_name="MoViNet-A0 stream int8", log=lambda m: None)
    s.on_step(step(3.2, ARM, 16))
    feeder = Feeder(s, [frame], interval=0.05)
    try:
        url = s.url
        # the labels are put in the DOM by the page's script, from /api/state
        for budget in (2000, 5000, 10000):
            dom = run_chromium(binary, tmp_path / f"dom{budget}",
                               f"--virtual-time-budget={budget}", "--dump-dom", url)
            top = re.search(r'<ol id="top">(.*?)</ol>', dom, re.S)
            if top and "arm wrestling" in top.group(1):
                break
        assert top is not None, dom[-2000:]
        assert '<span class="label">arm wrestling</span>' in top.group(1)
        assert '<span class="score">97.0 %</span>' in top.group(1)
        assert '<span class="label">shaking hands</span>' in top.group(1)
        events = re.search(r'<ul id="events">(.*?)</ul>', dom, re.S)
        assert events is not None and "arm wrestling" in events.group(1)
        assert '<h1 id="model">MoViNet-A0 stream int8</h1>' in dom

        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        run_chromium(binary, tmp_path / "shot", "--virtual-time-budget=2000",
                     f"--screenshot={SCREENSHOT}", url)
    finally:
        feeder.stop()
        s.close()

    shot = cv2.imread(str(SCREENSHOT))
    assert shot is not None and shot.shape[:2] == (800, 1280)
    assert shot.std() > 20  # not a blank page
    # The picture is the largest non-background region; it must be our frame, overlay and all.
    mask = (np.abs(shot.astype(int) - 17).max(axis=2) > 10).astype(np.uint8)  # page bg #111
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    x, y, w, h, _ = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
    assert w > 400 and abs(w / h - 640 / 480) < 0.05, (x, y, w, h)
    shown = shot[y:y + h, x:x + w]
    expected = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(shown.astype(int) - expected.astype(int)).mean() < 12
    # the overlay's green bar, as drawn by draw_overlay (the page's own bars are blue)
    green = np.all(np.abs(shown.astype(int) - np.array(BAR_COLOUR)) < 40, axis=2)
    assert green[: h // 6, : w // 2].sum() > 500
    assert green.sum() == green[: h // 4].sum()  # only in the overlay's top panel
