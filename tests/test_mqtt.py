"""``--mqtt``: URL parsing, the password, and MqttSink against a real mosquitto broker.

The broker tests run Debian's mosquitto on 127.0.0.1 (see ``mqtt_broker.py``):
skipped locally when it is missing, failed in CI. Nothing here touches the
internet. Waits are "until it happens, at most 15 s", never sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from mqtt_broker import (
    Broker,
    Received,
    Subscriber,
    find_mosquitto,
    free_port,
    make_password_file,
    make_private_ca,
    wait_until,
)

from movinet_pi import MovinetPiError
from movinet_pi.model.predictions import Prediction
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.mqtt import MqttSink
from movinet_pi.outputs.mqtt_client import import_paho, mqtt_client_id
from movinet_pi.outputs.mqtt_target import (
    MQTT_PASSWORD_ENV,
    MQTT_PASSWORD_FILE_ENV,
    MqttTarget,
    mqtt_password,
    parse_mqtt_url,
)

ROOT = Path(__file__).resolve().parents[1]
FAST_RECONNECT = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.3}


# -- URL parsing ----------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://broker.local", MqttTarget("broker.local", 1883, None)),
    ("mqtt://broker.local/", MqttTarget("broker.local", 1883, None)),
    ("mqtt://broker.local/movinet-pi", MqttTarget("broker.local", 1883, "movinet-pi")),
    ("mqtt://Broker.Local:1884/cam1", MqttTarget("broker.local", 1884, "cam1")),
    ("mqtt://pi@10.0.0.2/home/garden/cam/",
     MqttTarget("10.0.0.2", 1883, "home/garden/cam", username="pi")),
    ("mqtt://user%40example.org@broker:1/x",
     MqttTarget("broker", 1, "x", username="user@example.org")),
    ("MQTT://[::1]:1883/p", MqttTarget("::1", 1883, "p")),
    ("mqtts://broker.local/cam", MqttTarget("broker.local", 8883, "cam", tls=True)),
    ("mqtts://broker.local:8884", MqttTarget("broker.local", 8884, None, tls=True)),
    ("  mqtt://b/with%20space  ", MqttTarget("b", 1883, "with space")),
])
def test_parse_mqtt_url(url: str, expected: MqttTarget) -> None:
    assert parse_mqtt_url(url) == expected


def test_topics_and_url_of_a_target() -> None:
    target = parse_mqtt_url("mqtt://pi@broker/home/cam1")
    assert target.events_topic == "home/cam1/events"
    assert target.state_topic == "home/cam1/state"
    assert target.availability_topic == "home/cam1/availability"
    assert target.url == "mqtt://pi@broker:1883/home/cam1"
    assert parse_mqtt_url("mqtts://[::1]").url == "mqtts://[::1]:8883"


def test_the_default_prefix_is_per_device_and_a_given_one_is_kept() -> None:
    default = parse_mqtt_url("mqtt://broker")
    with pytest.raises(ValueError, match="device id"):
        _ = default.state_topic  # not settled yet: never a topic shared by every Pi
    one, two = default.for_device("movinet_pi_1"), default.for_device("movinet_pi_2")
    assert one.state_topic == "movinet-pi/movinet_pi_1/state"
    assert one.availability_topic == "movinet-pi/movinet_pi_1/availability"
    assert one.events_topic == "movinet-pi/movinet_pi_1/events"
    assert two.state_topic == "movinet-pi/movinet_pi_2/state"
    assert one.url == "mqtt://broker:1883/movinet-pi/movinet_pi_1"
    for given in ("movinet-pi", "home/cam1"):  # the old topics, or any prefix: as given
        target = parse_mqtt_url(f"mqtt://broker/{given}")
        assert target.for_device("movinet_pi_1").state_topic == f"{given}/state"


@pytest.mark.parametrize(("url", "says"), [
    ("broker.local", "starts with mqtt:// or mqtts://"),
    ("http://broker.local/x", "starts with mqtt:// or mqtts://"),
    ("tcp://broker.local", "starts with mqtt:// or mqtts://"),
    ("", "starts with mqtt://"),
    ("mqtt://", "no broker host"),
    ("mqtt:///prefix", "no broker host"),
    ("mqtt://broker:notaport/x", "bad port"),
    ("mqtt://broker:70000/x", "bad port"),
    ("mqtt://broker:0/x", "bad port"),
    ("mqtt://broker/x?retain=1", "no ?query"),
    ("mqtt://broker/x?", "no ?query"),
    ("mqtt://broker/x#frag", "wildcards"),
    ("mqtt://@broker/x", "empty user name"),
    ("mqtt://broker/home/+/cam", "wildcards"),
    ("mqtt://broker/home/#", "wildcards"),
    ("mqtt://broker/a//b", "empty topic level"),
    ("mqtt://broker/$SYS", "broker's own"),
    ("mqtt://broker/a%0Ab", "control characters"),
])
def test_bad_mqtt_urls_are_one_line_errors(url: str, says: str) -> None:
    with pytest.raises(MovinetPiError) as e:
        parse_mqtt_url(url)
    message = str(e.value)
    assert says in message
    assert "\n" not in message
    assert e.value.exit_code == 2


@pytest.mark.parametrize("url", [
    "mqtt://pi:hunter2@broker/cam",
    "mqtt://pi:hun#ter2@broker/cam",
    "mqtts://pi:hun?ter+2@broker:8883",
    "mqtt://:hunter2@broker",
])
def test_a_password_in_the_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(MovinetPiError) as e:
        parse_mqtt_url(url)
    message = str(e.value)
    assert "ter2" not in message and "hun" not in message
    assert MQTT_PASSWORD_ENV in message and MQTT_PASSWORD_FILE_ENV in message


# -- the password -------------------------------------------------------------------------
def test_password_from_env() -> None:
    assert mqtt_password({MQTT_PASSWORD_ENV: "s3cret"}) == "s3cret"
    assert mqtt_password({}) is None
    assert mqtt_password({MQTT_PASSWORD_ENV: ""}) is None


def test_password_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("correct horse battery\n")
    assert mqtt_password({MQTT_PASSWORD_FILE_ENV: str(secret)}) == "correct horse battery"


def test_password_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MovinetPiError, match=r"cannot read the MQTT password file .*nope"):
        mqtt_password({MQTT_PASSWORD_FILE_ENV: str(missing)})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(MovinetPiError, match="is empty"):
        mqtt_password({MQTT_PASSWORD_FILE_ENV: str(empty)})
    with pytest.raises(MovinetPiError, match="not both"):
        mqtt_password({MQTT_PASSWORD_ENV: "a", MQTT_PASSWORD_FILE_ENV: str(empty)})


def test_password_needs_a_user_in_the_url() -> None:
    with pytest.raises(MovinetPiError, match="names no user"):
        MqttSink.from_url("mqtt://127.0.0.1:1/x", env={MQTT_PASSWORD_ENV: "s3cret"})


# -- paho missing or too old ----------------------------------------------------------------
def test_missing_paho_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("paho", "paho.mqtt", "paho.mqtt.client", "paho.mqtt.enums"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: ImportError
    with pytest.raises(MovinetPiError) as e:
        MqttSink(parse_mqtt_url("mqtt://127.0.0.1:1/x"))
    assert "pip install 'movinet-pi[mqtt]'" in str(e.value)
    assert "\n" not in str(e.value)


def test_the_install_hint_names_the_venvs_own_pip_when_it_is_not_active(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `~/.venvs/movinet-pi/bin/movinet-pi --mqtt ...` with the venv not active: a bare `pip`
    # would install paho into some other Python
    from movinet_pi.outputs.mqtt_client import mqtt_install_hint

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "pip").write_text("#!/bin/sh\n")
    (venv / "bin" / "pip").chmod(0o755)
    elsewhere = tmp_path / "usr-bin"
    elsewhere.mkdir()
    (elsewhere / "pip").write_text("#!/bin/sh\n")
    (elsewhere / "pip").chmod(0o755)
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(elsewhere))
    assert mqtt_install_hint() == (
        f"install the mqtt extra: {venv}/bin/pip install 'movinet-pi[mqtt]'")
    monkeypatch.setenv("PATH", f"{venv / 'bin'}{os.pathsep}{elsewhere}")  # activated
    assert mqtt_install_hint() == "install the mqtt extra: pip install 'movinet-pi[mqtt]'"


def test_old_paho_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import paho.mqtt

    monkeypatch.setattr(paho.mqtt, "__version__", "1.6.1")
    with pytest.raises(MovinetPiError, match=r"paho-mqtt 2 or newer, found 1\.6\.1"):
        import_paho()


def test_client_ids_are_unique_per_run() -> None:
    ids = {mqtt_client_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("movinet-pi-") and " " not in i for i in ids)


# -- against a real broker ------------------------------------------------------------------


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    s = Subscriber(broker.port)
    try:
        yield s
    finally:
        s.close()


def make_sink(port: int, logs: list[str], prefix: str = "cam", **options: object) -> MqttSink:
    options = {**FAST_RECONNECT, **options}
    return MqttSink(parse_mqtt_url(f"mqtt://127.0.0.1:{port}/{prefix}"), log=logs.append,
                    **options)  # type: ignore[arg-type]


def step(i: int, *labels: str, score: float = 0.5) -> StepResult:
    top = [Prediction(label, score, n) for n, label in enumerate(labels)]
    return StepResult(t=i * 0.2, frame=i * 6, step=i, top=top, infer_ms=1.0)


def payloads(messages: list[Received], topic: str) -> list[dict]:
    return [json.loads(m.payload) for m in messages if m.topic == topic]


def has_event(kind: str, label: str):
    def check(messages: list[Received]) -> bool:
        return any(e["type"] == kind and e["label"] == label
                   for e in payloads(messages, "cam/events"))
    return check


def test_events_state_and_availability_reach_a_subscriber(
        broker: Broker, subscriber: Subscriber) -> None:
    logs: list[str] = []
    sink = make_sink(broker.port, logs)
    try:
        wait_until(lambda: sink.connected, "the sink to connect")
        for i in range(8):  # "run" for 1.2 s, then "jump"
            sink.on_step(step(i, "run" if i < 7 else "jump"))
        assert sink.flush(15)  # the broker has it all (so the late subscriber below too)
        got = subscriber.wait_for(has_event("start", "jump"), "the jump event")
        events = payloads(got, "cam/events")
        assert [(e["type"], e["label"]) for e in events] == [
            ("start", "run"), ("update", "run"), ("end", "run"), ("start", "jump")]
        assert events[2]["duration"] == 1.2 and events[2]["steps"] == 7
        assert all(isinstance(e["time"], float) for e in events)
        assert not any(m.retain for m in got if m.topic == "cam/events")
        assert {m.qos for m in got if m.topic == "cam/events"} == {1}  # kept until delivered

        # a subscriber arriving now gets the retained state and "online" at once
        late = Subscriber(broker.port, "cam/#")
        try:
            retained = late.wait_for(
                lambda ms: {m.topic for m in ms if m.retain} >= {"cam/state",
                                                                 "cam/availability"},
                "retained state and availability")
            state = [json.loads(m.payload) for m in retained if m.topic == "cam/state"][-1]
            assert [p["label"] for p in state["top"]] == ["jump"]
            assert state["step"] == 7 and state["t"] == pytest.approx(1.4)
            assert [m.payload for m in retained if m.topic == "cam/availability"] == ["online"]
        finally:
            late.close()
    finally:
        sink.close()
    got = subscriber.wait_for(
        lambda ms: any(m.topic == "cam/availability" and m.payload == "offline" for m in ms),
        "offline on close")
    assert has_event("end", "jump")(got)  # close() ended the open event
    last, idle = payloads(got, "cam/state")[-2:]
    assert idle["top"] == []  # and cleared the state, in the same form as every other
    assert set(idle) == set(last) and (idle["t"], idle["step"]) == (last["t"], last["step"])
    assert [m.payload for m in got if m.topic == "cam/availability"] == ["online", "offline"]
    assert logs == [f"mqtt: connected to mqtt://127.0.0.1:{broker.port}/cam"]
    assert sink.dropped == 0
    # what a subscriber arriving after the app stopped is told: nothing seen, offline
    later = Subscriber(broker.port)
    try:
        retained = {m.topic: m.payload for m in later.wait_retained() if m.retain}
    finally:
        later.close()
    assert json.loads(retained["cam/state"])["top"] == []
    assert retained["cam/availability"] == "offline"


def test_state_is_sent_on_change_or_once_a_second(broker: Broker, subscriber: Subscriber) -> None:
    sink = make_sink(broker.port, [])
    try:
        wait_until(lambda: sink.connected, "the sink to connect")
        for i in range(12):  # 2 s of "run", then "jump"
            sink.on_step(step(i, "run" if i < 11 else "jump"))
            # one step at a time: the state is one slot, and a slow network would
            # coalesce states (newest wins); here each one the sink sends gets out
            assert sink.flush(timeout=15)
        got = subscriber.wait_for(
            lambda ms: any("jump" in m.payload for m in ms if m.topic == "cam/state"),
            "the state with jump")
    finally:
        sink.close()
    states = payloads(got, "cam/state")
    assert [s["step"] for s in states] == [0, 5, 10, 11]  # not 12 messages for 12 steps


def test_last_will_says_offline_when_the_process_dies(
        broker: Broker, subscriber: Subscriber) -> None:
    script = (
        "import sys, time\n"
        "from movinet_pi.outputs.mqtt import MqttSink, parse_mqtt_url\n"
        f"sink = MqttSink(parse_mqtt_url('mqtt://127.0.0.1:{broker.port}/cam'))\n"
        "while not sink.connected: time.sleep(0.01)\n"
        "print('connected', flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "connected"
        subscriber.wait_for(
            lambda ms: any(m.topic == "cam/availability" and m.payload == "online" for m in ms),
            "online")
        child.kill()  # no goodbye: the broker must send the will
        child.wait()
        got = subscriber.wait_for(
            lambda ms: any(m.topic == "cam/availability" and m.payload == "offline"
                           for m in ms), "the last will")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert [m.payload for m in got if m.topic == "cam/availability"] == ["online", "offline"]
    # and it stays: a newcomer sees "offline" retained
    late = Subscriber(broker.port, "cam/availability")
    try:
        (last,) = late.wait_for(lambda ms: len(ms) >= 1, "the retained availability")
        assert last.payload == "offline" and last.retain
    finally:
        late.close()


def test_broker_restart_mid_run(tmp_path: Path) -> None:
    # A persistent broker and subscriber session: the subscriber gets what the sink
    # sends after the restart whichever of the two reconnects first.
    broker = Broker(find_mosquitto(), tmp_path, persistent=True)
    broker.start()
    subscriber = Subscriber(broker.port, persistent=True)
    logs: list[str] = []
    queue_size = 100
    sink = make_sink(broker.port, logs, queue_size=queue_size)
    try:
        wait_until(lambda: sink.connected, "the sink to connect")
        sink.on_step(step(0, "before"))
        subscriber.wait_for(has_event("start", "before"), "the first event")

        broker.stop()
        wait_until(lambda: not sink.connected, "the sink to notice the broker is gone")
        # The pipeline goes on: 2000 steps, each ending one event and starting another.
        started = time.perf_counter()
        for i in range(1, 2001):
            sink.on_step(step(i, f"label{i % 2}"))
        # never waits for the network: a generous bound on the whole loop (about 40 ms
        # here; one connect attempt or timeout per step would take many seconds)
        assert time.perf_counter() - started < 5.0
        # bounded: our queue is full, the oldest dropped and counted; paho holds nothing
        assert sink.queued == queue_size
        assert sink.dropped == 2 * 2000 - queue_size  # an end and a start each step
        assert len(sink.client._out_messages) <= sink.window  # paho holds few (private attr)

        broker.start()  # same port
        wait_until(lambda: sink.connected, "the sink to reconnect")
        assert sink.flush(15)  # what was kept goes out first (else step 2001 would push
        sink.on_step(step(2001, "after"))  # two more of them out of the full queue)
        got = subscriber.wait_for(
            lambda ms: has_event("start", "after")(ms) and any(
                '"step":2001' in m.payload for m in ms if m.topic == "cam/state"),
            "an event and the state after the restart")
        # QoS 1 is at least once: the broker may deliver again what it delivered just
        # before it stopped (flagged dup); count each message once
        got = [m for m in got if not m.dup]
        events = [(e["type"], e["id"]) for e in payloads(got, "cam/events")]
        assert events[0] == ("start", 1)  # "before"
        # then the newest `queue_size` events kept meanwhile, in order: one event per
        # step (ids 2..2001), each step ending one and starting the next
        last = 2001
        assert events[1:-2] == [change for i in range(last - queue_size // 2, last)
                                for change in (("end", i), ("start", i + 1))]
        assert events[-2:] == [("end", last), ("start", last + 1)]  # then step 2001
        # "online" again after the reconnect (a broker without persistence would have
        # lost the retained one), and the newest state
        online = [m for m in got if m.topic == "cam/availability" and m.payload == "online"
                  and not m.retain]  # (not the retained copy sent on resubscribing)
        assert len(online) == 2
        assert payloads(got, "cam/state")[-1]["step"] == 2001
    finally:
        sink.close()
        subscriber.close()
        broker.stop()
    assert logs[0].startswith("mqtt: connected to")
    assert len([line for line in logs if "lost the broker" in line]) == 1  # not once per retry
    assert logs[-2] == f"mqtt: connected to mqtt://127.0.0.1:{broker.port}/cam again"
    assert logs[-1].startswith(f"mqtt: {2 * 2000 - queue_size} event messages were not sent;")


def test_on_step_never_waits_for_paho(broker: Broker, subscriber: Subscriber) -> None:
    """Even with the publisher stuck inside paho, the pipeline's calls return."""
    sink = make_sink(broker.port, [], queue_size=50)
    stuck, release = threading.Event(), threading.Event()
    real_publish = sink.client.publish

    def blocking_publish(*args: Any, **kwargs: Any) -> Any:
        stuck.set()
        release.wait()
        return real_publish(*args, **kwargs)

    sink.client.publish = blocking_publish  # type: ignore[method-assign]
    sink.announce()  # ("online" again: the first one may have gone out before the patch)
    try:
        wait_until(lambda: sink.connected, "the sink to connect")
        assert stuck.wait(15)  # the publisher thread is now blocked in paho ("online")
        pipeline = threading.Thread(
            target=lambda: [sink.on_step(step(i, f"l{i % 2}")) for i in range(1, 1001)])
        pipeline.start()
        pipeline.join(15)
        assert not pipeline.is_alive(), "on_step blocked behind a stuck publish"
        assert sink.queued == 50  # bounded, the oldest dropped
        assert sink.dropped > 1000
        release.set()
        assert sink.flush(15)  # unstuck: all that was kept goes out
    finally:
        release.set()
        sink.close()
    got = subscriber.wait_for(
        lambda ms: any(m.topic == "cam/availability" and m.payload == "offline" for m in ms),
        "the events once unstuck, then offline")
    events = payloads(got, "cam/events")
    assert len(events) == 50 + 1  # the newest 50 kept, then close() ended the open one
    assert events[-1]["type"] == "end" and events[-1]["label"] == "l0"  # step 1000's


