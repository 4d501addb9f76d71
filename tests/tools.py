"""System tools the tests drive (Xvfb, xdotool, mosquitto, chromium).

``.ci/run`` installs them from Debian, so in CI (``$CI`` set) a missing one is a
failure; on a developer's machine the test is skipped, saying what to install.
"""

from __future__ import annotations

import os
import shutil

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
