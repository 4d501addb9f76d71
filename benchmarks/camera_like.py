"""The shared clips as a Pi camera in a room might film them: footage no setting was tuned on.

The shared clips are clean (broadcast and phone video, well lit). A camera on a shelf is
not: a dim room, sensor noise, a white balance off, auto-exposure hunting. This writes
versions of every clip of ``--videos`` into ``--out/KIND/`` (with the manifest, so that
``benchmarks/reaction.py --videos OUT/KIND`` scores them; its oracle is recomputed on them):

* ``control``:  re-encoded only (what the encoding alone changes);
* ``camera``:   soft focus, a warm cast, 0.85 exposure, sensor noise (sigma 6 of 255);
* ``lowlight``: a dim room: gamma 1.3, 0.55 exposure, more noise (sigma 8);
* ``exposure``: auto-exposure hunting, the gain swinging +-25 % over 6 s;
* ``framing``:  mirrored, and the middle 80 % of the picture (another camera position).
* ``stream``:   an IP camera or a USB webcam's MJPEG at a low bitrate: every frame
  halved, JPEG-compressed at quality 20 (blocks, ringing, colour smeared) and brought
  back to the clip's size.

Frames are taken at the model's 5 fps and written at 5 fps (mp4v), at the clip's own size;
the noise is seeded (once a kind), so a run writes the same footage every time.

    python benchmarks/camera_like.py --out /tmp/camera_like
    python benchmarks/reaction.py --quick --videos /tmp/camera_like/lowlight
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from camera_footage import as_bytes, in_a_dim_room, while_exposure_hunts  # noqa: E402
from reference_loop import sampled_rgb_frames  # noqa: E402

FPS = 5
#: what a low-bitrate camera stream looks like (OpenCV's default is 95)
STREAM_JPEG_QUALITY = 20
Change = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def control(rgb: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    return rgb


def camera(rgb: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    soft = cv2.GaussianBlur(rgb, (3, 3), 0).astype(np.float32)
    warm = soft * np.array([1.08, 1.0, 0.85]) * 0.85
    return as_bytes(warm + rng.normal(0.0, 6.0, warm.shape))


def lowlight(rgb: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    return in_a_dim_room(rgb, rng)


def exposure(rgb: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    return while_exposure_hunts(rgb, i, FPS)


def framing(rgb: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    middle = rgb[round(0.1 * h):round(0.9 * h), round(0.1 * w):round(0.9 * w)]
    return np.ascontiguousarray(middle[:, ::-1])


def stream(rgb: np.ndarray, i: int, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(half, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, STREAM_JPEG_QUALITY])
    assert ok
    blocky = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.resize(blocky, (w, h), interpolation=cv2.INTER_LINEAR)


KINDS: dict[str, Change] = {
    f.__name__: f for f in (control, camera, lowlight, exposure, framing, stream)}


def write_kind(videos: Path, out: Path, kind: str) -> None:
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(videos / "MANIFEST.tsv", folder / "MANIFEST.tsv")
    change, rng = KINDS[kind], np.random.default_rng(7)
    for clip in sorted(videos.glob("*.mp4")):
        frames = [change(rgb, i, rng) for i, rgb in enumerate(sampled_rgb_frames(clip, FPS))]
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(str(folder / clip.name), cv2.VideoWriter_fourcc(*"mp4v"),
                                 float(FPS), (width, height))
        for rgb in frames:
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        writer.release()
    print(f"{kind}: {folder}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "videos",
                    help="a folder of clips with a MANIFEST.tsv")
    ap.add_argument("--out", type=Path, required=True, help="where the versions go")
    ap.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=list(KINDS))
    args = ap.parse_args()
    if not (args.videos / "MANIFEST.tsv").is_file():
        ap.error(f"--videos: no MANIFEST.tsv in {args.videos}")
    for kind in args.kinds:
        write_kind(args.videos, args.out, kind)


if __name__ == "__main__":
    main()
