"""The browser view (``--web [HOST:]PORT``): live picture, top-k and events over HTTP.

Standard library only: a :class:`http.server.ThreadingHTTPServer` on a daemon
thread serves

* ``/``             a small self-contained page (no external assets);
* ``/stream.mjpg``  the picture as shown (overlay drawn), ``multipart/x-mixed-replace``;
* ``/snapshot.jpg`` one current picture;
* ``/api/state``    the latest step's JSON, the recent events and rates (the page polls it);
* ``/healthz``      ``{"status": "ok", ...}`` with uptime and the age of the last model step.

Why it cannot slow the pipeline, however many viewers there are: the display
thread's :meth:`WebSink.on_frame` only copies the newest picture into a
:class:`FrameHub` (at most ``max_fps`` a second, and not at all while nobody
watches) and bumps a generation counter. Viewers' handler threads wait on the
hub's condition for a newer generation; the first one to need it JPEG-encodes
it (downscaled to ``max_width``), everyone else reuses those bytes, so each
picture is encoded at most once whatever the number of viewers. A slow viewer
blocks only its own handler thread and simply misses generations.

With ``token`` set, every request must carry ``?token=...`` or an
``Authorization: Bearer ...`` header (403 otherwise); the page passes the token
it was opened with on to its own requests.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import socket
import socketserver
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager, suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.events import EventTracker
from movinet_pi.log import say
from movinet_pi.outputs import StepResult
from movinet_pi.timing import RateMeter

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BOUNDARY = "movinetpiframe"


# -- address ----------------------------------------------------------------------------------
def parse_web_address(text: str) -> tuple[str, int]:
    """``PORT``, ``:PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port).

    The host defaults to 127.0.0.1 (this machine only); ``0.0.0.0`` serves every
    interface. Port 0 asks the system for a free port.
    """
    raw = text.strip()
    if not raw:
        raise MovinetPiError("--web: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080, got ''")
    host, port_text = DEFAULT_HOST, raw
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0 or not raw[end + 1:].startswith(":"):
            raise MovinetPiError(f"--web: expected [IPv6]:PORT, e.g. [::1]:8080, got {text!r}")
        host, port_text = raw[1:end], raw[end + 2:]
    elif ":" in raw:
        host, _, port_text = raw.rpartition(":")
        if ":" in host:
            raise MovinetPiError(
                f"--web: put an IPv6 address in brackets, e.g. [::1]:8080, got {text!r}"
            )
        host = host or DEFAULT_HOST
    if not port_text.isdigit():
        raise MovinetPiError(
            f"--web: expected [HOST:]PORT with a port number, e.g. 8080, got {text!r}"
        )
    port = int(port_text)
    if port > 65535:
        raise MovinetPiError(f"--web: port must be 0..65535, got {port}")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise MovinetPiError(f"--web: {host!r} is not a host name or address")
    return host, port


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.x, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the newest picture, encoded once per generation -----------------------------------------
class FrameHub:
    """The newest picture, shared by every viewer and JPEG-encoded lazily, once.

    ``offer`` (the display thread) never waits for a viewer: it copies the
    picture and bumps ``generation`` under a short lock. ``wait_jpeg`` (viewer
    threads) waits for a generation newer than the caller's and encodes it if
    nobody has yet; ``encodes`` counts the encodes, at most one per generation.
    While nobody watches (no :meth:`viewing` context open), ``offer`` keeps
    nothing, so an idle web view costs the display thread one comparison.
    """

    def __init__(
        self,
        max_fps: float | None = 15.0,
        max_width: int = 960,
        quality: int = 80,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval = 1.0 / max_fps if max_fps else 0.0
        self.max_width = max_width
        self.quality = quality
        self.clock = clock
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._last_store = -float("inf")
        self._jpeg = b""
        self._jpeg_gen = 0
        self._viewers = 0
        self._closed = False
        self.generation = 0
        self.offered = 0
        self.encodes = 0

    @property
    def viewers(self) -> int:
        return self._viewers

    @contextmanager
    def viewing(self) -> Iterator[None]:
        """Mark a viewer as present for the duration (so frames get kept)."""
        with self._cond:
            self._viewers += 1
        try:
            yield
        finally:
            with self._cond:
                self._viewers -= 1

    def offer(self, bgr: np.ndarray) -> bool:
        """Keep a copy of ``bgr`` as the newest picture if a viewer wants it; True if kept."""
        self.offered += 1
        if self._viewers == 0 or self._closed:  # racy read on purpose: a miss costs one frame
            return False
        now = self.clock()
        if now - self._last_store < self.min_interval:
            return False
        frame = np.array(bgr, dtype=np.uint8, copy=True)  # the caller reuses its buffer
        with self._cond:
            self._frame = frame
            self._last_store = now
            self.generation += 1
            self._cond.notify_all()
        return True

    def wait_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest picture's (generation, JPEG) once it is newer than ``after``.

        None on timeout or when the hub is closed.
        """
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._closed or self.generation > after, timeout
            ) or self._closed:
                return None
            gen, frame = self.generation, self._frame
            if self._jpeg_gen >= gen:
                return self._jpeg_gen, self._jpeg
        assert frame is not None
        with self._encode_lock:  # one encoder at a time: the others then reuse its bytes
            with self._cond:
                if self._jpeg_gen >= gen:
                    return self._jpeg_gen, self._jpeg
            data = self._encode(frame)
            with self._cond:
                if gen > self._jpeg_gen:
                    self._jpeg_gen, self._jpeg = gen, data
                self.encodes += 1
            return gen, data

    def latest_jpeg(self) -> bytes | None:
        """Whatever picture there is, however old (None if there never was one)."""
        got = self.wait_jpeg(0, 0.0)
        return got[1] if got else None

    def _encode(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape[:2]
        if w > self.max_width:
            size = (self.max_width, max(1, round(h * self.max_width / w)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - only for images cv2 cannot encode at all
            raise ValueError(f"cannot JPEG-encode a {frame.shape} {frame.dtype} picture")
        return buf.tobytes()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# -- what /api/state reports -------------------------------------------------------------------
class LiveState:
    """The latest step, recent events and rates; written by the sink, read by handlers."""

    def __init__(self, model_name: str = "", events_kept: int = 20) -> None:
        self.model_name = model_name
        self.events_kept = events_kept
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._latest: StepResult | None = None
        self._last_step_at: float | None = None
        self._steps = 0
        self._tracker = EventTracker()
        self._events: OrderedDict[int, dict[str, object]] = OrderedDict()
        self.model_rate = RateMeter()
        self.display_rate = RateMeter()

    def on_step(self, result: StepResult) -> None:
        now = time.monotonic()
        with self._lock:
            self._latest = result
            if result.model:
                self.model_name = result.model  # a live switch changes it mid-run
            self._last_step_at = now
            self._steps += 1
            self.model_rate.tick(now)
            for change in self._tracker.update(result.t, result.top):
                self._events[change.event.id] = change.to_json()
                self._events.move_to_end(change.event.id)
            while len(self._events) > self.events_kept:
                self._events.popitem(last=False)

    def on_frame(self) -> None:
        with self._lock:
            self.display_rate.tick()

    def last_step_age(self) -> float | None:
        last = self._last_step_at
        return None if last is None else round(time.monotonic() - last, 3)

    def health(self) -> dict[str, object]:
        return {
            "status": "ok",
            "uptime_s": round(time.monotonic() - self.started, 3),
            "last_step_age_s": self.last_step_age(),
            "steps": self._steps,
        }

    def snapshot(self, hub: FrameHub) -> dict[str, object]:
        with self._lock:
            latest = self._latest.to_json() if self._latest is not None else None
            events = list(reversed(self._events.values()))  # newest first
            model_fps, display_fps = self.model_rate.rate, self.display_rate.rate
            steps = self._steps
        return {
            "model": self.model_name,
            "latest": latest,
            "events": events,
            "fps": {"model": round(model_fps, 2), "display": round(display_fps, 2),
                    "stream_max": round(1.0 / hub.min_interval, 2) if hub.min_interval else None},
            "steps": steps,
            "viewers": hub.viewers,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "last_step_age_s": self.last_step_age(),
        }


# -- HTTP ------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() ends streams itself, then joins them with a timeout
    allow_reuse_address = True  # a restart can rebind while old sockets sit in TIME_WAIT
    web: WebServer

    def server_bind(self) -> None:
        # HTTPServer's own looks up the host's full DNS name, which can hang for
        # seconds on a Pi without DNS; nothing here needs that name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "movinet-pi"
    #: A viewer that stops reading for this long is dropped (its socket times out).
    timeout = 20

    def log_message(self, format: str, *args: object) -> None:
        pass  # no line per request on the console

    def do_GET(self) -> None:
        web = self.server.web
        parts = urlsplit(self.path)
        if not web.authorized(parse_qs(parts.query).get("token", []),
                              self.headers.get("Authorization")):
            self._send(HTTPStatus.FORBIDDEN, b'{"error": "forbidden: add ?token=TOKEN"}\n',
                       "application/json")
            return
        route = parts.path
        try:
            if route in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif route == "/api/state":
                self._send_json(web.state.snapshot(web.hub))
            elif route == "/healthz":
                self._send_json(web.state.health())
            elif route == "/stream.mjpg":
                self._stream()
            elif route == "/snapshot.jpg":
                self._snapshot()
            else:
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}\n', "application/json")
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True  # the viewer went away: nothing to tell anyone

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, obj: object) -> None:
        self._send(HTTPStatus.OK, (json.dumps(obj) + "\n").encode(), "application/json")

    def _snapshot(self) -> None:
        web = self.server.web
        with web.hub.viewing():
            got = web.hub.wait_jpeg(web.hub.generation, 2.0)
        data = got[1] if got else web.hub.latest_jpeg()
        if data is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b'{"error": "no picture yet"}\n',
                       "application/json")
        else:
            self._send(HTTPStatus.OK, data, "image/jpeg")

    def _stream(self) -> None:
        web = self.server.web
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store, private")
        self.send_header("Pragma", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        with web.tracking(self.connection), web.hub.viewing():
            gen = 0
            while not web.closing:
                got = web.hub.wait_jpeg(gen, 1.0)
                if got is None:
                    continue
                gen, data = got
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n"
                )
                self.wfile.flush()
        self.close_connection = True


