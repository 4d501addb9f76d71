"""The subcommands besides the run: download, info, bench, eval, teach, ha-remove.

Each takes its parsed flags (:mod:`movinet_pi.flags`) and returns the exit status;
errors are :class:`~movinet_pi.errors.MovinetPiError`, reported by :mod:`movinet_pi.cli`.
:func:`opencv_without_workers` is how the run and ``bench`` both call OpenCV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from movinet_pi.errors import MovinetPiError
from movinet_pi.loading import catalogue_model, load_classifier, model_file, resolve_model
from movinet_pi.log import say


def command_download(args: argparse.Namespace) -> int:
    from movinet_pi.model.catalogue import get_spec
    from movinet_pi.model.download import download_models

    for name in args.models:
        get_spec(name, args.quant)  # refuse unknown names before fetching anything
    download_models(args.models, args.quant, args.dir, progress=True, force=args.force)
    return 0


def command_info(args: argparse.Namespace) -> int:
    import json

    from movinet_pi.tools.info import describe_model, format_info

    given = [flag for flag, value in (("a file", args.model), ("--model-path", args.model_path),
                                      ("--model", args.catalogue_model)) if value is not None]
    if len(given) != 1:
        how = "give one model" if given else "give a model"
        raise MovinetPiError(f"{how}: `movinet-pi info FILE.tflite` (or --model-path FILE) or "
                             "`movinet-pi info --model a0|a1|a2`"
                             + (f", not {' and '.join(given)}" if given else ""))
    if args.catalogue_model is not None:
        path, _ = catalogue_model(args.catalogue_model, args.quant, offline=args.offline)
    else:
        path = model_file(args.model or args.model_path, quant=args.quant)
    info = describe_model(path, args.labels)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


def opencv_without_workers() -> None:
    """Run OpenCV's operations on the thread that calls them, not on its worker pool.

    A run calls OpenCV for small jobs many times a second (the overlay's blend, a
    frame's copy or resize, the model's input) from threads of its own. The pool's
    workers cost about 0.2 ms of CPU a call (waking, spinning for more work) whatever
    its size, more than splitting such a job saves: on 2 cores, 0.6 ms of a windowed
    frame's 2.7. The results are the same either way."""
    import cv2

    cv2.setNumThreads(0)  # 0: every function runs sequentially, in its caller


def command_bench(args: argparse.Namespace) -> int:
    from movinet_pi.model.runtime import load_interpreter
    from movinet_pi.sources.opencv import check_video_file
    from movinet_pi.tools.bench import file_frames, print_result, run_bench, synthetic_frames

    if args.source is not None:
        if not args.source.exists():
            raise MovinetPiError(f"video file not found: {args.source} (bench reads a video "
                                 "file, or synthetic frames without --source; not a camera)")
        check_video_file(args.source)  # a folder, an empty or a text file
    opencv_without_workers()  # as a run calls it: the stages time what a run spends
    clf, title = load_classifier(args)
    bare, _ = load_interpreter(clf.model_path, clf.threads)
    if args.source is not None:
        frames, source_name = file_frames(args.source), args.source.name
    else:
        frames, source_name = synthetic_frames(args.frame_size), "synthetic frames"
    say_health("at the start")  # (stderr: --json stays one object on stdout)
    result = run_bench(clf, bare, frames, steps=args.steps, model_name=title,
                       source_name=source_name)
    if result.steps < args.steps:
        raise MovinetPiError(f"{source_name} has no frames to read", exit_code=1)
    print_result(result, args.json, sys.stdout)
    say_health("at the end")
    return 0


def say_health(when: str) -> None:
    """One line with the Pi's CPU temperature and throttling, where it says them."""
    from movinet_pi.health import read_health

    health = read_health()
    if health is not None:
        say(f"health {when}: {health.describe()}")


def check_distinct_models(paths: list[Path], given: list[str]) -> None:
    """One model given twice would be scored twice, the same: say so instead."""
    seen: dict[Path, str] = {}
    for path, flag in zip(paths, given):
        key = path.resolve()
        if key in seen:
            raise MovinetPiError(f"{seen[key]} and {flag} are the same model ({path}): give "
                                 "each model once")
        seen[key] = flag


def command_eval(args: argparse.Namespace) -> int:
    from movinet_pi.tools.clip_folders import find_class_folders
    from movinet_pi.tools.eval import run_eval

    find_class_folders(args.clip_dir)  # before a model download: a mistyped folder says so
    paths = [catalogue_model(name, args.quant, offline=args.offline)[0] for name in args.models]
    paths += [model_file(path, quant=args.quant) for path in args.model_paths]
    if not paths:
        raise MovinetPiError("give a model: --model a0|a1|a2 or --model-path FILE "
                             "(either may be repeated to compare models)")
    given = [f"--model {name}" for name in args.models]
    given += [f"--model-path {path}" for path in args.model_paths]
    check_distinct_models(paths, given)
    return run_eval(args.clip_dir, paths, args.labels, threads=args.threads,
                    history=args.history, roi=args.roi,
                    plot=args.plot, as_json=args.json, out=sys.stdout, progress=True)


def command_teach(args: argparse.Namespace) -> int:
    from movinet_pi.tools.clip_folders import find_class_folders
    from movinet_pi.tools.teach import check_output, run_teach
    from movinet_pi.tools.teach_record import DEFAULT_COUNTDOWN, DEFAULT_TAKE_S, record_clip

    if args.record is not None:
        given = [flag for flag, on in (("-o", args.output is not None), ("--reject", args.reject),
                                       ("--force", args.force)) if on]
        if given:
            raise MovinetPiError(f"{given[0]} is for teaching; --record LABEL only records an "
                                 f"example: drop {given[0]}, and teach in a second run")
        record_clip(args.clip_dir, args.record, args.seconds or DEFAULT_TAKE_S, args.source,
                    countdown=max(0, DEFAULT_COUNTDOWN if args.countdown is None
                                  else args.countdown))
        return 0
    for flag, value in (("--seconds", args.seconds), ("--countdown", args.countdown),
                        ("--source", args.source)):
        if value is not None:
            raise MovinetPiError(f"{flag} is for recording: it goes with --record LABEL (or "
                                 f"drop {flag} to teach)")
    if args.output is None:
        raise MovinetPiError("give the taught model's file: -o FILE (or --record LABEL to "
                             "record examples)")
    if args.labels is not None:
        raise MovinetPiError("teach takes its labels from the class folders' names: "
                             "drop --labels")
    find_class_folders(args.clip_dir)  # before a model download: a mistyped folder says so
    check_output(args.output, force=args.force)  # and a file that could not be written
    base, _ = resolve_model(args)
    return run_teach(args.clip_dir, base, args.output, force=args.force, reject=args.reject,
                     threads=args.threads, history=args.history, out=sys.stdout)


def command_ha_remove(args: argparse.Namespace) -> int:
    from movinet_pi.outputs.home_assistant import HaDevice, remove_device
    from movinet_pi.outputs.mqtt_target import mqtt_password, parse_mqtt_url

    device = HaDevice.detect(prefix=args.ha_prefix)
    remove_device(parse_mqtt_url(args.mqtt), device, password=mqtt_password(),
                  ca_file=args.mqtt_ca)
    say(f"home assistant: removed {device.id} ({device.config_topic} emptied)")
    return 0
