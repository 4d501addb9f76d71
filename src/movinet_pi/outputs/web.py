"""The browser view (``--web [HOST:]PORT``): live picture, top-k and events over HTTP.

Standard library only: :class:`http.server.BaseHTTPRequestHandler` answers, behind
a gate (:mod:`movinet_pi.outputs.web_gate`) that reads every request's head on one
thread, within a few seconds, and hands complete ones to a few handler threads
(``max_streams`` + 4 at most), so idle or slow sockets never cost a thread. It serves

* ``/``             a small self-contained page (no external assets: ``web_page.html``);
* ``/stream.mjpg``  the picture as shown (overlay drawn), ``multipart/x-mixed-replace``;
* ``/snapshot.jpg`` one current picture;
* ``/api/state``    the latest step's JSON, the recent events and rates (the page polls it);
* ``/healthz``      ``{"status": "ok", ...}``, uptime, the last step's age ("stale" and 503
  when the model has not stepped for a while); HEAD answers as GET without the body.

Why it cannot slow the pipeline, however many viewers there are: the display
thread's :meth:`WebSink.on_frame` only copies the newest picture into a
:class:`FrameHub` (at most ``max_fps`` a second, and not at all while nobody
watches) and bumps a generation counter. Viewers' handler threads wait on the
hub's condition for a newer generation; the first one to need it JPEG-encodes
it (downscaled to ``max_width``), everyone else reuses those bytes, so each
picture is encoded at most once whatever the number of viewers. A slow viewer
blocks only its own handler thread and simply misses generations.

With ``token`` set, every request must carry ``?token=...`` (exactly one) or an
``Authorization: Bearer ...`` header (403 otherwise; 400 for several ``token=``); the page
passes its token on to its own requests. An address that fails ``failure_limit`` times within
``failure_window`` seconds gets 429 until the window has passed. Served beyond loopback, a
token must be at least :data:`~movinet_pi.outputs.web_access.MIN_TOKEN_LENGTH` characters.

Without a token, the ``Host`` header must name this server (its bound host, the address the
request came in on, an IPv4-mapped one as the IPv4 address it is, this machine's name,
localhost, 127.0.0.1 or [::1], with the port; no Host header at all passes, browsers always
send one): a page on another site that re-points its DNS name at this machine (DNS
rebinding) gets 421. At most ``max_streams`` streams play at once (503 beyond). Every answer
says ``Cache-Control: no-store`` and may not be framed by another page (``X-Frame-Options:
DENY``, CSP ``frame-ancestors 'none'``).
"""

from __future__ import annotations

import errno
import io
import json
import socket
import socketserver
import threading
from contextlib import contextmanager, suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Callable, Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.health import HealthMonitor
from movinet_pi.log import say
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.web_access import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    FAILURE_LIMIT,
    FAILURE_WINDOW,
    MAX_STREAMS,
    AccessControl,
    check_token,
    is_loopback,
    unmapped,
)
from movinet_pi.outputs.web_gate import HEAD_DEADLINE_S, Gate
from movinet_pi.outputs.web_state import FrameHub, LiveState

#: The shortest --web-token accepted when serving beyond this machine.
BOUNDARY = "movinetpiframe"
#: The page at ``/``: self-contained, no external assets (package data, web_page.html).
PAGE = (resources.files(__package__) / "web_page.html").read_text(encoding="utf-8")


# -- the newest picture, encoded once per generation -----------------------------------------
# -- HTTP ------------------------------------------------------------------------------------
#: Handler threads besides those playing streams (for the page, the state, snapshots).
SPARE_WORKERS = 4


