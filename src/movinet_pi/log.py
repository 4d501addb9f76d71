"""The one stderr logging helper: a line ``movinet-pi: message`` on stderr, flushed."""

from __future__ import annotations

import sys

PROG = "movinet-pi"


def say(message: str) -> None:
    """Tell the user something on stderr (the default ``log`` of every part that logs)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
