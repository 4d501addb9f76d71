"""The outputs on stdout: JSON lines (``--json``), events (``--events``) and the human log."""

from __future__ import annotations

import sys
from typing import IO

from movinet_pi.outputs.base import StepResult, json_line
from movinet_pi.outputs.events import EventFeed


class JsonLinesSink:
    """One JSON object per model step, one per line (``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def on_step(self, result: StepResult) -> None:
        self.stream.write(json_line(result.to_json()) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class HumanSink:
    """A compact line each time the top-1 label changes (the default without ``--json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._last: str | None = None

    def on_step(self, result: StepResult) -> None:
        label = result.top[0].label if result.top else "no action"
        if label == self._last:
            return
        self._last = label
        score = f" {result.top[0].score * 100:5.1f} %" if result.top else ""
        self.stream.write(f"{result.t:8.2f}s  step {result.step:5d}  {label}{score}\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class EventsSink:
    """One JSON line per event change (``--events``): what was seen, from when to when.

    Events follow the shown list (see :mod:`movinet_pi.outputs.events`): a ``start``
    line when an action appears, an ``end`` line when it goes (with its
    duration, peak and mean score), and in between an ``update`` line at most
    once per ``update_interval_s`` of source time per event, not on every step:
    five lines a second for each of three actions would bury the starts and
    ends. ``close()`` ends the events still open, so every ``start`` gets its
    ``end``. Lines look like::

        {"type":"start","id":1,"label":"juggling balls","start":0.4,"end":null,
         "duration":0.0,"score":0.61,"peak":0.61,"mean":0.61,"steps":1}
    """

    def __init__(self, stream: IO[str] | None = None, *, update_interval_s: float = 1.0,
                 event_min_s: float = 0.0) -> None:
        self.stream = stream or sys.stdout
        self.feed = EventFeed(update_interval_s, event_min_s)

    def on_step(self, result: StepResult) -> None:
        changes = self.feed.update(result.t, result.top, result.step)
        if changes:
            self.stream.write("".join(json_line(c.to_json()) + "\n" for c in changes))
            self.stream.flush()

    def close(self) -> None:
        changes = self.feed.finish()
        if changes:
            self.stream.write("".join(json_line(c.to_json()) + "\n" for c in changes))
        self.stream.flush()
