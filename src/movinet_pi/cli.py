"""The ``movinet-pi`` command: argument parsing, subcommands, error reporting.

``movinet-pi [run options]`` runs the live classifier (``run`` is the default
subcommand); ``download``, ``info`` and ``bench`` are the others. Every error a
user can cause ends in one line on stderr and exit status 2 (usage and
configuration) or 1 (failures at run time); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import math
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NoReturn, Sequence, TypeVar

from movinet_pi import __version__
from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.model.catalogue import MODEL_FPS, MODEL_NAMES, QUANTS

if TYPE_CHECKING:  # imported for real where used: `--help` stays fast
    from movinet_pi.controls import Controls
    from movinet_pi.display.base import Display
    from movinet_pi.outputs.base import Sink
    from movinet_pi.pipeline import Pipeline
    from movinet_pi.sources.base import Source

PROG = "movinet-pi"
DEFAULT_THRESHOLD = 0.1
WEB_TOKEN_ENV = "MOVINET_PI_WEB_TOKEN"
DEFAULT_HISTORY_S = 2.0  # benchmarks/reaction.py: reacts in <= 2 s, no flicker
T = TypeVar("T", int, float)

DESCRIPTION = """\
Real-time action recognition on the Raspberry Pi camera: a streaming MoViNet
model (Kinetics-600, 600 actions) watches the camera at 5 frames a second and
the monitor shows the live picture with the most likely actions over it."""

EPILOG = """\
subcommands (give one first; `run` is the default):
  run         classify a camera, video file or stream (this help)
  download    fetch models and labels:     movinet-pi download a0 a1 a2
  info        describe a model file:       movinet-pi info MODEL.tflite
  bench       time each stage of a step:   movinet-pi bench --model a2
  eval        accuracy on labelled clips:  movinet-pi eval DIR --model-path M.tflite
  service     print a systemd unit:        movinet-pi service --print --display drm

examples:
  movinet-pi                                  Pi camera (or camera 0), MoViNet-A0, window
  movinet-pi --model a2 --top-k 3             the most accurate model, 3 lines
  movinet-pi --source clip.mp4 --headless --json   JSON lines as fast as possible
  movinet-pi --model-path mine.tflite --labels mine.txt   your fine-tuned model

