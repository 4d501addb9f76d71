"""Capture → model → display, at the camera's rate and the model's 5 fps.

Three parts run at their own pace:

* **capture** reads frames as fast as the source delivers them (a file in a
  window is paced to its own timestamps) and keeps only the newest one for the
  display: nothing queues, so the picture never lags;
* **inference** takes the frame that is *due* — the first frame at or after each
  tick of the model's 5 fps grid (0, 0.2, 0.4 … s, on the source's own clock) —
  through a one-slot mailbox: when a step is slow, the next due frame replaces
  the waiting one (skipped, never queued), and the grid never drifts;
* **display** draws every captured frame with the newest prediction.

A headless run over a file needs none of that: :meth:`Pipeline.run` then reads
every frame in order and steps the model inline, as fast as it can, so the
output is deterministic (unless ``RunConfig.pace_headless``: someone watches it
through the web page or MQTT, so it plays at its own speed). When a file ends in
a window, its last picture stays up until a key is pressed
(``RunConfig.hold_at_end``).

What a frame becomes on the way out (the picture as shown, the display's keys, a display
that goes away) is :mod:`movinet_pi.presenter`'s; this module runs the threads.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from movinet_pi.display.base import Display
from movinet_pi.errors import one_line
from movinet_pi.presenter import PresenterMixin
from movinet_pi.progress import counted
from movinet_pi.recognizer import Recognizer
from movinet_pi.sources.base import Frame, Source, SourceLost
from movinet_pi.timing import FrameSampler, Mailbox


@dataclass
class RunStats:
    frames_read: int = 0
    frames_shown: int = 0
    steps: int = 0
    steps_skipped: int = 0
    first_prediction_s: float | None = None
    reconnects: int = 0


class Pipeline(PresenterMixin):
    """Runs a source through a recognizer to a display until the source ends or ``stop()``."""

    def __init__(
        self,
        source: Source,
        recognizer: Recognizer,
        display: Display | None = None,
        *,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.recognizer = recognizer
        self.config = recognizer.config
        self.log = log or (lambda message: None)
        self.sampler = FrameSampler(self.config.model_fps)
        self.stats = RunStats()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._newest: Mailbox[Frame] = Mailbox()
        self._due: Mailbox[Frame] = Mailbox()
        self._capture_done = threading.Event()
        self._failure: BaseException | None = None  # the first error of any thread
        self._failure_lock = threading.Lock()
        self.capture_alive = False  # after run(): the capture thread is still inside a read
        self._init_presenter(display)

    # -- control -------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def reset(self) -> None:
        """Forget the stream so far (``r``, SIGHUP): states to zero on the next step."""
        self.recognizer.request_reset()
        self.log("stream reset")

    # -- running -------------------------------------------------------------------
    def run(self) -> RunStats:
        """Run until the source ends or :meth:`stop`; close the outputs and the display.

        The first error (of any thread) is raised; an error closing the outputs is
        raised only when the run itself went well, else logged.
        """
        try:
            if self.display is None and not self.source.live and not self.config.pace_headless:
                self._run_inline()
            else:
                self._run_threaded()
        except BaseException as error:
            try:
                self.recognizer.close()
            except Exception as close_error:  # the run's own error matters more
                if not _same_os_error(error, close_error):  # (a closed pipe, a full disk)
                    self.log(f"closing the outputs failed too: {one_line(close_error)}")
            raise
        else:
            self.recognizer.close()
        finally:
            if self.display is not None:
                with contextlib.suppress(Exception):  # a display that is already gone
                    self.display.close()
        return self.stats

    def _fail(self, error: BaseException) -> None:
        """Keep the first error of any thread (raised from run()) and stop."""
        with self._failure_lock:
            if self._failure is None:
                self._failure = error
        self._stop.set()

    def _step(self, frame: Frame) -> None:
        self.recognizer.process(frame)
        self.stats.steps += 1
        if self.stats.first_prediction_s is None:
            self.stats.first_prediction_s = time.monotonic() - self._started

    def _run_inline(self) -> None:
        """A file, no display: every frame in order, as fast as possible.

        Without picture outputs only the due frames are needed: the source passes
        over the others without converting their pixels, and a reader thread
        decodes the next due frame while the model runs on this one (the decoder
        and the interpreter both release the GIL). Order, and so the output, is
        exactly that of reading frame by frame.
        """
        if self.frame_sinks:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.stats.frames_read += 1
                if self.sampler.is_due(frame.timestamp):
                    self._step(frame)
                self.stats.frames_shown += 1  # to the picture outputs (web, clips)
                self._present(frame)
            return
        for frame, passed in self._due_frames_ahead():
            self.stats.frames_read += passed + (frame is not None)
            if frame is None or self._stop.is_set():
                break
            if self.sampler.is_due(frame.timestamp):
                self._step(frame)

    def _due_frames_ahead(self) -> Iterator[tuple[Frame | None, int]]:
        """The source's due frames, read one ahead on a thread of their own."""
        ahead: queue.Queue[tuple[Frame | None, int] | BaseException] = queue.Queue(maxsize=2)
        sampler = FrameSampler(self.config.model_fps)  # the reader's own copy of the grid
        done = threading.Event()  # the consumer has gone (finished, stopped or failed)

        def hand_over(item: tuple[Frame | None, int] | BaseException) -> None:
            while not done.is_set():  # never block on a consumer that has gone
                try:
                    ahead.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue

        def read_ahead() -> None:
            try:
                while not done.is_set():
                    frame, passed = self.source.read_from(sampler.next_due)
                    if frame is not None:
                        sampler.is_due(frame.timestamp)
                    hand_over((frame, passed))
                    if frame is None:
                        return
            except BaseException as error:
                hand_over(error)

        reader = threading.Thread(target=read_ahead, name="reader", daemon=True)
        reader.start()
        try:
            while True:
                item = ahead.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item[0] is None:
                    return
        finally:
            done.set()
            reader.join(timeout=5.0)  # the source is closed after run(): not while read

    def _run_threaded(self) -> None:
        capture = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        inference = threading.Thread(target=self._inference_loop, name="inference", daemon=True)
        capture.start()
        inference.start()
        try:
            self._display_loop()
        finally:
            self._stop.set()
            self._due.wake()  # a frame still waiting is neither stepped nor counted as skipped
            # A source stuck in a read (a stalled stream, a camera timing out) cannot be
            # interrupted: do not wait for it, and tell the owner not to close it under the
            # read (see `capture_alive`); the thread is a daemon and ends with the process.
            capture.join(timeout=0.5)
            inference.join(timeout=2.0)
            self.capture_alive = capture.is_alive()
            self.stats.steps_skipped = self._due.dropped
        if self._failure is not None:
            raise self._failure

    def _read_live(self) -> Frame | None:
        """Read from the source; on a lost live source, reconnect with backoff. The loss is
        said once, and the outputs told (:meth:`Recognizer.source_lost`; a frame from before
        it still waiting for the model is dropped); a longer outage is said again after 1,
        2, 4, 8... attempts, and its end once a frame comes."""
        delay, tries, lost_at = 0.5, 0, None
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except SourceLost as e:
                if not self.source.live:
                    raise
                if lost_at is None:
                    lost_at = time.monotonic()
                    self.message = f"{self.source.name} lost: reconnecting ({e})"
                    self.log(self.message)
                    self._due.get(timeout=0)  # (of before the loss)
                    self.recognizer.source_lost()
                elif tries & (tries - 1) == 0:  # a power of two: the log is not flooded
                    self.log(f"{self.source.name} still lost after "
                             f"{counted(tries, 'attempt')} ({time.monotonic() - lost_at:.0f} s): "
                             f"{e}")
                tries += 1
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, self.config.reconnect_max_s)
                with contextlib.suppress(SourceLost):
                    self.source.reopen()
                    self.stats.reconnects += 1
                continue
            if lost_at is not None and frame is not None:
                self.message = ""
                self.log(f"{self.source.name} is back after {time.monotonic() - lost_at:.0f} s")
            return frame
        return None

    def _capture_loop(self) -> None:
        try:
            self._capture_frames()
        except BaseException as error:  # surfaces from run(), on the main thread
            self._fail(error)
        finally:
            self._capture_done.set()
            self._newest.put(None)  # type: ignore[arg-type]  # wake the display

    def _capture_frames(self) -> None:
        clock_start: float | None = None
        # Decided once: a file keeps its pace when the window goes away mid-run.
        paced = not self.source.live and (
            self.config.realtime if self.display is not None else self.config.pace_headless)
        while not self._stop.is_set():
            frame = self._read_live()
            if frame is None:
                break
            self.stats.frames_read += 1
            if paced:
                # Pace a file to its own timestamps so it plays at real speed.
                now = time.monotonic()
                if clock_start is None:
                    clock_start = now - frame.timestamp
                wait = clock_start + frame.timestamp - now
                if wait > 0 and self._stop.wait(wait):
                    break
            if self.sampler.is_due(frame.timestamp):
                self._due.put(frame)
            self._newest.put(frame)

    def _inference_loop(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self._due.get(timeout=0.5)
                if self._stop.is_set():
                    break
                if frame is None:
                    if self._capture_done.is_set() and self._due.peek() is None:
                        break
                    continue
                self._step(frame)
        except BaseException as error:  # surfaces from run(), on the main thread
            self._fail(error)

    def _display_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._newest.get(timeout=0.5)
            if frame is None:
                if self._capture_done.is_set():
                    break
                continue
            self.stats.frames_shown += 1
            self._present(frame)
        # Let the last due frame finish so a file ends with its last prediction.
        if not self._stop.is_set():
            deadline = time.monotonic() + 5.0
            while self._due.peek() is not None and time.monotonic() < deadline:
                if self._stop.wait(0.01):  # stopped meanwhile: do not wait for it
                    break
            if self.config.hold_at_end and self._last_frame is not None:
                self._hold(self._last_frame)


def _same_os_error(first: BaseException, then: BaseException) -> bool:
    """Whether closing failed as the run did (stdout's reader gone, the disk full): the
    run's error says it already."""
    return (isinstance(first, OSError) and isinstance(then, OSError)
            and first.errno == then.errno)
