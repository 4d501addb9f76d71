"""The picture fits the screen it opens on (issue #29), and a new window is never left black.

Under Xvfb (no window manager), each screen is read back from its ``-fbdir`` file: what a
user would see.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
from fake_picamera2 import install, pattern_frames
from tools import require_tool, screen_of_xvfb, start_xvfb

from movinet_pi.display.drm import DrmDisplay, drm_mode_size
from movinet_pi.display.render import shown_shape, shown_size
from movinet_pi.display.window import WindowDisplay
from movinet_pi.sources.open import open_source


# -- the size a picture is shown at ---------------------------------------------------------
@pytest.mark.parametrize(("picture", "screen", "chosen", "shown"), [
    ((720, 1280), (1280, 800), None, (405, 720)),  # a portrait phone clip, a laptop screen
    ((640, 480), (800, 480), None, (533, 400)),    # a Pi's 7" display, with its panel
    ((640, 480), (1920, 1080), None, (640, 480)),  # fits: as it is, never blown up
    ((172, 172), (1920, 1080), None, (688, 688)),  # small: scaled up for its text
    ((172, 172), (800, 480), None, (400, 400)),    # ...but not past the screen
    ((1920, 1080), None, None, (1920, 1080)),      # no screen known: as before
    ((640, 480), (800, 480), (1280, 720), (960, 720)),  # --window-size: fitted to it
    ((720, 1280), None, (400, 400), (225, 400)),
])
def test_the_picture_is_scaled_to_fit_the_screen(
    picture: tuple[int, int], screen: tuple[int, int] | None, chosen: tuple[int, int] | None,
    shown: tuple[int, int]
) -> None:
    assert shown_size(picture, screen, chosen) == shown
    assert shown_shape((picture[1], picture[0], 3), screen, chosen) == (shown[1], shown[0], 3)


def _sysfs_screen(root: Path, mode: str) -> None:
    for name, status, modes in (("card0-Writeback-1", "unknown", ""),
                                # (a port with nothing plugged in may list modes too)
                                ("card1-HDMI-A-1", "disconnected", "1920x1080\n"),
                                ("card1-HDMI-A-2", "connected", f"{mode}\n1280x720\n")):
        folder = root / "sys" / "class" / "drm" / name
        folder.mkdir(parents=True)
        (folder / "status").write_text(f"{status}\n")
        (folder / "modes").write_text(modes)


def test_the_drm_preview_fills_the_screens_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # picamera2's own DRM preview is a 640x480 corner; the Pi's 7" display is 800x480
    _sysfs_screen(tmp_path, "800x480")
    monkeypatch.setenv("MOVINET_PI_SYSFS", str(tmp_path))
    assert drm_mode_size() == (800, 480)
    system = install(monkeypatch, frames=pattern_frames((1280, 960)))
    source = open_source("picamera", frame_size=(1280, 960), timeout=2.0)
    try:
        display = DrmDisplay(source, (1280, 960), max_fps=1000.0)
        options = system.instances[-1]._preview.options
        assert (options["width"], options["height"]) == (800, 480)
        assert display.size == (640, 480)  # the overlay, drawn at the size it is shown
        display.close()
    finally:
        source.close()
    monkeypatch.setenv("MOVINET_PI_SYSFS", str(tmp_path / "nothing"))
    assert drm_mode_size() is None


# -- under Xvfb ------------------------------------------------------------------------------
@pytest.fixture
def portrait_clip(tmp_path: Path) -> Path:
    """2 s of a 720x1280 phone clip, plain grey: anything bright on it is the overlay."""
    path = tmp_path / "portrait.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (720, 1280))
    for _ in range(20):
        writer.write(np.full((1280, 720, 3), 90, np.uint8))
    writer.release()
    return path


@pytest.fixture
def laptop_screen(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A 1280x800 X screen (the issue's), no window manager, readable as pixels."""
    fbdir = tmp_path / "fb"
    fbdir.mkdir()
    xvfb, display = start_xvfb("1280x800", fbdir)
    yield display, fbdir
    xvfb.terminate()
    xvfb.wait(5)


