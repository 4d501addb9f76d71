"""The MQTT output (``--mqtt URL``): events, state and availability on a broker.

The client (paho-mqtt, an optional extra) publishes from threads of its own: the
pipeline only queues messages, and the broker may come and go. Where it
publishes, and with which password, is :mod:`movinet_pi.outputs.mqtt_target`'s.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from movinet_pi.errors import MovinetPiError
from movinet_pi.health import HealthMonitor
from movinet_pi.log import say
from movinet_pi.outputs.base import Sink, StepResult, json_line
from movinet_pi.outputs.device import device_id as this_device_id
from movinet_pi.outputs.events import EventFeed
from movinet_pi.outputs.mqtt_client import mqtt_client_id, new_client
from movinet_pi.outputs.mqtt_target import MqttTarget, mqtt_password, parse_mqtt_url

#: Extra retained messages sent on every (re)announce: (topic, payload, retain).
Announcement = Callable[[], "list[tuple[str, Mapping[str, object] | str, bool]]"]
#: What rides on the sink's connection (Home Assistant discovery): made with the sink
#: when it starts, before it connects (the start hook, where it registers its
#: announcements and subscriptions), then fed every step and closed before the sink
#: says goodbye.
Rider = Callable[["MqttSink"], Sink]

@dataclass(frozen=True)
class _Message:
    topic: str
    payload: Mapping[str, object] | str
    retain: bool = False


class MqttSink:
    """Publishes events and the current top-k to an MQTT broker (``--mqtt URL``).

    Topics, under the URL's prefix (default ``movinet-pi/<device id>``, so that Pis
    on one broker never share a topic; a prefix the URL names is kept as given):

    * ``<prefix>/events``: one JSON message per event change, as ``--events``
      prints them (start and end always, update at most once per
      ``update_interval_s`` of source time), plus ``"time"`` (Unix seconds);
      QoS 1, not retained;
    * ``<prefix>/state``: what is shown now, as ``--json`` prints it plus
      ``"time"``; retained, so a new subscriber sees it at once. Sent when the
      shown labels change, else at most once per ``state_interval_s``; on a
      clean close an empty ``"top"``;
    * ``<prefix>/availability``: ``online`` (retained) on every connect;
      ``offline`` (retained) on a clean close, and as the last will, which the
      broker sends when it loses the client without a goodbye.

    The pipeline must never wait for the network. ``on_step`` only appends to a
    bounded queue (``queue_size`` events; when full the oldest is dropped and
    counted in ``dropped``; the state is one slot, newest wins) and a thread of
    our own hands them to paho while connected, at most ``window`` (50) not yet
    acknowledged by the broker at a time. So paho holds a few dozen messages at
    most, even when a link dies silently and paho only notices at the keepalive;
    its queue is also capped (``max_queued_messages_set(queue_size)``) as a
    backstop. Nothing grows without bound while the broker is away.

    The broker may be down at start or go away later: paho's network thread
    connects in the background and reconnects with backoff (``reconnect_min_s``
    doubling up to ``reconnect_max_s``); ``log`` gets one line when the broker
    cannot be reached or is lost and one when it is (back) connected, never a
    line per retry. After a reconnect ``online`` and the newest state are sent
    again (a restarted broker may have lost its retained messages), then the
    events kept meanwhile.
    """

    def __init__(
        self,
        target: MqttTarget,
        *,
        password: str | None = None,
        log: Callable[[str], None] | None = None,
        update_interval_s: float = 1.0,
        state_interval_s: float = 1.0,
        queue_size: int = 1000,
        keepalive: int = 30,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        close_timeout_s: float = 3.0,
        client_id: str | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        health: HealthMonitor | None = None,
        device_id: str | None = None,
        riders: Sequence[Rider] = (),
        event_min_s: float = 0.0,
    ) -> None:
        """``health``: its newest reading goes into each state message. ``device_id``:
        the default prefix's (default: this machine's, :mod:`movinet_pi.outputs.device`).
        ``riders``: what rides on this connection (Home Assistant discovery,
        :meth:`movinet_pi.outputs.home_assistant.HomeAssistant.rider`). ``event_min_s``:
        the shortest event (:class:`~movinet_pi.outputs.events.EventTracker`)."""
        if password is not None and target.username is None:
            raise MovinetPiError("an MQTT password is set but the URL names no user: "
                                 "write mqtt://USER@host/prefix")
        if ca_file is not None and not target.tls:
            raise MovinetPiError("--mqtt-ca is for TLS: write the broker as mqtts://...")
        if queue_size < 1:
            raise ValueError("queue_size must be 1 or more")
        if target.prefix is None:
            target = target.for_device(device_id or this_device_id())
        self.target = target
        self.log = log or say
        self.feed = EventFeed(update_interval_s, event_min_s)
        self.state_interval_s = state_interval_s
        self.queue_size = queue_size
        #: At most this many messages in paho's hands, unacknowledged: when the link
        #: dies silently (Wi-Fi gone, no FIN) paho notices only at the keepalive, and
        #: until then the rest wait in our queue, where the oldest are dropped first.
        self.window = min(queue_size, 50)
        self.close_timeout_s = close_timeout_s
        self.client_id = client_id or mqtt_client_id()
        #: Events dropped because the queue was full (oldest first) or paho's was.
        self.dropped = 0
        #: Messages handed to paho while connected.
        self.published = 0

        self._cond = threading.Condition()
        self._queue: deque[_Message] = deque(maxlen=queue_size)
        self._state_pending: _Message | None = None
        self._state_latest: _Message | None = None
        self._state_labels: tuple[str, ...] | None = None
        self._state_t = 0.0
        self._last_step: StepResult | None = None
        self._unacked = 0  # handed to paho, not yet acknowledged by the broker
        self._connected = False
        self._announce = False  # send "online" + the newest state on the next round
        self._stopping = False
        self._closed = False
        self._complained = False  # said "cannot reach" / "lost" since the last connect
        self._ever_connected = False
        self.health = health
        self._announcements: list[Announcement] = []
        self._subscriptions: dict[str, Callable[[str], None]] = {}

        client = new_client(target, password, ca_file, self.client_id)
        self.client = client
        client.will_set(target.availability_topic, "offline", qos=1, retain=True)
        client.max_queued_messages_set(queue_size)
        client.reconnect_delay_set(min_delay=reconnect_min_s,  # type: ignore[arg-type]
                                   max_delay=reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        # The start hook: riders register their announcements and subscriptions now,
        # before the first connect can happen.
        self.riders: list[Sink] = [make(self) for make in riders]
        # No network here: paho's thread resolves and connects, so a broker that
        # is down (or a name that doesn't resolve yet at boot) never stops the start.
        client.connect_async(target.host, target.port, keepalive)
        self._worker = threading.Thread(target=self._publish_loop, name="mqtt-publish",
                                        daemon=True)
        self._worker.start()
        client.loop_start()

    @classmethod
    def from_url(cls, url: str, *, env: Mapping[str, str] | None = None,
                 **options: Any) -> MqttSink:
        """Parse ``url``, take the password from the environment, connect in the background."""
        target = parse_mqtt_url(url)
        return cls(target, password=mqtt_password(env), **options)

    # -- the pipeline's side: quick, no network --------------------------------------------
    def on_step(self, result: StepResult) -> None:
        self._last_step = result
        now = round(time.time(), 3)
        events = [
            _Message(self.target.events_topic, {**c.to_json(), "time": now})
            for c in self.feed.update(result.t, result.top, result.step)
        ]
        state = None
        labels = tuple(p.label for p in result.top)
        t = result.t
        if (labels != self._state_labels or t < self._state_t
                or t >= self._state_t + self.state_interval_s - EventFeed.TOLERANCE_S):
            self._state_labels, self._state_t = labels, t
            health = self.health.latest if self.health is not None else None
            state = _Message(self.target.state_topic,
                             {**result.to_json(), "time": now,
                              **({"health": health.to_json()} if health else {})},
                             retain=True)
        if events or state:
            self._enqueue(events, state)
        for rider in self.riders:
            rider.on_step(result)

    def close(self) -> None:
        """End open events, send what is queued (if connected, for up to
        ``close_timeout_s``), say ``offline`` and disconnect."""
        if self._closed:
            return
        self._closed = True
        for rider in self.riders:  # (their last messages go out before ours)
            rider.close()
        now = round(time.time(), 3)
        ends = [_Message(self.target.events_topic, {**c.to_json(), "time": now})
                for c in self.feed.finish()]
        last = self._last_step  # the retained state says nothing is seen, as a step would
        idle = _Message(self.target.state_topic,
                        {**(replace(last, top=[]).to_json() if last is not None else
                            {"t": self._state_t, "top": []}), "time": now}, retain=True)
        self._enqueue(ends, idle)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._worker.join(self.close_timeout_s)
        with self._cond:
            connected, left = self._connected, len(self._queue)
        if connected:
            info = self.client.publish(self.target.availability_topic, "offline", qos=1,
                                       retain=True)
            # (lost the broker meanwhile: then the last will says offline instead)
            with contextlib.suppress(ValueError, RuntimeError):
                info.wait_for_publish(self.close_timeout_s)
        if left or self.dropped:
            where = "" if connected else f" (broker {self._where} not connected at exit)"
            self.log(f"mqtt: {left + self.dropped} event messages were not sent{where}; "
                     f"up to {self.queue_size} are kept while the broker is away")
        self.client.disconnect()
        self.client.loop_stop()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the broker has acknowledged everything queued (so, while
        connected); False if ``timeout`` ran out first. Not for the pipeline's
        thread: for tests and for callers that can afford to wait."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._has_work() and self._unacked <= 0, timeout)

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    @property
    def queued(self) -> int:
        """Event messages waiting in our queue (at most ``queue_size``)."""
        with self._cond:
            return len(self._queue)

    # -- hooks for the riders (Home Assistant) ----------------------------------------------
    def send(self, topic: str, payload: Mapping[str, object] | str,
             retain: bool = False) -> None:
        """Queue one more message, as an event is queued (quick, no network)."""
        self._enqueue([_Message(topic, payload, retain)], None)

    def add_announcement(self, announcement: Announcement) -> None:
        """``announcement()``'s messages go out on every connect and :meth:`announce`."""
        self._announcements.append(announcement)

    def subscribe(self, topic: str, on_message: Callable[[str], None]) -> None:
        """Subscribe to ``topic`` on every connect; ``on_message(payload)`` on paho's thread."""
        self._subscriptions[topic] = on_message

    def announce(self) -> None:
        """Send the announcements, ``online`` and the newest state again."""
        with self._cond:
            self._announce = True
            self._cond.notify_all()

    # -- internals ----------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def _enqueue(self, events: list[_Message], state: _Message | None) -> None:
        with self._cond:
            for message in events:
                if len(self._queue) == self.queue_size:
                    self.dropped += 1  # the deque's maxlen drops the oldest
                self._queue.append(message)
            if state is not None:
                self._state_pending = self._state_latest = state
            self._cond.notify_all()

    def _has_work(self) -> bool:
        return bool(self._announce or self._queue or self._state_pending)

    def _ready(self) -> bool:
        """The publisher's wake-up condition (called with the lock held)."""
        if not self._connected:
            return self._stopping
        if self._has_work():
            return self._unacked < self.window
        return self._stopping

    def _publish_loop(self) -> None:
        """Our publisher thread: hands messages to paho while connected, at most
        ``window`` unacknowledged at a time; the rest wait in our bounded queue."""
        while True:
            with self._cond:
                self._cond.wait_for(self._ready)
                if not self._connected or not self._has_work():
                    return  # stopping (close() tells what was not sent)
                room = self.window - self._unacked
                batch: list[_Message] = []
                if self._announce:
                    self._announce = False
                    for announcement in self._announcements:
                        batch.extend(_Message(*m) for m in announcement())
                    batch.append(_Message(self.target.availability_topic, "online", True))
                    if self._state_latest is not None and self._state_pending is None:
                        batch.append(self._state_latest)
                while self._queue and len(batch) < room:
                    batch.append(self._queue.popleft())
                if self._state_pending is not None and len(batch) < room:
                    batch.append(self._state_pending)
                    self._state_pending = None
                self._unacked += len(batch)
                self._cond.notify_all()  # for flush()
            for message in batch:
                self._publish(message)

    def _publish(self, message: _Message) -> None:
        payload = message.payload if isinstance(message.payload, str) else json_line(
            message.payload)
        try:
            info = self.client.publish(message.topic, payload, qos=1, retain=message.retain)
            failed = info.rc == self._rc_queue_size
        except (ValueError, OSError) as e:  # pragma: no cover - a topic we checked, a bug
            self.log(f"mqtt: cannot publish to {message.topic}: {e}")
            failed = True
        with self._cond:
            # NO_CONN (lost the broker just now) still keeps a QoS 1 message in paho,
            # sent on reconnect; QUEUE_SIZE means paho's capped queue is full.
            if failed:
                self.dropped += 1
                self._unacked -= 1
                self._cond.notify_all()
            else:
                self.published += 1

    @property
    def _rc_queue_size(self) -> int:
        from paho.mqtt.enums import MQTTErrorCode

        return int(MQTTErrorCode.MQTT_ERR_QUEUE_SIZE)

    # paho callbacks: on paho's network thread
    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        with self._cond:
            self._unacked -= 1
            self._cond.notify_all()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            if not self._complained:
                self._complained = True
                self.log(f"mqtt: broker {self._where} refused the connection: {reason_code}; "
                         "retrying in the background")
            return
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        with self._cond:
            self._connected = True
            self._announce = True
            self._cond.notify_all()
        if self._complained or not self._ever_connected:
            self.log(f"mqtt: connected to {self.target.url}"
                     + (" again" if self._ever_connected else ""))
        self._complained = False
        self._ever_connected = True

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        handler = self._subscriptions.get(message.topic)
        if handler is not None:
            handler(message.payload.decode("utf-8", "replace"))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        with self._cond:
            self._connected = False
            stopping = self._stopping
            self._cond.notify_all()
        if not stopping and not self._complained:
            self._complained = True
            why = "" if str(reason_code) == "Unspecified error" else f" ({reason_code})"
            self.log(f"mqtt: lost the broker {self._where}{why}; reconnecting in "
                     f"the background, keeping up to {self.queue_size} events")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        with self._cond:
            stopping = self._stopping
        if not stopping and not self._complained:
            self._complained = True
            self.log(f"mqtt: cannot reach the broker {self._where}; retrying in the "
                     f"background, keeping up to {self.queue_size} events")