class WebServer:
    """The HTTP server on its daemon thread; serves a :class:`FrameHub` and a :class:`LiveState`.

    Binding happens in the constructor, so a port in use or a forbidden port is
    a :class:`MovinetPiError` right away; :meth:`start` begins serving.
    """

    def __init__(
        self,
        hub: FrameHub,
        state: LiveState,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
    ) -> None:
        self.hub = hub
        self.state = state
        self.token = token or None
        self.closing = False
        self._streams: dict[socket.socket, threading.Thread] = {}
        self._streams_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        server_class = _Server
        if ":" in host:
            server_class = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        try:
            self._server = server_class((host, port), _Handler)
        except socket.gaierror as e:
            raise MovinetPiError(f"--web: cannot resolve host {host!r} ({e.strerror})") from None
        except OSError as e:
            raise MovinetPiError(_bind_message(host, port, e)) from None
        self._server.web = self
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def authorized(self, query_tokens: list[str], authorization: str | None) -> bool:
        if self.token is None:
            return True
        offered = list(query_tokens)
        if authorization and authorization.lower().startswith("bearer "):
            offered.append(authorization[7:].strip())
        expected = self.token.encode()
        return any(hmac.compare_digest(t.encode(), expected) for t in offered)

    @contextmanager
    def tracking(self, conn: socket.socket) -> Iterator[None]:
        """Remember an open stream so :meth:`close` can cut it off."""
        with self._streams_lock:
            self._streams[conn] = threading.current_thread()
        try:
            yield
        finally:
            with self._streams_lock:
                self._streams.pop(conn, None)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="web", daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, end every stream, join the thread; returns within about a second."""
        if self.closing:
            return
        self.closing = True
        self.hub.close()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=2.0)
        with self._streams_lock:
            streams = dict(self._streams)
        for conn in streams:  # a viewer stuck in a blocking send gets an error now
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 1.0
        for thread in streams.values():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._server.server_close()


def _bind_message(host: str, port: int, e: OSError) -> str:
    where = f"--web {host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return f"{where}: port {port} is already in use (pick another, e.g. --web {port + 1})"
    if e.errno == errno.EACCES:
        return (f"{where}: permission denied (ports below 1024 need root; use e.g. "
                "--web 8080)")
    if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return (f"{where}: {host} is not an address of this machine (use 127.0.0.1, "
                "0.0.0.0 for every interface, or one of its own addresses)")
    return f"{where}: cannot listen: {e.strerror or e}"


class WebSink:
    """The ``--web`` output: a :class:`~movinet_pi.outputs.FrameSink` serving the browser view.

    Starts serving in the constructor (bind errors are :class:`MovinetPiError`).
    ``on_step`` runs on the inference thread and ``on_frame`` on the display
    thread; both only update in-memory state under short locks.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        model_name: str = "",
        max_fps: float | None = 15.0,
        max_width: int = 960,
        jpeg_quality: int = 80,
        events_kept: int = 20,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.log = log or say
        self.hub = FrameHub(max_fps=max_fps, max_width=max_width, quality=jpeg_quality)
        self.state = LiveState(model_name=model_name, events_kept=events_kept)
        self.server = WebServer(self.hub, self.state, host, port, token=token)
        if not is_loopback(host) and not token:
            self.log(f"web: serving {host}:{self.server.port} without --web-token: anyone who "
                     "can reach this machine can watch the camera")
        self.server.start()
        self.log(f"web: open {self.url}" + ("?token=..." if token else ""))

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def on_step(self, result: StepResult) -> None:
        self.state.on_step(result)

    def on_frame(self, bgr: np.ndarray, t: float) -> None:
        self.state.on_frame()
        self.hub.offer(bgr)

    def close(self) -> None:
        self.server.close()




