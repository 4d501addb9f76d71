"""Live controls: switch model and thread count while the picture keeps running.

The same actions come from two places, through one code path:

* keys in the window (``1``/``2``/``3``: A0/A1/A2, ``+``/``-``: threads), handed
  over by :meth:`Pipeline.handle_key`;
* lines typed into the terminal of a headless run (over SSH, where there is no
  window to press keys in): ``a2`` or ``2``, ``+``, ``-``, ``threads 3``, ``r``,
  ``q``, ``help`` — see :data:`COMMAND_HELP`.

Signals control a run too (:func:`signals_stop`): SIGINT/SIGTERM stop it, SIGHUP
resets the stream.

A switch loads the new interpreter on a thread of its own (a model takes a
second or more to load on a Pi): the display keeps drawing and the overlay says
"loading …"; the model steps go on with the old model until the new one is
ready, which then starts from a fresh stream. A model that is not downloaded
leaves the old one running and says which command fetches it.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
from typing import IO, Callable, Iterator, Optional, Tuple

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.pipeline import Pipeline
from movinet_pi.progress import counted

#: Loads a model: (catalogue name, or None for the current model file; threads)
#: -> (classifier, title). Raises MovinetPiError with what to do when it cannot.
Loader = Callable[[Optional[str], int], Tuple[StreamingClassifier, str]]

MODEL_KEYS = {ord("1"): "a0", ord("2"): "a1", ord("3"): "a2"}
MORE_THREADS_KEYS = (ord("+"), ord("="))  # '=' is '+' without shift on most keyboards
FEWER_THREADS_KEYS = (ord("-"), ord("_"))

COMMAND_HELP = (
    "commands (type one and press Enter): a0 a1 a2 (or 1 2 3) switch model, "
    "+ / - or 'threads N' change threads, r reset, q quit, help"
)


class Controls:
    """Model and thread switching for a running :class:`Pipeline`."""

    def __init__(
        self, pipeline: Pipeline, loader: Loader, max_threads: int | None = None
    ) -> None:
        self.pipeline = pipeline
        self.loader = loader
        self.max_threads = max_threads or os.cpu_count() or 1
        self.loading: threading.Thread | None = None
        #: the catalogue model running now, or None for the one the run started with
        self.current: str | None = None
        pipeline.on_key = self.handle_key

    @property
    def classifier(self) -> StreamingClassifier:
        return self.pipeline.recognizer.classifier

    # -- the two ways in -------------------------------------------------------------------
    def handle_key(self, key: int) -> bool:
        """A key from the window; True if it meant something."""
        if key in MODEL_KEYS:
            self.switch_model(MODEL_KEYS[key])
        elif key in MORE_THREADS_KEYS:
            self.set_threads(self.classifier.threads + 1)
        elif key in FEWER_THREADS_KEYS:
            self.set_threads(self.classifier.threads - 1)
        else:
            return False
        return True

    def handle_command(self, line: str) -> str | None:
        """A line typed on the terminal; returns text to print back, if any."""
        words = line.strip().lower().split()
        if not words:
            return None
        word = words[0]
        if word in ("q", "quit", "exit"):
            self.pipeline.stop()
        elif word in ("r", "reset"):
            self.pipeline.handle_key(ord("r"))
        elif word in ("h", "help", "?"):
            return COMMAND_HELP
        elif word in ("a0", "a1", "a2"):
            self.switch_model(word)
        elif len(word) == 1 and self.handle_key(ord(word)):
            pass
        elif word == "threads" and len(words) == 2 and words[1].isdigit():
            self.set_threads(int(words[1]))
        else:
            return f"unknown command {line.strip()!r}: {COMMAND_HELP}"
        return None

    # -- actions ---------------------------------------------------------------------------
    def switch_model(self, name: str) -> None:
        self._load(name, self.classifier.threads, f"loading {name.upper()}…")

    def set_threads(self, threads: int) -> None:
        if not 1 <= threads <= self.max_threads:
            self.pipeline.flash(
                f"threads stay at {self.classifier.threads} (1 to {self.max_threads} on "
                "this machine)"
            )
            return
        if threads == self.classifier.threads:
            return
        self._load(self.current, threads,
                   f"restarting the model with {counted(threads, 'thread')}…")

    def _load(self, name: str | None, threads: int, note: str) -> None:
        if self.loading is not None and self.loading.is_alive():
            self.pipeline.flash("still loading the last switch: try again in a moment")
            return
        self.pipeline.flash(note, seconds=60.0)
        self.loading = threading.Thread(
            target=self._load_now, args=(name, threads), name="model-loader", daemon=True
        )
        self.loading.start()

    def _load_now(self, name: str | None, threads: int) -> None:
        try:
            classifier, title = self.loader(name, threads)
        except MovinetPiError as error:
            self.pipeline.flash(f"{error}; keeping the current model", seconds=8.0)
            return
        except Exception as error:  # a broken file must not end a run that works
            self.pipeline.flash(f"could not load the model ({error}); keeping the current one",
                                seconds=8.0)
            return
        self.pipeline.recognizer.request_swap(classifier, title)
        if name is not None:
            self.current = name
        self.pipeline.flash(f"{title}, {counted(classifier.threads, 'thread')}: "
                            "stream restarted")


def read_commands(controls: Controls, stream: IO[str], reply: Callable[[str], None]) -> None:
    """Feed lines from ``stream`` (the terminal) to ``controls`` until it ends or the run
    stops. Meant for a daemon thread: a blocked read must not keep the app alive.
    A terminal that goes away or sends bytes that are not text ends the commands,
    not the run."""
    try:
        for line in stream:
            answer = controls.handle_command(line)
            if answer:
                reply(answer)
            if controls.pipeline.stopped:
                return
    except (OSError, ValueError) as error:  # ValueError: UnicodeDecodeError, closed file
        reply(f"terminal commands stopped ({type(error).__name__}); keys in the window and "
              "signals still work")


def start_terminal_controls(controls: Controls) -> None:
    """Read commands typed into the terminal (a headless run over SSH has no keys)."""
    if not sys.stdin or not sys.stdin.isatty():
        return
    say(COMMAND_HELP)
    # Our own reader over the terminal's bytes (a stray non-UTF-8 byte becomes U+FFFD);
    # it lives as long as the thread, and never closes the terminal (closefd=False).
    raw = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    threading.Thread(target=read_commands, args=(controls, stream, say),
                     name="terminal-controls", daemon=True).start()


@contextlib.contextmanager
def signals_stop(stop: Callable[[], None], reset: Callable[[], None]) -> Iterator[None]:
    """While running: SIGINT/SIGTERM stop the run cleanly, SIGHUP resets the stream.

    A second SIGINT (Ctrl-C again while a slow output is closing) is not caught:
    it interrupts at once. The previous handlers come back afterwards.
    """
    def on_stop(signum: int, frame: object) -> None:
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        stop()

    def on_hup(signum: int, frame: object) -> None:
        reset()

    wanted = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop}
    if hasattr(signal, "SIGHUP"):
        wanted[signal.SIGHUP] = on_hup
    previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
