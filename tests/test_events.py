"""Events: the tracker's bookkeeping, the update throttle, and ``--events`` lines."""

from __future__ import annotations

import io
import json
import math
from typing import Sequence

import pytest

from movinet_pi.model.predictions import Prediction
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.events import EventFeed, EventTracker
from movinet_pi.outputs.jsonlines import EventsSink, JsonLinesSink

STEP_S = 0.2  # the model's 5 fps grid


def shown(*pairs: tuple[str, float]) -> list[Prediction]:
    return [Prediction(label, score, i) for i, (label, score) in enumerate(pairs)]


def kinds(changes: Sequence) -> list[tuple[str, str]]:
    return [(c.kind, c.event.label) for c in changes]


# -- EventTracker -------------------------------------------------------------------------
def test_start_update_end_follow_the_shown_list() -> None:
    tracker = EventTracker()
    assert kinds(tracker.update(0.0, shown(("run", 0.6)))) == [("start", "run")]
    assert kinds(tracker.update(0.2, shown(("run", 0.7), ("jump", 0.2)))) == [
        ("start", "jump"), ("update", "run")]
    # ends come first, then starts, then updates
    assert kinds(tracker.update(0.4, shown(("jump", 0.3), ("swim", 0.1)))) == [
        ("end", "run"), ("start", "swim"), ("update", "jump")]
    assert kinds(tracker.update(0.6, [])) == [("end", "jump"), ("end", "swim")]
    assert tracker.active == {}
    assert tracker.update(0.8, []) == []


def test_peak_mean_duration_and_steps() -> None:
    tracker = EventTracker()
    scores = [0.2, 0.8, 0.5]
    for i, score in enumerate(scores):
        tracker.update(i * STEP_S, shown(("run", score)))
    (end,) = tracker.update(len(scores) * STEP_S, [])
    event = end.event
    assert end.kind == "end" and event.ended
    assert event.start == 0.0
    assert event.end == pytest.approx(0.4)  # the last step it was shown, not the step it left
    assert event.duration == pytest.approx(0.4)
    assert event.peak == 0.8
    assert event.score == 0.5  # the newest
    assert event.mean == pytest.approx(0.5)
    assert event.steps == 3
    as_json = end.to_json()
    assert as_json == {"type": "end", "id": 1, "label": "run", "start": 0.0, "end": 0.4,
                       "duration": 0.4, "score": 0.5, "peak": 0.8, "mean": 0.5, "steps": 3}


def test_open_event_json_has_no_end_yet() -> None:
    tracker = EventTracker()
    (start,) = tracker.update(1.0, shown(("run", 0.5)))
    assert start.to_json()["end"] is None
    assert start.to_json()["duration"] == 0.0
    (update,) = tracker.update(1.2, shown(("run", 0.5)))
    assert update.to_json()["end"] is None
    assert update.to_json()["duration"] == pytest.approx(0.2)


def test_finish_ends_every_open_event() -> None:
    tracker = EventTracker()
    tracker.update(0.0, shown(("b", 0.5), ("a", 0.4)))
    tracker.update(0.2, shown(("b", 0.5), ("a", 0.4)))
    ends = tracker.finish()
    assert kinds(ends) == [("end", "a"), ("end", "b")]  # sorted by label: deterministic
    assert all(c.event.ended and c.event.end == pytest.approx(0.2) for c in ends)
    assert tracker.finish() == []


def test_a_label_coming_back_is_a_new_event() -> None:
    tracker = EventTracker()
    (first,) = tracker.update(0.0, shown(("run", 0.5)))
    tracker.update(0.2, [])
    (again,) = tracker.update(0.4, shown(("run", 0.9)))
    assert again.kind == "start"
    assert again.event.id != first.event.id
    assert again.event.start == pytest.approx(0.4)
    assert again.event.peak == 0.9 and first.event.peak == 0.5  # no shared state


def test_ids_are_unique_and_increasing() -> None:
    tracker = EventTracker()
    ids = []
    for i in range(6):
        ids += [c.event.id for c in tracker.update(i * STEP_S, shown((f"l{i % 2}", 0.5)))
                if c.kind == "start"]
    assert ids == sorted(set(ids)) and len(ids) == 6


