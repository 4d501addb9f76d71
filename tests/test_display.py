"""Choosing where the picture goes, and a real window under Xvfb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from movinet_pi import MovinetPiError
from movinet_pi.display import choose_display


@pytest.fixture
def sockets(tmp_path: Path) -> Path:
    d = tmp_path / ".X11-unix"
    d.mkdir()
    return d


def test_display_env_means_a_window(sockets: Path) -> None:
    choice = choose_display("auto", {"DISPLAY": "localhost:10.0"}, socket_dir=sockets)
    assert choice.kind == "window" and "localhost:10.0" in choice.reason
    assert choice.env == {}


def test_wayland_session_means_a_window(sockets: Path) -> None:
    assert choose_display("auto", {"WAYLAND_DISPLAY": "wayland-0"}, socket_dir=sockets).kind == (
        "window"
    )


def test_over_ssh_uses_the_pi_desktop_when_running(sockets: Path) -> None:
    (sockets / "X0").touch()
    choice = choose_display("auto", {"SSH_CONNECTION": "1 2 3 4"}, socket_dir=sockets)
    assert choice.kind == "window"
    assert choice.env == {"DISPLAY": ":0"}
    assert "desktop" in choice.reason


def test_over_ssh_without_desktop_runs_headless_and_says_how(sockets: Path) -> None:
    choice = choose_display("auto", {"SSH_CONNECTION": "1 2 3 4"}, socket_dir=sockets)
    assert choice.kind == "none"
    assert "ssh -X" in choice.reason


def test_window_forced_without_display_is_a_clear_error(sockets: Path) -> None:
    with pytest.raises(MovinetPiError, match="--headless"):
        choose_display("window", {}, socket_dir=sockets)


def test_none_is_headless(sockets: Path) -> None:
    assert choose_display("none", {"DISPLAY": ":0"}, socket_dir=sockets).kind == "none"


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    binary = shutil.which("Xvfb")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is missing (.ci/run installs the xvfb package)")
        pytest.skip("Xvfb not installed")
    display = f":{90 + os.getpid() % 9}"
    proc = subprocess.Popen([binary, display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = Path("/tmp/.X11-unix") / f"X{display[1:]}"
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    yield display
    proc.terminate()
    proc.wait(5)


def test_window_plays_a_clip_under_xvfb(xvfb: str, shared: Path, carving_ice: Path,
                                        tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DISPLAY": xvfb,
        "MOVINET_PI_MODELS": f"{shared / 'models'}{os.pathsep}{shared / 'labels'}",
        "XDG_CACHE_HOME": str(tmp_path),
        "QT_QPA_PLATFORM": "xcb",
    }
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "movinet_pi", "--source", str(carving_ice), "--display", "window",
         "--json", "--verbose"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert f"window on {xvfb}" in out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) >= 20
    assert "carving ice" in lines[-1]
    # a window plays the 4.4 s file at its own speed, showing every frame
    assert elapsed >= 4.0
    shown = int(out.stderr.split(" shown")[0].rsplit(" ", 1)[-1])
    assert shown >= 100
