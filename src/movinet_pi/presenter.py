"""What a run shows: each frame rendered with its overlay, to the display and the picture outputs.

:class:`PresenterMixin` is the picture side of :class:`~movinet_pi.pipeline.Pipeline`: the
picture as shown (:meth:`~PresenterMixin.render`, :meth:`~PresenterMixin.overlay_state`),
handing it to the display and to the outputs that want pictures (``--web``, ``--record``),
the display's keys, the status line's message and passing notes, a display that went away
(the run goes on headless), and a file's last picture held up at its end.

It is a mixin rather than an object of its own because the pipeline's threads and the
picture side share one state that the rest of the app sees on the pipeline: the display
(gone when its X session ends), the message (set while a source reconnects), the keys'
hook that :mod:`movinet_pi.controls` sets, and ``render`` (tests replace it on the instance).
The host provides ``source``, ``recognizer``, ``config``, ``log``, ``_stop`` and ``stop()``
and calls :meth:`_init_presenter` in its constructor.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

import numpy as np

from movinet_pi.display.base import Display
from movinet_pi.display.overlay import OverlayState
from movinet_pi.display.render import PictureRenderer, shown_shape
from movinet_pi.health import HealthMonitor
from movinet_pi.outputs.base import FrameSink
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.base import Frame, Source
from movinet_pi.timing import RateMeter

QUIT_KEYS = (ord("q"), 27)  # 27: Esc


class PresenterMixin:
    """The picture side of a pipeline; see the module docs."""

    # -- provided by the host (Pipeline) ---------------------------------------------------
    source: Source
    recognizer: Recognizer
    config: RunConfig
    log: Callable[[str], None]
    _stop: threading.Event
    stop: Callable[[], None]

    def _init_presenter(self, display: Display | None) -> None:
        self.display = display
        self._display_rate = RateMeter()
        sinks = self.recognizer.sinks
        self.frame_sinks = [s for s in sinks if isinstance(s, FrameSink)]
        #: The Pi's health, when a run put its monitor among the outputs (outputs.open does).
        self.health = next((s for s in sinks if isinstance(s, HealthMonitor)), None)
        #: The shape pictures are shown at: the display's (fitted to its screen), kept for
        #: the picture outputs when the display goes away.
        self._shape_of = display.shown_shape if display is not None else shown_shape
        self._renderer = PictureRenderer(mirror=self.config.mirror, shape_of=self._shape_of)
        self.message = ""  # a state (reconnecting, display lost): shown until cleared
        self._flash = ("", 0.0)  # a passing note (a key's effect): shown for a few seconds
        self.show_help = False
        self.on_key: Callable[[int], bool] | None = None  # extra keys (controls.Controls)
        self._last_frame: Frame | None = None  # the newest shown: held up at a file's end

    # -- keys and messages -----------------------------------------------------------------
    def handle_key(self, key: int) -> None:
        """The window's keys: ``q``/Esc quit, ``r`` resets, ``h`` help; others go to
        :attr:`on_key` (model and thread switches)."""
        if key in QUIT_KEYS:
            self.stop()
        elif key == ord("r"):
            self.recognizer.request_reset()
            self.flash("stream reset")
        elif key == ord("h"):
            self.show_help = not self.show_help
        elif self.on_key is not None:
            self.on_key(key)

    def flash(self, text: str, seconds: float = 4.0) -> None:
        """Show ``text`` on the overlay for a few seconds (and log it)."""
        self._flash = (text, time.monotonic() + seconds)
        self.log(text)

    @property
    def current_message(self) -> str:
        text, until = self._flash
        if text and time.monotonic() < until:
            return f"{self.message}  |  {text}" if self.message else text
        return self.message

    # -- presenting --------------------------------------------------------------------------
    def _hold(self, frame: Frame) -> None:
        """A file has ended in a window: keep its last picture (with the last prediction)
        up until ``q`` or Esc is pressed, the window is closed or the app is stopped. The
        other keys still work (``h`` shows the help)."""
        display = self.display
        if display is None or not display.shows_picture or self.source.live:
            return
        time.sleep(0.05)  # the last step's result lands in the overlay
        self.message = f"end of {self.source.name}: q or Esc closes the window"
        self.log(f"end of {self.source.name}: press q or Esc in the window to close it "
                 "(--exit-at-end closes it by itself)")
        while not self._stop.is_set() and self.display is not None:
            bgr = self.render(frame)
            key = self._guard_display(lambda bgr=bgr: display.show(bgr))  # type: ignore[misc]
            if key is not None and key >= 0:
                self.handle_key(key)
            self._stop.wait(0.1)

    def _present(self, frame: Frame) -> None:
        """Give a frame to the display and to the outputs that want pictures."""
        display = self.display
        if display is None and not self.frame_sinks:
            return
        self._last_frame = frame
        self._display_rate.tick()
        if display is not None and not display.shows_picture:
            key = self._guard_display(lambda: display.update(self.overlay_state(frame)))
            if key is not None and key >= 0:
                self.handle_key(key)
        if not self.frame_sinks and (display is None or not display.shows_picture):
            return
        buffer = None
        if display is not None and display.shows_picture:
            buffer = display.buffer(self.shown_shape(frame))
            if not self.frame_sinks and display.busy():
                return  # the window is still drawing the last frame: this one is not drawn
        bgr = self.render(frame, out=buffer)
        for sink in self.frame_sinks:
            sink.on_frame(bgr, frame.timestamp)
        if display is not None and display.shows_picture:
            key = self._guard_display(lambda: display.show(bgr))
            if key is not None and key >= 0:
                self.handle_key(key)

    def _guard_display(self, show: Callable[[], int | None]) -> int | None:
        """Run a display call; if the display is gone (X session ended), go on headless."""
        try:
            return show()
        except Exception as error:
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else ""
            self.message = "display lost: running headless"
            self.log(f"the display went away ({type(error).__name__}: {reason}): "
                     "continuing headless; outputs keep running")
            display, self.display = self.display, None
            if display is not None:
                with contextlib.suppress(Exception):
                    display.close()
            return None

    # -- the picture as shown ----------------------------------------------------------------
    def overlay_state(self, frame: Frame) -> OverlayState:
        latest = self.recognizer.latest
        age = frame.timestamp - latest.t if latest is not None else 0.0
        return OverlayState(
            predictions=latest.top if latest is not None else (),
            model_name=self.config.model_name,
            display_fps=self._display_rate.rate,
            model_fps=self.recognizer.model_rate.rate,
            infer_ms=self.recognizer.infer_ms_p50,
            prediction_age_s=age,
            message=self.current_message,
            threads=self.recognizer.classifier.threads,
            show_help=self.show_help,
            memory_s=latest.memory_s if latest is not None else None,
            source_time=None if self.source.live else self._clip_time(frame.timestamp),
            source_duration=None if self.source.live else getattr(self.source, "duration", None),
            extra_lines=(warning := self.health_warning()),
            warning=bool(warning),
            roi=latest.roi if latest is not None else None,
        )

    def _clip_time(self, t: float) -> float:
        """Where ``t`` is in the file (a looping file's timestamps run on past its end)."""
        clip_time = getattr(self.source, "clip_time", None)
        return clip_time(t) if clip_time is not None else t

    def health_warning(self) -> list[str]:
        """A line under the status when the Pi is throttled or hot (80 °C or more)."""
        health = self.health.latest if self.health is not None else None
        return [f"Pi: {health.describe()}"] if health is not None and health.warning else []

    def shown_shape(self, frame: Frame) -> tuple[int, int, int]:
        """The shape of the picture as shown (small sources scaled up, large ones fitted
        to the display's screen)."""
        return self._shape_of(frame.shape)

    def render(self, frame: Frame, out: np.ndarray | None = None) -> np.ndarray:
        """The picture as shown, with the overlay (:class:`PictureRenderer`)."""
        bgr = frame.bgr
        picture, is_bgr = (frame.rgb, False) if bgr is None else (bgr, True)
        return self._renderer.render(picture, self.overlay_state(frame), out, bgr=is_bgr)
