"""Home Assistant MQTT discovery (``--ha-discovery``): one device, its entities, its removal.

One retained, device-based discovery message at
``<ha_prefix>/device/<device_id>/config`` declares the device and its
components: the shown action (a sensor with the top-k as attributes), an event
entity firing on action start and end, and diagnostic sensors (inference time,
model rate, and where the Pi says them, CPU temperature and throttling). It
rides on :class:`~movinet_pi.outputs.mqtt.MqttSink`'s connection: announced on
every connect and again whenever Home Assistant says ``online`` on
``<ha_prefix>/status``.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.health import Health, HealthMonitor
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.device import device_id, hardware_model
from movinet_pi.outputs.events import EventFeed
from movinet_pi.outputs.mqtt_target import MqttTarget
from movinet_pi.timing import RateMeter
from movinet_pi.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from movinet_pi.outputs.mqtt import MqttSink

DEFAULT_HA_PREFIX = "homeassistant"


@dataclass(frozen=True)
class HaDevice:
    """What Home Assistant is told about this device, and where discovery lives."""

    id: str
    name: str
    hw: str | None = None
    prefix: str = DEFAULT_HA_PREFIX

    @classmethod
    def detect(cls, name: str | None = None, prefix: str = DEFAULT_HA_PREFIX,
               root: str | os.PathLike[str] | None = None) -> HaDevice:
        """This machine's device: one per machine, whatever the MQTT topic prefix (so an
        upgrade never makes an existing device a new one)."""
        return cls(id=device_id(root), name=name or f"movinet-pi {socket.gethostname()}",
                   hw=hardware_model(root), prefix=prefix)

    @property
    def config_topic(self) -> str:
        return f"{self.prefix}/device/{self.id}/config"

    @property
    def status_topic(self) -> str:
        return f"{self.prefix}/status"


def action_event_topic(target: MqttTarget) -> str:
    return target.topic("action_event")


def diagnostics_topic(target: MqttTarget) -> str:
    return target.topic("diagnostics")


#: The action sensor's state: the shown top-1, or "none".
ACTION_TEMPLATE = "{{ value_json.top[0].label if value_json.top else 'none' }}"
ACTION_ATTRIBUTES_TEMPLATE = "{{ {'top': value_json.top} | tojson }}"


def discovery_config(target: MqttTarget, device: HaDevice,
                     health: Health | None = None) -> dict[str, Any]:
    """The device-based discovery payload. The CPU temperature and throttling
    entities are there only when ``health`` says this machine reports them."""
    uid = device.id
    diagnostics = diagnostics_topic(target)
    dev: dict[str, Any] = {"name": device.name, "identifiers": [uid],
                           "model": "movinet-pi", "manufacturer": "movinet-pi",
                           "sw_version": __version__}
    if device.hw:
        dev["hw_version"] = device.hw
    cmps: dict[str, dict[str, Any]] = {
        "action": {
            "p": "sensor", "name": "Action", "unique_id": f"{uid}_action",
            "state_topic": target.state_topic, "value_template": ACTION_TEMPLATE,
            "json_attributes_topic": target.state_topic,
            "json_attributes_template": ACTION_ATTRIBUTES_TEMPLATE, "icon": "mdi:run",
        },
        "action_event": {
            "p": "event", "name": "Action event", "unique_id": f"{uid}_action_event",
            "state_topic": action_event_topic(target), "event_types": ["start", "end"],
            "icon": "mdi:motion-sensor",
        },
        "inference_ms": {
            "p": "sensor", "name": "Inference time", "unique_id": f"{uid}_inference_ms",
            "state_topic": diagnostics, "value_template": "{{ value_json.infer_ms }}",
            "unit_of_measurement": "ms", "device_class": "duration",
            "state_class": "measurement", "entity_category": "diagnostic",
        },
        "model_fps": {
            "p": "sensor", "name": "Model rate", "unique_id": f"{uid}_model_fps",
            "state_topic": diagnostics, "value_template": "{{ value_json.model_fps }}",
            "unit_of_measurement": "fps", "state_class": "measurement",
            "entity_category": "diagnostic", "icon": "mdi:speedometer",
        },
    }
    if health is not None and health.cpu_temp_c is not None:
        cmps["cpu_temperature"] = {
            "p": "sensor", "name": "CPU temperature", "unique_id": f"{uid}_cpu_temperature",
            "state_topic": diagnostics, "value_template": "{{ value_json.cpu_temp_c }}",
            "unit_of_measurement": "°C", "device_class": "temperature",
            "state_class": "measurement", "entity_category": "diagnostic",
        }
    if health is not None and health.throttled_bits is not None:
        cmps["throttled"] = {
            "p": "binary_sensor", "name": "Throttled", "unique_id": f"{uid}_throttled",
            "state_topic": diagnostics,
            "value_template": "{{ 'ON' if value_json.throttled else 'OFF' }}",
            "json_attributes_topic": diagnostics,
            "json_attributes_template": "{{ {'reasons': value_json.throttle_reasons, "
                                        "'since_boot': value_json.throttled_since_boot} "
                                        "| tojson }}",
            "device_class": "problem", "entity_category": "diagnostic",
        }
    return {
        "dev": dev,
        "o": {"name": "movinet-pi", "sw": __version__},  # "url" is optional: none is published yet
        "cmps": cmps,
        "availability_topic": target.availability_topic,
        "qos": 1,
    }


class HomeAssistant:
    """The Home Assistant side of an :class:`MqttSink`: one of its riders (made by it
    before it connects, fed each step by it, closed by it before it says goodbye).

    On every connect (and whenever Home Assistant publishes ``online`` on
    ``<ha_prefix>/status``) the discovery config goes out, retained. Each step,
    action starts and ends go to ``<prefix>/action_event`` (the event entity:
    ``event_type``, ``label``, ``peak``, ``duration``), and at most every
    ``interval_s`` the diagnostics (inference ms, model fps, health) to
    ``<prefix>/diagnostics``, retained. Nothing here waits for the network:
    :meth:`MqttSink.send` only queues.
    """

    def __init__(self, sink: MqttSink, device: HaDevice, *,
                 health: HealthMonitor | None = None, interval_s: float = 5.0,
                 event_min_s: float = 0.0) -> None:
        self.sink = sink
        self.device = device
        self.health = health
        self.interval_s = interval_s
        self.feed = EventFeed(math.inf, event_min_s)  # starts and ends only
        self.rate = RateMeter(window_s=5.0)
        self._next_diagnostics = 0.0
        self.announcements = 0  # discovery configs handed to the sink (for tests)
        sink.add_announcement(self._announcement)
        sink.subscribe(device.status_topic, self._on_ha_status)

    @classmethod
    def rider(cls, device: HaDevice, health: HealthMonitor | None = None,
              event_min_s: float = 0.0) -> functools.partial[HomeAssistant]:
        """What :class:`MqttSink` takes in ``riders``: it makes the announcement with
        itself when it starts, before it connects."""
        return functools.partial(cls, device=device, health=health, event_min_s=event_min_s)

    def _announcement(self) -> list[tuple[str, Mapping[str, object] | str, bool]]:
        self.announcements += 1
        latest = self.health.latest if self.health is not None else None
        return [(self.device.config_topic,
                 discovery_config(self.sink.target, self.device, latest), True)]

    def _on_ha_status(self, payload: str) -> None:
        if payload.strip() == "online":  # Home Assistant (re)started: announce again
            self.sink.announce()

    def on_step(self, result: StepResult) -> None:
        now = time.monotonic()
        self.rate.tick(now)
        topic = action_event_topic(self.sink.target)
        for change in self.feed.update(result.t, result.top, result.step):
            if change.kind != "update":
                self.sink.send(topic, self._event_payload(change.to_json()))
        if now >= self._next_diagnostics:
            self._next_diagnostics = now + self.interval_s
            latest = self.health.latest if self.health is not None else None
            payload: dict[str, object] = {"infer_ms": round(result.infer_ms, 2),
                                          "model_fps": round(self.rate.rate, 2),
                                          **(latest.to_json() if latest else {})}
            self.sink.send(diagnostics_topic(self.sink.target), payload, retain=True)

    def close(self) -> None:
        """End the open actions (the run is over; the sink sends them, then says goodbye)."""
        topic = action_event_topic(self.sink.target)
        for change in self.feed.finish():
            self.sink.send(topic, self._event_payload(change.to_json()))

    @staticmethod
    def _event_payload(change: Mapping[str, object]) -> dict[str, object]:
        return {"event_type": change["type"], "label": change["label"],
                "peak": change["peak"], "duration": change["duration"], "id": change["id"]}


def remove_device(target: MqttTarget, device: HaDevice, *, password: str | None = None,
                  ca_file: str | os.PathLike[str] | None = None,
                  timeout_s: float = 10.0) -> None:
    """``movinet-pi ha-remove``: empty the retained discovery config (Home Assistant
    then removes the device and its entities) and the retained diagnostics."""
    from movinet_pi.outputs.mqtt_client import new_client

    target = target.for_device(device.id)
    client = new_client(target, password, ca_file)
    where = f"{target.host}:{target.port}"
    try:
        client.connect(target.host, target.port, keepalive=30)
    except OSError as e:
        raise MovinetPiError(f"cannot reach the MQTT broker {where}: {one_line(e)}",
                             exit_code=1) from None
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout_s
        for topic in (device.config_topic, diagnostics_topic(target)):
            info = client.publish(topic, "", qos=1, retain=True)
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise MovinetPiError(f"the MQTT broker {where} did not acknowledge the removal "
                                     f"within {timeout_s:g} s", exit_code=1)
    finally:
        client.disconnect()
        client.loop_stop()
