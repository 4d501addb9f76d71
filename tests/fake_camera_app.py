"""Run the real ``movinet-pi`` command in a subprocess with the fake picamera2 as its camera.

    python tests/fake_camera_app.py REPORT.json [movinet-pi arguments...]

The camera delivers colour bars at 30 fps (paced like a sensor) forever; when
the app exits, REPORT.json says whether every camera was released. For tests of
what only a whole process shows: signals, exit codes, flushing outputs.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fake_picamera2 import FakeCameraSystem, pattern_frames


def paced(frames: Iterator[np.ndarray], fps: float) -> Iterator[np.ndarray]:
    started = time.monotonic()
    for i, frame in enumerate(frames):
        delay = started + i / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield frame


def main() -> int:
    report = Path(sys.argv[1])
    system = FakeCameraSystem(paced(pattern_frames((640, 480)), 30.0))
    sys.modules["picamera2"] = system.module

    def write_report() -> None:
        report.write_text(json.dumps({
            "opened": len(system.instances),
            "still_open": sum(cam.is_open for cam in system.instances),
            "acquired": sorted(system.acquired),
            "delivered": system.delivered,
        }))

    atexit.register(write_report)
    from movinet_pi.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
