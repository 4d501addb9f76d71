"""Live controls: model and thread switches from keys and terminal commands."""

from __future__ import annotations

import argparse
import io
import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from movinet_pi.controls import COMMAND_HELP, Controls, read_commands
from movinet_pi.display.overlay import status_line
from movinet_pi.loading import load_classifier, make_loader
from movinet_pi.pipeline import Pipeline
from movinet_pi.recognizer import Recognizer, RunConfig
from movinet_pi.sources.base import Frame, Source


class StillSource(Source):
    """A source the tests never run: controls only need a pipeline to act on."""

    name = "still"
    live = True
    fps = 30.0
    frame_size = (172, 172)

    def read(self) -> Frame | None:
        return None

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


def _args(**extra: object) -> argparse.Namespace:
    base = dict(model="a0", quant="int8", model_path=None, labels=None, threads=1,
                offline=True, history=math.inf)
    return argparse.Namespace(**{**base, **extra})


@pytest.fixture
def catalogue(monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", os.pathsep.join(
        [str(shared / "models"), str(shared / "models" / "untrained"), str(shared / "labels")]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _running(args: argparse.Namespace) -> tuple[Pipeline, Controls]:
    load = make_loader(args)
    classifier, title = load(None, args.threads)
    recognizer = Recognizer(classifier, RunConfig(top_k=3, model_name=title))
    pipeline = Pipeline(StillSource(), recognizer)
    return pipeline, Controls(pipeline, load, max_threads=2)


def _step(pipeline: Pipeline, i: int = 0) -> None:
    rgb = np.full((172, 172, 3), 100, dtype=np.uint8)
    pipeline.recognizer.process(Frame(rgb, i * 0.2, i))


def _native_threads() -> set[int]:
    """The process's threads that are not Python threads: native pools such as XNNPACK's
    workers (Python threads of other tests come and go; they are left out)."""
    python = {t.native_id for t in threading.enumerate()}
    return {int(tid) for tid in os.listdir("/proc/self/task")} - python


def _cpu_ticks(tid: int) -> int:
    """A thread's user + system CPU time so far, in clock ticks (0 once it has ended)."""
    try:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat


def test_key_2_switches_to_a1_off_the_display_path(catalogue: None) -> None:
    pipeline, controls = _running(_args())
    _step(pipeline, 0)
    _step(pipeline, 1)
    old = pipeline.recognizer.classifier
    pipeline.handle_key(ord("2"))  # what the window's show() hands over
    assert "loading A1" in pipeline.current_message
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    assert pipeline.recognizer.classifier is old  # swapped on the inference side only
    _step(pipeline, 2)
    new = pipeline.recognizer.classifier
    assert new is not old and len(new.signature.states) == 67  # the A1 file
    assert pipeline.recognizer.config.model_name == "MoViNet-A1 stream int8"
    assert new.steps == 1  # a fresh stream
    assert "MoViNet-A1" in pipeline.current_message


def test_a_missing_model_keeps_the_old_one_and_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOVINET_PI_MODELS", os.pathsep.join(
        [str(shared / "models"), str(shared / "labels")]))  # A0 only
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    pipeline, controls = _running(_args())
    old = pipeline.recognizer.classifier
    pipeline.handle_key(ord("3"))
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    assert pipeline.recognizer.classifier is old
    assert "movinet-pi download a2" in pipeline.current_message
    assert "keeping the current model" in pipeline.current_message


def test_a_switch_looks_in_the_model_path_folder_first(
    monkeypatch: pytest.MonkeyPatch, shared: Path, tmp_path: Path
) -> None:
    """`--model-path FOLDER`: a switch finds the catalogue file there, as the start did
    (nowhere else holds A1 here)."""
    monkeypatch.setenv("MOVINET_PI_MODELS", os.pathsep.join(
        [str(shared / "models"), str(shared / "labels")]))  # A0 only
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    folder = shared / "models" / "untrained"
    pipeline, controls = _running(_args(model="a2", model_path=folder))
    assert len(pipeline.recognizer.classifier.signature.states) == 73  # A2, from the folder
    pipeline.handle_key(ord("2"))
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    new = pipeline.recognizer.classifier
    assert len(new.signature.states) == 67 and Path(new.model_path).parent == folder
    pipeline.handle_key(ord("1"))  # not in the folder: where the catalogue's files go
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    assert len(pipeline.recognizer.classifier.signature.states) == 43


def test_plus_adds_an_interpreter_thread_the_runtime_really_runs(catalogue: None) -> None:
    pipeline, controls = _running(_args(threads=1))
    _step(pipeline)
    before = _native_threads()
    pipeline.handle_key(ord("+"))
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    assert pipeline.recognizer.classifier.threads == 2
    state = pipeline.overlay_state(Frame(np.zeros((8, 8, 3), np.uint8), 0.0, 0))
    assert "2 threads" in status_line(state)
    # XNNPACK starts one worker thread per interpreter thread beyond the first: exactly one
    # new native thread works while the model steps (a native thread some other test left
    # behind may appear too, but it does not compute our steps)
    new = _native_threads() - before
    start = {tid: _cpu_ticks(tid) for tid in new}
    for i in range(300):
        _step(pipeline, i + 2)
    working = [tid for tid in new if _cpu_ticks(tid) > start[tid]]
    assert len(working) == 1, (new, working)


def test_threads_stay_within_the_machine(catalogue: None) -> None:
    pipeline, controls = _running(_args(threads=1))
    pipeline.handle_key(ord("-"))
    assert controls.loading is None
    assert "threads stay at 1 (1 to 2" in pipeline.current_message
    controls.set_threads(3)
    assert controls.loading is None


