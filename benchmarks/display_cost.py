"""What the picture costs: CPU per displayed frame of the app's window path against a bare loop.

Two sources, each for ``--seconds``: a synthetic 640x480 camera at 30 fps, and a real
clip played at its own speed. For each, side by side in one run:

* **bare**: a loop in a process of its own that does only the unavoidable work of a
  picture: make or decode the frame, resize it to the size shown (when it differs),
  ``cv2.imshow``;
* **bare + model** (the floor): the same loop, also giving the model its 5 frames a
  second the way the app does (INTER_AREA to the model's size, RGB, one streaming
  step), in the same thread: the least any app showing the picture and classifying it
  could spend;
* **app**: the real threaded pipeline with MoViNet-A0 int8 and the app's own window
  (:class:`WindowDisplay`, a process of its own) under Xvfb;
* **app headless**: the same pipeline without a picture (the model alone).

CPU is user + system time from ``/proc/<pid>/stat`` of every process involved (the app
and its window process; the bare loop's process), summed over the run, divided by the
frames displayed, and of these the window process's and the app's display thread's
(render, overlay, hand-over). Prints ms/frame, the ratios app / bare (the issue's goal:
<= 1.3x) and app / floor, and the picture's own share (app minus headless) against the
bare loop. ``--repeat N`` runs everything N times, alternating, and prints each run and
the medians. The synthetic camera's frames are BGR, as an OpenCV camera decodes them.
The app keeps OpenCV off its worker pool, as ``movinet-pi run`` does; so do the loops.

    python benchmarks/display_cost.py [--seconds 20] [--repeat 3] [--clip PATH] [--model PATH]

Starts its own Xvfb unless ``$DISPLAY`` is set.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live import SyntheticCamera  # noqa: E402

from movinet_pi.cli import opencv_without_workers  # noqa: E402
from movinet_pi.display.render import shown_shape  # noqa: E402
from movinet_pi.display.window import WindowDisplay  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402
from movinet_pi.pipeline import Pipeline  # noqa: E402
from movinet_pi.recognizer import Recognizer, RunConfig, model_input  # noqa: E402
from movinet_pi.sources.base import Frame  # noqa: E402
from movinet_pi.sources.opencv import FileSource  # noqa: E402
from movinet_pi.timing import FrameSampler  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class MeteredWindow(WindowDisplay):
    """The app's window, counting frames handed over and its process's CPU before it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.child_start = cpu_s(self._process.pid)
        self.child_cpu = 0.0

    def _send_frame(self, bgr: np.ndarray) -> None:
        super()._send_frame(bgr)
        self.sent += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.child_cpu = cpu_s(self._process.pid) - self.child_start
        super().close()


def open_source(kind: str, clip: Path, seconds: float):
    if kind == "synthetic":
        return SyntheticCamera(seconds, bgr=True)
    return FileSource(clip, loop=True)


def app_run(kind: str, clip: Path, model: Path, labels_path: Path, seconds: float,
            window: bool) -> tuple[float, float, float, int]:
    """(CPU seconds of the app, of its window process, of its display thread, frames
    displayed)."""
    opencv_without_workers()  # as `movinet-pi run` sets it (the bare loop keeps OpenCV's own)
    labels = load_labels(labels_path)
    clf = StreamingClassifier.from_file(model, labels, threads=1)
    recognizer = Recognizer(clf, RunConfig(top_k=3, model_name="MoViNet-A0 stream int8",
                                           pace_headless=True))
    display = MeteredWindow() if window else None
    source = open_source(kind, clip, seconds)
    pipeline = Pipeline(source, recognizer, display)
    start, display_start = cpu_s(), time.thread_time()
    if kind == "clip":
        threading_stop(pipeline, seconds)
    stats = pipeline.run()  # (the display loop is this thread)
    used, display_thread = cpu_s() - start, time.thread_time() - display_start
    source.close()
    if display is None:
        return used, 0.0, display_thread, stats.frames_read
    return used, display.child_cpu, display_thread, display.sent


def threading_stop(pipeline: Pipeline, seconds: float) -> None:
    import threading

    threading.Timer(seconds, pipeline.stop).start()


class ModelFeed:
    """The model's unavoidable work in a bare loop: 5 frames a second, made into the
    model's input as the app makes it (``model_input``), one streaming step each."""

    def __init__(self, model: str) -> None:
        self.classifier = StreamingClassifier.from_file(model, None, threads=1)
        self.sampler = FrameSampler(MODEL_FPS)

    def feed(self, bgr: np.ndarray, t: float) -> None:
        if self.sampler.is_due(t):
            frame = Frame.from_bgr(bgr, t, 0)
            self.classifier.step(model_input(frame, self.classifier.input_size))


