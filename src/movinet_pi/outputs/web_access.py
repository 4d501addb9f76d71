"""Where the browser view listens and who may use it: host names, tokens, failed guesses,
how many streams.

The checks :class:`movinet_pi.outputs.web.WebServer` makes before it answers: the
Host header must name this server when no token is set (a page elsewhere cannot
reach it through DNS rebinding); a token is one value compared in constant time;
an address that fails ``failure_limit`` times within ``failure_window`` seconds
is refused for a while; at most ``max_streams`` streams play at once; a token
must be :data:`MIN_TOKEN_LENGTH` characters to serve beyond this machine.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
import time

from movinet_pi.errors import MovinetPiError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MIN_TOKEN_LENGTH = 16
#: Streams playing at once; more get 503.
MAX_STREAMS = 8
#: Failed tokens from one address within FAILURE_WINDOW seconds before it gets 429.
FAILURE_LIMIT = 10
FAILURE_WINDOW = 60.0


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


def unmapped(address: str) -> str:
    """An IPv4-mapped IPv6 address (``::ffff:192.168.1.5``: how a socket bound to ``::``
    sees IPv4 clients and its own IPv4 address) as the IPv4 address it is; any other
    address unchanged."""
    try:
        mapped = ipaddress.IPv6Address(address).ipv4_mapped
    except ValueError:
        return address
    return str(mapped) if mapped is not None else address


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.x, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(host: str, token: str | None) -> None:
    """Refuse a guessable token on an address other machines can reach."""
    if token and not is_loopback(host) and len(token) < MIN_TOKEN_LENGTH:
        raise MovinetPiError(
            f"--web-token: too short to serve {host} ({len(token)} characters; "
            f"use at least {MIN_TOKEN_LENGTH}, e.g. from `openssl rand -hex 16`)"
        )


class AccessControl:
    """The access rules, as a base of the server (which sets ``host`` and ``port``)."""

    host: str
    port: int

    def __init__(
        self,
        token: str | None,
        *,
        max_streams: int = MAX_STREAMS,
        failure_limit: int = FAILURE_LIMIT,
        failure_window: float = FAILURE_WINDOW,
    ) -> None:
        self.token = token or None
        self.max_streams = max_streams
        self.failure_limit = failure_limit
        self.failure_window = failure_window
        self._failures: dict[str, list[float]] = {}
        self._failures_lock = threading.Lock()
        self._playing = 0
        self._playing_lock = threading.Lock()

    def host_allowed(self, hosts: list[str], local_address: str) -> bool:
        """Whether a request's Host header names this server (DNS rebinding guard).

        No Host header at all (an HTTP/1.0 client) passes: browsers always send one.
        """
        if not hosts:
            return True
        if len(hosts) != 1:
            return False
        name, port = split_host(hosts[0].strip())
        if name is None or (port if port is not None else 80) != self.port:
            return False
        allowed = {"localhost", "127.0.0.1", "::1", unmapped(local_address).lower(),
                   self.host.lower().strip("[]")}
        if self.host in ("0.0.0.0", "::", ""):
            hostname = socket.gethostname().lower()
            allowed |= {hostname, hostname + ".local"}
        allowed.discard("0.0.0.0")
        allowed.discard("::")
        return name in allowed

    def locked_out(self, client: str) -> bool:
        with self._failures_lock:
            times = self._recent_failures(client)
            return len(times) >= self.failure_limit

    def failed(self, client: str) -> None:
        with self._failures_lock:
            self._recent_failures(client).append(time.monotonic())

    def _recent_failures(self, client: str) -> list[float]:
        since = time.monotonic() - self.failure_window
        times = [t for t in self._failures.get(client, []) if t > since]
        if len(self._failures) > 1000:  # forget addresses seen long ago
            self._failures = {c: ts for c, ts in self._failures.items() if ts and ts[-1] > since}
        self._failures[client] = times
        return times

    def open_stream(self) -> bool:
        """Count one more stream playing; False when ``max_streams`` already play."""
        with self._playing_lock:
            if self._playing >= self.max_streams:
                return False
            self._playing += 1
            return True

    def end_stream(self) -> None:
        with self._playing_lock:
            self._playing -= 1

    def authorized(self, query_tokens: list[str], authorization: str | None) -> bool:
        if self.token is None:
            return True
        offered = list(query_tokens)
        if authorization and authorization.lower().startswith("bearer "):
            offered.append(authorization[7:].strip())
        expected = self.token.encode()
        return any(hmac.compare_digest(t.encode(), expected) for t in offered)


def split_host(value: str) -> tuple[str | None, int | None]:
    """A Host header's (lower-case name, port or None); (None, None) when malformed."""
    name, port_text = value, ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None, None
        name, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return None, None
            port_text = rest[1:]
    elif ":" in value:
        name, _, port_text = value.rpartition(":")
        if ":" in name:
            return None, None
    if port_text and not port_text.isdigit():
        return None, None
    if not name:
        return None, None
    return name.lower().rstrip("."), int(port_text) if port_text else None
