"""The run command's outputs end to end on a real clip: events, MQTT, web, clips, service."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mqtt_broker import Broker, Subscriber, find_mosquitto

from movinet_pi.cli import main


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", os.pathsep.join(
        [str(shared / "models"), str(shared / "labels")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


def test_events_replace_step_lines(models_env: None, arm_wrestling: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--source", str(arm_wrestling), "--headless", "--events"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "start" and events[0]["label"] == "arm wrestling"
    assert events[-1]["type"] == "end" and events[-1]["label"] == "arm wrestling"
    # shown from the first step, counted from the end of the stream's first second
    assert events[-1]["start"] == 1.0 and events[-1]["duration"] > 8.5
    assert events[-1]["peak"] > 0.99
    assert {e["type"] for e in events} == {"start", "update", "end"}


def test_mqtt_publishes_a_run_to_a_real_broker(models_env: None, arm_wrestling: Path,
                                               tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    broker = Broker(find_mosquitto(), tmp_path / "broker")
    broker.start()
    try:
        subscriber = Subscriber(broker.port, "pi/#")
        subscriber.wait_subscribed()
        assert main(["--source", str(arm_wrestling), "--headless", "--json",
                     "--mqtt", f"mqtt://127.0.0.1:{broker.port}/pi"]) == 0
        messages = subscriber.wait_for(
            lambda ms: any(m.topic == "pi/availability" and m.payload == "offline" for m in ms),
            "the app going offline at the end")
        events = [json.loads(m.payload) for m in messages if m.topic == "pi/events"]
        assert events[0]["type"] == "start" and events[-1]["type"] == "end"
        assert all(e["label"] == "arm wrestling" for e in events)
        states = [json.loads(m.payload) for m in messages if m.topic == "pi/state"]
        assert any(s["top"] and s["top"][0]["label"] == "arm wrestling" for s in states)
        subscriber.close()
    finally:
        broker.stop()


def test_web_serves_while_running_and_closes_after(
    models_env: None, carving_ice: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import urllib.request

    from movinet_pi.outputs import web

    seen: dict[str, object] = {}
    real_close = web.WebSink.close

    def close_after_a_look(self: web.WebSink) -> None:  # the run has ended: ask, then close
        with urllib.request.urlopen(self.url + "api/state", timeout=10) as response:
            seen["state"] = json.loads(response.read())
        real_close(self)
        seen["url"] = self.url

    monkeypatch.setattr(web.WebSink, "close", close_after_a_look)
    assert main(["--source", str(carving_ice), "--headless", "--json", "--web", "0"]) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(str(seen["url"]) + "healthz", timeout=2)
    err = capsys.readouterr().err
    assert "web: open http://127.0.0.1:" in err
    assert err.count("http://127.0.0.1:") == 1  # the URL is said once
    state = seen["state"]
    assert isinstance(state, dict)
    latest = state.get("latest") or state.get("step") or state
    assert "carving ice" in json.dumps(latest)


def test_record_saves_a_clip_of_the_event(models_env: None, arm_wrestling: Path,
                                          tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    assert main(["--source", str(arm_wrestling), "--headless", "--json", "--record",
                 str(clips), "--record-labels", "arm wrestling"]) == 0
    videos = sorted(clips.glob("*.mp4"))
    sidecars = sorted(clips.glob("*.json"))
    assert len(videos) == 1 and len(sidecars) == 1
    assert "arm-wrestling" in videos[0].name
    meta = json.loads(sidecars[0].read_text())
    assert meta["label"] == "arm wrestling" and meta["frames"] > 100
    assert not list(clips.glob(".*part*"))


def test_record_into_an_unwritable_place_fails_before_the_camera(
    models_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["--source", "7", "--headless", "--record", str(blocker / "clips")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "camera" not in err


def test_service_print_and_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "--print", "--display", "drm", "--model", "a2"]) == 0
    unit = capsys.readouterr().out
    assert "[Service]" in unit and "Restart=on-failure" in unit
    assert "--display drm --model a2" in unit
    assert main(["service"]) == 2
    assert "needs --print" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["service", "--print", "--top-k", "0"])
    assert e.value.code == 2


def _listening() -> set[tuple[str, str]]:
    """(local address, inode) of the TCP sockets this process is listening on."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in mine:  # 0A: LISTEN
                    found.add((fields[1], fields[9]))
    return found


@pytest.mark.parametrize("extra", [[], ["--web", "0"]])
def test_nothing_listens_unless_asked_and_then_only_on_localhost(
    models_env: None, carving_ice: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]
) -> None:
    from movinet_pi import cli

    before = _listening()
    during: list[set[tuple[str, str]]] = []

    class Probe:
        def on_step(self, result: object) -> None:
            if not during:
                during.append(_listening() - before)

        def close(self) -> None:
            pass

    real_build = cli.build_outputs
    monkeypatch.setattr(cli, "build_outputs", lambda args, title: [*real_build(args, title),
                                                                   Probe()])
    assert main(["--source", str(carving_ice), "--headless", "--json", *extra]) == 0
    (new,) = during
    if not extra:
        assert new == set()
    else:
        assert len(new) == 1
        (address, _), = new
        assert address.split(":")[0] == "0100007F"  # 127.0.0.1, little-endian hex
