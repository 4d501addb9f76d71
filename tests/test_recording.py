"""Event clips: pre-roll + event + post-roll in an MP4 with a JSON sidecar, written safely.

The pictures are flat grey levels that encode their frame index, so a clip read
back with OpenCV says exactly which frames it holds.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import threading
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import pytest
from tmpfs import run_on_tmpfs

from movinet_pi import MovinetPiError
from movinet_pi.model.predictions import Prediction
from movinet_pi.outputs import clip_files
from movinet_pi.outputs.base import FrameSink, StepResult
from movinet_pi.outputs.clip_files import slug
from movinet_pi.outputs.recording import ClipRecorder

FPS = 10.0  # synthetic source: 10 frames a second, a model step every other frame
W, H = 320, 240
PERIOD = 18  # grey levels repeat every 18 frames
ARM = "arm wrestling"


def level(i: int) -> int:
    """The grey level of frame ``i``: 10 apart for neighbours (the codec is off by a few)."""
    return 40 + (i % PERIOD) * 10


def picture(i: int, w: int = W, h: int = H) -> np.ndarray:
    return np.full((h, w, 3), level(i), np.uint8)


def shown_at(t: float, events: Iterable[tuple[str, float, float]]) -> list[Prediction]:
    """What the overlay shows at ``t``: each (label, from, to) event's label while it lasts."""
    shown = [Prediction("carving ice", 0.30, 2)]  # always shown, never recorded
    for n, (label, start, end) in enumerate(events):
        if start - 1e-9 <= t <= end + 1e-9:
            shown.insert(0, Prediction(label, 0.6 + 0.1 * ((round(t * FPS) // 2) % 4), 10 + n))
    return shown


def feed(rec: ClipRecorder, frames: range, events: Iterable[tuple[str, float, float]],
         make: Callable[[int], np.ndarray] = picture) -> None:
    """Frames at FPS, a model step on every other one, as the pipeline calls a sink."""
    events = list(events)
    buffer = np.empty((H, W, 3), np.uint8)  # the caller reuses its buffer: the sink must copy
    for i in frames:
        t = i / FPS
        image = make(i)
        if image.shape == buffer.shape:
            buffer[...] = image
            image = buffer
        rec.on_frame(image, t)
        if i % 2 == 0:
            rec.on_step(StepResult(t, i, i // 2, shown_at(t, events), 1.0))


def read_levels(path: Path) -> list[int]:
    cap = cv2.VideoCapture(str(path))
    levels = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        levels.append(round(float(frame.mean())))
    cap.release()
    return levels


def index_of(grey: int) -> int:
    """The frame index modulo PERIOD whose level is nearest ``grey``."""
    return min(range(PERIOD), key=lambda i: abs(level(i) - grey))


def recorder(directory: Path, logs: list[str] | None = None, **kwargs: object) -> ClipRecorder:
    options: dict[str, object] = dict(labels=[ARM], pre_seconds=1.0, post_seconds=1.0,
                                      max_fps=None, queue_frames=100_000, min_free_mb=0)
    options.update(kwargs)
    return ClipRecorder(directory, log=(logs.append if logs is not None else print),
                        **options)  # type: ignore[arg-type]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- a clip -----------------------------------------------------------------------------------
def test_clip_holds_pre_roll_event_and_post_roll(tmp_path: Path) -> None:
    logs: list[str] = []
    rec = recorder(tmp_path, logs)
    assert isinstance(rec, FrameSink)
    # shown from the step at 4.0 s to the one at 6.0 s; gone at 6.2 s
    feed(rec, range(100), [(ARM, 4.0, 6.0)])
    rec.close()

    videos = sorted(tmp_path.glob("*.mp4"))
    assert [v.name for v in videos] == [p.name for p in rec.clips], logs
    assert len(videos) == 1
    video = videos[0]
    assert video.name.endswith("_arm-wrestling.mp4")
    assert len(video.name.split("_")[0]) == len("20261125-173012")
    # pre-roll from 3.0 s (1 s before the start), post-roll to 7.2 s (1 s after the step at
    # 6.2 s that no longer showed it): frames 30..72
    levels = read_levels(video)
    assert len(levels) == 73 - 30
    assert index_of(levels[0]) == 30 % PERIOD and index_of(levels[-1]) == 72 % PERIOD
    assert [index_of(g) for g in levels] == [i % PERIOD for i in range(30, 73)]

    side = json.loads(video.with_suffix(".json").read_text())
    assert side["label"] == ARM and side["labels"] == [ARM]
    assert side["start"] == 4.0 and side["end"] == 6.0
    scores = [p.score for i in range(40, 61, 2) for p in shown_at(i / FPS, [(ARM, 4.0, 6.0)])
              if p.label == ARM]
    assert side["peak"] == pytest.approx(max(scores), abs=1e-5)
    assert side["mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-5)
    assert side["frames"] == 43 and side["fps"] == pytest.approx(FPS)
    assert (side["clip_start"], side["clip_end"]) == (3.0, 7.2)
    assert side["files"] == {"video": video.name, "sidecar": video.with_suffix(".json").name}
    assert side["dropped_frames"] == 0
    assert (side["width"], side["height"]) == (W, H)
    assert [e["label"] for e in side["events"]] == [ARM]
    assert leftovers(tmp_path) == []
    assert rec.stats.clips_written == 1 and rec.stats.clips_failed == 0


def test_pre_and_post_roll_each_take_their_own_length(tmp_path: Path) -> None:
    rec = recorder(tmp_path, pre_seconds=2.0, post_seconds=0.5)
    feed(rec, range(100), [(ARM, 4.0, 6.0)])
    rec.close()
    (video,) = sorted(tmp_path.glob("*.mp4"))
    side = json.loads(video.with_suffix(".json").read_text())
    # 2 s before the start, 0.5 s after the step at 6.2 s that no longer showed it
    assert (side["clip_start"], side["clip_end"]) == (2.0, 6.7)
    assert side["frames"] == len(read_levels(video)) == 68 - 20


def test_other_labels_are_not_recorded_but_any_label_is_by_default(tmp_path: Path) -> None:
    only_arm = recorder(tmp_path / "arm")
    feed(only_arm, range(30), [])  # "carving ice" only
    only_arm.close()
    assert list((tmp_path / "arm").glob("*.mp4")) == []

    anything = recorder(tmp_path / "any", labels=None)
    feed(anything, range(30), [])
    anything.close()  # carving ice was shown all along: one clip, finished at close
    (clip,) = (tmp_path / "any").glob("*.mp4")
    assert clip.name.endswith("_carving-ice.mp4")
    side = json.loads(clip.with_suffix(".json").read_text())
    assert side["frames"] == 30 and side["start"] == 0.0 and side["end"] == 2.8


def test_an_event_during_the_post_roll_extends_the_clip(tmp_path: Path) -> None:
    rec = recorder(tmp_path, labels=[ARM, "Punching Bag"])
    feed(rec, range(120), [(ARM, 3.0, 4.0), ("punching bag", 4.6, 6.0)])
    rec.close()
    (video,) = tmp_path.glob("*.mp4")
    side = json.loads(video.with_suffix(".json").read_text())
    assert side["labels"] == [ARM, "punching bag"]
    assert (side["start"], side["end"]) == (3.0, 6.0)
    assert side["frames"] == len(read_levels(video)) == 73 - 20  # 2.0 s .. 7.2 s


def test_two_separate_events_make_two_clips(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    feed(rec, range(150), [(ARM, 2.0, 3.0), (ARM, 9.0, 10.0)])
    rec.close()
    videos = rec.clips
    assert len(videos) == 2 and videos[0].name.endswith("_arm-wrestling.mp4")
    # within the same second the second name gets a number instead of replacing the first
    assert videos[1].name.endswith(("_arm-wrestling.mp4", "_arm-wrestling-2.mp4"))
    assert videos[0] != videos[1] and sorted(tmp_path.glob("*.mp4")) == sorted(videos)
    starts = [json.loads(v.with_suffix(".json").read_text())["start"] for v in videos]
    assert starts == [2.0, 9.0]
    assert [len(read_levels(v)) for v in videos] == [33, 33]  # 1.0..4.2 s and 8.0..11.2 s


def test_close_finishes_an_open_clip_with_what_it_has(tmp_path: Path) -> None:
    rec = recorder(tmp_path)
    feed(rec, range(50), [(ARM, 3.0, 99.0)])
    rec.close()
    (video,) = tmp_path.glob("*.mp4")
    side = json.loads(video.with_suffix(".json").read_text())
    assert side["frames"] == len(read_levels(video)) == 50 - 20
    assert side["end"] == 4.8  # the last step that showed it
    assert leftovers(tmp_path) == []


def test_a_long_event_is_split_into_clips_of_at_most_max_clip_seconds(tmp_path: Path) -> None:
    rec = recorder(tmp_path, max_clip_seconds=2.05)
    feed(rec, range(120), [(ARM, 2.0, 8.0)])
    rec.close()
    sides = [json.loads(v.with_suffix(".json").read_text()) for v in rec.clips]
    # 1.0..4.0 s (pre-roll + 2 s), then 4.1..6.1 s, then 6.2 s to the post-roll's 9.2 s
    assert [s["frames"] for s in sides] == [31, 21, 31]
    assert [len(read_levels(v)) for v in rec.clips] == [31, 21, 31]
    assert [s["end"] for s in sides] == [None, None, 8.0]  # it went on past the first two
    assert all(s["label"] == ARM and s["start"] == 2.0 for s in sides)
    assert leftovers(tmp_path) == []


def test_wide_pictures_are_downscaled_and_max_fps_thins_them(tmp_path: Path) -> None:
    rec = recorder(tmp_path, labels=None, max_fps=5.0, max_width=160)
    feed(rec, range(20), [], make=lambda i: picture(i, 640, 480))
    rec.close()
    (video,) = tmp_path.glob("*.mp4")
    side = json.loads(video.with_suffix(".json").read_text())
    assert (side["width"], side["height"]) == (160, 120)
    assert side["frames"] == 10 and side["fps"] == pytest.approx(5.0)


def test_memory_bound_is_documented_for_the_defaults(tmp_path: Path) -> None:
    rec = ClipRecorder(tmp_path)
    try:
        # (3 s + 0.5 s slack) x 15 fps + 30 queued, 640x480 BGR: about 76 MB
        assert rec.memory_bound_bytes() == int((3.5 * 15 + 30) * 640 * 480 * 3)
        assert 70e6 < rec.memory_bound_bytes() < 80e6
    finally:
        rec.close()


def test_a_sidecar_is_written_whole_under_a_temporary_name_then_renamed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.json"
    seen: list[tuple[str, str, bool, str]] = []
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        source = Path(str(src))
        seen.append((source.name, Path(str(dst)).name, path.exists(), source.read_text()))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    clip_files.atomic_write_text(path, '{"label": "arm wrestling"}')
    # the final name appears only by the rename, with the whole text already in it
    assert seen == [(".clip.json.part", "clip.json", False, '{"label": "arm wrestling"}')]
    assert path.read_text() == '{"label": "arm wrestling"}' and leftovers(tmp_path) == []


def test_slug() -> None:
    assert slug("arm wrestling") == "arm-wrestling"
    assert slug("  Passing American Football (in game) ") == "passing-american-football-in-game"
    assert slug("../../etc") == "etc" and slug("???") == "event"


# -- the disk ---------------------------------------------------------------------------------
def _fake_clip(directory: Path, stem: str, size: int, mtime: float, *, ours: bool = True
               ) -> None:
    """A clip as the recorder leaves it (its sidecar says so), or, with ``ours=False``,
    someone else's files under a name that matches the pattern."""
    video, sidecar = directory / f"{stem}.mp4", directory / f"{stem}.json"
    video.write_bytes(b"\0" * size)
    files = {"video": video.name, "sidecar": sidecar.name}
    sidecar.write_text(json.dumps({"app": "movinet-pi", "files": files} if ours
                                  else {"files": files}))
    for path in (video, sidecar):
        os.utime(path, (mtime, mtime))


def test_max_mb_deletes_the_oldest_clips_first(tmp_path: Path) -> None:
    _fake_clip(tmp_path, "20200101-000000_old-a", 600_000, 1_000_000)
    _fake_clip(tmp_path, "20200102-000000_old-b", 600_000, 2_000_000)
    (tmp_path / "notes.txt").write_bytes(b"\0" * 2_000_000)  # not a clip: never touched
    logs: list[str] = []
    rec = recorder(tmp_path, logs, max_mb=1.0)
    feed(rec, range(60), [(ARM, 2.0, 3.0)])
    rec.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "20200101-000000_old-a.mp4" not in names and "20200101-000000_old-a.json" not in names
    assert "20200102-000000_old-b.mp4" in names and "20200102-000000_old-b.json" in names
    assert "notes.txt" in names
    assert rec.clips[0].exists() and rec.clips[0].with_suffix(".json").exists()
    assert rec.stats.clips_deleted == 1
    assert any("deleted 20200101-000000_old-a" in line for line in logs)


def noise(i: int) -> np.ndarray:
    """A picture that does not compress: a clip of them grows by tens of kB a frame."""
    return np.random.default_rng(i).integers(0, 255, (H, W, 3), np.uint8)


def test_max_mb_bounds_the_folder_even_for_one_long_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One event going on for minutes must not make one clip of any size: a clip ends (kept)
    at half the cap and the next goes on, and the oldest are deleted as it grows, so that the
    clips kept and the one being written stay within the cap."""
    from movinet_pi.outputs import clip_writer

    cap_mb = 1.0
    folder_bytes: list[int] = []  # measured each time the writer has made room
    real_enforce = clip_writer.enforce_max_bytes

    def measured(directory: Path, budget: int, keep: Path, log: Callable[[str], None]) -> int:
        deleted = real_enforce(directory, budget, keep, log)
        folder_bytes.append(sum(p.stat().st_size for p in directory.glob("*.mp4"))
                            + sum(p.stat().st_size for p in directory.glob(".*.part.mp4")))
        return deleted

    monkeypatch.setattr(clip_writer, "enforce_max_bytes", measured)
    logs: list[str] = []
    rec = recorder(tmp_path, logs, max_mb=cap_mb)
    feed(rec, range(200), [(ARM, 1.0, 19.0)], make=noise)
    rec.close()
    assert rec.stats.clips_written >= 3 and rec.stats.clips_deleted >= 1
    assert any("is half of --record-max-mb: it ends here" in line for line in logs)
    assert len(folder_bytes) > rec.stats.clips_written  # (while writing too, not only after)
    assert max(folder_bytes) <= cap_mb * 1e6
    for clip in [c for c in rec.clips if c.exists()][:-1]:  # (the last is what was left)
        # looked at once a second: at most a second's frames over half the cap
        frames = json.loads(clip.with_suffix(".json").read_text())["frames"]
        per_frame = clip.stat().st_size / frames
        assert cap_mb * 1e6 / 2 <= clip.stat().st_size <= cap_mb * 1e6 / 2 + 11 * per_frame
    assert leftovers(tmp_path) == []


def patchy(i: int) -> np.ndarray:
    """A grey picture with a patch of noise: a clip of them grows slower than :func:`noise`."""
    image = picture(i)
    image[:60, :80] = np.random.default_rng(i).integers(0, 255, (60, 80, 3), np.uint8)
    return image


def test_the_clip_being_written_counts_against_max_mb(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder already near its cap: while a clip is written, the clips kept may take only
    what the cap leaves beside it. (Its size is what the disk shows at each check; the
    writer's thread writes on meanwhile, so the test looks at what each check allowed.)"""
    from movinet_pi.outputs import clip_writer

    for n in range(12):  # 1.8 MB of our own older clips
        _fake_clip(tmp_path, f"20200101-0000{n:02d}_old", 150_000, 1_000_000 + n)
    checks: list[tuple[int, bool, int]] = []  # budget, a clip being written, kept after
    real_enforce = clip_writer.enforce_max_bytes

    def measured(directory: Path, budget: int, keep: Path, log: Callable[[str], None]) -> int:
        writing = any(directory.glob(".*.part.mp4"))
        deleted = real_enforce(directory, budget, keep, log)
        kept = sum(p.stat().st_size for p in directory.glob("[!.]*.mp4"))  # not the part
        checks.append((budget, writing, kept))
        return deleted

    monkeypatch.setattr(clip_writer, "enforce_max_bytes", measured)
    rec = recorder(tmp_path, max_mb=2.0)
    feed(rec, range(100), [(ARM, 1.0, 8.0)], make=patchy)
    rec.close()
    cap = rec.max_bytes
    assert cap is not None and rec.stats.clips_deleted >= 1
    assert all(kept <= budget for budget, _, kept in checks), checks  # each check made room
    while_writing = [budget for budget, writing, _ in checks if writing]
    assert while_writing and all(budget < cap for budget in while_writing), (cap, checks)


def test_a_clip_ends_kept_when_the_disk_gets_nearly_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not written on until the disk is full and then lost: it ends where the free space
    falls under the guard, whole, and no new clip is begun on that disk."""
    from movinet_pi.outputs import clip_writer

    real = shutil.disk_usage
    looks: list[str] = []  # the writer's looks at the disk, on its own thread and clock

    def filling(path: str) -> object:
        looks.append(path)  # the start, its first picture, then once a second of the clip
        free = 10**10 if len(looks) <= 4 else 10 * 2**20
        return real(path)._replace(free=free)

    monkeypatch.setattr(clip_writer.shutil, "disk_usage", filling)
    logs: list[str] = []
    rec = recorder(tmp_path, logs, min_free_mb=50)
    feed(rec, range(0, 160), [(ARM, 1.0, 15.0)])
    rec.close()
    (clip,) = rec.clips
    assert clip.exists() and read_levels(clip)  # kept, and readable
    side = json.loads(clip.with_suffix(".json").read_text())
    assert 20 <= side["frames"] <= 60  # the pre-roll and a few seconds of the event, not 14 s
    assert any("ends here: only 10 MB free" in line for line in logs), logs
    assert not any("not recording" in line for line in logs)  # none begun on that disk
    assert rec.stats.clips_failed == 0 and leftovers(tmp_path) == []


def test_max_mb_never_deletes_files_the_recorder_did_not_write(tmp_path: Path) -> None:
    _fake_clip(tmp_path, "20200101-000000_holiday", 600_000, 1_000_000, ours=False)
    lone = tmp_path / "20200101-000001_wedding.mp4"  # no sidecar at all
    lone.write_bytes(b"\0" * 600_000)
    os.utime(lone, (1_000_000, 1_000_000))
    garbage = tmp_path / "20200101-000002_x.json"  # a matching name that is not JSON
    garbage.write_bytes(b"\0" * 600_000)
    os.utime(garbage, (1_000_000, 1_000_000))
    _fake_clip(tmp_path, "20200102-000000_old", 600_000, 2_000_000)  # ours: this one goes
    logs: list[str] = []
    rec = recorder(tmp_path, logs, max_mb=0.5)
    feed(rec, range(60), [(ARM, 2.0, 3.0)])
    rec.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    for kept in ("20200101-000000_holiday.mp4", "20200101-000000_holiday.json",
                 lone.name, garbage.name):
        assert kept in names
    assert "20200102-000000_old.mp4" not in names and "20200102-000000_old.json" not in names
    assert rec.stats.clips_deleted == 1
    assert json.loads(rec.clips[0].with_suffix(".json").read_text())["app"] == "movinet-pi"


def test_a_clip_being_written_is_named_as_ours_by_its_parts_sidecar(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = clip_files.open_video_writer
    claims: list[dict[str, object]] = []

    def opening(path: Path, fourcc: str, fps: float, size: tuple[int, int]):
        claims.append(json.loads(clip_files.part_sidecar(path).read_text()))
        return real(path, fourcc, fps, size)

    monkeypatch.setattr(clip_files, "open_video_writer", opening)
    rec = recorder(tmp_path)
    feed(rec, range(60), [(ARM, 2.0, 3.0)])
    rec.close()
    (video,) = rec.clips
    (probe, clip) = claims  # the codec probe's file, then the clip's
    assert probe["app"] == clip["app"] == "movinet-pi"
    assert clip["parts"] == [f".{video.name[:-4]}.part.mp4", f".{video.name[:-4]}.json.part"]
    assert leftovers(tmp_path) == []  # the sidecar went with its parts


def test_at_start_only_what_our_parts_sidecars_name_is_removed(tmp_path: Path) -> None:
    """A crash leaves a clip's part, its temporary sidecar and the part's sidecar: they go.
    Every near miss stays: other hidden .part files, our names without our sidecar, a
    sidecar another app wrote or that is damaged, names a sidecar must not name."""
    ours = tmp_path / ".20240101-120006_ok.part.mp4"
    clip_files.claim_parts(ours, tmp_path / "20240101-120006_ok-2.json")
    ours.write_bytes(b"half a video")
    (tmp_path / ".20240101-120006_ok-2.json.part").write_text('{"half": ')
    probe = tmp_path / ".20240101-120009_codec-test.part.avi"  # a probe cut short
    clip_files.claim_parts(probe)
    probe.write_bytes(b"tiny")
    foreign = {
        ".thesis.partial.odt": "someone's thesis",
        ".backup.part2.tar": "a backup",
        ".report.part": "a download",
        ".20240101-120000_run.part.mp4": "our name, no sidecar",
        ".20240101-120000_run.json.part": "our name, no sidecar",
        "20240101-120000_run.part.mp4": "not hidden",
        ".20240101-120001_jump.part.mp4": "claimed by another app",
        ".20240101-120001_jump.part.json": '{"app": "other-app", "parts": '
                                           '[".20240101-120001_jump.part.mp4"]}',
        ".20240101-120002_wave.part.avi": "its sidecar is damaged",
        ".20240101-120002_wave.part.json": '{"app": "movinet-pi", "parts": [".2024',
        ".20240101-120003_sit.part.mkv": "not a part we write",
        "20240101-120003_sit.mp4": "a finished clip",
        ".20240101-120004_x.part.mp4": "named by the sidecar of another clip",
        ".20240102-000000_y.json.part": "a temporary sidecar of another second",
        ".Upper.part.mp4": "not our pattern",
    }
    for name, text in foreign.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "outside.part.mp4").write_text("outside")
    greedy = tmp_path / ".20240101-120003_sit.part.json"  # ours, naming what it must not
    greedy.write_text(json.dumps({"app": "movinet-pi", "parts": [
        "../outside.part.mp4", ".thesis.partial.odt", "20240101-120003_sit.mp4",
        ".20240101-120003_sit.part.mkv", ".20240101-120004_x.part.mp4",
        ".20240102-000000_y.json.part", "/etc/passwd", 7, None]}))
    logs: list[str] = []
    recorder(tmp_path, logs).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*foreign, "outside.part.mp4"])
    for name, text in foreign.items():
        assert (tmp_path / name).read_text() == text
    removed = sorted(line.rsplit(": ", 1)[1] for line in logs if "removed an unfinished" in line)
    assert removed == sorted([ours.name, ".20240101-120006_ok-2.json.part", probe.name])


def test_a_clip_starting_at_the_first_frame_has_the_source_size(tmp_path: Path) -> None:
    """The model's first step can come before the first picture reaches the recorder."""
    rec = recorder(tmp_path, pre_seconds=0.0)
    for i in range(20):
        t = i / FPS
        if i % 2 == 0:  # the step first (as the inference thread may be first), then the frame
            rec.on_step(StepResult(t, i, i // 2, shown_at(t, [(ARM, 0.0, 1.0)]), 1.0))
        rec.on_frame(picture(i, 172, 172), t)
    rec.close()
    (video,) = rec.clips
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape[:2] == (172, 172)
    side = json.loads(video.with_suffix(".json").read_text())
    assert (side["width"], side["height"]) == (172, 172)
    assert side["fps"] == FPS  # from the pictures' own times, though none came before it
    # 0.0 s .. 2.0 s (the event ends at 1.0 s, then 1.0 s of post-roll)
    assert side["frames"] == len(read_levels(video)) == 20


def test_overlapping_events_name_the_clip_after_the_highest_peak(tmp_path: Path) -> None:
    rec = recorder(tmp_path, labels=[ARM, "punching bag"])
    for i in range(80):
        t = i / FPS
        rec.on_frame(picture(i), t)
        if i % 2 == 0:
            shown = [Prediction("carving ice", 0.05, 2)]
            if 2.0 <= t <= 5.0:
                shown.insert(0, Prediction(ARM, 0.5, 5))
            if 3.0 <= t <= 4.0:
                shown.insert(0, Prediction("punching bag", 0.9, 9))
            rec.on_step(StepResult(t, i, i // 2, shown, 1.0))
    rec.close()
    (video,) = rec.clips
    assert video.name.endswith("_punching-bag.mp4")
    side = json.loads(video.with_suffix(".json").read_text())
    assert side["label"] == "punching bag" and side["labels"] == [ARM, "punching bag"]
    assert side["files"] == {"video": video.name, "sidecar": video.with_suffix(".json").name}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(side["files"].values())


def test_a_directory_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(MovinetPiError, match=r"^--record .*file/clips: cannot create"):
        ClipRecorder(tmp_path / "file" / "clips")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes through permission bits (the read-only mount test "
                    "covers it)")
def test_a_directory_without_write_permission_is_one_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(MovinetPiError, match=r"cannot write there"):
            ClipRecorder(tmp_path)
    finally:
        tmp_path.chmod(0o755)


class FailingWriter:
    """A video writer whose disk fills up after ``ok_frames`` frames (it raises, like an OSError
    from a lower layer would)."""

    def __init__(self, path: Path, ok_frames: int) -> None:
        self.path = path
        self.ok_frames = ok_frames
        self.file = open(path, "wb")  # noqa: SIM115 - closed in release()

    def isOpened(self) -> bool:  # OpenCV's name
        return True

    def write(self, image: np.ndarray) -> bool:
        if self.ok_frames <= 0:
            raise OSError(28, "No space left on device")
        self.ok_frames -= 1
        self.file.write(image.tobytes()[:100])
        return True

    def release(self) -> None:
        self.file.close()


def test_a_writer_failure_removes_the_partial_file_and_recording_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs: list[str] = []
    rec = recorder(tmp_path, logs)
    real = clip_files.open_video_writer
    opened: list[Path] = []

    def failing_first(path: Path, fourcc: str, fps: float, size: tuple[int, int]):
        opened.append(path)
        if len(opened) == 1:
            return FailingWriter(path, ok_frames=15)
        return real(path, fourcc, fps, size)

    monkeypatch.setattr(clip_files, "open_video_writer", failing_first)
    feed(rec, range(150), [(ARM, 2.0, 4.0), (ARM, 9.0, 10.0)])
    rec.close()
    assert opened[0].name.startswith(".") and ".part" in opened[0].name
    assert not opened[0].exists()
    assert any("failed, removed its files" in line and "No space left" in line for line in logs)
    assert rec.stats.clips_failed == 1 and rec.stats.clips_written == 1
    # the second event got its clip, complete, and nothing partial is left
    (video,) = tmp_path.glob("*.mp4")
    assert json.loads(video.with_suffix(".json").read_text())["start"] == 9.0
    assert leftovers(tmp_path) == []


def test_a_stuck_disk_drops_frames_instead_of_blocking_on_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = clip_files.open_video_writer

    class StuckWriter:
        def __init__(self, inner: clip_files.VideoWriterLike) -> None:
            self.inner = inner

        def isOpened(self) -> bool:
            return self.inner.isOpened()

        def write(self, image: np.ndarray) -> bool | None:
            release.wait(timeout=30)  # the disk hangs until the test lets go
            return self.inner.write(image)

        def release(self) -> None:
            self.inner.release()

    rec = recorder(tmp_path, labels=None, queue_frames=5)
    monkeypatch.setattr(clip_files, "open_video_writer",
                        lambda *a: StuckWriter(real(*a)))  # type: ignore[misc]
    feed(rec, range(200), [])  # returns although the writer is stuck on its first frame
    dropped = rec.stats.frames_dropped
    release.set()
    rec.close()
    assert dropped >= 200 - 5 - 2  # at most the queue, the one being written and a spare
    (video,) = tmp_path.glob("*.mp4")
    side = json.loads(video.with_suffix(".json").read_text())
    # (how many of those fell while the clip was open depends on when the writer got to it)
    assert 0 <= side["dropped_frames"] <= dropped
    assert 1 <= side["frames"] <= 7


# -- real read-only and full disks, in a private mount namespace ------------------------------
CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from movinet_pi import MovinetPiError
    from movinet_pi.model.predictions import Prediction
    from movinet_pi.outputs.base import StepResult
    from movinet_pi.outputs.recording import ClipRecorder

    where, mode = sys.argv[1], sys.argv[2]
    logs = []
    try:
        rec = ClipRecorder(where, pre_seconds=0.5, post_seconds=0.5, max_fps=None,
                           queue_frames=10000, min_free_mb=0, log=logs.append)
    except MovinetPiError as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(0)
    rng = np.random.default_rng(0)
    for i in range(40):  # noise does not compress: far more than the 300 kB disk holds
        rec.on_frame(rng.integers(0, 255, (240, 320, 3), np.uint8), i / 10)
        if i % 2 == 0:
            shown = [Prediction("arm wrestling", 0.9, 1)] if 4 <= i <= 30 else []
            rec.on_step(StepResult(i / 10, i, i // 2, shown, 1.0))
    rec.close()
    import os
    print(json.dumps({"files": sorted(os.listdir(where)), "logs": logs,
                      "failed": rec.stats.clips_failed, "written": rec.stats.clips_written}))
""")


def run_in_mount(tmp_path: Path, options: str) -> dict[str, object]:
    """Run CHILD against a fresh tmpfs mounted with ``options``, in a mount namespace."""
    return run_on_tmpfs(tmp_path, options, CHILD, "x")


def test_a_read_only_directory_is_one_clear_error_at_startup(tmp_path: Path) -> None:
    got = run_in_mount(tmp_path, "ro,size=1m")
    assert got.get("error", "").startswith("--record ")  # type: ignore[union-attr]
    assert "cannot write there: Read-only file system" in str(got["error"])
    assert "\n" not in str(got["error"])


def test_a_full_disk_at_run_time_is_logged_and_leaves_no_partial_file(tmp_path: Path) -> None:
    got = run_in_mount(tmp_path, "size=300k")
    assert "error" not in got
    assert got["failed"] == 1 and got["written"] == 0
    assert got["files"] == []  # neither the partial clip nor a sidecar is left
    logs = got["logs"]
    assert isinstance(logs, list)
    assert any("failed, removed its files" in line for line in logs), logs