# -- a minimum: no noise events -------------------------------------------------------------
def run_tracker(tracker: EventTracker, timeline: Sequence[Sequence[tuple[str, float]]],
                steps: Sequence[int] | None = None) -> list[tuple[float, str, str, float, float]]:
    """(t, kind, label, start, duration) of every change over ``timeline`` (a shown list
    a step)."""
    out = []
    for i, pairs in enumerate(timeline):
        step_no = None if steps is None else steps[i]
        for c in tracker.update(i * STEP_S, shown(*pairs), step_no):
            out.append((round(i * STEP_S, 1), c.kind, c.event.label, round(c.event.start, 1),
                        round(c.event.duration, 1)))
    return out + [(-1.0, c.kind, c.event.label, round(c.event.start, 1),
                   round(c.event.duration, 1)) for c in tracker.finish()]


def test_an_event_starts_once_shown_for_the_minimum_dated_back() -> None:
    tracker = EventTracker(min_s=1.0, warmup_steps=0)
    timeline = [[("blip", 0.3)]] * 3 + [[]] + [[("run", 0.6)]] * 8 + [[]]
    changes = [c for c in run_tracker(tracker, timeline) if c[1] != "update"]
    # the blip (0.4 s) never was an event; "run" is told at 1.8 s as from 0.8 s
    assert changes == [(1.8, "start", "run", 0.8, 1.0), (2.4, "end", "run", 0.8, 1.4)]


def test_the_streams_first_second_counts_toward_nothing() -> None:
    tracker = EventTracker(min_s=1.0)  # the warm-up: a stream's first 5 steps
    timeline = [[("noise", 0.6)]] * 7 + [[("act", 0.6)]] * 12
    changes = [c for c in run_tracker(tracker, timeline) if c[1] != "update"]
    # noise, shown 0.0-1.2 s, counts only from 1.0 s: 0.2 s, no event
    assert changes == [(2.4, "start", "act", 1.4, 1.0), (-1.0, "end", "act", 1.4, 2.2)]
    # a reset (the stream's step count back at 0) starts a new warm-up
    tracker = EventTracker(min_s=1.0)
    steps = [*range(12), *range(12)]
    changes = run_tracker(tracker, [[("act", 0.6)]] * 24, steps)
    assert [(t, kind) for t, kind, *_ in changes if kind != "update"] == [
        (2.0, "start"), (2.4, "end"), (4.4, "start"), (-1.0, "end")]


def test_an_event_shorter_than_the_minimum_is_not_told_at_the_end_either() -> None:
    tracker = EventTracker(min_s=1.0, warmup_steps=0)
    assert run_tracker(tracker, [[("late", 0.5)]] * 3) == []  # the file ended meanwhile
    assert tracker.pending == {} and tracker.active == {}


def test_a_label_that_comes_back_after_a_gap_starts_its_minimum_again() -> None:
    # Shown 0.4 s, gone for a step, back at 0.8 s: its minimum counts from 0.8 s, not from 0.
    tracker = EventTracker(min_s=1.0, warmup_steps=0)
    timeline = [[("x", 0.5)]] * 3 + [[]] + [[("x", 0.5)]] * 6
    changes = [c for c in run_tracker(tracker, timeline) if c[1] != "update"]
    assert changes == [(1.8, "start", "x", 0.8, 1.0), (-1.0, "end", "x", 0.8, 1.0)]


def test_no_minimum_is_every_shown_label_at_once() -> None:
    tracker = EventTracker(min_s=0.0)
    assert run_tracker(tracker, [[("a", 0.5)], []]) == [(0.0, "start", "a", 0.0, 0.0),
                                                        (0.2, "end", "a", 0.0, 0.0)]
    with pytest.raises(ValueError):
        EventTracker(min_s=-1.0)


def test_ids_count_published_events_only() -> None:
    tracker = EventTracker(min_s=0.4, warmup_steps=0)
    timeline = [[("x", 0.5)], [], [("y", 0.5)]] + [[("z", 0.5)]] * 3
    starts = [c for c in (tracker.update(i * STEP_S, shown(*p)) for i, p in enumerate(timeline))
              for c in c if c.kind == "start"]
    assert [(c.event.id, c.event.label) for c in starts] == [(1, "z")]


