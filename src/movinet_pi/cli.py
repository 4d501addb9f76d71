"""The ``movinet-pi`` command: picking the subcommand, wiring a run together, error reporting.

``movinet-pi [run options]`` runs the live classifier (``run`` is the default
subcommand); ``download``, ``info``, ``bench``, ``eval``, ``teach`` and ``ha-remove`` are
:mod:`movinet_pi.commands`'s, ``service`` is here. Their flags are
:mod:`movinet_pi.flags`'s; the model a run loads is :mod:`movinet_pi.loading`'s, its outputs
:mod:`movinet_pi.outputs.open`'s and its display :mod:`movinet_pi.display.open`'s. Every error a
user can cause ends in one line on stderr and exit status 2 (usage and
configuration) or 1 (failures at run time); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from movinet_pi.commands import (
    command_bench,
    command_download,
    command_eval,
    command_ha_remove,
    command_info,
    command_teach,
    opencv_without_workers,
)
from movinet_pi.display.open import open_display
from movinet_pi.errors import MovinetPiError
from movinet_pi.flags import (
    DEFAULT_CAMERA_FPS,
    DEFAULT_EVENT_MIN_S,
    DEFAULT_FRAME_SIZE,
    DEFAULT_POST_S,
    DEFAULT_PRE_S,
    DEFAULT_TOP_K,
    SERVICE_USAGE,
    WEB_TOKEN_ENV,
    build_bench_parser,
    build_download_parser,
    build_eval_parser,
    build_ha_remove_parser,
    build_info_parser,
    build_run_parser,
    build_teach_parser,
)
from movinet_pi.loading import load_classifier, make_loader
from movinet_pi.log import PROG, say
from movinet_pi.model.catalogue import MODEL_FPS
from movinet_pi.outputs.open import build_outputs, close_all
from movinet_pi.parser import looks_like_source, suggest_command
from movinet_pi.progress import counted

if TYPE_CHECKING:  # imported for real where used: `--help` stays fast
    from movinet_pi.display.base import Display
    from movinet_pi.pipeline import Pipeline
    from movinet_pi.sources.base import Source


def command_run(args: argparse.Namespace) -> int:
    from movinet_pi.controls import Controls, signals_stop, start_terminal_controls
    from movinet_pi.display.shown import LabelFilter, require_known
    from movinet_pi.pipeline import Pipeline
    from movinet_pi.recognizer import Recognizer, RunConfig
    from movinet_pi.sources.open import open_source

    started = time.monotonic()
    log = say if args.verbose else (lambda message: None)
    opencv_without_workers()
    check_run_flags(args)
    clf, title = load_classifier(args)
    top_k = shown_count(args.top_k, clf.num_classes)
    label_filter = LabelFilter(clf.labels, args.allow, args.deny)
    # clips are recorded by label, whatever its case (outputs.recording)
    require_known(clf.labels, args.record_labels, "--record-labels", ignore_case=True)
    log(f"model {title}: {Path(clf.model_path).name}, input {clf.input_size[0]}x"
        f"{clf.input_size[1]}, {counted(clf.num_classes, 'class', 'classes')}, "
        f"{counted(len(clf.signature.states), 'state')}, {clf.runtime_name}, "
        f"{counted(clf.threads, 'thread')}; labels {clf.labels.source}")

    sinks = build_outputs(args, title)
    source: Source | None = None
    display: Display | None = None
    pipeline: Pipeline | None = None
    try:
        source = open_source(args.source, frame_size=args.frame_size, fps=args.camera_fps,
                             loop=args.loop, model_size=clf.input_size,
                             roi=None if args.roi in (None, "auto") else args.roi)
        say_small_roi(args.roi, source.frame_size, clf.input_size)
        display = open_display(args, source)
        realtime = play_at_own_speed(args, display is not None)
        config = RunConfig(top_k=top_k, threshold=args.threshold,
                           leave_threshold=args.leave_threshold, label_filter=label_filter,
                           model_fps=MODEL_FPS, mirror=args.mirror, realtime=realtime,
                           pace_headless=realtime, model_name=title,
                           hold_at_end=not args.exit_at_end, roi=args.roi)
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
    say(run_summary(stats, pipeline, args.verbose, started))
    return 0


def check_run_flags(args: argparse.Namespace, strict: bool = False) -> None:
    """What a run's flags alone can tell is wrong, before a model loads or downloads: a bad
    web token, a mistyped source, a model or label file that is not there, a flag that
    could never act. ``service --print`` checks the same, ``strict`` (a unit that fails at
    start with exit 2 is not restarted: the user would find it in the log)."""
    from movinet_pi.model.labels import load_labels
    from movinet_pi.model.runtime import model_not_found
    from movinet_pi.sources.open import check_source

    if args.web is not None:
        from movinet_pi.outputs.web import check_token

        check_token(args.web[0], args.web_token)
    check_source(args.source)
    if args.model_path is not None and not args.model_path.expanduser().exists():
        raise model_not_found(args.model_path)
    if args.labels is not None:
        load_labels(args.labels.expanduser())
    refuse_flags_without_their_output(args, strict)
    if args.leave_threshold is not None and args.leave_threshold > args.threshold:
        raise MovinetPiError(f"--leave-threshold {args.leave_threshold:g} is above --threshold "
                             f"{args.threshold:g}: an action is kept until it falls below the "
                             "leave level, so give one at or below the show level")


def refuse_flags_without_their_output(args: argparse.Namespace, strict: bool = False) -> None:
    """A flag of an output (or a display, or a camera) that was not asked for would do
    nothing: say so, before the run. The flags refused since this version (a display's, a
    camera's, ``--no-ha-discovery``, ``--event-min-s``) are only noted in a run, so that a
    service unit written before goes on starting; ``strict`` (``service --print``) refuses
    them too."""
    from movinet_pi.outputs.home_assistant import DEFAULT_HA_PREFIX
    from movinet_pi.sources.open import is_camera

    goes_with = "{flag} goes with %s: add it, or drop {flag}"
    _refuse_lone(goes_with % "--mqtt mqtt[s]://host/prefix", args.mqtt is None, True,
                 ("--mqtt-ca", args.mqtt_ca is not None),
                 ("--ha-prefix", args.ha_prefix != DEFAULT_HA_PREFIX),
                 ("--name", args.name is not None))
    _refuse_lone(goes_with % "--record DIR", args.record is None, True,
                 ("--record-labels", bool(args.record_labels)),
                 ("--pre-seconds", args.pre_seconds != DEFAULT_PRE_S),
                 ("--post-seconds", args.post_seconds != DEFAULT_POST_S),
                 ("--record-max-mb", args.record_max_mb is not None))
    _refuse_lone(goes_with % "--web [HOST:]PORT", args.web is None, True,
                 ("--web-token", args.web_token not in (None, os.environ.get(WEB_TOKEN_ENV))))
    _refuse_lone(goes_with % "--mqtt mqtt[s]://host/prefix", args.mqtt is None, strict,
                 ("--no-ha-discovery", not args.ha_discovery))
    no_events = not (args.events or args.mqtt or args.web is not None or args.record)
    _refuse_lone(goes_with % "an output of events (--events, --mqtt, --web or --record)",
                 no_events, strict, ("--event-min-s", args.event_min_s != DEFAULT_EVENT_MIN_S))
    headless = "--headless" if args.headless else "--display none"
    _refuse_lone(f"{{flag}} is for the window, and {headless} shows none: drop one of them",
                 args.headless or args.display == "none", strict,
                 ("--window-size", args.window_size is not None),
                 ("--exit-at-end", args.exit_at_end),
                 ("--mirror", args.mirror and args.web is None and args.record is None))
    _refuse_lone("{flag} is asked of a camera, and a video file or stream comes at its own "
                 "size and rate: drop {flag}", not is_camera(args.source), strict,
                 ("--frame-size", args.frame_size != DEFAULT_FRAME_SIZE),
                 ("--camera-fps", args.camera_fps != DEFAULT_CAMERA_FPS))


def _refuse_lone(message: str, missing: bool, refuse: bool, *flags: tuple[str, bool]) -> None:
    """When what ``flags`` go with is ``missing``, the first of them given (its bool) is
    refused (``refuse``), else noted; ``message`` says why, with ``{flag}`` for the flag."""
    given = [flag for flag, on in flags if on]
    if missing and given:
        if not refuse:
            say(f"note: {message.format(flag=given[0])}")
            return
        raise MovinetPiError(message.format(flag=given[0]))


def shown_count(asked: int | None, classes: int) -> int:
    """How many actions a run shows: ``--top-k`` if given (no more than the model has), else
    :data:`DEFAULT_TOP_K`, or every class of a taught model with fewer."""
    if asked is None:
        return min(DEFAULT_TOP_K, classes)
    if asked > classes:
        raise MovinetPiError(f"--top-k {asked} is more than the model's {classes} classes: "
                             f"give {classes} or fewer")
    return asked


def say_small_roi(roi: object, frame_size: tuple[int, int], input_size: tuple[int, int]) -> None:
    """One line when a fixed --roi is fewer pixels than the model's input (it is enlarged)."""
    from movinet_pi.sources.roi import crop_pixels, describe

    if not isinstance(roi, tuple):
        return
    width, height = crop_pixels(roi, *frame_size)
    if width < input_size[0] or height < input_size[1]:
        say(f"--roi {describe(roi)} is {width}x{height} pixels of the {frame_size[0]}x"
            f"{frame_size[1]} picture, less than the model's {input_size[0]}x{input_size[1]} "
            "input: the model sees it enlarged (a larger box, or a camera's --frame-size, "
            "keeps more detail)")


def play_at_own_speed(args: argparse.Namespace, window: bool) -> bool:
    """Whether a file plays at its own speed (``--speed``): by default when someone may be
    watching (a window, ``--web``, ``--mqtt``) or it loops; other headless files run flat
    out, so ``--json`` over a clip is done in a blink."""
    if args.speed != "auto":
        return args.speed == "1"
    return window or args.web is not None or args.mqtt is not None or args.loop


def run_summary(stats, pipeline: Pipeline, verbose: bool, started: float) -> str:
    """One line at the end of a run: frames, steps and what was shown last."""
    latest = pipeline.recognizer.latest
    final = (", ".join(f"{p.label} {p.score * 100:.0f} %" for p in latest.top)
             if latest is not None and latest.top else "no action")
    if verbose:
        first = stats.first_prediction_s
        first_s = (
            f"{first + (pipeline._started - started):.2f} s" if first is not None else "none"
        )
        return (f"done: {counted(stats.frames_read, 'frame')} read, {stats.frames_shown} "
                f"shown, {counted(stats.steps, 'model step')} ({stats.steps_skipped} skipped), "
                f"first prediction after {first_s}; last shown: {final}")
    skipped = f" ({stats.steps_skipped} skipped: the model fell behind)" \
        if stats.steps_skipped else ""
    return (f"done: {counted(stats.frames_read, 'frame')}, "
            f"{counted(stats.steps, 'model step')}{skipped}; last shown: {final}")


def command_service(argv: list[str]) -> int:
    from movinet_pi.sources.open import is_video_file
    from movinet_pi.tools.service import (
        current_executable,
        install_hint,
        invoking_user,
        needs_token_file,
        password_file_hint,
        run_args,
        systemd_unit,
        token_file_hint,
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
    status = take_source_argument(args)
    if status:
        return status
    try:
        check_run_flags(args, strict=True)  # no unit whose run would be refused at once
        if is_video_file(args.source) and not args.loop:
            say(f"note: {args.source} plays once, and the service then stops: add --loop to "
                "play it over and over")
        user_unit = "--user-unit" in argv
        user = invoking_user()
        sys.stdout.write(systemd_unit(argv, user=user, executable=current_executable(),
                                      workdir=os.getcwd(), env=os.environ, user_unit=user_unit))
        if needs_token_file(argv, os.environ):
            say(token_file_hint(user))
        if (args.mqtt and "MOVINET_PI_MQTT_PASSWORD" in os.environ
                and "MOVINET_PI_MQTT_PASSWORD_FILE" not in os.environ):
            say(password_file_hint(user))
        if sys.stdout.isatty():
            say(install_hint(user_unit))
    except MovinetPiError as e:
        return report_error(e, args.debug)
    return 0


COMMANDS: dict[str, tuple[Callable[[], argparse.ArgumentParser], Callable[..., int]]] = {
    "run": (build_run_parser, command_run),
    "download": (build_download_parser, command_download),
    "info": (build_info_parser, command_info),
    "bench": (build_bench_parser, command_bench),
    "eval": (build_eval_parser, command_eval),
    "teach": (build_teach_parser, command_teach),
    "ha-remove": (build_ha_remove_parser, command_ha_remove),
}


def quiet_libraries(debug: bool) -> None:
    """OpenCV's and FFmpeg's own warnings (a missing camera's ``[ WARN:0@0.01] global
    cap_v4l.cpp ...``) come before our one-line error and mean nothing to a user: off
    unless ``--debug``. Set before cv2 is imported; if it already is, told directly."""
    if debug:
        return
    for name, value in (("OPENCV_LOG_LEVEL", "OFF"), ("OPENCV_FFMPEG_LOGLEVEL", "-8")):
        if not os.environ.get(name):  # a level the user set is kept; -8 is AV_LOG_QUIET
            os.environ[name] = value
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        with contextlib.suppress(Exception):
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def report_error(error: MovinetPiError, debug: bool) -> int:
    """A user's error: one line on stderr (and the traceback with --debug); its exit code."""
    if debug:
        traceback.print_exc()
    say(f"error: {error}")
    return error.exit_code


def unknown_command(word: str) -> int:
    """A word that is neither a command nor a source: one line, with a suggestion."""
    names = [*COMMANDS, "service"]
    say(f"error: unknown command {word!r}{suggest_command(word, names)} (commands: "
        f"{', '.join(names)}; or a video file, device or URL to classify; see "
        f"`{PROG} --help`)")
    return 2


def take_source_argument(args: argparse.Namespace) -> int:
    """``movinet-pi clip.mp4``: the positional SOURCE becomes ``args.source``; 0, or the
    exit status of the one-line error (a mistyped command, or two sources)."""
    word = args.source_arg
    if word is None:
        return 0
    if not looks_like_source(word):
        return unknown_command(word)
    if args.source is not None:
        say(f"error: two sources, {word!r} and --source {args.source!r}: give one")
        return 2
    args.source = word
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "service":
        return guarded("service", lambda: command_service(argv[1:]), "--debug" in argv)
    name = argv[0] if argv and argv[0] in COMMANDS else "run"
    if argv and argv[0] == name:
        argv = argv[1:]
    first = argv[0] if argv and not argv[0].startswith("-") else None
    if name == "run" and first is not None and not looks_like_source(first):
        return unknown_command(first)  # `movinet-pi dowload a0`
    build, command = COMMANDS[name]
    parser = build() if name != "run" else build_run_parser()
    args = parser.parse_args(argv)
    if name == "run":
        status = take_source_argument(args)
        if status:
            return status
    quiet_libraries(args.debug)
    return guarded(name, lambda: command(args), args.debug)


def guarded(name: str, call: Callable[[], int], debug: bool) -> int:
    """Run a command; whatever goes wrong, one line on stderr (with ``debug``, the
    traceback too) and an exit code, never a traceback alone."""
    try:
        return call()
    except MovinetPiError as e:
        return report_error(e, debug)
    except KeyboardInterrupt:  # (a run stops on its own at Ctrl-C, and says so)
        if name != "run":  # every file a command writes is renamed into place when whole
            say(f"{name}: stopped (Ctrl-C); nothing was left half-written")
        return 130
    except BrokenPipeError:  # `movinet-pi --json | head`: the reader has gone, so do we
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return 0
    except OSError as e:
        if debug:
            traceback.print_exc()
        if e.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            say(f"error: cannot write: {e.strerror} ({e.filename or 'output'}): "
                "free some space or choose another place")
            return 1
        say(f"unexpected error: {type(e).__name__}: {e} (run with --debug for details)")
        return 1
    except Exception as e:  # a bug or an unforeseen failure: still one line by default
        if debug:
            traceback.print_exc()
        say(f"unexpected error: {type(e).__name__}: {e} (run with --debug for details)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
