"""Action events: what was seen, from when to when, how strongly.

An event follows a label in the shown list (the list the overlay draws, after the
stream policy's smoothing and hysteresis): it is updated on every step the label
stays there and ends on the first step it is gone. So events follow what a person
watching the monitor sees, and a flickering label cannot make a storm of events:
hysteresis has already removed the flicker.

With a minimum (``--event-min-s``, the app's default 1 s) an event starts only once its
label has been shown that long: its ``start`` line comes then, dated back to when the
label appeared, so no event shorter than the minimum is ever published (a label shown
for a moment is noise, not an action). The stream's first second (its first
:data:`~movinet_pi.model.catalogue.STREAM_WARMUP_STEPS` model steps, again after a
reset) counts toward nothing: the model has not seen enough yet, and what it shows
then is mostly noise (``climbing ladder`` on a yoga clip's first frame).

:class:`EventTracker` is pure bookkeeping (no clocks, no I/O): feed it each
step's shown list with the step's timestamp, and it returns what changed.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

from movinet_pi.model.catalogue import STREAM_WARMUP_STEPS
from movinet_pi.model.predictions import Prediction

EventKind = Literal["start", "update", "end"]

#: Steps fall on a 0.2 s grid whose sums are not exact in binary (0.2 * 5 is
#: 1.0000000000000002 or 0.9999999999999999): a time this close to due counts as due.
TOLERANCE_S = 1e-6


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
    """Turns the per-step shown list into start / update / end changes.

    ``min_s``: an event starts once its label has been shown this long (dated back to
    when it appeared); a label gone sooner makes none. With a minimum, a stream's first
    ``warmup_steps`` steps count toward nothing. 0: every label shown is an event at once.
    """

    def __init__(self, min_s: float = 0.0, warmup_steps: int = STREAM_WARMUP_STEPS) -> None:
        if not min_s >= 0:
            raise ValueError("min_s must be 0 or more")
        self.min_s = min_s
        self.warmup_steps = warmup_steps if min_s > 0 else 0
        self.active: dict[str, Event] = {}
        self.pending: dict[str, Event] = {}  # shown, not yet for min_s: nothing said yet
        self._ids = itertools.count(1)
        self._next_step = 0  # the stream's step count, when the caller does not give it

    def update(self, t: float, shown: Sequence[Prediction],
               step: int | None = None) -> list[EventChange]:
        """Feed one step; return its changes: ends first, then starts, then updates.
        ``step``: the step's number in its stream (``StepResult.step``: 0 again after a
        reset); else the steps fed so far are counted."""
        step = self._next_step if step is None else step
        self._next_step = step + 1
        warm = step >= self.warmup_steps
        scores = {p.label: p.score for p in shown} if warm else {}
        changes = [EventChange.of("end", e) for e in self._end(set(self.active) - set(scores))]
        for label in set(self.pending) - set(scores):
            del self.pending[label]  # gone before its minimum: it never was an event
        updates = []
        for label, score in scores.items():
            event = self.active.get(label)
            if event is not None:
                event.add(t, score)
                updates.append(EventChange.of("update", event))
                continue
            event = self.pending.setdefault(
                label, Event(0, label, start=t, end=t, peak=score, score=score))
            event.add(t, score)
            if t - event.start >= self.min_s - TOLERANCE_S:
                del self.pending[label]
                event.id = next(self._ids)
                self.active[label] = event
                changes.append(EventChange.of("start", event))
        return changes + updates

    def finish(self) -> list[EventChange]:
        """End every open event (the source ended or the app is stopping); a label not
        shown for the minimum yet makes none."""
        self.pending.clear()
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

    TOLERANCE_S = TOLERANCE_S

    def __init__(self, update_interval_s: float = 1.0, min_s: float = 0.0) -> None:
        """``min_s``: the shortest event (:class:`EventTracker`)."""
        if not update_interval_s >= 0:
            raise ValueError("update_interval_s must be 0 or more")
        self.tracker = EventTracker(min_s)
        self.update_interval_s = update_interval_s
        self._last_sent: dict[int, float] = {}  # event id -> t of its last line

    def update(self, t: float, shown: Sequence[Prediction],
               step: int | None = None) -> list[EventChange]:
        """Feed one step; return the changes worth telling (see the class docstring)."""
        return [c for c in self.tracker.update(t, shown, step) if self._passes(c, t)]

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
