"""Home Assistant MQTT discovery (``--ha-discovery``), against a real mosquitto on 127.0.0.1.

Two "Pis" are two fake trees (``$MOVINET_PI_SYSFS``): different serials, so
different device ids, and each its own CPU temperature and throttling bits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from mqtt_broker import (
    Broker,
    Received,
    Subscriber,
    wait_until,
)

from movinet_pi import cli
from movinet_pi.health import SYSFS_ENV, TEMP_FILE, THROTTLED_FILE, Health, HealthMonitor
from movinet_pi.model.predictions import Prediction
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.device import HW_MODEL_FILE, device_id, machine_id
from movinet_pi.outputs.home_assistant import HaDevice, HomeAssistant, discovery_config
from movinet_pi.outputs.mqtt import MqttSink
from movinet_pi.outputs.mqtt_target import parse_mqtt_url
from movinet_pi.outputs.open import build_outputs, close_all
from movinet_pi.outputs.web_state import FrameHub, LiveState

ROOT = Path(__file__).resolve().parents[1]

#: The keys Home Assistant requires, from its MQTT documentation
#: (home-assistant.io/integrations/mqtt/, "Device discovery payload", and each
#: platform's page: sensor.mqtt, binary_sensor.mqtt, event.mqtt).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    # a device-based payload: the device and origin mappings are mandatory at the root,
    # the components go under cmps
    "root": ("dev", "o", "cmps"),
    # a device needs identifiers (or connections); we also always name it
    "dev": ("identifiers", "name"),
    # origin: name is required (sw and url optional)
    "o": ("name",),
    # every component: its platform, and unique_id for entity-based components
    "component": ("p", "unique_id"),
    "sensor": ("state_topic",),
    "binary_sensor": ("state_topic",),
    "event": ("state_topic", "event_types"),
}


def fake_pi(root: Path, serial: str, temp_milli: int = 52312, throttled: str = "0") -> Path:
    for name, text in (("sys/firmware/devicetree/base/serial-number", serial + "\0"),
                       (HW_MODEL_FILE, "Raspberry Pi 5 Model B Rev 1.0\0"),
                       (TEMP_FILE, f"{temp_milli}\n"), (THROTTLED_FILE, f"{throttled}\n")):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def check_required_keys(config: dict[str, Any]) -> None:
    for key in REQUIRED_KEYS["root"]:
        assert key in config, key
    for key in REQUIRED_KEYS["dev"]:
        assert config["dev"].get(key), key
    for key in REQUIRED_KEYS["o"]:
        assert config["o"].get(key), key
    for name, component in config["cmps"].items():
        for key in REQUIRED_KEYS["component"] + REQUIRED_KEYS[component["p"]]:
            assert component.get(key), f"{name} lacks {key}"


def action_state(state: dict[str, Any]) -> str:
    """What Home Assistant renders from ACTION_TEMPLATE (the same expression, in Python)."""
    return state["top"][0]["label"] if state["top"] else "none"


# -- without a broker ---------------------------------------------------------------------
def test_device_ids_are_stable_and_differ_per_pi(tmp_path: Path) -> None:
    one, two = fake_pi(tmp_path / "one", "10000000abcdef01"), fake_pi(tmp_path / "two", "2")
    assert machine_id(one) == "10000000abcdef01"
    assert device_id(one) == device_id(one)  # stable across restarts
    assert device_id(one) != device_id(two)
    assert device_id(one).startswith("movinet_pi_") and "abcdef01" not in device_id(one)
    bare = tmp_path / "bare"  # no serial: /etc/machine-id
    (bare / "etc").mkdir(parents=True)
    (bare / "etc/machine-id").write_text("0123456789abcdef\n")
    assert machine_id(bare) == "0123456789abcdef"
    assert machine_id(tmp_path / "nothing")  # the host name, never a failure


def test_the_device_is_the_machines_whatever_the_topic_prefix(tmp_path: Path) -> None:
    """An upgrade must not make a prefixed device a new one beside the old in Home Assistant."""
    root = fake_pi(tmp_path, "serial-2")
    assert HaDevice.detect("Garden", root=root).id == device_id(root)
    topic = HaDevice.detect(root=root).config_topic
    assert topic == f"homeassistant/device/{device_id(root)}/config"


def test_discovery_config_has_the_required_keys(tmp_path: Path) -> None:
    root = fake_pi(tmp_path, "serial-1")
    target = parse_mqtt_url("mqtt://broker/garden/cam")
    device = HaDevice.detect("Garden", root=root)
    config = discovery_config(target, device, Health(52.3, 0))
    check_required_keys(config)
    assert device.config_topic == f"homeassistant/device/{device.id}/config"
    assert config["dev"]["name"] == "Garden"
    assert config["dev"]["hw_version"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert config["o"]["name"] == "movinet-pi" and config["o"]["sw"]
    assert config["availability_topic"] == "garden/cam/availability"
    platforms = {name: c["p"] for name, c in config["cmps"].items()}
    assert platforms == {"action": "sensor", "action_event": "event",
                         "inference_ms": "sensor", "model_fps": "sensor",
                         "cpu_temperature": "sensor", "throttled": "binary_sensor"}
    assert config["cmps"]["action_event"]["event_types"] == ["start", "end"]
    uids = [c["unique_id"] for c in config["cmps"].values()]
    assert len(set(uids)) == len(uids) and all(u.startswith(device.id) for u in uids)
    # not a Pi: no temperature or throttling entities, and still valid
    plain = discovery_config(target, device, None)
    check_required_keys(plain)
    assert "cpu_temperature" not in plain["cmps"] and "throttled" not in plain["cmps"]
    assert "throttled" not in discovery_config(target, device, Health(50.0, None))["cmps"]


def test_api_state_carries_the_health(tmp_path: Path) -> None:
    state = LiveState()
    assert "health" not in state.snapshot(FrameHub())
    state.health_monitor = HealthMonitor(fake_pi(tmp_path, "s", 81000, "50005"))
    health = state.snapshot(FrameHub())["health"]
    assert health["cpu_temp_c"] == 81.0 and health["throttled"] is True
    assert health["throttle_reasons"] == ["under-voltage", "throttled"]


# -- against mosquitto --------------------------------------------------------------------


def configs(messages: list[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for m in messages:
        if m.topic.startswith("homeassistant/device/"):
            out.setdefault(m.topic, []).append(m)
    return out


def run_app(port: int, prefix: str, name: str, root: Path, clip: Path, model: Path,
            labels: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(clip), "--headless",
         "--model-path", str(model), "--labels", str(labels), "--offline", "--threads", "1",
         "--mqtt", f"mqtt://127.0.0.1:{port}/{prefix}", "--name", name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), SYSFS_ENV: str(root)})


def test_two_pis_announce_two_devices_that_follow_a_clip(
        broker: Broker, tmp_path: Path, carving_ice: Path, a0_model: Path,
        kinetics_labels_path: Path) -> None:
    subscriber = Subscriber(broker.port)
    try:
        apps = [run_app(broker.port, f"cam{i}", f"Cam {i}",
                        fake_pi(tmp_path / f"pi{i}", f"serial-{i}", 50000 + i * 1000,
                                "0" if i == 1 else "50005"),
                        carving_ice, a0_model, kinetics_labels_path) for i in (1, 2)]
        for app in apps:
            _, err = app.communicate(timeout=300)
            assert app.returncode == 0, err
        got = subscriber.wait_for(
            lambda ms: sum(m.topic.endswith("/availability") and m.payload == "offline"
                           for m in ms) == 2, "both apps to say offline")
    finally:
        subscriber.close()
    found = configs(got)
    assert len(found) == 2, list(found)  # two devices
    devices = {}
    for messages in found.values():
        config = json.loads(messages[0].payload)
        check_required_keys(config)
        devices[config["dev"]["name"]] = config
    assert set(devices) == {"Cam 1", "Cam 2"}
    ids = [c["dev"]["identifiers"][0] for c in devices.values()]
    assert len(set(ids)) == 2
    uids = [c["unique_id"] for d in devices.values() for c in d["cmps"].values()]
    assert len(set(uids)) == len(uids)  # no entity of one Pi takes another's place
    for i in (1, 2):
        prefix = f"cam{i}"
        assert devices[f"Cam {i}"]["cmps"]["action"]["state_topic"] == f"{prefix}/state"
        states = [json.loads(m.payload) for m in got if m.topic == f"{prefix}/state"]
        shown = [action_state(s) for s in states]
        assert "carving ice" in shown, shown
        assert shown[-1] == "none"  # the run ended: nothing is shown
        assert any(s.get("health", {}).get("cpu_temp_c") == 50.0 + i for s in states)
        events = [json.loads(m.payload) for m in got if m.topic == f"{prefix}/action_event"]
        kinds = [(e["event_type"], e["label"]) for e in events]
        assert ("start", "carving ice") in kinds and ("end", "carving ice") in kinds
        assert {e["event_type"] for e in events} <= {"start", "end"}
        end = next(e for e in events if e["event_type"] == "end" and e["label"] == "carving ice")
        assert end["duration"] > 1 and 0 < end["peak"] <= 1
        diagnostics = [json.loads(m.payload) for m in got if m.topic == f"{prefix}/diagnostics"]
        assert diagnostics and diagnostics[0]["cpu_temp_c"] == 50.0 + i
        assert all(d["infer_ms"] > 0 for d in diagnostics)
    assert diagnostics[0]["throttled"] is True  # Pi 2: under-voltage, throttled


def kept(messages: list[Received]) -> list[Received]:
    """The retained ones: a newcomer gets them flagged so, while a live app's own messages
    keep arriving beside them unflagged."""
    return [m for m in messages if m.retain]


def latest(messages: list[Received], topic: str) -> str | None:
    on_topic = [m.payload for m in messages if m.topic == topic]
    return on_topic[-1] if on_topic else None


def test_two_pis_with_the_same_flags_have_their_own_topics_and_last_will(
        broker: Broker, tmp_path: Path, carving_ice: Path, a0_model: Path,
        kinetics_labels_path: Path) -> None:
    """Same flags, no prefix in the URL: two machines (two fake Pis), two sets of topics;
    one killed (its last will says offline) leaves the other online."""
    roots = [fake_pi(tmp_path / f"pi{i}", f"serial-{i}") for i in (1, 2)]
    ids = [device_id(root) for root in roots]
    flags = ["--source", str(carving_ice), "--loop", "--headless", "--model-path",
             str(a0_model), "--labels", str(kinetics_labels_path), "--offline", "--threads",
             "1", "--mqtt", f"mqtt://127.0.0.1:{broker.port}"]
    subscriber = Subscriber(broker.port)
    apps = [subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", *flags], stdout=subprocess.DEVNULL,
        stderr=(tmp_path / f"pi{i}.log").open("w"),
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), SYSFS_ENV: str(root)})
        for i, root in enumerate(roots, 1)]
    availability = [f"movinet-pi/{i}/availability" for i in ids]
    try:
        subscriber.wait_for(
            lambda ms: len(configs(ms)) == 2
            and all(latest(ms, topic) == "online" for topic in availability),
            "both Pis to announce themselves and say online", timeout=120)
        apps[0].kill()  # SIGKILL: no goodbye, so the broker sends its last will
        got = subscriber.wait_for(lambda ms: latest(ms, availability[0]) == "offline",
                                  "the killed Pi's last will")
        assert [m.payload for m in got if m.topic == availability[1]] == ["online"]
        assert apps[1].poll() is None
        late = Subscriber(broker.port)  # a newcomer (Home Assistant restarting)
        try:
            retained = kept(late.wait_for(
                lambda ms: len(configs(kept(ms))) == 2
                and all(latest(kept(ms), topic) for topic in availability), "what is retained"))
        finally:
            late.close()
        found = {}
        for (message,) in configs(retained).values():
            config = json.loads(message.payload)
            found[config["dev"]["identifiers"][0]] = config
        assert set(found) == set(ids)
        for i, topic in zip(ids, availability):
            assert found[i]["availability_topic"] == topic
            assert found[i]["cmps"]["action"]["state_topic"] == f"movinet-pi/{i}/state"
            assert found[i]["cmps"]["action_event"]["state_topic"] == \
                f"movinet-pi/{i}/action_event"
        assert latest(retained, availability[0]) == "offline"
        assert latest(retained, availability[1]) == "online"  # the other Pi stays online
    finally:
        for app in apps:
            app.kill()
            app.wait(30)
        subscriber.close()


def make_sink(port: int, root: Path, name: str = "Kitchen", url: str | None = None
              ) -> MqttSink:
    target = parse_mqtt_url(url or f"mqtt://127.0.0.1:{port}/cam")
    device = HaDevice.detect(name, root=root)
    health = HealthMonitor(root)
    return MqttSink(target, log=lambda _: None,
                    device_id=device.id,
                    reconnect_min_s=0.05, reconnect_max_s=0.3,
                    health=health, riders=[HomeAssistant.rider(device, health)])


def test_only_home_assistant_coming_online_asks_for_the_announcement_again(
        tmp_path: Path) -> None:
    # Home Assistant says "offline" as it stops and "online" once it is back: only then has
    # it forgotten the device (the retained config aside), and only then is it announced.
    class Sink:
        target = None
        announced = 0

        def __init__(self) -> None:
            self.handlers: dict[str, Callable[[str], None]] = {}

        def add_announcement(self, announcement: object) -> None:
            pass

        def subscribe(self, topic: str, on_message: Callable[[str], None]) -> None:
            self.handlers[topic] = on_message

        def announce(self) -> None:
            self.announced += 1

    sink = Sink()
    device = HaDevice.detect(root=fake_pi(tmp_path, "serial-x"))
    HomeAssistant(sink, device)  # type: ignore[arg-type]
    told = sink.handlers[device.status_topic]
    told("offline")
    assert sink.announced == 0
    told("online")
    assert sink.announced == 1


def test_home_assistant_online_causes_a_reannounce(broker: Broker, tmp_path: Path) -> None:
    root = fake_pi(tmp_path, "serial-x")
    subscriber = Subscriber(broker.port)
    sink = make_sink(broker.port, root)
    topic = HaDevice.detect(root=root).config_topic
    try:
        subscriber.wait_for(lambda ms: len(configs(ms).get(topic, [])) == 1, "the announce")
        sink.on_step(StepResult(0.0, 0, 0, [Prediction("run", 0.9, 1)], 2.0))
        assert sink.flush(15)
        subscriber.client.publish("homeassistant/status", "offline", qos=1)
        subscriber.client.publish("homeassistant/status", "online", qos=1)
        got = subscriber.wait_for(lambda ms: len(configs(ms).get(topic, [])) == 2,
                                  "the announce again after Home Assistant said online")
        (rider,) = sink.riders
        assert isinstance(rider, HomeAssistant) and rider.announcements == 2
        again = configs(got)[topic][1]
        assert json.loads(again.payload)["dev"]["name"] == "Kitchen"
        # online and the newest state again, after the config
        after = got[got.index(again):]
        assert any(m.topic == "cam/availability" and m.payload == "online" for m in after)
        assert any(m.topic == "cam/state" and '"run"' in m.payload for m in after)
    finally:
        sink.close()
        subscriber.close()


@pytest.mark.parametrize("path", ["/cam", ""], ids=["given-prefix", "default-prefix"])
def test_ha_remove_empties_the_retained_config(broker: Broker, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               path: str) -> None:
    root = fake_pi(tmp_path, "serial-r")
    monkeypatch.setenv(SYSFS_ENV, str(root))  # this machine is that Pi
    prefix = "cam" if path else f"movinet-pi/{device_id(root)}"
    topic = HaDevice.detect(root=root).config_topic
    url = f"mqtt://127.0.0.1:{broker.port}{path}"
    sink = make_sink(broker.port, root, url=url)
    try:
        wait_until(lambda: sink.connected, "the sink to connect")
        assert sink.target.prefix == prefix
        sink.on_step(StepResult(0.0, 0, 0, [Prediction("run", 0.9, 1)], 2.0))  # diagnostics
        assert sink.flush(15)
    finally:
        sink.close()
    retained = Subscriber(broker.port, "#")
    try:
        got = retained.wait_for(lambda ms: topic in configs(ms), "the retained config")
        assert configs(got)[topic][0].retain
        assert any(m.topic == f"{prefix}/diagnostics" for m in retained.wait_retained())
        assert cli.main(["ha-remove", "--mqtt", url]) == 0
        got = retained.wait_for(lambda ms: len(configs(ms)[topic]) == 2, "the removal")
        assert configs(got)[topic][1].payload == ""
    finally:
        retained.close()
    late = Subscriber(broker.port, "#")  # a newcomer (Home Assistant restarting)
    try:
        left = late.wait_retained()
    finally:
        late.close()
    assert any(m.topic == f"{prefix}/availability" for m in left)
    assert topic not in configs(left)
    assert not any(m.topic == f"{prefix}/diagnostics" for m in left)


def test_ha_remove_with_no_broker_is_one_line(tmp_path: Path, capsys: Any) -> None:
    from mqtt_broker import free_port

    assert cli.main(["ha-remove", "--mqtt", f"mqtt://127.0.0.1:{free_port()}/cam"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the MQTT broker" in err and err.count("\n") == 1


def test_discovery_is_on_by_default_with_mqtt_and_can_be_turned_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from movinet_pi.flags import build_run_parser

    seen: list[object] = []

    class Spy:
        @classmethod
        def from_url(cls, url: str, **options: object) -> Spy:
            seen.append(options["riders"])
            return cls()

        def close(self) -> None:
            pass

    monkeypatch.setattr("movinet_pi.outputs.mqtt.MqttSink", Spy)
    for flags in (["--name", "Porch", "--ha-prefix", "ha"], ["--no-ha-discovery"]):
        args = build_run_parser().parse_args(["--mqtt", "mqtt://b/cam", *flags])
        close_all(build_outputs(args, "t"))
    on, off = seen
    (rider,) = on  # type: ignore[misc]
    assert rider.func is HomeAssistant
    assert rider.keywords["device"].name == "Porch" and rider.keywords["device"].prefix == "ha"
    assert off == []