# -- the page ---------------------------------------------------------------------------------
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>movinet-pi</title>
<style>
  :root { color-scheme: dark; }
  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #111; color: #eee; }
  main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; align-items: flex-start; }
  #view { flex: 3 1 480px; min-width: 0; }
  #view img { display: block; width: 100%; height: auto; background: #000; border-radius: 4px; }
  aside { flex: 1 1 260px; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  h2 { font-size: 14px; margin: 16px 0 6px; color: #aaa; text-transform: uppercase; }
  ol, ul { list-style: none; margin: 0; padding: 0; }
  .pred { margin: 0 0 6px; }
  .bar { height: 8px; background: #333; border-radius: 4px; overflow: hidden; }
  .bar > div { height: 100%; background: #4a9eff; }  /* not the overlay's green */
  .row { display: flex; justify-content: space-between; gap: 8px; }
  .event { padding: 4px 0; border-bottom: 1px solid #222; }
  .event.active .label::before { content: "\\25CF "; color: #4a9eff; }
  .muted { color: #888; font-size: 13px; }
  #status.down { color: #ffaa3c; }
</style>
</head>
<body>
<main>
  <div id="view"><img id="stream" alt="live picture"></div>
  <aside>
    <h1 id="model">movinet-pi</h1>
    <div id="status" class="muted">connecting...</div>
    <h2>Now</h2>
    <ol id="top"><li class="muted">no action</li></ol>
    <h2>Events</h2>
    <ul id="events"><li class="muted">none yet</li></ul>
  </aside>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const img = document.getElementById("stream");
function startStream() { img.src = "stream.mjpg" + q + (q ? "&" : "?") + "t=" + Date.now(); }
img.addEventListener("error", () => setTimeout(startStream, 2000));
startStream();

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function pct(x) { return (100 * x).toFixed(1) + " %"; }
function secs(x) { return x === null || x === undefined ? "" : x.toFixed(1) + " s"; }

function render(s) {
  document.getElementById("model").textContent = s.model || "movinet-pi";
  const latest = s.latest;
  const age = s.last_step_age_s;
  const status = document.getElementById("status");
  status.className = "muted";
  status.textContent = "model " + s.fps.model.toFixed(1) + " fps, display "
    + s.fps.display.toFixed(1) + " fps" + (latest ? ", infer " + latest.infer_ms.toFixed(1)
    + " ms, step " + latest.step : "") + (age !== null && age > 2 ? ", last step "
    + age.toFixed(1) + " s ago" : "");
  const top = document.getElementById("top");
  top.replaceChildren();
  if (!latest || latest.top.length === 0) top.append(el("li", "muted", "no action"));
  for (const p of (latest ? latest.top : [])) {
    const li = el("li", "pred");
    const row = el("div", "row");
    row.append(el("span", "label", p.label), el("span", "score", pct(p.score)));
    const bar = el("div", "bar"), fill = el("div");
    fill.style.width = Math.max(0, Math.min(100, 100 * p.score)) + "%";
    bar.append(fill);
    li.append(row, bar);
    top.append(li);
  }
  const events = document.getElementById("events");
  events.replaceChildren();
  if (s.events.length === 0) events.append(el("li", "muted", "none yet"));
  for (const e of s.events) {
    const active = e.type !== "end";
    const li = el("li", "event" + (active ? " active" : ""));
    const row = el("div", "row");
    row.append(el("span", "label", e.label), el("span", "muted", "peak " + pct(e.peak)));
    li.append(row, el("div", "muted", "from " + secs(e.start)
      + (active ? ", ongoing " + secs(e.duration) : " to " + secs(e.end))));
    events.append(li);
  }
}

async function poll() {
  try {
    const r = await fetch("api/state" + q, {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (err) {
    const status = document.getElementById("status");
    status.className = "down";
    status.textContent = "disconnected (" + err.message + "), retrying";
  }
  setTimeout(poll, 500);
}
poll();
</script>
</body>
</html>
"""
