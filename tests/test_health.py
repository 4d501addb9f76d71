"""movinet_pi.health: parsing the firmware's bits, the reading thread, machines without the files.

A fake sysfs tree in a temporary directory stands for the Pi's
(``$MOVINET_PI_SYSFS`` / ``root=``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from movinet_pi.health import (
    SYSFS_ENV,
    TEMP_FILE,
    THROTTLED_FILE,
    Health,
    HealthMonitor,
    parse_temp,
    parse_throttled,
    read_health,
    throttle_reasons,
)


def fake_pi(root: Path, temp: str | None = "52312\n", throttled: str | None = "0\n") -> Path:
    if temp is not None:
        (root / TEMP_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / TEMP_FILE).write_text(temp)
    if throttled is not None:
        (root / THROTTLED_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / THROTTLED_FILE).write_text(throttled)
    return root


@pytest.mark.parametrize(("text", "bits"), [
    ("throttled=0x0\n", 0),
    ("throttled=0x50005\n", 0x50005),
    ("50005\n", 0x50005),
    ("0x8\n", 8),
    ("garbage", None),
    ("", None),
])
def test_parse_throttled(text: str, bits: int | None) -> None:
    assert parse_throttled(text) == bits


@pytest.mark.parametrize(("bits", "now", "since_boot"), [
    (0x0, [], []),
    (0x1, ["under-voltage"], []),
    (0x2, ["frequency capped"], []),
    (0x4, ["throttled"], []),
    (0x8, ["soft temperature limit"], []),
    (0x50005, ["under-voltage", "throttled"], ["under-voltage", "throttled"]),
    (0xF0000, [], ["under-voltage", "frequency capped", "throttled",
                   "soft temperature limit"]),
])
def test_bits_to_reasons(bits: int, now: list[str], since_boot: list[str]) -> None:
    assert throttle_reasons(bits) == now
    assert throttle_reasons(bits, since_boot=True) == since_boot
    health = Health(50.0, bits)
    assert health.reasons == now
    assert health.throttled is bool(now)
    assert health.to_json()["throttle_reasons"] == now
    assert health.to_json()["throttled_since_boot"] == since_boot


def test_parse_temp() -> None:
    assert parse_temp("52312\n") == 52.3
    assert parse_temp("-1000") == -1.0
    assert parse_temp("hot") is None


def test_read_a_fake_pi(tmp_path: Path) -> None:
    root = fake_pi(tmp_path, "81234\n", "50005\n")
    health = read_health(root)
    assert health == Health(81.2, 0x50005)
    assert health.warning
    assert health.to_json() == {"cpu_temp_c": 81.2, "throttled": True,
                                "throttle_reasons": ["under-voltage", "throttled"],
                                "throttled_since_boot": ["under-voltage", "throttled"]}
    assert health.describe() == "CPU 81.2 °C, under-voltage, throttled"
    cool = read_health(fake_pi(tmp_path, "45000", "0x50000"))
    assert cool is not None and not cool.warning
    assert cool.describe() == ("CPU 45.0 °C, not throttled, earlier since boot: "
                               "under-voltage, throttled")


def test_only_some_files(tmp_path: Path) -> None:
    temp_only = read_health(fake_pi(tmp_path / "a", throttled=None))
    assert temp_only == Health(52.3, None)
    assert temp_only.throttled is None and temp_only.reasons == []
    assert temp_only.to_json() == {"cpu_temp_c": 52.3}
    assert read_health(fake_pi(tmp_path / "b", temp=None, throttled="4")) == Health(None, 4)


def test_absent_files_show_nothing_and_fail_nothing(tmp_path: Path) -> None:
    assert read_health(tmp_path) is None  # an empty tree: not a Pi
    fake_pi(tmp_path, "not a number", "nor this")
    assert read_health(tmp_path) is None
    monitor = HealthMonitor(tmp_path / "missing", interval_s=0.01).start()
    assert not monitor.available and monitor.latest is None
    assert monitor._thread is None  # no thread for a machine with nothing to read
    monitor.close()


def test_the_root_comes_from_the_environment(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SYSFS_ENV, str(fake_pi(tmp_path, "60000", "0")))
    assert read_health() == Health(60.0, 0)
    assert HealthMonitor().root == tmp_path


def test_the_monitor_reads_on_its_own_thread(tmp_path: Path) -> None:
    root = fake_pi(tmp_path, "50000", "0")
    reads: list[Health | None] = []

    def counting(where: Path) -> Health | None:
        reads.append(read_health(where))
        return reads[-1]

    monitor = HealthMonitor(root, interval_s=0.01, reader=counting).start()
    try:
        assert monitor.latest == Health(50.0, 0)
        assert monitor._thread is not None and monitor._thread.name == "health"
        fake_pi(root, "85000", "8")  # it gets hot
        deadline = time.monotonic() + 15
        while monitor.latest != Health(85.0, 8):
            assert time.monotonic() < deadline, "the monitor never read the new values"
            time.sleep(0.01)
        assert monitor.latest.reasons == ["soft temperature limit"]
        (root / "sys").rename(root / "gone")  # (at once) a failed reading keeps the last good one
        failed = len(reads) + 2  # (the one under way may have read the files before)
        deadline = time.monotonic() + 15
        while len(reads) < failed:
            assert time.monotonic() < deadline, "the monitor stopped reading"
            time.sleep(0.01)
        assert reads[-1] is None  # it did fail
        assert monitor.latest == Health(85.0, 8)
    finally:
        monitor.close()
    assert monitor._thread is None


def test_a_reader_that_raises_does_not_end_the_thread(tmp_path: Path) -> None:
    calls: list[int] = []

    def reader(root: Path) -> Health | None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return Health(40.0 + len(calls), None)

    monitor = HealthMonitor(tmp_path, interval_s=0.01, reader=reader).start()
    try:
        deadline = time.monotonic() + 15
        while len(calls) < 4:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert monitor.latest is not None and monitor.latest.cpu_temp_c >= 43.0
    finally:
        monitor.close()


def test_bench_says_the_health_at_the_start_and_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, a0_model: Path, carving_ice: Path,
        kinetics_labels_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from movinet_pi.cli import main

    monkeypatch.setenv(SYSFS_ENV, str(fake_pi(tmp_path / "pi", "61234", "0x20000")))
    assert main(["bench", "--model-path", str(a0_model), "--steps", "3", "--json",
                 "--labels", str(kinetics_labels_path), "--source", str(carving_ice)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["steps"] == 3  # stdout stays one JSON object
    said = "CPU 61.2 °C, not throttled, earlier since boot: frequency capped"
    assert f"health at the start: {said}" in err and f"health at the end: {said}" in err
    monkeypatch.setenv(SYSFS_ENV, str(tmp_path / "not-a-pi"))
    assert main(["bench", "--model-path", str(a0_model), "--steps", "3", "--json",
                 "--labels", str(kinetics_labels_path), "--source", str(carving_ice)]) == 0
    assert "health" not in capsys.readouterr().err  # nothing shown, nothing fails


def test_the_overlay_gets_a_line_when_the_pi_is_hot_or_throttled(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from movinet_pi.pipeline import Pipeline

    def warning(temp: str, throttled: str) -> list[str]:
        root = fake_pi(tmp_path / f"{temp}-{throttled}", temp, throttled)
        return Pipeline.health_warning(SimpleNamespace(health=HealthMonitor(root)))  # type: ignore[arg-type]

    assert warning("60000", "0") == []  # cool and unthrottled: nothing
    assert warning("80500", "0") == ["Pi: CPU 80.5 °C, not throttled"]
    assert warning("60000", "0x4") == ["Pi: CPU 60.0 °C, throttled"]
    assert Pipeline.health_warning(SimpleNamespace(health=None)) == []  # type: ignore[arg-type]
