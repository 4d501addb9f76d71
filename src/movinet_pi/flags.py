"""The command line's flags: every subcommand's parser and its help texts.

Each value check (an argparse ``type=``, :mod:`movinet_pi.flag_values`) turns a bad
value into one line that says what was expected; :class:`OneLineParser` makes every
usage error one line too (:mod:`movinet_pi.parser`).
Nothing here imports more than the catalogue: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from movinet_pi.flag_values import (
    frame_size,
    ha_prefix,
    history_spec,
    label_list,
    mqtt_url,
    non_negative_float,
    positive_float,
    positive_int,
    probability,
    roi,
    take_seconds,
    thread_count,
    web_address,
)
from movinet_pi.log import PROG
from movinet_pi.model.catalogue import MODEL_NAMES, QUANTS
from movinet_pi.parser import OneLineParser
from movinet_pi.version import __version__

DEFAULT_THRESHOLD = 0.1
DEFAULT_TOP_K = 3  # actions shown
DEFAULT_FRAME_SIZE, DEFAULT_CAMERA_FPS = (640, 480), 30.0  # what a camera is asked for
DEFAULT_EVENT_MIN_S = 1.0  # no published event is shorter (issue #29: noise at the start)
WEB_TOKEN_ENV = "MOVINET_PI_WEB_TOKEN"
DEFAULT_HISTORY = "auto"  # benchmarks/reaction.py and the README's "Live fidelity"

DESCRIPTION = """\
Real-time action recognition on the Raspberry Pi camera: a streaming MoViNet
model (Kinetics-600, 600 actions) watches the camera at 5 frames a second and
the monitor shows the live picture with the most likely actions over it."""

EPILOG = """\
subcommands (give one first; `run` is the default):
  run         classify a camera, video file or stream (this help)
  download    fetch models and labels:     movinet-pi download a0 a1 a2
  info        describe a model file:       movinet-pi info MODEL.tflite (or --model a2)
  bench       time each stage of a step:   movinet-pi bench --model a2
  eval        accuracy on labelled clips:  movinet-pi eval DIR --model-path M.tflite
  teach       new actions from your clips: movinet-pi teach DIR -o mine.tflite
  service     print a systemd unit:        movinet-pi service --print --display drm
  ha-remove   remove it from Home Assistant: movinet-pi ha-remove --mqtt URL