# -- EventFeed: the update throttle --------------------------------------------------------
def feed_steps(feed: EventFeed, n: int, label: str = "run", t0: float = 0.0) -> list:
    out = []
    for i in range(n):
        out += feed.update(t0 + i * STEP_S, shown((label, 0.5)))
    return out


def test_feed_passes_starts_and_ends_and_one_update_a_second() -> None:
    feed = EventFeed(1.0)
    changes = feed_steps(feed, 16)  # 0.0 .. 3.0 s
    # start at 0.0, updates at 1.0, 2.0, 3.0 despite 0.2 * 5 not being exactly 1.0
    assert [c.kind for c in changes] == ["start", "update", "update", "update"]
    assert [c.to_json()["duration"] for c in changes] == [0.0, 1.0, 2.0, 3.0]
    assert kinds(feed.update(3.2, [])) == [("end", "run")]


def test_feed_updates_once_a_second_on_a_clock_that_adds_up_its_steps() -> None:
    # A live clock adds 0.2 s a step: its tenth step is at 1.9999999999999998, not 2.0, and
    # an update due then must not wait for the next step.
    feed, t, sent = EventFeed(1.0), 0.0, []
    for _ in range(16):
        sent += [(round(t, 1), c.kind) for c in feed.update(t, shown(("run", 0.5)))]
        t += STEP_S
    assert sent == [(0.0, "start"), (1.0, "update"), (2.0, "update"), (3.0, "update")]


def test_feed_interval_zero_passes_everything_and_inf_no_updates() -> None:
    assert len(feed_steps(EventFeed(0.0), 10)) == 10
    assert [c.kind for c in feed_steps(EventFeed(math.inf), 50)] == ["start"]


def test_feed_throttles_each_event_on_its_own_clock() -> None:
    feed = EventFeed(1.0)
    changes = []
    for i in range(11):  # "a" from 0.0, "b" from 0.4
        labels = [("a", 0.5)] + ([("b", 0.4)] if i >= 2 else [])
        changes += [(round(i * STEP_S, 1), c.kind, c.event.label)
                    for c in feed.update(i * STEP_S, shown(*labels))]
    assert changes == [(0.0, "start", "a"), (0.4, "start", "b"), (1.0, "update", "a"),
                       (1.4, "update", "b"), (2.0, "update", "a")]


def test_feed_finish_and_clock_going_back() -> None:
    feed = EventFeed(1.0)
    feed_steps(feed, 3, t0=5.0)
    # a reopened stream restarts its clock: the next update is not held back for ever
    assert [c.kind for c in feed.update(1.0, shown(("run", 0.5)))] == ["update"]
    assert feed.update(1.2, shown(("run", 0.5))) == []
    assert kinds(feed.finish()) == [("end", "run")]
    assert feed.finish() == []


def test_feed_rejects_a_negative_interval() -> None:
    with pytest.raises(ValueError):
        EventFeed(-1.0)


# -- EventsSink (--events) ----------------------------------------------------------------
def step(i: int, *pairs: tuple[str, float]) -> StepResult:
    return StepResult(t=i * STEP_S, frame=i * 6, step=i, top=shown(*pairs), infer_ms=1.0)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_events_sink_prints_start_update_end_as_json_lines() -> None:
    out = io.StringIO()
    sink = EventsSink(out)
    for i in range(7):  # 0.0 .. 1.2 s: "run"
        sink.on_step(step(i, ("run", 0.5 + i / 100)))
    sink.on_step(step(7, ("jump", 0.9)))
    sink.close()
    got = lines(out)
    assert [(e["type"], e["label"]) for e in got] == [
        ("start", "run"), ("update", "run"), ("end", "run"), ("start", "jump"), ("end", "jump")]
    start, update, end, jump_start, jump_end = got
    assert start == {"type": "start", "id": 1, "label": "run", "start": 0.0, "end": None,
                     "duration": 0.0, "score": 0.5, "peak": 0.5, "mean": 0.5, "steps": 1}
    assert update["duration"] == 1.0 and update["steps"] == 6
    assert end["end"] == 1.2 and end["duration"] == 1.2 and end["steps"] == 7
    assert end["peak"] == 0.56 and end["mean"] == pytest.approx(0.53)
    assert jump_start["id"] == 2 and jump_end["end"] == 1.4 == jump_end["start"]
    # one compact object per line
    assert all(" " not in line.replace("jump", "").replace("run", "")
               for line in out.getvalue().splitlines())