def test_app_starts_with_the_broker_down_and_connects_later(tmp_path: Path) -> None:
    logs: list[str] = []
    broker = Broker(find_mosquitto(), tmp_path, port=free_port())
    sink = make_sink(broker.port, logs)  # nothing listens yet: must not raise or block
    try:
        sink.on_step(step(0, "early"))
        wait_until(lambda: any("cannot reach the broker" in line for line in logs),
                   "the one-line complaint")
        broker.start()
        subscriber = Subscriber(broker.port)
        try:
            wait_until(lambda: sink.connected, "the sink to connect once the broker is up")
            sink.on_step(step(1, "later"))
            got = subscriber.wait_for(has_event("start", "later"), "the later event")
            assert has_event("end", "early")(got)  # the event from before the broker came
        finally:
            sink.close()
            subscriber.close()
    finally:
        broker.stop()
    assert len([line for line in logs if "cannot reach" in line]) == 1
    assert logs[-1] == f"mqtt: connected to mqtt://127.0.0.1:{broker.port}/cam"


def test_a_thousand_event_messages_wait_for_a_broker_that_is_down(tmp_path: Path) -> None:
    # Hours of a broker down must not fill the Pi's memory: the newest 1000 wait, the older go.
    logs: list[str] = []
    sink = MqttSink(parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}/cam"), log=logs.append,
                    close_timeout_s=0.5)
    try:
        for i in range(1200):  # a new label every step: an end and a start each, but the first
            sink.on_step(step(i, f"l{i}"))
        assert sink.queued == 1000 and sink.dropped == 2 * 1200 - 1 - 1000
    finally:
        sink.close()


