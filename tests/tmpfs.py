"""Run a child script against a real, small tmpfs (full or read-only disks, for real).

The child runs in a private mount namespace (``unshare -m``, as root), so nothing is
mounted for the rest of the machine. Where mounting is not allowed the test is skipped,
except in CI (``$CI`` set, as ``.ci/run`` runs as root): there it fails, like a missing
tool in tests/tools.py, so that these tests cannot quietly stop running.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run these tests (as root, with util-linux)")
    pytest.skip(message)


def run_on_tmpfs(tmp_path: Path, options: str, child: str, *args: str) -> dict[str, object]:
    """Mount a tmpfs with ``options`` (e.g. ``"ro,size=1m"``), run ``child`` (Python source)
    as ``child MOUNTPOINT ARGS...``, and return the JSON object its last line prints."""
    unshare = shutil.which("unshare")
    if unshare is None:
        _unavailable("unshare (util-linux) is not installed")
    where = tmp_path / "mnt"
    where.mkdir()
    script = tmp_path / "child.py"
    script.write_text(child)
    cmd = [unshare, "-m", "--propagation", "private", "sh", "-c",
           f'mount -t tmpfs -o {options} tmpfs "$1" && shift && exec "$@"',
           "sh", str(where), sys.executable, str(script), str(where), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and ("mount" in done.stderr or "unshare" in done.stderr):
        _unavailable("cannot mount a tmpfs here (needs root in a mount namespace): "
                     f"{done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