class _Server(socketserver.TCPServer):
    """The listening socket (and what handlers know as their server); the gate serves it."""

    allow_reuse_address = True  # a restart can rebind while old sockets sit in TIME_WAIT
    request_queue_size = 128  # connections the kernel holds until the gate takes them
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

    def setup(self) -> None:
        """The request is (connection, head): the gate has read the head already."""
        conn, head = self.request
        self.connection = conn
        conn.settimeout(self.timeout)
        self.rfile = io.BytesIO(head)
        self.wfile = conn.makefile("wb")

    def log_message(self, format: str, *args: object) -> None:
        pass  # no line per request on the console

    def do_GET(self) -> None:
        web = self.server.web
        parts = urlsplit(self.path)
        try:
            if not self._admitted(web, parts.query):
                return
            route = parts.path
            if route in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif route == "/api/state":
                self._send_json(web.state.snapshot(web.hub))
            elif route == "/healthz":
                health = web.state.health()
                self._send_json(health, HTTPStatus.OK if health["status"] == "ok"
                                else HTTPStatus.SERVICE_UNAVAILABLE)
            elif route == "/stream.mjpg":
                if web.open_stream():
                    try:
                        self._stream()
                    finally:
                        web.end_stream()
                else:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE,
                               b'{"error": "too many viewers"}\n', "application/json")
            elif route == "/snapshot.jpg":
                self._snapshot()
            else:
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}\n', "application/json")
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True  # the viewer went away: nothing to tell anyone

    def _admitted(self, web: WebServer, query: str) -> bool:
        """Host, token and throttle checks; answers the request itself when refusing it."""
        client = unmapped(self.client_address[0])
        if web.token is None:
            local = self.connection.getsockname()[0]
            if not web.host_allowed(self.headers.get_all("Host") or [], local):
                self._error(HTTPStatus.MISDIRECTED_REQUEST,
                            "this server does not serve that host name")
                return False
            return True
        if web.locked_out(client):
            self._error(HTTPStatus.TOO_MANY_REQUESTS, "too many failed tokens: wait",
                        [("Retry-After", str(int(web.failure_window)))])
            return False
        tokens = parse_qs(query, keep_blank_values=True).get("token", [])
        if len(tokens) > 1:
            web.failed(client)
            self._error(HTTPStatus.BAD_REQUEST, "give one token")
            return False
        if not web.authorized(tokens, self.headers.get("Authorization")):
            web.failed(client)
            self._error(HTTPStatus.FORBIDDEN, "forbidden: add ?token=TOKEN")
            return False
        return True

    def _error(self, status: HTTPStatus, message: str,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        self._send(status, (json.dumps({"error": message}) + "\n").encode(),
                   "application/json", headers)

    def _common_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers()
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # (an uptime monitor's check)
        parts = urlsplit(self.path)
        if parts.path != "/stream.mjpg":
            self.do_GET()
        elif self._admitted(self.server.web, parts.query):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "GET the stream", [("Allow", "GET")])

    def _send_json(self, obj: object, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, (json.dumps(obj) + "\n").encode(), "application/json")

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
        self._common_headers()
        self.send_header("Pragma", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()  # (the viewer sees the answer before the first picture)
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


class WebServer(AccessControl):
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
        max_streams: int = MAX_STREAMS,
        failure_limit: int = FAILURE_LIMIT,
        failure_window: float = FAILURE_WINDOW,
        head_deadline_s: float = HEAD_DEADLINE_S,
    ) -> None:
        """``head_deadline_s``: how long a client has to send its request line and
        headers (:mod:`movinet_pi.outputs.web_gate`)."""
        self.hub = hub
        self.state = state
        check_token(host, token)
        AccessControl.__init__(self, token, max_streams=max_streams,
                               failure_limit=failure_limit, failure_window=failure_window)
        self.closing = False
        self._streams: set[socket.socket] = set()
        self._streams_lock = threading.Lock()
        self._started = False
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
        self.gate = Gate(self._server.socket, self._answer, workers=max_streams + SPARE_WORKERS,
                         head_deadline_s=head_deadline_s)

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    @contextmanager
    def tracking(self, conn: socket.socket) -> Iterator[None]:
        """Remember an open stream so :meth:`close` can cut it off."""
        with self._streams_lock:
            self._streams.add(conn)
        try:
            yield
        finally:
            with self._streams_lock:
                self._streams.discard(conn)

    def start(self) -> None:
        self.gate.start()
        self._started = True

    def _answer(self, conn: socket.socket, address: object, head: bytes) -> None:
        """Answer one request whose head the gate has read (on a handler thread)."""
        try:
            _Handler((conn, head), address, self._server)
        except OSError:
            pass  # the client went away
        finally:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()

    def close(self) -> None:
        """Stop serving, end every stream, join the threads; returns within about a second."""
        if self.closing:
            return
        self.closing = True
        self.hub.close()
        with self._streams_lock:
            streams = list(self._streams)
        for conn in streams:  # a viewer stuck in a blocking send gets an error now
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._started:
            self.gate.close(timeout=1.0)
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
    """The ``--web`` output: a :class:`~movinet_pi.outputs.base.FrameSink` serving the browser view.

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
        health: HealthMonitor | None = None,
        event_min_s: float = 0.0,
    ) -> None:
        self.log = log or say
        self.hub = FrameHub(max_fps=max_fps, max_width=max_width, quality=jpeg_quality)
        self.state = LiveState(model_name=model_name, events_kept=events_kept,
                               event_min_s=event_min_s)
        self.state.health_monitor = health
        self.server = WebServer(self.hub, self.state, host, port, token=token)
        if not is_loopback(host) and not token:
            where = f"[{host}]" if ":" in host else host
            self.log(f"web: serving {where}:{self.server.port} without --web-token: anyone who "
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
