"""System tools the tests drive (Xvfb, xdotool, mosquitto, chromium).

``.ci/run`` installs them from Debian, so in CI (``$CI`` set) a missing one is a
failure; on a developer's machine the test is skipped, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest


def require_tool(*names: str, package: str, also: tuple[str, ...] = ()) -> str:
    """The path of the first of ``names`` on PATH (or of an executable in ``also``)."""
    found = next((shutil.which(n) for n in names if shutil.which(n)), None) or next(
        (p for p in also if os.access(p, os.X_OK)), None
    )
    if found is None:
        message = f"{names[0]} is not installed (Debian package: {package})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs it")
        pytest.skip(message)
    return found


def screen_of_xvfb(fbdir: Path) -> np.ndarray:
    """What an Xvfb started with ``-fbdir fbdir`` shows now, as an (h, w, 3) BGR image:
    its screen is the XWD file ``Xvfb_screen0`` there (a 25-word big-endian header, the
    colour map, then 32-bit pixels)."""
    data = (fbdir / "Xvfb_screen0").read_bytes()
    header = struct.unpack(">25I", data[:100])
    size, width, height, byte_order = header[0], header[4], header[5], header[7]
    bits, line, colours = header[11], header[12], header[19]
    assert bits == 32, f"Xvfb screen at {bits} bits a pixel: start it with -screen 0 WxHx24"
    offset = size + colours * 12
    pixels = np.frombuffer(data, np.uint8, count=line * height, offset=offset)
    image = pixels.reshape(height, line)[:, : width * 4].reshape(height, width, 4)
    return image[:, :, :3] if byte_order == 0 else image[:, :, 3:0:-1]  # LSB first: B,G,R,X


def start_xvfb(size: str, fbdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb with a screen of ``size`` (no window manager) on a display number it picks
    itself (free, whatever else runs), ready, and its ``:N``; its screen can be read with
    :func:`screen_of_xvfb`."""
    binary = require_tool("Xvfb", package="xvfb")
    read, write = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(write), "-screen", "0", f"{size}x24",
                             "-nolisten", "tcp", "-fbdir", str(fbdir)], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as answer:
        number = answer.readline().strip()  # written once the server is ready
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    return proc, f":{number}"
