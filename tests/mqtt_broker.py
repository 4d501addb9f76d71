"""A real mosquitto broker on 127.0.0.1 and a recording subscriber, for the MQTT tests.

The broker is Debian's ``mosquitto`` binary, started on a free port with a
config file of our own (``listener PORT 127.0.0.1``, anonymous, no
persistence; optionally TLS with a certificate from a private CA made here with
openssl, and a login from a ``mosquitto_passwd`` file). Missing binary: the
tests skip locally but fail in CI (``$CI`` set), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tools import require_tool

#: How long to wait for something that should happen (not a timing assertion:
#: the happy path returns as soon as it happens).
PATIENCE_S = 15.0


def find_mosquitto() -> str:
    """The mosquitto binary, or skip (fail in CI)."""
    return require_tool("mosquitto", package="mosquitto",
                        also=("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def make_private_ca(directory: Path) -> tuple[Path, Path, Path]:
    """With openssl: a CA of our own and a certificate it signed for 127.0.0.1 and
    localhost. Returns (CA certificate, server certificate, server key), all PEM."""
    openssl = require_tool("openssl", package="openssl")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
        "-out", str(ca_cert), "-days", "2", "-subj", "/CN=movinet-pi test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca_cert, cert, key


def make_password_file(directory: Path, user: str, password: str) -> Path:
    """A mosquitto password file (hashed by ``mosquitto_passwd``) with one login."""
    tool = require_tool("mosquitto_passwd", package="mosquitto",
                        also=("/usr/sbin/mosquitto_passwd",))
    path = directory / "passwords"
    subprocess.run([tool, "-c", "-b", str(path), user, password], check=True,
                   capture_output=True, timeout=60)
    path.chmod(0o600)
    return path


class Broker:
    """One mosquitto process; ``stop()`` and ``start()`` again keep the port."""

    def __init__(self, executable: str, workdir: Path, port: int | None = None, *,
                 persistent: bool = False, tls: tuple[Path, Path] | None = None,
                 password_file: Path | None = None) -> None:
        """``persistent``: keep sessions and retained messages across a restart, in
        ``workdir`` (without it a restart forgets everything, as a default broker does).
        ``tls``: (certificate, key) files: the listener speaks TLS only. ``password_file``
        (made by ``mosquitto_passwd``): a login is required."""
        self.executable = executable
        self.port = port or free_port()
        self.config = workdir / "mosquitto.conf"
        persistence = (f"persistence true\npersistence_location {workdir}/\n" if persistent
                       else "persistence false\n")
        secure = f"certfile {tls[0]}\nkeyfile {tls[1]}\n" if tls else ""
        login = (f"allow_anonymous false\npassword_file {password_file}\n" if password_file
                 else "allow_anonymous true\n")
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + secure + login
            + persistence
            # as root, mosquitto would switch to the user `mosquitto`, who cannot
            # write in our temporary directory: stay who we are
            + f"user {getpass.getuser()}\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self.log_path = workdir / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.executable, "-c", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + PATIENCE_S
        while True:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise AssertionError(
                    f"mosquitto exited with {code}:\n{self.log_path.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"mosquitto did not listen on {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the broker (it closes every client connection)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck broker
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class Received:
    topic: str
    payload: str
    retain: bool
    dup: bool = False  # a QoS 1 redelivery (after a reconnect): seen before
    qos: int = 0  # as delivered (we subscribe at QoS 1)


class Subscriber:
    """A paho client subscribed to ``topic`` that records every message it gets.

    It resubscribes on every (re)connect, so it survives a broker restart.
    """

    def __init__(self, port: int, topic: str = "#", *, persistent: bool = False,
                 ca: Path | None = None, login: tuple[str, str] | None = None) -> None:
        """``persistent``: a session the broker keeps while we are away (with a
        persistent broker, even across its restart), so nothing published
        meanwhile is missed. ``ca``: speak TLS, trusting that CA; ``login``: (user,
        password)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.topic = topic
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = False
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-subscriber-{os.getpid()}-{id(self):x}",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        if login is not None:
            self.client.username_pw_set(*login)
        self.client.connect_async("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        self.wait_subscribed()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, rcs: Any, props: Any) -> None:
        with self._cond:
            self._subscribed = True
            self._cond.notify_all()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        with self._cond:
            self._subscribed = False

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._cond:
            self.messages.append(
                Received(message.topic, message.payload.decode("utf-8"), bool(message.retain),
                         bool(message.dup), int(message.qos)))
            self._cond.notify_all()

    def wait_subscribed(self) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._subscribed, PATIENCE_S):
                raise AssertionError("the test subscriber never subscribed")

    def wait_for(self, condition: Callable[[list[Received]], bool], what: str,
                 timeout: float = PATIENCE_S) -> list[Received]:
        """Wait until ``condition(messages)`` holds; return a copy of the messages."""
        with self._cond:
            if not self._cond.wait_for(lambda: condition(self.messages), timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self.messages}")
            return list(self.messages)

    def wait_retained(self) -> list[Received]:
        """Wait until the retained messages have all arrived: the broker sends them when we
        subscribe, so a marker we publish after them arrives after them (no sleeping)."""
        marker = f"test-marker/{self.client._client_id.decode()}"
        self.client.publish(marker, "", qos=1)
        messages = self.wait_for(lambda ms: any(m.topic == marker for m in ms), "our marker")
        return [m for m in messages if m.topic != marker]

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