examples:
  movinet-pi                                  Pi camera (or camera 0), MoViNet-A0, window
  movinet-pi --model a2 --top-k 3             the most accurate model, 3 lines
  movinet-pi clip.mp4                         a video file (or /dev/video1, rtsp://...)
  movinet-pi clip.mp4 --headless --json       JSON lines as fast as possible
  movinet-pi clip.mp4 --web 8080 --loop       no screen: watch in a browser
  movinet-pi --model-path mine.tflite --labels mine.txt   your fine-tuned model

keys in the window: 1/2/3 switch to A0/A1/A2, +/- change threads, r resets the
stream, h shows the keys, q or Esc quits. In a headless run, type the same as
commands into the terminal (a2, +, -, threads 3, r, q, help) and press Enter.
"""


# -- value parsers (argparse `type=`): each raises ArgumentTypeError with the fix ----------
def _add_history_option(g: argparse._ActionsContainer) -> None:
    g.add_argument("--history", type=history_spec, default=DEFAULT_HISTORY,
                   metavar="auto|SECONDS|inf",
                   help="how far back the model's memory reaches on an endless stream: "
                   "'auto' remembers up to 30 s and starts afresh when the action changes "
                   "(the model's own answer decides, not a new camera angle); SECONDS is a "
                   "moving average over about that long; 'inf' averages everything "
                   "since the start, as the model was exported, and reacts ever more slowly "
                   f"(default: {DEFAULT_HISTORY})")


def _add_roi_option(g: argparse._ActionsContainer) -> None:
    g.add_argument("--roi", type=roi, metavar="X,Y,W,H|auto",
                   help="the model reads only this part of the picture: fractions of its "
                   "width and height, as rpicam-apps --roi (0.25,0.25,0.5,0.5 is the middle "
                   "quarter); 'auto' follows where the action is (motion), and the whole "
                   "picture when nothing moves (default: the whole picture)")


def _add_ha_options(g: argparse._ActionsContainer) -> None:
    """Home Assistant discovery (--ha-discovery, --ha-prefix, --name)."""
    g.add_argument("--ha-discovery", action=argparse.BooleanOptionalAction, default=True,
                   help="with --mqtt: announce this Pi to Home Assistant (MQTT discovery): "
                   "the action, action events, inference time, model rate, CPU temperature "
                   "and throttling (default: on)")
    g.add_argument("--ha-prefix", type=ha_prefix, default="homeassistant", metavar="PREFIX",
                   help="Home Assistant's discovery prefix (default: homeassistant)")
    g.add_argument("--name", metavar="NAME",
                   help="this device's name in Home Assistant (default: movinet-pi <host>)")


def _add_model_options(p: argparse.ArgumentParser, labels: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="a0", type=str.lower, choices=MODEL_NAMES,
                   help="catalogue model: a0 (fastest), a1, a2 (most accurate) (default: a0)")
    g.add_argument("--quant", default="int8", type=str.lower, choices=QUANTS,
                   help="catalogue quantization (default: int8)")
    g.add_argument("--model-path", metavar="FILE", type=Path,
                   help="any streaming MoViNet .tflite, e.g. your fine-tuned model, or a "
                   "folder holding the catalogue's files (overrides --model)")
    g.add_argument("--labels", metavar="FILE", type=Path,
                   help="label file, one class a line in model order (default: the labels "
                   "inside the model, else the Kinetics-600 list)" if labels
                   else argparse.SUPPRESS)  # (still taken, to say why it does not apply)
    _add_threads_option(g)
    _add_offline_option(g)


def _add_threads_option(p: argparse._ActionsContainer) -> None:
    p.add_argument("--threads", type=thread_count, metavar="N",
                   help="interpreter threads, up to the number of cores (default: all cores)")


def _add_offline_option(p: argparse._ActionsContainer) -> None:
    p.add_argument("--offline", action="store_true",
                   help="never download: fail if the model or labels are missing")


SPEEDS = ("auto", "1", "max")
DEFAULT_PRE_S, DEFAULT_POST_S = 3.0, 2.0  # --record's seconds around an event


def build_run_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_model_options(p)

    g = p.add_argument_group("input")
    g.add_argument("source_arg", nargs="?", metavar="SOURCE",
                   help="what to classify, as --source takes it: `movinet-pi clip.mp4`, "
                   "`movinet-pi /dev/video1`, `movinet-pi rtsp://cam/stream`")
    g.add_argument("--source", metavar="SRC",
                   help="`picamera`, a camera index (0) or /dev/videoN, a video or GIF file, "
                   "or an rtsp/http URL (default: picamera if picamera2 is installed, else 0)")
    g.add_argument("--frame-size", type=frame_size, default=DEFAULT_FRAME_SIZE, metavar="WxH",
                   help="camera picture size (default: 640x480)")
    g.add_argument("--camera-fps", type=positive_float, default=DEFAULT_CAMERA_FPS,
                   metavar="FPS",
                   help="camera frame rate to ask for (default: 30)")
    g.add_argument("--speed", default="auto", type=str.lower, choices=SPEEDS,
                   help="how fast to play a file: 1 = its own speed, max = as fast as "
                   "possible (headless, every model step is taken; with a window the model "
                   "keeps up as with a camera, and skips steps when behind) (default: auto: "
                   "its own speed with a window, --web, --mqtt or --loop, else max)")
    g.add_argument("--loop", action="store_true",
                   help="play a file again and again (until q, Ctrl-C or `kill`)")
    _add_roi_option(g)

    g = p.add_argument_group("predictions")
    g.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help=f"how many actions to show (default: {DEFAULT_TOP_K}, or all of a "
                   "taught model's classes if it has fewer)")
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
    _add_history_option(g)

    g = p.add_argument_group("output")
    g.add_argument("--display", default="auto",
                   choices=("auto", "window", "qtgl", "drm", "none"),
                   help="where to show the picture (default: auto: $DISPLAY, else the Pi's "
                   "desktop, else the Pi camera's DRM preview on HDMI, else headless; the Pi "
                   "camera in a desktop: its QTGL preview, else an OpenCV window)")
    g.add_argument("--headless", action="store_true",
                   help="no window (same as --display none); a file runs as fast as possible "
                   "unless --loop, --web or --mqtt play it at its own speed (see --speed)")
    g.add_argument("--window-size", type=frame_size, metavar="WxH",
                   help="show the picture scaled to fit WxH (the window; the screen area of "
                   "the Pi camera's previews) (default: what fits the screen it opens on)")
    g.add_argument("--mirror", action="store_true", help="flip the picture left-right")
    g.add_argument("--exit-at-end", action="store_true",
                   help="close the window when a file ends (default: keep its last picture "
                   "up until q or Esc is pressed)")
    stdout = g.add_mutually_exclusive_group()
    stdout.add_argument("--json", action="store_true",
                        help="print one JSON object per model step on stdout")
    stdout.add_argument("--events", action="store_true",
                        help="print one JSON line per action event instead: start, update "
                        "(at most once a second) and end, with duration, peak and mean score")
    g.add_argument("--event-min-s", type=non_negative_float, default=DEFAULT_EVENT_MIN_S,
                   metavar="S",
                   help="an action event (--events, --mqtt, Home Assistant, --web, --record) "
                   "starts only once the action has been shown S seconds, dated back to when "
                   "it appeared; the stream's first second counts toward nothing; 0: every "
                   f"action shown, at once (default: {DEFAULT_EVENT_MIN_S:g})")

    g = p.add_argument_group("network and recording (all off unless asked for)")
    g.add_argument("--mqtt", metavar="URL", type=mqtt_url,
                   help="publish events, state and availability to an MQTT broker: "
                   "mqtt://[user@]host[:port]/prefix (password from "
                   "$MOVINET_PI_MQTT_PASSWORD or $MOVINET_PI_MQTT_PASSWORD_FILE, never a flag)")
    g.add_argument("--mqtt-ca", metavar="FILE", type=Path,
                   help="with mqtts://: trust the broker's certificate if FILE (PEM) signed "
                   "it, e.g. your own CA (default: the system's CAs)")
    _add_ha_options(g)
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
    g.add_argument("--pre-seconds", type=non_negative_float, default=DEFAULT_PRE_S, metavar="S",
                   help="seconds of picture before an event to keep in its clip (default: 3)")
    g.add_argument("--post-seconds", type=non_negative_float, default=DEFAULT_POST_S,
                   metavar="S",
                   help="seconds after an event ends to keep recording (default: 2)")
    g.add_argument("--record-max-mb", type=positive_float, metavar="MB",
                   help="keep the folder's clips under this size: the oldest are deleted, and a "
                   "long event goes on in a new clip at half of it")

    g = p.add_argument_group("diagnostics")
    g.add_argument("-v", "--verbose", action="store_true",
                   help="say more: model details, startup time, a fuller summary at the end")
    g.add_argument("--debug", action="store_true",
                   help="show tracebacks on errors, and OpenCV's and FFmpeg's own warnings")
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
    p.add_argument("model", type=Path, nargs="?",
                   help="the .tflite file, or a folder of the catalogue's files (or give --model)")
    p.add_argument("--model-path", type=Path, metavar="FILE",
                   help="the same as FILE, as the other commands take it")
    p.add_argument("--model", dest="catalogue_model", type=str.lower, choices=MODEL_NAMES,
                   help="a catalogue model instead of a file: a0, a1 or a2")
    p.add_argument("--quant", default="int8", type=str.lower, choices=QUANTS,
                   help="catalogue quantization with --model (default: int8)")
    p.add_argument("--labels", type=Path, metavar="FILE", help="label file to check against it")
    _add_offline_option(p)
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
    _add_history_option(p)
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
                   metavar="FILE", default=[],
                   help="a streaming MoViNet .tflite (or a folder of the catalogue's files); "
                   "repeat it to compare models side by side")
    p.add_argument("--model", dest="models", action="append", type=str.lower,
                   choices=MODEL_NAMES, default=[],
                   help="a catalogue model (a0, a1, a2), as in `run`; may be repeated and "
                   "mixed with --model-path")
    p.add_argument("--quant", default="int8", type=str.lower, choices=QUANTS,
                   help="catalogue quantization for --model (default: int8)")
    _add_offline_option(p)
    p.add_argument("--labels", type=Path, metavar="FILE",
                   help="label file, one class a line in model order (default: the labels "
                   "inside the model, else the Kinetics-600 map for 600 classes)")
    _add_threads_option(p)
    _add_history_option(p)
    _add_roi_option(p)
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="also draw the confusion matrices into this .png")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per model (JSON lines) instead of the table")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def build_teach_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} teach",
                      description="Teach the model new actions from a few clips, on this "
                      "machine, without TensorFlow: DIR/<new label>/clip.mp4, two classes or "
                      "more. Writes one .tflite (the base model with the taught head and labels "
                      "appended) that runs wherever the base model runs.")
    p.add_argument("clip_dir", type=Path, metavar="DIR",
                   help="folder with one sub-folder of clips per new class, named after it")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="the taught model to write, e.g. mine.tflite")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--reject", action="store_true",
                   help="the taught model answers nothing (\"no action\") when its best class "
                   "scores below the threshold cross-validation found")
    g = p.add_argument_group("recording examples (instead of teaching)")
    g.add_argument("--record", metavar="LABEL",
                   help="record one clip of LABEL from the camera into DIR/LABEL/, after a "
                   "countdown, and stop (run it a few times per action, then teach); from a "
                   "--source file, each take is the next stretch of it")
    g.add_argument("--seconds", type=take_seconds, metavar="S",
                   help="how long --record records (default: 8, at least 2)")
    g.add_argument("--countdown", type=int, metavar="N",
                   help="seconds counted down before --record starts from a camera "
                   "(default: 3)")
    g.add_argument("--source", metavar="SRC",
                   help="what --record records: as for a run (default: the camera)")
    _add_model_options(p, labels=False)  # teach's labels are its folders' names
    _add_history_option(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def build_ha_remove_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"{PROG} ha-remove",
                      description="Remove this Pi's device from Home Assistant: empty its "
                      "retained MQTT discovery config (and its retained diagnostics).")
    p.add_argument("--mqtt", metavar="URL", type=mqtt_url, required=True,
                   help="the broker, as for a run: mqtt://[user@]host[:port]/prefix")
    p.add_argument("--mqtt-ca", metavar="FILE", type=Path,
                   help="with mqtts://: trust the broker's certificate if FILE signed it")
    p.add_argument("--ha-prefix", type=ha_prefix, default="homeassistant", metavar="PREFIX",
                   help="Home Assistant's discovery prefix (default: homeassistant)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


SERVICE_USAGE = f"""usage: {PROG} service --print [--user-unit] [run options]

Print a systemd unit that runs `{PROG}` with the given run options, as you, from
this folder, restarting it on failure. Install it with:
  {PROG} service --print --display drm | sudo tee /etc/systemd/system/{PROG}.service
  sudo systemctl daemon-reload && sudo systemctl enable --now {PROG}
  journalctl -u {PROG} -f
--user-unit prints a user unit instead (~/.config/systemd/user/, no sudo).
"""
