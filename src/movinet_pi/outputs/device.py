"""Which machine this is: a stable device id, and the Pi's model name.

The MQTT output puts its default topics under the device id (two Pis on one broker
never share a topic) and Home Assistant discovery names the device by it. Both read
the same files, under :func:`~movinet_pi.health.health_root` (``$MOVINET_PI_SYSFS``
points it at a fake Pi in the tests).
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from movinet_pi.health import health_root

#: Where a stable, per-machine id is read (under the health root), in order:
#: the Pi's serial (survives a reinstall), then systemd's machine id.
MACHINE_ID_FILES = (
    "sys/firmware/devicetree/base/serial-number",
    "proc/device-tree/serial-number",
    "etc/machine-id",
)
HW_MODEL_FILE = "proc/device-tree/model"


def _read_text(path: Path) -> str | None:
    try:
        text = path.read_bytes().replace(b"\0", b"").decode("utf-8", "replace").strip()
    except OSError:
        return None
    return text or None


def machine_id(root: str | os.PathLike[str] | None = None) -> str:
    """This machine's stable id (Pi serial, else /etc/machine-id, else the host name)."""
    base = health_root(root)
    for name in MACHINE_ID_FILES:
        text = _read_text(base / name)
        if text:
            return text
    return socket.gethostname()


def device_id(root: str | os.PathLike[str] | None = None) -> str:
    """``movinet_pi_<12 hex>``: a hash of :func:`machine_id` (never the id itself),
    the same across restarts, different per Pi."""
    digest = hashlib.sha256(f"movinet-pi:{machine_id(root)}".encode()).hexdigest()
    return f"movinet_pi_{digest[:12]}"


def hardware_model(root: str | os.PathLike[str] | None = None) -> str | None:
    """``Raspberry Pi 5 Model B Rev 1.0`` from the device tree, where there is one."""
    return _read_text(health_root(root) / HW_MODEL_FILE)
