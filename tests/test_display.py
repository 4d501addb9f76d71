"""Choosing where the picture goes, and a real window under Xvfb."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Iterator

import pytest
from tools import require_tool

from movinet_pi import MovinetPiError
from movinet_pi.display.select import choose_display


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
    assert "add --web PORT" in choice.reason  # a picture without a screen


def test_window_forced_without_display_is_a_clear_error(sockets: Path) -> None:
    with pytest.raises(MovinetPiError, match="--headless"):
        choose_display("window", {}, socket_dir=sockets)


def test_none_is_headless(sockets: Path) -> None:
    assert choose_display("none", {"DISPLAY": ":0"}, socket_dir=sockets).kind == "none"


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    display = f":{90 + os.getpid() % 9}"
    proc = _start_xvfb(display)
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
         "--json", "--verbose", "--exit-at-end"],
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


def _start_xvfb(display: str) -> subprocess.Popen[bytes]:
    binary = require_tool("Xvfb", package="xvfb")
    proc = subprocess.Popen([binary, display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = Path("/tmp/.X11-unix") / f"X{display[1:]}"
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    return proc


def _window_env(display: str, shared: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DISPLAY": display,
        "MOVINET_PI_MODELS": f"{shared / 'models'}{os.pathsep}{shared / 'labels'}",
        "XDG_CACHE_HOME": str(tmp_path),
        "QT_QPA_PLATFORM": "xcb",
    }


def test_the_x_session_ending_mid_run_means_headless_not_a_crash(
    shared: Path, arm_wrestling: Path, tmp_path: Path
) -> None:
    # OpenCV's Qt ends its process when the X server goes; that must not be the app.
    display = f":{80 + os.getpid() % 9}"
    xvfb = _start_xvfb(display)
    app = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(arm_wrestling), "--display",
         "window", "--events", "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_window_env(display, shared, tmp_path),
    )
    try:
        assert app.stdout is not None
        first = app.stdout.readline()  # the first event: the window is up and playing
        assert '"type":"start"' in first
        xvfb.terminate()
        xvfb.wait(5)
        out, err = app.communicate(timeout=120)
    finally:
        app.kill()
        xvfb.kill()
    assert app.returncode == 0, err
    assert "display went away" in err and "continuing headless" in err
    assert "Traceback" not in err
    assert '"type":"end"' in out.splitlines()[-1]  # the run went on to the clip's end
    assert "280 frames read" in err


def test_keys_reach_the_app_through_the_window_process(
    shared: Path, arm_wrestling: Path, tmp_path: Path
) -> None:
    xdotool = require_tool("xdotool", package="xdotool")
    display = f":{70 + os.getpid() % 9}"
    xvfb = _start_xvfb(display)
    env = _window_env(display, shared, tmp_path)
    app = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(arm_wrestling), "--display",
         "window", "--json", "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert app.stdout is not None
        first = app.stdout.readline()  # playing
        window = ""
        deadline = time.monotonic() + 30
        while not window and time.monotonic() < deadline:  # the window is already up
            found = subprocess.run([xdotool, "search", "--name", "movinet-pi"],
                                   capture_output=True, text=True, env=env, timeout=30)
            window = (found.stdout.split() or [""])[0]
        assert window, "no movinet-pi window on the display"
        subprocess.run([xdotool, "key", "--window", window, "q"], env=env, timeout=30)
        out, err = app.communicate(timeout=60)
    finally:
        app.kill()
        xvfb.kill()
    assert app.returncode == 0, err
    steps = [json.loads(line)["step"] for line in [first, *out.splitlines()]]
    assert steps[-1] < 45  # quit by the key, well before the clip's 50 steps
    assert "50 model steps" not in err


def _die_before_replying(conn: object, title: str) -> None:
    """A window process that dies before it says ready (Qt exits from C, say)."""
    os._exit(3)


def test_a_window_process_dying_at_start_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    from movinet_pi.display import window

    monkeypatch.setattr(window, "_window_process", _die_before_replying)
    with pytest.raises(MovinetPiError, match=r"cannot open a window \(the window process "
                                             r"ended \(exit status 3\)\)") as e:
        window.WindowDisplay(start_timeout=30)
    assert "\n" not in str(e.value)


def _closed_by_the_user(conn: object, title: str) -> None:
    """A window process whose window the user closes at once: it says "q" and ends."""
    from movinet_pi.display import window

    conn.send_bytes(window.READY)  # type: ignore[attr-defined]
    conn.send_bytes(window.KEY + b"q")  # type: ignore[attr-defined]


def test_the_last_key_of_a_window_process_that_ended_still_arrives(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing the window sends "q" and ends the process: the app must quit on that key
    # (not only learn that the window has gone), and hear that it has gone after it.
    import numpy as np

    from movinet_pi.display import window

    monkeypatch.setattr(window, "_window_process", _closed_by_the_user)
    display = window.WindowDisplay(start_timeout=30)
    try:
        display._process.join(timeout=30)
        picture = np.zeros((48, 64, 3), np.uint8)
        assert display.show(picture) == ord("q")
        with pytest.raises(RuntimeError, match=r"the window process ended \(exit status 0\)"):
            display.show(picture)
    finally:
        display.close()


def test_a_file_ending_in_a_window_stays_up_until_q(
    shared: Path, carving_ice: Path, tmp_path: Path
) -> None:
    xdotool = require_tool("xdotool", package="xdotool")
    display = f":{60 + os.getpid() % 9}"
    xvfb = _start_xvfb(display)
    env = _window_env(display, shared, tmp_path)
    app = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(carving_ice), "--display",
         "window", "--top-k", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert app.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in app.stderr],  # type: ignore
                                  daemon=True)
        reader.start()
        said: list[str] = []
        while not any("press q or Esc" in line for line in said):  # the clip has ended
            said.append(lines.get(timeout=90))
        time.sleep(1.0)
        assert app.poll() is None  # still showing the last picture
        found = subprocess.run([xdotool, "search", "--name", "movinet-pi"],
                               capture_output=True, text=True, env=env, timeout=30)
        window = (found.stdout.split() or [""])[0]
        assert window, "no movinet-pi window on the display"
        for key in ("space", "h"):  # neither closes it (h shows the keys)
            subprocess.run([xdotool, "key", "--window", window, key], env=env, timeout=30)
        time.sleep(1.0)
        assert app.poll() is None
        subprocess.run([xdotool, "key", "--window", window, "q"], env=env, timeout=30)
        app.wait(timeout=30)
    finally:
        app.kill()
        xvfb.kill()
    reader.join(10)  # the reader thread takes the last lines (it ends at their end)
    err = "".join(said) + "".join(lines.queue)
    assert app.returncode == 0, err
    assert "done: 131 frames" in err and "last shown: carving ice" in err


class _FakeHighgui(types.ModuleType):
    """Just what the window process calls of cv2, counting the window's services."""

    WINDOW_NORMAL, WINDOW_KEEPRATIO, WND_PROP_VISIBLE = 0, 0, 4
    error = RuntimeError

    def __init__(self) -> None:
        super().__init__("cv2")
        self.threads: int | None = None
        self.shown = 0
        self.services = 0  # waitKey calls: each runs the window's event loop

    def setNumThreads(self, n: int) -> None:
        self.threads = n

    def namedWindow(self, *args: object) -> None:
        pass

    def resizeWindow(self, *args: object) -> None:
        pass

    def destroyWindow(self, *args: object) -> None:
        pass

    def imshow(self, title: str, frame: object) -> None:
        self.shown += 1

    def waitKey(self, delay: int) -> int:
        self.services += 1
        return -1

    def getWindowProperty(self, *args: object) -> float:
        return 1.0


