"""A real mosquitto broker on 127.0.0.1 and a recording subscriber, for the MQTT tests.

The broker is Debian's ``mosquitto`` binary, started on a free port with a
config file of our own (``listener PORT 127.0.0.1``, anonymous, no
persistence). Missing binary: the tests skip locally but fail in CI (``$CI``
set), where ``.ci/run`` installs it.
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


class Broker:
    """One mosquitto process; ``stop()`` and ``start()`` again keep the port."""

    def __init__(self, executable: str, workdir: Path, port: int | None = None, *,
                 persistent: bool = False) -> None:
        """``persistent``: keep sessions and retained messages across a restart, in
        ``workdir`` (without it a restart forgets everything, as a default broker does)."""
        self.executable = executable
        self.port = port or free_port()
        self.config = workdir / "mosquitto.conf"
        persistence = (f"persistence true\npersistence_location {workdir}/\n" if persistent
                       else "persistence false\n")
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
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


class Subscriber:
    """A paho client subscribed to ``topic`` that records every message it gets.

    It resubscribes on every (re)connect, so it survives a broker restart.
    """

    def __init__(self, port: int, topic: str = "#", *, persistent: bool = False) -> None:
        """``persistent``: a session the broker keeps while we are away (with a
        persistent broker, even across its restart), so nothing published
        meanwhile is missed."""
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
                         bool(message.dup)))
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

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