def test_events_sink_close_ends_open_events_once() -> None:
    out = io.StringIO()
    sink = EventsSink(out)
    sink.on_step(step(0, ("a", 0.5), ("b", 0.3)))
    sink.close()
    sink.close()
    assert [(e["type"], e["label"]) for e in lines(out)] == [
        ("start", "a"), ("start", "b"), ("end", "a"), ("end", "b")]


def test_events_sink_silent_when_nothing_is_shown() -> None:
    out = io.StringIO()
    sink = EventsSink(out)
    for i in range(10):
        sink.on_step(step(i))
    sink.close()
    assert out.getvalue() == ""


def test_events_sink_update_interval_is_configurable() -> None:
    out = io.StringIO()
    sink = EventsSink(out, update_interval_s=0)
    for i in range(4):
        sink.on_step(step(i, ("run", 0.5)))
    assert [e["type"] for e in lines(out)] == ["start", "update", "update", "update"]


class CountingFlushes(io.StringIO):
    """A stream that counts its flushes (a pipe's reader sees only what is flushed)."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1


def test_events_sink_flushes_each_step() -> None:
    out = CountingFlushes()
    sink = EventsSink(out)
    sink.on_step(step(0, ("run", 0.5)))
    assert out.flushes == 1  # a consumer reading the pipe sees the start at once
    sink.on_step(step(1, ("run", 0.5)))
    assert out.flushes == 1  # nothing to say: no write, no flush


def test_json_lines_are_flushed_a_step_at_a_time() -> None:
    # `movinet-pi --json | consumer`: each step's line must reach the pipe as it happens,
    # not when a buffer fills.
    out = CountingFlushes()
    sink = JsonLinesSink(out)
    for i in range(3):
        sink.on_step(step(i, ("run", 0.5)))
        assert out.flushes == i + 1 and out.getvalue().count("\n") == i + 1


def test_the_web_pages_event_list_keeps_the_minimum_too() -> None:
    from movinet_pi.outputs.web_state import FrameHub, LiveState

    state = LiveState(event_min_s=1.0)
    for i in range(20):  # a blip during the warm-up, then "run" from 1.2 s
        state.on_step(step(i, ("blip", 0.5)) if i < 3 else step(i, ("run", 0.5)) if i > 5
                      else step(i))
    events = state.snapshot(FrameHub())["events"]
    assert [(e["label"], e["start"], e["duration"]) for e in events] == [("run", 1.2, 2.6)]


# -- on the real clips --------------------------------------------------------------------
def test_on_every_shared_clip_no_event_is_shorter_than_a_second_and_its_action_has_one(
    shared, monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The app as a user runs it (`--events`, the default minimum), one headless pass a clip.
    import csv

    from movinet_pi.cli import main

    monkeypatch.setenv("MOVINET_PI_MODELS", f"{shared / 'models'}:{shared / 'labels'}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with (shared / "videos" / "MANIFEST.tsv").open() as f:
        manifest = list(csv.DictReader(f, delimiter="\t"))
    assert len(manifest) == 19
    short, missing = [], []
    for row in manifest:
        assert main([str(shared / "videos" / row["file"]), "--headless", "--events"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        short += [(row["file"], e["label"], e["duration"]) for e in events
                  if e["type"] != "update" and e["duration"] < 1.0]
        if not any(e["type"] == "start" and e["label"] == row["label"] for e in events):
            missing.append(row["file"])
    assert short == [], "events shorter than the 1 s minimum"
    assert missing == [], "clips whose own action made no event"