def test_the_window_process_serves_its_window_once_a_frame(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # Frames at 30 fps: the process waits on the pipe for each one and draws it, not
    # waking up between frames to run the window's event loop again (issue #21), and it
    # draws on its own thread, not OpenCV's worker pool.
    import multiprocessing
    import signal
    from multiprocessing import shared_memory

    from movinet_pi.display import window

    fake = _FakeHighgui()
    monkeypatch.setitem(sys.modules, "cv2", fake)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # (the test's own Ctrl-C)
    app, child = multiprocessing.Pipe()
    memory = shared_memory.SharedMemory(create=True, size=48 * 64 * 3)
    frames = 45

    def the_app() -> None:
        assert app.recv_bytes() == window.READY
        for _ in range(frames):
            app.send_bytes(window.frame_message(memory.name, (48, 64, 3)))
            assert app.recv_bytes() == window.DRAWN
            time.sleep(1 / 30)
        app.send_bytes(window.CLOSE)

    sender = threading.Thread(target=the_app, daemon=True)
    sender.start()
    try:
        window._window_process(child, "test")
        sender.join(timeout=10)
    finally:
        memory.close()
        memory.unlink()
    assert fake.shown == frames
    assert fake.services <= frames * 1.5  # waking up between frames too: about 2 a frame
    assert fake.threads == 0


def test_a_window_closed_by_the_user_quits_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing
    import signal

    from movinet_pi.display import window

    fake = _FakeHighgui()
    fake.getWindowProperty = lambda *args: 0.0  # type: ignore[method-assign]  # closed
    monkeypatch.setitem(sys.modules, "cv2", fake)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    app, child = multiprocessing.Pipe()
    process = threading.Thread(target=window._window_process, args=(child, "t"), daemon=True)
    process.start()
    assert app.recv_bytes()[:1] == window.READY
    assert app.poll(5) and app.recv_bytes() == window.KEY + b"q"
    process.join(5)
    assert not process.is_alive()


def test_a_desktop_socket_this_user_cannot_use_is_no_desktop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (X0 of another user's session, as over SSH on a Pi whose desktop is logged in)
    from movinet_pi.display import select

    (tmp_path / "X0").touch()
    monkeypatch.setattr(select.os, "access", lambda *args: False)
    assert select.choose_display("auto", {}, picamera=True, socket_dir=tmp_path).kind == "drm"
