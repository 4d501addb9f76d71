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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_picamera2 import FakeCameraSystem, paced, pattern_frames


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