keys in the window: 1/2/3 switch to A0/A1/A2, +/- change threads, r resets the
stream, h shows the keys, q or Esc quits. In a headless run, type the same as
commands into the terminal (a2, +, -, threads 3, r, q, help) and press Enter.
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line saying what to do (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# -- value parsers (argparse `type=`): each raises ArgumentTypeError with the fix ----------
def _number(
    text: str, convert: Callable[[str], T], expected: str, ok: Callable[[T], bool], rule: str
) -> T:
    """Parse a flag's number; the error says what was expected and what was given."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: v >= 1, "1 or more")


def positive_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 < v < math.inf, "more than 0")


def probability(text: str) -> float:
    return _number(text, float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def history_seconds(text: str) -> float:
    # NaN fails `v > 0`, 'inf' passes: no bound.
    return _number(text, float, "seconds or 'inf'", lambda v: v > 0,
                   "more than 0 seconds (or 'inf')")


def frame_size(text: str) -> tuple[int, int]:
    from movinet_pi.sources.open import parse_frame_size

    try:
        return parse_frame_size(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def non_negative_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 <= v < math.inf, "0 or more")


def mqtt_url(text: str) -> str:
    from movinet_pi.outputs.mqtt_target import parse_mqtt_url

    try:
        parse_mqtt_url(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None  # never echoes a password
    return text


def web_address(text: str) -> tuple[str, int]:
    from movinet_pi.outputs.web import parse_web_address

    try:
        return parse_web_address(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--web: ")) from None


def label_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


# -- parsers ----------------------------------------------------------------------------
def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="a0", type=str.lower, choices=MODEL_NAMES,
                   help="catalogue model: a0 (fastest), a1, a2 (most accurate) (default: a0)")
    g.add_argument("--quant", default="int8", type=str.lower, choices=QUANTS,
                   help="catalogue quantization (default: int8)")
    g.add_argument("--model-path", metavar="FILE", type=Path,
                   help="any streaming MoViNet .tflite, e.g. your fine-tuned model "
                   "(overrides --model)")
    g.add_argument("--labels", metavar="FILE", type=Path,
                   help="label file, one class a line in model order (default: the labels "
                   "inside the model, else the Kinetics-600 list)")
    g.add_argument("--threads", type=positive_int, metavar="N",
                   help="interpreter threads (default: all cores)")
    g.add_argument("--offline", action="store_true",
                   help="never download: fail if the model or labels are missing")


def build_run_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_model_options(p)

    g = p.add_argument_group("input")
    g.add_argument("--source", metavar="SRC",
                   help="`picamera`, a camera index (0), a video or GIF file, or an "
                   "rtsp/http URL (default: picamera if picamera2 is installed, else 0)")
    g.add_argument("--frame-size", type=frame_size, default=(640, 480), metavar="WxH",
                   help="camera picture size (default: 640x480)")
    g.add_argument("--camera-fps", type=positive_float, default=30.0, metavar="FPS",
                   help="camera frame rate to ask for (default: 30)")

    g = p.add_argument_group("predictions")
    g.add_argument("--top-k", type=positive_int, default=3, metavar="K",
                   help="how many actions to show (default: 3)")
    g.add_argument("--threshold", type=probability, default=DEFAULT_THRESHOLD, metavar="P",
                   help="show an action once its probability reaches P, 0..1; with nothing "
                   f"above it the overlay says 'no action' (default: {DEFAULT_THRESHOLD})")
    g.add_argument("--leave-threshold", type=probability, default=None, metavar="P",
                   help="keep showing an action until it falls below P; this gap stops "
                   "labels blinking (default: half of --threshold)")
    g.add_argument("--allow", type=label_list, default=[], metavar="LABELS",
                   help="only report these labels (comma-separated)")
    g.add_argument("--deny", type=label_list, default=[], metavar="LABELS",
                   help="never report these labels (comma-separated)")
    g.add_argument("--history", type=history_seconds, default=DEFAULT_HISTORY_S,
                   metavar="SECONDS",
                   help="how far back the model's memory reaches on an endless stream; "
                   "'inf' averages everything since the start, as the model was exported, "
                   f"and reacts ever more slowly (default: {DEFAULT_HISTORY_S:g})")

    g = p.add_argument_group("output")
    g.add_argument("--display", default="auto", choices=("auto", "window", "drm", "none"),
                   help="where to show the picture (default: auto: $DISPLAY, else the Pi's "
                   "desktop, else the Pi camera's DRM preview on HDMI, else headless)")
    g.add_argument("--headless", action="store_true",
                   help="no window (same as --display none); files run as fast as possible")
    g.add_argument("--mirror", action="store_true", help="flip the picture left-right")
    stdout = g.add_mutually_exclusive_group()
    stdout.add_argument("--json", action="store_true",
                        help="print one JSON object per model step on stdout")
    stdout.add_argument("--events", action="store_true",
                        help="print one JSON line per action event instead: start, update "
                        "(at most once a second) and end, with duration, peak and mean score")

    g = p.add_argument_group("network and recording (all off unless asked for)")
    g.add_argument("--mqtt", metavar="URL", type=mqtt_url,
                   help="publish events, state and availability to an MQTT broker: "
                   "mqtt://[user@]host[:port]/prefix (password from "
                   "$MOVINET_PI_MQTT_PASSWORD or $MOVINET_PI_MQTT_PASSWORD_FILE, never a flag)")
    g.add_argument("--web", metavar="[HOST:]PORT", type=web_address,
                   help="serve a page with the live picture, the actions and recent events "
                   "(host 127.0.0.1 unless given: --web 0.0.0.0:8080 for the network)")
    g.add_argument("--web-token", metavar="TOKEN", default=os.environ.get(WEB_TOKEN_ENV),
                   help="require ?token=TOKEN (or a Bearer header) for every web request "
                   f"(default: ${WEB_TOKEN_ENV}; the variable keeps it out of `ps` and "
                   "service units)")
    g.add_argument("--record", metavar="DIR", type=Path,
                   help="save an MP4 clip (overlay burned in) and a JSON sidecar of each "
                   "action event into DIR")
    g.add_argument("--record-labels", type=label_list, default=[], metavar="LABELS",
                   help="only record these actions (comma-separated; default: any event)")
    g.add_argument("--pre-seconds", type=non_negative_float, default=3.0, metavar="S",
                   help="seconds of picture before an event to keep in its clip (default: 3)")
    g.add_argument("--post-seconds", type=non_negative_float, default=2.0, metavar="S",
                   help="seconds after an event ends to keep recording (default: 2)")
    g.add_argument("--record-max-mb", type=positive_float, metavar="MB",
                   help="keep the clips under this size, deleting the oldest first")

    g = p.add_argument_group("diagnostics")
    g.add_argument("-v", "--verbose", action="store_true",
                   help="say more: model details, startup time, a summary at the end")
    g.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def build_download_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} download",
                      description="Download MoViNet stream models (Kinetics-600) "
                      "and the label map.")
    p.add_argument("models", nargs="*", default=["a0"], type=str.lower,
                   help="a0, a1 and/or a2 (default: a0)")
    p.add_argument("--quant", default="int8", type=str.lower, choices=QUANTS,
                   help="quantization (default: int8)")
    p.add_argument("--dir", type=Path, metavar="DIR",
                   help="where to put them (default: ~/.cache/movinet-pi)")
    p.add_argument("--force", action="store_true", help="download again even if present")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def build_info_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} info",
                      description="Describe a streaming MoViNet .tflite: input, classes, states, "
                      "labels, runtime.")
    p.add_argument("model", type=Path, help="the .tflite file")
    p.add_argument("--labels", type=Path, metavar="FILE", help="label file to check against it")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def build_bench_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} bench",
                      description="Time a model's stream steps stage by stage (capture, "
                      "preprocess, invoke, state carry, overlay) and compare our step with a "
                      "bare interpreter.invoke() on the same model file. (Ours runs int8 "
                      "models with their stream states and image as int8 where that is "
                      "exact: `movinet-pi info` says which.)")
    _add_model_options(p)
    p.add_argument("--steps", type=positive_int, default=200, metavar="N",
                   help="timed steps (default: 200, after 10 untimed)")
    p.add_argument("--source", type=Path, metavar="FILE",
                   help="video file to take frames from, looped (default: synthetic frames)")
    p.add_argument("--frame-size", type=frame_size, default=(640, 480), metavar="WxH",
                   help="size of the synthetic frames (default: 640x480, the camera's)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (steps, invoke_ms_p50, step_ms_p50, "
                   "overhead_pct, per-stage p50/p99)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def build_eval_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} eval",
                      description="Accuracy of streaming MoViNet models on a folder of labelled "
                      "clips, DIR/<label>/clip.mp4 (case, '_' and spaces in folder names do not "
                      "matter). Each clip is streamed from fresh states at 5 fps; its prediction "
                      "is the one after its last step.")
    p.add_argument("clip_dir", type=Path, metavar="DIR",
                   help="folder with one sub-folder of clips per class, named after its label")
    p.add_argument("--model-path", dest="model_paths", action="append", type=Path,
                   metavar="FILE", required=True,
                   help="a streaming MoViNet .tflite; repeat it to compare models side by side")
    p.add_argument("--labels", type=Path, metavar="FILE",
                   help="label file, one class a line in model order (default: the labels "
                   "inside the model, else the Kinetics-600 map for 600 classes)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="interpreter threads (default: all cores)")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="also draw the confusion matrices into this .png")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per model (JSON lines) instead of the table")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


# -- commands ---------------------------------------------------------------------------
def resolve_model(args: argparse.Namespace) -> tuple[Path, str]:
    """The model file to load and the name to show for it."""
    from movinet_pi.model.catalogue import find_model, get_spec

    if args.model_path is not None:
        if not args.model_path.exists():
            raise MovinetPiError(f"model file not found: {args.model_path}")
        return args.model_path, args.model_path.stem
    spec = get_spec(args.model, args.quant)
    try:
        return find_model(spec), spec.title
    except MovinetPiError:
        if args.offline:
            raise
    from movinet_pi.model.download import download_models

    say(f"{spec.title} is not downloaded yet: fetching it once (use --offline to never download)")
    download_models([spec.name], spec.quant, None, progress=True)
    return find_model(spec), spec.title


def load_classifier(args: argparse.Namespace, history_s: float = math.inf):
    """The classifier the flags ask for, and the name to show for its model. A catalogue
    model's Kinetics-600 labels are downloaded if missing, unless ``--offline``."""
    from movinet_pi.model.classifier import StreamingClassifier
    from movinet_pi.model.download import download_labels
    from movinet_pi.model.history import history_policy
    from movinet_pi.model.runtime import default_threads

    model_path, title = resolve_model(args)
    threads = args.threads or default_threads()
    may_download = getattr(args, "model_path", None) is None and not args.offline
    clf = StreamingClassifier.load(
        model_path, threads, args.labels, history=history_policy(history_s, MODEL_FPS),
        download_labels=(lambda: download_labels(None, progress=True)) if may_download else None,
        # A live switch loads while other threads log: never silence the process's stderr then.
        quiet=getattr(args, "quiet", True))
    return clf, title


def make_loader(args: argparse.Namespace) -> Callable[..., tuple]:
    """How a live switch (keys 1/2/3, +/-) loads a model: as at start, but never
    downloading (that would stall the switch); a missing model says what to run."""

    def load(name: str | None, threads: int) -> tuple:
        overrides: dict[str, object] = {"threads": threads, "offline": True, "quiet": False}
        if name is not None:  # a catalogue model: its own (Kinetics) labels
            overrides.update(model=name, model_path=None, labels=None)
        return load_classifier(argparse.Namespace(**{**vars(args), **overrides}), args.history)

    return load


def start_terminal_controls(controls: Controls) -> None:
    """Read commands typed into the terminal (a headless run over SSH has no keys)."""
    import threading

    from movinet_pi.controls import COMMAND_HELP, read_commands

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


def open_display(args: argparse.Namespace, source: Source) -> Display | None:
    """The display ``--display`` asks for, saying in one line which and why."""
    from movinet_pi.display.drm import DrmDisplay
    from movinet_pi.display.select import choose_display
    from movinet_pi.display.window import WindowDisplay
    from movinet_pi.sources.picamera import PicameraSource

    mode = "none" if args.headless else args.display
    picamera = isinstance(source, PicameraSource)
    choice = choose_display(mode, picamera=picamera)
    os.environ.update(choice.env)
    if choice.kind == "window":
        say(f"display: {choice.reason}")
        return WindowDisplay()
    if choice.kind == "drm":
        try:
            display = DrmDisplay(source, source.frame_size)
        except MovinetPiError as e:
            if mode == "drm":
                raise
            say(f"display: {e}; running headless")
            return None
        say(f"display: {choice.reason}")
        return display
    if mode == "auto":
        say(f"display: {choice.reason}")
    return None


def build_outputs(args: argparse.Namespace, title: str) -> list[Sink]:
    """Every output asked for, opened now so a bad one is refused before the camera opens."""
    from movinet_pi.outputs.jsonlines import EventsSink, HumanSink, JsonLinesSink

    sinks: list[Sink] = []
    try:
        if args.events:
            sinks.append(EventsSink())
        elif args.json:
            sinks.append(JsonLinesSink())
        else:
            sinks.append(HumanSink())
        if args.mqtt:
            from movinet_pi.outputs.mqtt import MqttSink

            sinks.append(MqttSink.from_url(args.mqtt, log=say))
        if args.web is not None:
            from movinet_pi.outputs.web import WebSink

            host, port = args.web
            web = WebSink(host, port, token=args.web_token, model_name=title, log=say)
            say(f"web: {web.url}")
            sinks.append(web)
        if args.record is not None:
            from movinet_pi.outputs.recording import ClipRecorder

            sinks.append(ClipRecorder(args.record, labels=args.record_labels or None,
                                      pre_seconds=args.pre_seconds,
                                      post_seconds=args.post_seconds,
                                      max_mb=args.record_max_mb, log=say))
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def close_all(sinks: Sequence[Sink]) -> None:
    for sink in sinks:
        with contextlib.suppress(Exception):
            sink.close()


def command_run(args: argparse.Namespace) -> int:
    from movinet_pi.controls import Controls
    from movinet_pi.display.shown import LabelFilter
    from movinet_pi.pipeline import Pipeline, Recognizer, RunConfig
    from movinet_pi.sources.open import open_source

    started = time.monotonic()
    log = say if args.verbose else (lambda message: None)
    clf, title = load_classifier(args, args.history)
    if args.top_k > clf.num_classes:
        raise MovinetPiError(
            f"--top-k {args.top_k} is more than the model's {clf.num_classes} classes"
        )
    label_filter = LabelFilter(clf.labels, args.allow, args.deny)
    log(f"model {title}: {Path(clf.model_path).name}, input {clf.input_size[0]}x"
        f"{clf.input_size[1]}, {clf.num_classes} classes, {len(clf.signature.states)} states, "
        f"{clf.runtime_name}, {clf.threads} threads; labels {clf.labels.source}")

    sinks = build_outputs(args, title)
    source: Source | None = None
    display: Display | None = None
    pipeline: Pipeline | None = None
    try:
        source = open_source(args.source, frame_size=args.frame_size, fps=args.camera_fps)
        display = open_display(args, source)
        config = RunConfig(top_k=args.top_k, threshold=args.threshold,
                           leave_threshold=args.leave_threshold, label_filter=label_filter,
                           model_fps=MODEL_FPS, mirror=args.mirror,
                           realtime=display is not None, model_name=title)
        pipeline = Pipeline(source, Recognizer(clf, config, sinks), display, log=say)
        start_terminal_controls(Controls(pipeline, make_loader(args)))
        log(f"source {source.name}: {source.frame_size[0]}x{source.frame_size[1]}"
            + (f" at {source.fps:.1f} fps" if source.fps else ""))
        with signals_stop(pipeline.stop, pipeline.reset):
            stats = pipeline.run()  # closes the sinks and the display, whatever happens
    finally:
        if pipeline is None:  # failed before the run: close what was opened
            close_all(sinks)
            if display is not None:
                with contextlib.suppress(Exception):
                    display.close()
        if source is not None:
            if pipeline is not None and pipeline.capture_alive:
                say(f"{source.name} is stuck in a read: leaving it to the system to release")
            else:
                source.close()
    if args.verbose:
        first = stats.first_prediction_s
        first_s = (
            f"{first + (pipeline._started - started):.2f} s" if first is not None else "none"
        )
        log(f"done: {stats.frames_read} frames read, {stats.frames_shown} shown, "
            f"{stats.steps} model steps ({stats.steps_skipped} skipped), "
            f"first prediction after {first_s}")
    return 0


def command_download(args: argparse.Namespace) -> int:
    from movinet_pi.model.catalogue import get_spec
    from movinet_pi.model.download import download_models

    for name in args.models:
        get_spec(name, args.quant)  # refuse unknown names before fetching anything
    download_models(args.models, args.quant, args.dir, progress=True, force=args.force)
    return 0


def command_info(args: argparse.Namespace) -> int:
    import json

    from movinet_pi.info import describe_model, format_info

    info = describe_model(args.model, args.labels)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


def command_bench(args: argparse.Namespace) -> int:
    from movinet_pi.bench import file_frames, print_result, run_bench, synthetic_frames
    from movinet_pi.model.runtime import load_interpreter

    if args.source is not None and not args.source.is_file():
        raise MovinetPiError(f"video file not found: {args.source}")
    clf, title = load_classifier(args)
    bare, _ = load_interpreter(clf.model_path, clf.threads)
    if args.source is not None:
        frames, source_name = file_frames(args.source), args.source.name
    else:
        frames, source_name = synthetic_frames(args.frame_size), "synthetic frames"
    result = run_bench(clf, bare, frames, steps=args.steps, model_name=title,
                       source_name=source_name)
    if result.steps < args.steps:
        raise MovinetPiError(f"{source_name} has no frames to read", exit_code=1)
    print_result(result, args.json, sys.stdout)
    return 0


def command_eval(args: argparse.Namespace) -> int:
    from movinet_pi.evaluate import run_eval

    return run_eval(args.clip_dir, args.model_paths, args.labels, threads=args.threads,
                    plot=args.plot, as_json=args.json, out=sys.stdout, progress=True)


COMMANDS: dict[str, tuple[Callable[[], argparse.ArgumentParser], Callable[..., int]]] = {
    "run": (build_run_parser, command_run),
    "download": (build_download_parser, command_download),
    "info": (build_info_parser, command_info),
    "bench": (build_bench_parser, command_bench),
    "eval": (build_eval_parser, command_eval),
}


SERVICE_USAGE = f"""usage: {PROG} service --print [--user-unit] [run options]

Print a systemd unit that runs `{PROG}` with the given run options, as you, from
this folder, restarting it on failure. Install it with:
  {PROG} service --print --display drm | sudo tee /etc/systemd/system/{PROG}.service
  sudo systemctl daemon-reload && sudo systemctl enable --now {PROG}
  journalctl -u {PROG} -f
--user-unit prints a user unit instead (~/.config/systemd/user/, no sudo).
"""


def command_service(argv: list[str]) -> int:
    from movinet_pi.service import (
        current_executable,
        install_hint,
        invoking_user,
        run_args,
        systemd_unit,
    )

    if "-h" in argv or "--help" in argv:
        sys.stdout.write(SERVICE_USAGE)
        return 0
    if "--print" not in argv:
        say("error: `service` needs --print (it prints a unit, it installs nothing): "
            f"{PROG} service --print [run options]")
        return 2
    run = run_args(argv)
    args = build_run_parser(f"{PROG} service --print").parse_args(run)  # refuse bad flags
    try:
        user_unit = "--user-unit" in argv
        sys.stdout.write(systemd_unit(argv, user=invoking_user(), executable=current_executable(),
                                      workdir=os.getcwd(), env=os.environ, user_unit=user_unit))
        if sys.stdout.isatty():
            say(install_hint(user_unit))
    except MovinetPiError as e:
        if args.debug:
            traceback.print_exc()
        say(f"error: {e}")
        return e.exit_code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "service":
        return command_service(argv[1:])
    name = argv[0] if argv and argv[0] in COMMANDS else "run"
    if argv and argv[0] == name:
        argv = argv[1:]
    build, command = COMMANDS[name]
    parser = build() if name != "run" else build_run_parser()
    args = parser.parse_args(argv)
    try:
        return command(args)
    except MovinetPiError as e:
        if args.debug:
            traceback.print_exc()
        say(f"error: {e}")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `movinet-pi --json | head`: the reader has gone, so do we
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return 0
    except OSError as e:
        if args.debug:
            traceback.print_exc()
        if e.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            say(f"error: cannot write: {e.strerror} ({e.filename or 'output'}): "
                "free some space or choose another place")
            return 1
        say(f"unexpected error: {type(e).__name__}: {e} (run with --debug for details)")
        return 1
    except Exception as e:  # a bug or an unforeseen failure: still one line by default
        if args.debug:
            traceback.print_exc()
        say(f"unexpected error: {type(e).__name__}: {e} (run with --debug for details)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
