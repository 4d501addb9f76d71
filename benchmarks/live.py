"""Live pipeline: does the picture keep the camera's rate while a slow model runs?

A synthetic 30 fps camera (frames timed like a sensor) feeds the real threaded
pipeline with MoViNet-A2 int8 (default ``--history auto``); a display that
renders every frame records when each was shown. Optionally each step is made to
take a Raspberry Pi 4's time (``--invoke-ms 80``) by real work: the interpreter
call is repeated until it has run that long (the same inputs give the same
outputs, so the stream is unchanged), so the model competes for the CPU with
capture and drawing as it does on a Pi, where its threads keep the cores busy.

Prints the display frame interval (p50, p99, and p99 / 33.3 ms: goal <= 1.5)
and the model rate (goal 5 fps +- 2 %), with the model at this machine's speed
and at a Pi's, side by side in one run.

    python benchmarks/live.py [--seconds 20] [--model PATH] [--invoke-ms 80] [--threads 4]
                              [--window]

With ``--window`` the frames go to the app's own window (under ``$DISPLAY``: start
Xvfb on a machine without a screen) and the intervals are those of the frames handed
over to it: a frame the window is still too busy for is not shown, as in the app.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

from movinet_pi.display.base import Display  # noqa: E402
from movinet_pi.flags import DEFAULT_HISTORY  # noqa: E402
from movinet_pi.model.adaptive import history_policy  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import Labels  # noqa: E402
from movinet_pi.pipeline import Pipeline  # noqa: E402
from movinet_pi.recognizer import Recognizer, RunConfig  # noqa: E402
from movinet_pi.sources.base import Frame, Source  # noqa: E402

CAMERA_FPS = 30.0


class SyntheticCamera(Source):
    """Moving noise at 640x480, delivered on a 30 fps clock, for ``seconds``; with ``bgr``
    its frames are BGR, as an OpenCV camera decodes them (:meth:`Frame.from_bgr`)."""

    name = "synthetic camera"
    live = True
    fps = CAMERA_FPS
    frame_size = (640, 480)

    def __init__(self, seconds: float, bgr: bool = False) -> None:
        self.bgr = bgr
        rng = np.random.default_rng(0)
        self._base = rng.integers(0, 256, (480, 1280, 3), dtype=np.uint8)
        self._frames = int(seconds * CAMERA_FPS)
        self._index = 0
        self._start = time.monotonic()

    def read(self) -> Frame | None:
        if self._index >= self._frames:
            return None
        due = self._start + self._index / CAMERA_FPS
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        shift = (self._index * 7) % 640
        picture = self._base[:, shift : shift + 640].copy()
        t = self._index / CAMERA_FPS
        frame = (Frame.from_bgr(picture, t, self._index) if self.bgr
                 else Frame(picture, t, self._index))
        self._index += 1
        return frame

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


class TimingDisplay(Display):
    """Takes every rendered frame (as a window would) and notes when."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def show(self, bgr: np.ndarray) -> int | None:
        self.times.append(time.monotonic())
        return None


def timing_window() -> Display:
    """The app's own window (a process of its own; under ``$DISPLAY``), noting when each
    frame is handed over to it (a frame it is still too busy for is not)."""
    from movinet_pi.display.window import WindowDisplay

    class TimingWindow(WindowDisplay):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def _send_frame(self, bgr: np.ndarray) -> None:
            super()._send_frame(bgr)
            self.times.append(time.monotonic())

    return TimingWindow()


def slow_down(classifier: StreamingClassifier, invoke_ms: float) -> int:
    """Make every invoke run the model often enough to take ``invoke_ms`` (a Pi's time
    for a step) of real computation; returns how many runs a step makes."""
    interpreter = classifier.interpreter
    real_invoke = interpreter.invoke
    started = time.perf_counter()
    for _ in range(20):
        real_invoke()
    one_ms = (time.perf_counter() - started) * 1000.0 / 20
    repeats = max(1, round(invoke_ms / one_ms))

    class Repeated:
        def __getattr__(self, name: str) -> object:
            return getattr(interpreter, name)

        def invoke(self) -> None:
            for _ in range(repeats):  # same inputs, same outputs: the stream is unchanged
                real_invoke()

    classifier.interpreter = Repeated()
    return repeats


def run(model: Path, seconds: float, invoke_ms: float, threads: int,
        window: bool = False) -> dict[str, float]:
    labels = Labels(tuple(str(i) for i in range(600)), "bench")
    clf = StreamingClassifier.from_file(model, labels, threads=threads,
                                        history=history_policy(DEFAULT_HISTORY, MODEL_FPS))
    repeats = slow_down(clf, invoke_ms) if invoke_ms else 1
    display = timing_window() if window else TimingDisplay()
    recognizer = Recognizer(clf, RunConfig(top_k=3, model_name=model.stem))
    try:
        stats = Pipeline(SyntheticCamera(seconds, bgr=window), recognizer, display).run()
    finally:
        display.close()
    times = display.times  # type: ignore[attr-defined]
    intervals = np.diff(times[int(CAMERA_FPS):]) * 1000.0  # after the first second
    steps = stats.steps
    return {
        "display_p50": float(np.percentile(intervals, 50)),
        "display_p99": float(np.percentile(intervals, 99)),
        "shown": len(times) if window else stats.frames_shown,
        "read": stats.frames_read,
        "model_fps": steps / seconds,
        "skipped": stats.steps_skipped,
        "infer_ms": statistics.median(recognizer.infer_ms_recent),
        "repeats": repeats,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path,
                    default=SHARED / "models" / "untrained" / "movinet_a2_stream_int8.tflite")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--invoke-ms", type=float, default=80.0,
                    help="a Pi 4's A2 step time to emulate (0: this machine's speed only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--window", action="store_true",
                    help="show the frames in the app's own window (needs $DISPLAY, e.g. "
                    "Xvfb) and time their hand-over to it")
    args = ap.parse_args()
    frame_ms = 1000.0 / CAMERA_FPS
    cases = [("this machine", 0.0)] + ([(f"Pi-speed {args.invoke_ms:g} ms of real work",
                                         args.invoke_ms)] if args.invoke_ms else [])
    print(f"{args.model.name}, synthetic {CAMERA_FPS:g} fps 640x480 camera, {args.seconds:g} s,"
          f" {args.threads} interpreter thread(s), --history {DEFAULT_HISTORY}"
          + (f", the app's window on {os.environ.get('DISPLAY')}" if args.window else ""))
    print("| model step | infer p50 | display p50 | display p99 | p99 / 33.3 ms "
          "| frames shown/read | model fps | vs 5 fps | steps skipped |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, invoke_ms in cases:
        r = run(args.model, args.seconds, invoke_ms, args.threads, args.window)
        if r["repeats"] > 1:
            name += f" ({r['repeats']} model runs a step)"
        print(f"| {name} | {r['infer_ms']:.1f} ms | {r['display_p50']:.1f} ms "
              f"| {r['display_p99']:.1f} ms | {r['display_p99'] / frame_ms:.2f} "
              f"| {r['shown']}/{r['read']} | {r['model_fps']:.2f} "
              f"| {(r['model_fps'] / 5.0 - 1) * 100:+.1f} % | {r['skipped']} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