def test_terminal_commands_reach_the_same_actions(catalogue: None) -> None:
    pipeline, controls = _running(_args(threads=1))
    assert controls.handle_command("help") == COMMAND_HELP
    assert "unknown command 'dance'" in (controls.handle_command("dance") or "")
    assert controls.handle_command("") is None
    controls.handle_command("threads 2")
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    assert pipeline.recognizer.classifier.threads == 2
    controls.handle_command("a1")
    controls.loading.join(timeout=60)
    _step(pipeline)
    assert len(pipeline.recognizer.classifier.signature.states) == 67


def test_read_commands_stops_the_run_on_q() -> None:
    class FakeControls:
        def __init__(self) -> None:
            self.pipeline = type("P", (), {"stopped": False})()
            self.seen: list[str] = []

        def handle_command(self, line: str) -> str | None:
            self.seen.append(line.strip())
            if line.strip() == "q":
                self.pipeline.stopped = True
            return "help text" if line.strip() == "help" else None

    fake = FakeControls()
    replies: list[str] = []
    read_commands(fake, io.StringIO("help\nq\nnever read\n"), replies.append)  # type: ignore[arg-type]
    assert fake.seen == ["help", "q"] and replies == ["help text"]


def test_overlay_shows_threads_model_and_the_help_card(catalogue: None) -> None:
    pipeline, _ = _running(_args(threads=1))
    frame = Frame(np.full((480, 640, 3), 90, dtype=np.uint8), 0.0, 0)
    state = pipeline.overlay_state(frame)
    assert state.threads == 1 and state.model_name == "MoViNet-A0 stream int8"
    plain = pipeline.render(frame).copy()  # render() reuses its buffer
    pipeline.handle_key(ord("h"))
    with_help = pipeline.render(frame).copy()
    centre = (slice(200, 280), slice(200, 440))
    assert not np.array_equal(plain[centre], with_help[centre])
    pipeline.handle_key(ord("h"))
    assert np.array_equal(pipeline.render(frame)[centre], plain[centre])


def test_threads_after_a_switch_keep_the_switched_model(catalogue: None) -> None:
    pipeline, controls = _running(_args(threads=1))
    pipeline.handle_key(ord("2"))
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    pipeline.handle_key(ord("+"))
    controls.loading.join(timeout=60)
    _step(pipeline)
    clf = pipeline.recognizer.classifier
    assert clf.threads == 2 and len(clf.signature.states) == 67  # still A1, not the start's A0
    assert pipeline.recognizer.config.model_name == "MoViNet-A1 stream int8"


def test_terminal_bytes_that_are_not_text_end_commands_not_the_run() -> None:
    class Stopped:
        stopped = False

    class FakeControls:
        pipeline = Stopped()

        def handle_command(self, line: str) -> str | None:
            raise AssertionError("never reached")

    class BadTerminal(io.StringIO):
        def __iter__(self):  # type: ignore[override]
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    replies: list[str] = []
    read_commands(FakeControls(), BadTerminal(), replies.append)  # type: ignore[arg-type]
    assert len(replies) == 1 and "terminal commands stopped" in replies[0]


def test_quant_with_a_model_file_is_said_to_pick_the_switches_model(
    catalogue: None, a0_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--model-path FILE --quant float16`: the file is loaded as it is, and the run says so;
    --quant is not ignored, it picks what a switch loads (float16 A2, not downloaded here)."""
    args = _args(model_path=a0_model, quant="float16")
    load_classifier(args)  # as the run starts
    assert "--quant float16 only picks the catalogue model that keys 1/2/3 switch to" in (
        capsys.readouterr().err)
    pipeline, controls = _running(args)
    pipeline.handle_key(ord("3"))
    assert controls.loading is not None
    controls.loading.join(timeout=60)
    _step(pipeline)
    assert "float16" in pipeline.current_message and "download a2" in pipeline.current_message


def test_sighup_resets_the_stream_and_sigterm_stops_the_run() -> None:
    # `kill -HUP` on a service: the memory starts afresh, the run goes on.
    import signal
    import time

    from movinet_pi.controls import signals_stop

    calls: list[str] = []
    outer = signal.signal(signal.SIGHUP, lambda *args: calls.append("not ours"))
    try:
        with signals_stop(lambda: calls.append("stop"), lambda: calls.append("reset")):
            os.kill(os.getpid(), signal.SIGHUP)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # (handlers run between bytecodes of this thread)
    finally:
        signal.signal(signal.SIGHUP, outer)
    assert calls == ["reset", "stop"]


def test_a_second_switch_while_one_is_loading_is_refused(
        a0_model: Path, kinetics_labels: object) -> None:
    from movinet_pi.model.classifier import StreamingClassifier

    a0 = StreamingClassifier.from_file(a0_model, kinetics_labels, threads=1)  # type: ignore
    gate = threading.Event()
    asked: list[str | None] = []

    def loader(name: str | None, threads: int) -> tuple[StreamingClassifier, str]:
        asked.append(name)
        gate.wait(10)
        return a0, "A0"

    class NoFrames:
        live, name, fps, frame_size = True, "camera", 30.0, (64, 48)

        def read(self) -> None:
            return None

        def close(self) -> None:
            pass

    pipeline = Pipeline(NoFrames(), Recognizer(a0, RunConfig()))  # type: ignore[arg-type]
    controls = Controls(pipeline, loader, max_threads=2)
    pipeline.handle_key(ord("2"))
    pipeline.handle_key(ord("3"))
    assert "still loading" in pipeline.current_message
    gate.set()
    assert controls.loading is not None
    controls.loading.join(10)
    assert asked == ["a1"]