def test_close_with_the_broker_down_does_not_hang(tmp_path: Path) -> None:
    logs: list[str] = []
    sink = make_sink(free_port(), logs, close_timeout_s=0.5)
    for i in range(5):
        sink.on_step(step(i, "nobody listens"))
    sink.close()  # returns (pytest would hang otherwise); says what was not sent
    sink.close()  # twice is harmless
    (said,) = [line for line in logs if "not sent" in line]
    assert said.startswith("mqtt: 2 event messages were not sent (broker ")
    assert "not connected at exit" in said


# -- TLS and a login ------------------------------------------------------------------------
PASSWORD = "correct horse battery"


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    """mosquitto speaking TLS only, with a certificate from a private CA (made with
    openssl here), and a login required (a password file from mosquitto_passwd)."""
    ca, cert, key = make_private_ca(tmp_path)
    passwords = make_password_file(tmp_path, "cam", PASSWORD)
    b = Broker(find_mosquitto(), tmp_path, tls=(cert, key), password_file=passwords)
    b.start()
    try:
        yield b, ca
    finally:
        b.stop()


def secure_sink(port: int, logs: list[str], password: str, **options: object) -> MqttSink:
    return MqttSink.from_url(f"mqtts://cam@127.0.0.1:{port}/cam",
                             env={MQTT_PASSWORD_ENV: password}, log=logs.append,
                             **{**FAST_RECONNECT, **options})