def _bare_loop(kind: str, clip: str, seconds: float, model: str | None,
               out: multiprocessing.Queue) -> None:
    import cv2

    opencv_without_workers()  # as the app's window process (and its main process) do
    feed = ModelFeed(model) if model else None
    cv2.namedWindow("bare", cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO
                    | getattr(cv2, "WINDOW_GUI_NORMAL", 0))
    start_cpu, frames = cpu_s(), 0
    if kind == "synthetic":
        camera = SyntheticCamera(seconds, bgr=True)
        while (frame := camera.read()) is not None:
            if feed is not None:
                feed.feed(frame.bgr, frame.timestamp)
            cv2.imshow("bare", frame.bgr)
            cv2.waitKey(1)
            frames += 1
    else:
        cap = cv2.VideoCapture(clip)
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            ok, bgr = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            if feed is not None:
                feed.feed(bgr, frames / fps)
            height, width, _ = shown_shape(bgr.shape)  # shown at the size the app shows it
            if (height, width) != bgr.shape[:2]:
                bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)
            cv2.imshow("bare", bgr)
            cv2.waitKey(1)
            frames += 1
            wait = t0 + frames / fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    out.put((cpu_s() - start_cpu, frames))
    cv2.destroyAllWindows()


def bare_run(kind: str, clip: Path, seconds: float, model: Path | None = None
             ) -> tuple[float, int]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    proc = context.Process(target=_bare_loop,
                           args=(kind, str(clip), seconds, str(model) if model else None, out))
    proc.start()
    result = out.get(timeout=seconds + 60)
    proc.join(timeout=10)
    return result


def start_xvfb() -> subprocess.Popen[bytes] | None:
    if os.environ.get("DISPLAY"):
        return None
    binary = shutil.which("Xvfb")
    if binary is None:
        sys.exit("no $DISPLAY and no Xvfb: install xvfb or run under a desktop")
    display = f":{90 + os.getpid() % 9}"
    proc = subprocess.Popen([binary, display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = Path("/tmp/.X11-unix") / f"X{display[1:]}"
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    os.environ["DISPLAY"] = display
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return proc


def measure(kind: str, args: argparse.Namespace) -> dict[str, float]:
    """One side-by-side run of one source: ms of CPU per displayed frame of each."""
    bare_cpu, bare_frames = bare_run(kind, args.clip, args.seconds)
    floor_cpu, floor_frames = bare_run(kind, args.clip, args.seconds, args.model)
    main_cpu, child_cpu, thread_cpu, app_frames = app_run(
        kind, args.clip, args.model, args.labels, args.seconds, window=True)
    head_cpu, _, _, head_frames = app_run(kind, args.clip, args.model, args.labels,
                                          args.seconds, window=False)
    per = max(1, app_frames)
    m = {
        "bare": bare_cpu * 1000 / max(1, bare_frames),
        "floor": floor_cpu * 1000 / max(1, floor_frames),
        "app": (main_cpu + child_cpu) * 1000 / per,
        "window": child_cpu * 1000 / per,
        "display": thread_cpu * 1000 / per,
        "headless": head_cpu * 1000 / max(1, head_frames),
        "frames": app_frames,
    }
    m["share"] = m["app"] - m["headless"]
    # (ratios kept per run: the median of several runs is then the median ratio)
    m.update(app_bare=m["app"] / m["bare"], app_floor=m["app"] / m["floor"],
             share_bare=m["share"] / m["bare"])
    return m


def row(name: str, m: dict[str, float]) -> str:
    return (f"| {name} | {m['bare']:.2f} ms | {m['floor']:.2f} ms | {m['app']:.2f} ms "
            f"({m['window']:.2f} window process, {m['display']:.2f} display thread) "
            f"| **{m['app_bare']:.2f}x** | {m['app_floor']:.2f}x "
            f"| {m['headless']:.2f} ms | {m['share']:.2f} ms ({m['share_bare']:.2f}x) "
            f"| {m['frames']:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of everything, alternating")
    ap.add_argument("--clip", type=Path, default=SHARED / "videos" / "arm_wrestling.mp4")
    ap.add_argument("--model", type=Path,
                    default=SHARED / "models" / "movinet_a0_stream_int8.tflite")
    ap.add_argument("--labels", type=Path,
                    default=SHARED / "labels" / "kinetics600_label_map.txt")
    ap.add_argument("--sources", default="synthetic,clip")
    args = ap.parse_args()
    xvfb = start_xvfb()
    names = {"synthetic": "synthetic 640x480 30 fps", "clip": args.clip.name}
    try:
        print(f"{args.seconds:g} s a source, A0 int8 (1 thread), window under "
              f"{os.environ['DISPLAY']}; CPU of every process / frames displayed")
        print("| source | bare loop | bare + model (floor) | app (window) "
              "| app / bare (goal <= 1.3) | app / floor | app headless (model only) "
              "| picture's share: app - headless (/ bare) | frames shown |")
        print("|---|---|---|---|---|---|---|---|---|")
        runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in args.sources.split(",")}
        for _ in range(args.repeat):
            for kind, measured in runs.items():
                measured.append(measure(kind, args))
                print(row(names[kind], measured[-1]))
                sys.stdout.flush()
        if args.repeat > 1:
            for kind, measured in runs.items():
                median = {key: float(np.median([m[key] for m in measured]))
                          for key in measured[0]}
                print(row(f"{names[kind]}, median of {args.repeat}", median))
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


if __name__ == "__main__":
    main()
