#!/usr/bin/env python3
"""Render the README's pictures: docs/window.png, docs/browser.png and docs/roi.png.

* ``window.png``: the picture as the window shows it, overlay and all, a few seconds
  into a clip (the app's own classifier, recognizer and renderer, in this process);
* ``browser.png``: the ``--web`` page in headless chromium, while ``movinet-pi
  --source CLIP --web 0`` plays the clip at its own speed;
* ``roi.png``: ``--roi auto`` on a small actor: a clip shrunk to a third of the height of
  a still room (the first frame of another clip), the box drawn where the model looks.

Usage (from the repository, with ../shared beside it, chromium and the app installed)::

    python scripts/screenshots.py [--clip FILE] [--model FILE] [--labels FILE] [--out DIR]
                                  [--only window|browser|roi]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WIDTH = 560  # of the PNGs: small enough for the README, big enough to read the labels


def shrink(image, width: int = WIDTH):
    height = round(image.shape[0] * width / image.shape[1])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def window_picture(clip: Path, model: Path, labels: Path, at: float, out: Path) -> None:
    """The window's picture at ``at`` seconds into ``clip``."""
    from movinet_pi.loading import model_title
    from movinet_pi.model.classifier import StreamingClassifier
    from movinet_pi.pipeline import Pipeline
    from movinet_pi.recognizer import Recognizer, RunConfig
    from movinet_pi.sources.open import open_source
    from movinet_pi.timing import FrameSampler

    clf = StreamingClassifier.load(model, 4, labels)
    title = model_title(clf, model.stem)
    source = open_source(str(clip))
    try:
        recognizer = Recognizer(clf, RunConfig(top_k=3, threshold=0.05, model_name=title))
        pipeline = Pipeline(source, recognizer)
        sampler = FrameSampler(5.0)
        frame = last = source.read()
        while frame is not None and frame.timestamp < at:
            if sampler.is_due(frame.timestamp):
                recognizer.process(frame)
            last, frame = frame, source.read()
        assert last is not None, f"{clip} has no frames"
        cv2.imwrite(str(out), shrink(pipeline.render(last)), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    finally:
        source.close()


def roi_picture(clip: Path, room_clip: Path, model: Path, labels: Path, at: float,
                out: Path) -> None:
    """The window's picture ``at`` seconds into ``clip`` shrunk into a room, --roi auto."""
    import numpy as np

    from movinet_pi.loading import model_title
    from movinet_pi.model.classifier import StreamingClassifier
    from movinet_pi.pipeline import Pipeline
    from movinet_pi.recognizer import Recognizer, RunConfig
    from movinet_pi.sources.base import Frame
    from movinet_pi.sources.open import open_source
    from movinet_pi.timing import FrameSampler

    with open_source(str(room_clip)) as room_source:
        first = room_source.read()
    assert first is not None, f"{room_clip} has no frames"
    room = cv2.resize(first.rgb, (640, 480), interpolation=cv2.INTER_AREA)
    clf = StreamingClassifier.load(model, 4, labels)
    title = model_title(clf, model.stem)
    source = open_source(str(clip))
    try:
        recognizer = Recognizer(clf, RunConfig(top_k=3, threshold=0.05, model_name=title,
                                               roi="auto"))
        pipeline = Pipeline(source, recognizer)
        sampler = FrameSampler(5.0)
        last = None
        while (frame := source.read()) is not None and frame.timestamp < at:
            height = 160  # a third of the room's height
            width = round(frame.shape[1] * height / frame.shape[0])
            picture = room.copy()
            x, y = 600 - width, 290  # right of the middle, standing on the floor
            picture[y:y + height, x:x + width] = cv2.resize(
                frame.rgb, (width, height), interpolation=cv2.INTER_AREA)
            last = Frame(np.ascontiguousarray(picture), frame.timestamp, frame.index)
            if sampler.is_due(frame.timestamp):
                recognizer.process(last)
        assert last is not None, f"{clip} has no frames"
        cv2.imwrite(str(out), shrink(pipeline.render(last)), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    finally:
        source.close()


def browser_picture(clip: Path, model: Path, labels: Path, at: float, out: Path) -> None:
    """The --web page, ``at`` seconds into the clip, in headless chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (Debian package: chromium)")
    app = subprocess.Popen(
        [sys.executable, "-m", "movinet_pi", "--source", str(clip), "--web", "0", "--headless",
         "--model-path", str(model), "--labels", str(labels), "--threshold", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert app.stderr is not None
        url = None
        while url is None:
            line = app.stderr.readline()
            if not line:
                sys.exit("the app ended before it served the page")
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        time.sleep(at)
        with tempfile.TemporaryDirectory() as profile:
            shot = Path(profile) / "shot.png"
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--hide-scrollbars", "--window-size=1100,580", f"--user-data-dir={profile}",
                 "--virtual-time-budget=1500", f"--screenshot={shot}", url],
                capture_output=True, timeout=120, check=True,
            )
            picture = cv2.imread(str(shot))
        cv2.imwrite(str(out), shrink(picture), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    finally:
        app.terminate()
        app.wait(10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", type=Path, default=SHARED / "videos" / "arm_wrestling.mp4")
    p.add_argument("--model", type=Path,
                   default=SHARED / "models" / "movinet_a0_stream_int8.tflite")
    p.add_argument("--labels", type=Path,
                   default=SHARED / "labels" / "kinetics600_label_map.txt")
    p.add_argument("--at", type=float, default=4.0, help="seconds into the clip (default: 4)")
    p.add_argument("--roi-clip", type=Path,
                   default=SHARED / "videos" / "juggling_soccer_ball.mp4",
                   help="the small actor of roi.png")
    p.add_argument("--room", type=Path, default=SHARED / "videos" / "opening_door.mp4",
                   help="whose first frame is the room of roi.png")
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    p.add_argument("--only", choices=("window", "browser", "roi"), action="append",
                   help="make only this picture (may be repeated; default: all three)")
    args = p.parse_args()
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.only or ["window", "browser", "roi"]
    if "window" in wanted:
        window_picture(args.clip, args.model, args.labels, args.at, args.out / "window.png")
    if "browser" in wanted:
        browser_picture(args.clip, args.model, args.labels, args.at, args.out / "browser.png")
    if "roi" in wanted:
        roi_picture(args.roi_clip, args.room, args.model, args.labels, args.at + 2.0,
                    args.out / "roi.png")
    for name in (f"{name}.png" for name in wanted):
        path = args.out / name
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
              f"{path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
