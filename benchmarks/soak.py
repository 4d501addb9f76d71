"""Soak: 10,000+ model steps on a looped clip, headless; does anything grow?

Runs the real pipeline (file source, looped by reopening; A0 int8; JSON lines
to /dev/null; default stream history) and samples the process's resident
memory, open file descriptors and threads after a warm-up and at the end.
Goals: RSS growth < 5 MB, no fd or thread growth.

    python benchmarks/soak.py [--steps 10000] [--video PATH] [--roi auto]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

from movinet_pi.flags import DEFAULT_HISTORY  # noqa: E402
from movinet_pi.model.adaptive import history_policy  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import load_labels  # noqa: E402
from movinet_pi.outputs.jsonlines import JsonLinesSink  # noqa: E402
from movinet_pi.pipeline import Pipeline  # noqa: E402
from movinet_pi.recognizer import Recognizer, RunConfig  # noqa: E402
from movinet_pi.sources.base import Frame, Source  # noqa: E402
from movinet_pi.sources.open import open_source  # noqa: E402
from movinet_pi.sources.roi import AUTO  # noqa: E402


class LoopedFile(Source):
    """A clip played over and over, timestamps running on (like an endless camera)."""

    live = False
    fps = 30.0

    def __init__(self, path: Path, frames: int) -> None:
        self.path = path
        self.name = f"{path.name} (looped)"
        self.left = frames
        self.offset = 0.0
        self.index = 0
        self._open()

    def _open(self) -> None:
        self.source = open_source(str(self.path))
        self.frame_size = self.source.frame_size
        self.last_t = 0.0

    def read(self) -> Frame | None:
        if self.left <= 0:
            return None
        frame = self.source.read()
        if frame is None:  # the end of the clip: start it again, one frame later
            self.source.close()
            self.offset += self.last_t + 1.0 / self.fps
            self._open()
            frame = self.source.read()
        self.last_t = frame.timestamp
        self.left -= 1
        self.index += 1
        return Frame(frame.rgb, self.offset + frame.timestamp, self.index)

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.source.close()


def sample() -> dict[str, float]:
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return {
        "rss_mb": rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": len(os.listdir("/proc/self/task")),
    }


def run_steps(clf: StreamingClassifier, video: Path, steps: int, out,
              roi: Optional[str] = None) -> float:
    started = time.perf_counter()
    source = LoopedFile(video, frames=steps * 6)  # a 30 fps clip gives a step every 6 frames
    config = RunConfig(top_k=3, roi=roi)
    Pipeline(source, Recognizer(clf, config, [JsonLinesSink(out)])).run()
    source.close()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--video", type=Path, default=SHARED / "videos" / "arm_wrestling.mp4")
    ap.add_argument("--roi", choices=[AUTO], help="the model reads --roi auto's box")
    args = ap.parse_args()
    labels = load_labels(SHARED / "labels" / "kinetics600_label_map.txt")
    clf = StreamingClassifier.from_file(SHARED / "models" / "movinet_a0_stream_int8.tflite",
                                        labels, history=history_policy(DEFAULT_HISTORY, MODEL_FPS))
    with open(os.devnull, "w") as out:
        run_steps(clf, args.video, args.warmup, out, args.roi)
        before = sample()
        seconds = run_steps(clf, args.video, args.steps, out, args.roi)
        after = sample()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    roi = " --roi auto," if args.roi else ""
    print(f"soak: {args.steps} steps of A0 int8 on {args.video.name} looped, headless,{roi} "
          f"{seconds:.0f} s ({args.steps / seconds:.0f} steps/s)")
    print("| | after warm-up | after the soak | growth | goal |")
    print("|---|---|---|---|---|")
    print(f"| RSS | {before['rss_mb']:.1f} MB | {after['rss_mb']:.1f} MB "
          f"| {after['rss_mb'] - before['rss_mb']:+.2f} MB | < 5 MB |")
    print(f"| open fds | {before['fds']:.0f} | {after['fds']:.0f} "
          f"| {after['fds'] - before['fds']:+.0f} | 0 |")
    print(f"| threads | {before['threads']:.0f} | {after['threads']:.0f} "
          f"| {after['threads'] - before['threads']:+.0f} | 0 |")
    print(f"(peak RSS {peak_mb:.0f} MB)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
