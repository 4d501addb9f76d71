"""The one progress bar (downloads, ``eval``'s clips), its status lines, and sizes and counts
for people."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Callable, Optional, TextIO

#: Called as ``fn(done, total)`` while a job runs (a download: bytes); the total is
#: ``None`` when it is not known. The first call is ``fn(0, total)``.
ProgressFn = Callable[[int, Optional[int]], None]

#: The unit that counts bytes, shown in megabytes.
BYTES = "MB"


def megabytes(n: float) -> str:
    """``3100000`` -> ``"3.1"``."""
    return f"{n / 1e6:.1f}"


def size_text(n: float) -> str:
    """A size in bytes for people: ``3.1 MB``, or ``12.3 kB`` below 100 kB."""
    return f"{megabytes(n)} MB" if n >= 100e3 else f"{n / 1e3:.1f} kB"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count for people: ``1 thread``, ``2 threads`` (``plural``: when not ``noun + "s"``,
    as ``classes``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def status(message: str) -> None:
    """A line of progress output on stderr, in the bar's own style (``a0 int8: saved PATH``:
    no program name, unlike :func:`movinet_pi.log.say`)."""
    print(message, file=sys.stderr, flush=True)


class ProgressBar:
    """How far a job has come, on a stream (stderr by default).

    On a terminal it is one line redrawn in place, cut to the terminal's width:
    ``a0 int8  [#########.......]  1.9/3.1 MB  1.2 MB/s`` for bytes (``unit`` "MB"),
    ``eval  [########............]  3/6 clips  1.5 clips/s  clip.mp4`` for things
    counted one by one (any other ``unit``; the note is the caller's). Anywhere
    else (logs, CI, pipes) it writes, when given a ``verb``, a start line and a
    done line (``a0 int8: downloading 3.1 MB`` ... ``a0 int8: 3.1 MB in 2.0 s``),
    so logs stay readable; without one, nothing. ``enabled=False`` silences it.

    Call it as a :data:`ProgressFn` (``bar(done, total)``, or ``bar(done, total,
    note)``), at most once per ``interval`` seconds drawn; then :meth:`finish`
    after a complete job, :meth:`abort` when it failed, or :meth:`clear` to wipe
    the line (before a warning, or when the bar is not to stay).
    """

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        unit: str = BYTES,
        width: int = 16,
        interval: float = 0.1,
        verb: str | None = "downloading",
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.width = width
        self.interval = interval
        self.verb = verb if enabled else None
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(enabled and isatty and isatty())
        self._started: float | None = None
        self._last_draw = 0.0
        self._done = 0
        self._total: int | None = None
        self._note = ""
        self._drawn = 0  # length of the bar line now on the terminal

    def __call__(self, done: int, total: int | None, note: str = "") -> None:
        now = time.monotonic()
        self._done, self._total, self._note = done, total, note
        if self._started is None:
            self._started = now
            if self.verb and not self.tty:
                size = f" {self._amount(total)}" if total else ""
                self._write(f"{self.label}: {self.verb}{size}\n")
        if self.tty and (now - self._last_draw >= self.interval or done == total):
            self._last_draw = now
            self._draw()

    def line(self) -> str:
        """The bar as it stands: label, bar (when the total is known), counts, rate, note."""
        elapsed = time.monotonic() - (self._started or time.monotonic())
        parts = [self.label]
        if self._total:
            filled = min(self.width, self.width * self._done // self._total)
            parts.append(f"[{'#' * filled}{'.' * (self.width - filled)}]")
            parts.append(f"{self._count(self._done)}/{self._count(self._total)} {self.unit}")
        else:
            parts.append(f"{self._count(self._done)} {self.unit}")
        if elapsed > 0 and self._done:
            parts.append(f"{self._count(self._done / elapsed, rate=True)} {self.unit}/s")
        if self._note:
            parts.append(self._note)
        return "  ".join(parts)

    def finish(self) -> None:
        """End the bar after a complete job."""
        if self.tty:
            self._draw()
            self._write("\n")
            self._drawn = 0
        elif self.verb:
            elapsed = time.monotonic() - (self._started or time.monotonic())
            self._write(f"{self.label}: {self._amount(self._done)} in {elapsed:.1f} s\n")

    def abort(self) -> None:
        """End a bar line cut short, so an error message starts on a line of its own."""
        if self.tty and self._started is not None:
            self._write("\n")
            self._drawn = 0

    def clear(self) -> None:
        """Wipe the bar line, so a warning or a report starts on a clean line."""
        if self.tty and self._drawn:
            self._write("\r\x1b[K")
            self._drawn = 0

    def _count(self, n: float, rate: bool = False) -> str:
        if self.unit == BYTES:
            return megabytes(n)
        return f"{n:.1f}" if rate else str(int(n))

    def _amount(self, n: float) -> str:
        return size_text(n) if self.unit == BYTES else f"{int(n)} {self.unit}"

    def _draw(self) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns
        line = self.line()[: columns - 1]
        # A shorter line than the one on screen wipes what would be left of it.
        self._write("\r" + line + ("\x1b[K" if len(line) < self._drawn else ""))
        self._drawn = len(line)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
