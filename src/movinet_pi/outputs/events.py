"""Action events: what was seen, from when to when, how strongly.

An event starts when a label enters the shown list (the list the overlay draws,
after the stream policy's smoothing and hysteresis), is updated on every step
it stays there, and ends on the first step it is gone. So events follow exactly
what a person watching the monitor sees, and a flickering label cannot make a
storm of events: hysteresis has already removed the flicker.

:class:`EventTracker` is pure bookkeeping (no clocks, no I/O): feed it each
step's shown list with the step's timestamp, and it returns what changed.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

from movinet_pi.model.classifier import Prediction

EventKind = Literal["start", "update", "end"]


@dataclass
class Event:
    """One action, from the step it appeared to the step it left."""

    id: int
    label: str
    start: float  # seconds into the source
    end: float  # timestamp of the last step it was shown (so far)
    peak: float
    score: float  # the newest score
    _sum: float = field(default=0.0, repr=False)
    _steps: int = field(default=0, repr=False)
    ended: bool = False

    @property
    def mean(self) -> float:
        return self._sum / self._steps if self._steps else 0.0

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def add(self, t: float, score: float) -> None:
        self.end = t
        self.score = score
        self.peak = max(self.peak, score)
        self._sum += score
        self._steps += 1

    def to_json(self, kind: EventKind) -> dict[str, object]:
        return {
            "type": kind,
            "id": self.id,
            "label": self.label,
            "start": round(self.start, 3),
            "end": round(self.end, 3) if kind == "end" else None,
            "duration": round(self.duration, 3),
            "score": round(self.score, 5),
            "peak": round(self.peak, 5),
            "mean": round(self.mean, 5),
            "steps": self.steps,
        }


@dataclass(frozen=True)
class EventChange:
    """What one step did to one event.

    ``event`` is a snapshot taken at that step: the tracker goes on updating its
    own copy, and a change read later (another thread, a queue) must still say
    what it said then.
    """

    kind: EventKind
    event: Event

    @classmethod
    def of(cls, kind: EventKind, event: Event) -> EventChange:
        return cls(kind, copy.copy(event))

    def to_json(self) -> dict[str, object]:
        return self.event.to_json(self.kind)


class EventTracker:
    """Turns the per-step shown list into start / update / end changes."""

    def __init__(self) -> None:
        self.active: dict[str, Event] = {}
        self._ids = itertools.count(1)

    def update(self, t: float, shown: Sequence[Prediction]) -> list[EventChange]:
        """Feed one step; return its changes: ends first, then starts, then updates."""
        scores = {p.label: p.score for p in shown}
        changes = [EventChange.of("end", e) for e in self._end(set(self.active) - set(scores))]
        updates = []
        for label, score in scores.items():
            event = self.active.get(label)
            if event is None:
                event = Event(next(self._ids), label, start=t, end=t, peak=score, score=score)
                event.add(t, score)
                self.active[label] = event
                changes.append(EventChange.of("start", event))
            else:
                event.add(t, score)
                updates.append(EventChange.of("update", event))
        return changes + updates

    def finish(self) -> list[EventChange]:
        """End every open event (the source ended or the app is stopping)."""
        return [EventChange.of("end", e) for e in self._end(set(self.active))]

    def _end(self, labels: Iterable[str]) -> list[Event]:
        ended = []
        for label in sorted(labels):
            event = self.active.pop(label)
            event.ended = True
            ended.append(event)
        return ended


class EventFeed:
    """An :class:`EventTracker` whose updates are thinned out for people and brokers.

    Every step updates every open event, five times a second: as a stream of
    lines on stdout or messages on a broker that is mostly noise. The feed
    passes every ``start`` and ``end`` through, and an event's ``update`` at
    most once per ``update_interval_s`` of source time (the first one no sooner
    than that after its start). Source time, not the wall clock, so a file run
    as fast as possible gives the same lines as the same file watched live.
    ``update_interval_s=0`` passes every update, ``math.inf`` none.
    """

    #: Steps fall on a 0.2 s grid whose sums are not exact in binary (0.2 * 5 is
    #: 1.0000000000000002 or 0.9999999999999999): an update this early counts as due.
    TOLERANCE_S = 1e-6

    def __init__(self, update_interval_s: float = 1.0) -> None:
        if not update_interval_s >= 0:
            raise ValueError("update_interval_s must be 0 or more")
        self.tracker = EventTracker()
        self.update_interval_s = update_interval_s
        self._last_sent: dict[int, float] = {}  # event id -> t of its last line

    def update(self, t: float, shown: Sequence[Prediction]) -> list[EventChange]:
        """Feed one step; return the changes worth telling (see the class docstring)."""
        return [c for c in self.tracker.update(t, shown) if self._passes(c, t)]

    def finish(self) -> list[EventChange]:
        """End every open event."""
        changes = self.tracker.finish()
        self._last_sent.clear()
        return changes

    def _passes(self, change: EventChange, t: float) -> bool:
        event_id = change.event.id
        if change.kind == "end":
            self._last_sent.pop(event_id, None)
            return True
        if change.kind == "update":
            last = self._last_sent.get(event_id, t)
            # t < last: the source's clock went back (a reopened stream); start over.
            if last <= t < last + self.update_interval_s - self.TOLERANCE_S:
                return False
        self._last_sent[event_id] = t
        return True