def test_tls_with_a_private_ca_and_a_login(secure_broker: tuple[Broker, Path]) -> None:
    broker, ca = secure_broker
    subscriber = Subscriber(broker.port, ca=ca, login=("cam", PASSWORD))
    logs: list[str] = []
    sink = secure_sink(broker.port, logs, PASSWORD, ca_file=ca)
    try:
        wait_until(lambda: sink.connected, "the sink to connect over TLS")
        sink.on_step(step(0, "run"))
        assert sink.flush(15)
        got = subscriber.wait_for(has_event("start", "run"), "the event over TLS")
        assert [m.payload for m in got if m.topic == "cam/availability"] == ["online"]
    finally:
        sink.close()
        subscriber.close()
    assert logs == [f"mqtt: connected to mqtts://cam@127.0.0.1:{broker.port}/cam"]


def count_calls(client: Any, names: tuple[str, ...]) -> list[str]:
    """From now on, each call of these paho callbacks of ``client`` is listed (by name)."""
    calls: list[str] = []
    for name in names:
        callback = getattr(client, name)

        def counted(*args: Any, _name: str = name, _callback: Any = callback) -> Any:
            calls.append(_name)
            return _callback(*args)

        setattr(client, name, counted)
    return calls


def test_tls_without_the_ca_or_with_a_wrong_password_never_connects(
    secure_broker: tuple[Broker, Path]
) -> None:
    broker, ca = secure_broker
    for options, password, says in (
        ({}, PASSWORD, "cannot reach the broker"),  # the system's CAs do not know ours
        ({"ca_file": ca}, "wrong", "refused the connection"),  # a bad login
    ):
        logs: list[str] = []
        sink = secure_sink(broker.port, logs, password, close_timeout_s=0.5, **options)
        attempts = count_calls(sink.client, ("on_connect", "on_connect_fail"))
        try:
            wait_until(lambda: any(says in line for line in logs), says)  # noqa: B023
            wait_until(lambda: len(attempts) >= 3, "a few more tries")  # noqa: B023
            assert not sink.connected
        finally:
            sink.close()
        assert len([line for line in logs if says in line]) == 1, logs