def _geometry(xdotool: str, env: dict[str, str]) -> tuple[int, int, int, int]:
    """The movinet-pi window's x, y, width, height (waiting for it to appear)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = subprocess.run([xdotool, "search", "--name", "movinet-pi", "getwindowgeometry",
                                "--shell"], capture_output=True, text=True, env=env, timeout=30)
        values = dict(line.split("=", 1) for line in found.stdout.split() if "=" in line)
        if {"X", "Y", "WIDTH", "HEIGHT"} <= values.keys():
            return (int(values["X"]), int(values["Y"]), int(values["WIDTH"]),
                    int(values["HEIGHT"]))
        time.sleep(0.2)
    raise AssertionError("no movinet-pi window on the display")


def test_a_portrait_clip_fits_an_800_pixel_screen_status_line_included(
    laptop_screen: tuple[str, Path], portrait_clip: Path, shared: Path, tmp_path: Path
) -> None:
    xdotool = require_tool("xdotool", package="xdotool")
    display, fbdir = laptop_screen
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "MOVINET_PI_MODELS": f"{shared / 'models'}{os.pathsep}{shared / 'labels'}",
           "XDG_CACHE_HOME": str(tmp_path)}
    app = subprocess.Popen([sys.executable, "-m", "movinet_pi", str(portrait_clip), "--display",
                            "window"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, env=env)
    try:
        _geometry(xdotool, env)  # the window is up (at the size Qt opens it at, at first)
        time.sleep(3.0)  # the 2 s clip has ended: its last picture is held, with its status
        x, y, width, height = _geometry(xdotool, env)
        screen = screen_of_xvfb(fbdir)
        subprocess.run([xdotool, "search", "--name", "movinet-pi", "key", "--window", "%1",
                        "q"], env=env, timeout=30)
        _, err = app.communicate(timeout=60)
    finally:
        app.kill()
    assert app.returncode == 0, err
    assert (width, height) == (405, 720) and x + width <= 1280 and y + height <= 800
    window = screen[y : y + height, x : x + width]
    assert (np.abs(window[height // 2].astype(int) - 90) < 12).mean() > 0.9  # the picture
    bottom = window[-60:]  # the status line (and the "q or Esc closes" note above it)
    assert (bottom > 200).any(axis=2).sum() > 200, "no status text at the window's bottom"
    assert (np.abs(bottom.astype(int) - 90) < 12).all(axis=2).mean() < 0.5  # a dark panel


def _shows(fbdir: Path, picture: np.ndarray) -> bool:
    h, w = picture.shape[:2]
    return bool((screen_of_xvfb(fbdir)[:h, :w] == picture).all(axis=2).mean() > 0.9)


def test_a_new_window_always_shows_its_picture(tmp_path: Path) -> None:
    # OpenCV's Qt, with no window manager, now and then misses its window's MapNotify and
    # never paints it: about 1 window in 10 stayed black (issue #29). 30 windows in a row
    # must each show their picture (without the fix, all 30 did in 4 % of tries).
    fbdir = tmp_path / "fb"
    fbdir.mkdir()
    xvfb, display = start_xvfb("320x240", fbdir)
    old = {name: os.environ.get(name) for name in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ.update(DISPLAY=display, QT_QPA_PLATFORM="xcb")  # (the window process's)
    black = 0
    try:
        for n in range(30):
            picture = np.full((120, 160, 3), (40 + 6 * n, 200, 120), np.uint8)
            window = WindowDisplay(size=(160, 120))
            try:
                deadline = time.monotonic() + 5.0
                while not _shows(fbdir, picture) and time.monotonic() < deadline:
                    window.show(picture)
                    time.sleep(0.05)
                black += not _shows(fbdir, picture)
            finally:
                window.close()
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        xvfb.terminate()
        xvfb.wait(5)
    assert black == 0, f"{black} of 30 windows stayed black"
