"""What the browser view holds between requests: the newest picture, the live state.

:class:`FrameHub` keeps the newest picture and JPEG-encodes it at most once per
generation, however many viewers there are; :class:`LiveState` is what
``/api/state`` and ``/healthz`` report.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator

import cv2
import numpy as np

from movinet_pi.health import HealthMonitor
from movinet_pi.outputs.base import StepResult
from movinet_pi.outputs.events import EventTracker
from movinet_pi.timing import RateMeter

#: With no model step for this long (50 steps at 5 a second), ``/healthz`` says "stale".
STALE_AFTER_S = 10.0


class FrameHub:
    """The newest picture, shared by every viewer and JPEG-encoded lazily, once.

    ``offer`` (the display thread) never waits for a viewer: it copies the
    picture and bumps ``generation`` under a short lock. ``wait_jpeg`` (viewer
    threads) waits for a generation newer than the caller's and encodes it if
    nobody has yet; ``encodes`` counts the encodes, at most one per generation.
    While nobody watches (no :meth:`viewing` context open), ``offer`` keeps
    nothing, so an idle web view costs the display thread one comparison.
    """

    def __init__(
        self,
        max_fps: float | None = 15.0,
        max_width: int = 960,
        quality: int = 80,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval = 1.0 / max_fps if max_fps else 0.0
        self.max_width = max_width
        self.quality = quality
        self.clock = clock
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._last_store = -float("inf")
        self._jpeg = b""
        self._jpeg_gen = 0
        self._viewers = 0
        self._closed = False
        self.generation = 0
        self.offered = 0
        self.encodes = 0

    @property
    def viewers(self) -> int:
        return self._viewers

    @contextmanager
    def viewing(self) -> Iterator[None]:
        """Mark a viewer as present for the duration (so frames get kept)."""
        with self._cond:
            self._viewers += 1
        try:
            yield
        finally:
            with self._cond:
                self._viewers -= 1

    def offer(self, bgr: np.ndarray) -> bool:
        """Keep a copy of ``bgr`` as the newest picture if a viewer wants it; True if kept."""
        self.offered += 1
        if self._viewers == 0 or self._closed:  # racy read on purpose: a miss costs one frame
            return False
        now = self.clock()
        if now - self._last_store < self.min_interval:
            return False
        frame = np.array(bgr, dtype=np.uint8, copy=True)  # the caller reuses its buffer
        with self._cond:
            self._frame = frame
            self._last_store = now
            self.generation += 1
            self._cond.notify_all()
        return True

    def wait_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest picture's (generation, JPEG) once it is newer than ``after``.

        None on timeout or when the hub is closed.
        """
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._closed or self.generation > after, timeout
            ) or self._closed:
                return None
            gen, frame = self.generation, self._frame
            if self._jpeg_gen >= gen:
                return self._jpeg_gen, self._jpeg
        assert frame is not None
        with self._encode_lock:  # one encoder at a time: the others then reuse its bytes
            with self._cond:
                if self._jpeg_gen >= gen:
                    return self._jpeg_gen, self._jpeg
            data = self._encode(frame)
            with self._cond:
                if gen > self._jpeg_gen:
                    self._jpeg_gen, self._jpeg = gen, data
                self.encodes += 1
            return gen, data

    def latest_jpeg(self) -> bytes | None:
        """Whatever picture there is, however old (None if there never was one)."""
        got = self.wait_jpeg(0, 0.0)
        return got[1] if got else None

    def _encode(self, frame: np.ndarray) -> bytes:
        h, w = frame.shape[:2]
        if w > self.max_width:
            size = (self.max_width, max(1, round(h * self.max_width / w)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - only for images cv2 cannot encode at all
            raise ValueError(f"cannot JPEG-encode a {frame.shape} {frame.dtype} picture")
        return buf.tobytes()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


# -- what /api/state reports -------------------------------------------------------------------
class LiveState:
    """The latest step, recent events and rates; written by the sink, read by handlers."""

    def __init__(self, model_name: str = "", events_kept: int = 20,
                 event_min_s: float = 0.0) -> None:
        self.model_name = model_name
        self.events_kept = events_kept
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._latest: StepResult | None = None
        self._last_step_at: float | None = None
        self._steps = 0
        self._tracker = EventTracker(event_min_s)
        self._events: OrderedDict[int, dict[str, object]] = OrderedDict()
        self.model_rate = RateMeter()
        self.display_rate = RateMeter()
        #: The Pi's health, in /api/state when this machine reports it.
        self.health_monitor: HealthMonitor | None = None

    def on_step(self, result: StepResult) -> None:
        now = time.monotonic()
        with self._lock:
            self._latest = result
            if result.model:
                self.model_name = result.model  # a live switch changes it mid-run
            self._last_step_at = now
            self._steps += 1
            self.model_rate.tick(now)
            for change in self._tracker.update(result.t, result.top, result.step):
                self._events[change.event.id] = change.to_json()
                self._events.move_to_end(change.event.id)
            while len(self._events) > self.events_kept:
                self._events.popitem(last=False)

    def on_frame(self) -> None:
        with self._lock:
            self.display_rate.tick()

    def last_step_age(self) -> float | None:
        last = self._last_step_at
        return None if last is None else round(time.monotonic() - last, 3)

    def health(self) -> dict[str, object]:
        """``status`` is "ok" while the model steps, "stale" once it has not for
        :data:`STALE_AFTER_S` (a lost camera, a stuck model): a monitor sees it (503)."""
        uptime = time.monotonic() - self.started
        age = self.last_step_age()
        stale = (uptime if age is None else age) > STALE_AFTER_S
        return {
            "status": "stale" if stale else "ok",
            "uptime_s": round(uptime, 3),
            "last_step_age_s": age,
            "stale_after_s": STALE_AFTER_S,
            "steps": self._steps,
        }

    def snapshot(self, hub: FrameHub) -> dict[str, object]:
        with self._lock:
            latest = self._latest.to_json() if self._latest is not None else None
            events = list(reversed(self._events.values()))  # newest first
            model_fps, display_fps = self.model_rate.rate, self.display_rate.rate
            steps = self._steps
        return {
            "model": self.model_name,
            "latest": latest,
            "events": events,
            "fps": {"model": round(model_fps, 2), "display": round(display_fps, 2),
                    "stream_max": round(1.0 / hub.min_interval, 2) if hub.min_interval else None},
            "steps": steps,
            "memory_s": latest.get("memory_s") if latest is not None else None,
            "viewers": hub.viewers,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "last_step_age_s": self.last_step_age(),
            **self._pi_health(),
        }

    def _pi_health(self) -> dict[str, object]:
        latest = self.health_monitor.latest if self.health_monitor is not None else None
        return {"health": latest.to_json()} if latest is not None else {}