def test_mqtt_ca_problems_are_one_line_errors(tmp_path: Path) -> None:
    target = parse_mqtt_url("mqtts://broker.local/cam")
    with pytest.raises(MovinetPiError, match="no such file"):
        MqttSink(target, ca_file=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(MovinetPiError, match="cannot use it as a CA certificate") as e:
        MqttSink(target, ca_file=garbage)
    assert "\n" not in str(e.value)
    with pytest.raises(MovinetPiError, match="mqtts://"):
        MqttSink(parse_mqtt_url("mqtt://broker.local/cam"), ca_file=garbage)


def test_mqtt_ca_flag_reaches_the_sink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from movinet_pi.cli import refuse_flags_without_their_output
    from movinet_pi.flags import build_run_parser
    from movinet_pi.outputs.open import build_outputs, close_all

    seen: dict[str, object] = {}

    class Spy:
        @classmethod
        def from_url(cls, url: str, **options: object) -> Spy:
            seen.update(options, url=url)
            return cls()

        def close(self) -> None:
            pass

    monkeypatch.setattr("movinet_pi.outputs.mqtt.MqttSink", Spy)
    args = build_run_parser().parse_args(["--mqtt", "mqtts://b/cam", "--mqtt-ca", "ca.pem"])
    close_all(build_outputs(args, "t"))
    assert seen["url"] == "mqtts://b/cam" and seen["ca_file"] == Path("ca.pem")
    alone = build_run_parser().parse_args(["--mqtt-ca", "ca.pem"])
    with pytest.raises(MovinetPiError, match="--mqtt-ca goes with --mqtt"):
        refuse_flags_without_their_output(alone)
