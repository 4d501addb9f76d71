"""The Pi's health: CPU temperature and the firmware's throttling bits, read off the frame path.

Where the files are missing (not a Pi, a container) :func:`read_health` returns
None and nothing is shown; it never raises. Every file is read under a root
(``$MOVINET_PI_SYSFS``, default ``/``) so that tests can give a fake tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SYSFS_ENV = "MOVINET_PI_SYSFS"
TEMP_FILE = "sys/class/thermal/thermal_zone0/temp"
THROTTLED_FILE = "sys/devices/platform/soc/soc:firmware/get_throttled"
#: Above this the status is worth a warning (the firmware's soft limit is 80-85 °C).
HOT_C = 80.0

#: The firmware's get_throttled bits: now (0-3) and since boot (16-19).
THROTTLE_BITS: dict[int, str] = {
    0: "under-voltage",
    1: "frequency capped",
    2: "throttled",
    3: "soft temperature limit",
}
SINCE_BOOT_SHIFT = 16


def health_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root``, else ``$MOVINET_PI_SYSFS``, else ``/``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(SYSFS_ENV) or "/")


def throttle_reasons(bits: int, *, since_boot: bool = False) -> list[str]:
    """The named conditions set in ``bits`` (now, or since boot), in bit order."""
    shift = SINCE_BOOT_SHIFT if since_boot else 0
    return [name for bit, name in THROTTLE_BITS.items() if bits >> (bit + shift) & 1]


def parse_throttled(text: str) -> int | None:
    """``throttled=0x50005`` (vcgencmd), ``50005`` or ``0x50005`` (sysfs) -> the bits."""
    value = text.strip().rpartition("=")[2].strip()
    try:
        return int(value, 16)
    except ValueError:
        return None


def parse_temp(text: str) -> float | None:
    """sysfs millidegrees (``52312``) -> °C, rounded to 0.1."""
    try:
        return round(int(text.strip()) / 1000.0, 1)
    except ValueError:
        return None


@dataclass(frozen=True)
class Health:
    """One reading; a field is None where this machine does not say."""

    cpu_temp_c: float | None = None
    throttled_bits: int | None = None

    @property
    def reasons(self) -> list[str]:
        """What limits the CPU now (empty: nothing, or unknown)."""
        return [] if self.throttled_bits is None else throttle_reasons(self.throttled_bits)

    @property
    def throttled(self) -> bool | None:
        """Any of the four conditions now; None where unknown."""
        return None if self.throttled_bits is None else bool(self.reasons)

    @property
    def warning(self) -> bool:
        """Throttled now, or hotter than :data:`HOT_C`."""
        hot = self.cpu_temp_c is not None and self.cpu_temp_c >= HOT_C
        return hot or bool(self.throttled)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.cpu_temp_c is not None:
            out["cpu_temp_c"] = self.cpu_temp_c
        if self.throttled_bits is not None:
            out["throttled"] = bool(self.throttled)
            out["throttle_reasons"] = self.reasons
            out["throttled_since_boot"] = throttle_reasons(self.throttled_bits, since_boot=True)
        return out

    def describe(self) -> str:
        """One line for people: ``CPU 61.2 °C, not throttled``."""
        parts = []
        if self.cpu_temp_c is not None:
            parts.append(f"CPU {self.cpu_temp_c:.1f} °C")
        if self.throttled_bits is not None:
            now = self.reasons
            parts.append(", ".join(now) if now else "not throttled")
            before = [r for r in throttle_reasons(self.throttled_bits, since_boot=True)
                      if r not in now]
            if before:
                parts.append(f"earlier since boot: {', '.join(before)}")
        return ", ".join(parts)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def _vcgencmd_throttled() -> int | None:
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "get_throttled"], capture_output=True, text=True,
                              timeout=2.0, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_throttled(done.stdout) if done.returncode == 0 else None


def read_health(root: str | os.PathLike[str] | None = None) -> Health | None:
    """The CPU temperature and throttling bits under ``root``, or None if neither is there.

    The throttling bits come from sysfs where the firmware driver exposes them,
    else from ``vcgencmd get_throttled`` (only when reading the real ``/``).
    """
    base = health_root(root)
    temp_text = _read(base / TEMP_FILE)
    temp = parse_temp(temp_text) if temp_text is not None else None
    throttled_text = _read(base / THROTTLED_FILE)
    if throttled_text is not None:
        bits = parse_throttled(throttled_text)
    elif base == Path("/"):
        bits = _vcgencmd_throttled()
    else:
        bits = None
    if temp is None and bits is None:
        return None
    return Health(temp, bits)


class HealthMonitor:
    """Reads :func:`read_health` every ``interval_s`` on a thread of its own.

    ``latest`` is the newest reading (None until the first, and on machines
    without the files, where the thread stops after its first try). The
    pipeline never waits for it: reading ``latest`` takes no lock.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, interval_s: float = 5.0,
                 reader: Callable[[Path], Health | None] = read_health) -> None:
        self.root = health_root(root)
        self.interval_s = interval_s
        self._reader = reader
        self.latest: Health | None = reader(self.root)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        """Whether this machine reports anything at all (decided by the first reading)."""
        return self.latest is not None

    def start(self) -> HealthMonitor:
        if self.available and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="health", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                reading = self._reader(self.root)
            except Exception:  # a health reading must never end the run
                reading = None
            if reading is not None:
                self.latest = reading

    def on_step(self, result: object) -> None:
        """Nothing: the monitor may sit among a run's outputs, so that the run stops it."""

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
