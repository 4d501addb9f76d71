"""The model the flags ask for: catalogue lookup, download on first use, labels, history.

Shared by the run, its live switches (keys 1/2/3, +/-) and ``bench``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from movinet_pi.errors import MovinetPiError
from movinet_pi.log import say
from movinet_pi.model.catalogue import MODEL_FPS


def catalogue_model(
    name: str, quant: str, offline: bool, hints: bool = True
) -> tuple[Path, str]:
    """A catalogue model's file (downloaded once if missing, unless ``offline``) and title.
    A forbidden download says what else works (with ``hints``; a live switch's message on
    the overlay keeps to the command that fetches it); a failed one says it itself."""
    from movinet_pi.model.catalogue import find_model, get_spec, other_ways

    spec = get_spec(name, quant)
    try:
        return find_model(spec), spec.title
    except MovinetPiError as e:
        if offline:
            if not hints:
                raise
            raise MovinetPiError(f"{e}{other_ways(spec)}", exit_code=e.exit_code) from None
    from movinet_pi.model.download import download_models

    say(f"{spec.title} is not downloaded yet: fetching it once (use --offline to never download)")
    download_models([spec.name], spec.quant, None, progress=True)
    return find_model(spec), spec.title


def model_file(given: Path, name: str = "a0", quant: str = "int8") -> Path:
    """The model file that ``--model-path`` names, in every command alike: the file, or in a
    folder the catalogue's file of ``name`` and ``quant`` (else another one, else its only
    .tflite); a one-line error when there is none."""
    from movinet_pi.model.catalogue import find_in_folder, get_spec

    path = given.expanduser()
    if path.is_dir():
        return find_in_folder(path, get_spec(name, quant))
    if not path.exists():
        from movinet_pi.model.runtime import model_not_found

        raise model_not_found(given)
    return path


def resolve_model(args: argparse.Namespace) -> tuple[Path, str]:
    """The model file to load and the name to show for it (for ``--model-path``, the file's
    stem until :func:`load_classifier` recognises a catalogue model)."""
    if args.model_path is not None:
        path = model_file(args.model_path, args.model, args.quant)
        given_a_file = path == args.model_path.expanduser()  # (not a folder's file)
        if args.quant != "int8" and given_a_file and not getattr(args, "switching", False):
            say(f"{path.name} is loaded as it is: --quant {args.quant} only picks the "
                "catalogue model that keys 1/2/3 switch to")
        return path, path.stem
    return catalogue_model(args.model, args.quant, args.offline,
                           hints=not getattr(args, "switching", False))


def model_title(clf, fallback: str) -> str:
    """What to call a ``--model-path`` model: its catalogue title when the file is one of
    the catalogue's (by sha256, else by signature and quantization), else ``fallback``."""
    from movinet_pi.model.signature import catalogue_title

    return catalogue_title(clf.model_path, clf.interpreter, clf.signature,
                           clf.num_classes) or fallback


def load_classifier(args: argparse.Namespace):
    """The classifier the flags ask for, and the name to show for its model. A catalogue
    model's Kinetics-600 labels are downloaded if missing, unless ``--offline``."""
    from movinet_pi.model.adaptive import history_policy
    from movinet_pi.model.classifier import StreamingClassifier
    from movinet_pi.model.download import download_labels
    from movinet_pi.model.runtime import default_threads

    model_path, title = resolve_model(args)
    threads = args.threads or default_threads()
    may_download = getattr(args, "model_path", None) is None and not args.offline
    clf = StreamingClassifier.load(
        model_path, threads, args.labels, history=history_policy(args.history, MODEL_FPS),
        download_labels=(lambda: download_labels(None, progress=True)) if may_download else None,
        # A live switch loads while other threads log: never silence the process's stderr then.
        quiet=getattr(args, "quiet", True))
    if getattr(args, "model_path", None) is not None:
        title = model_title(clf, title)
    return clf, title


def _in_model_folder(model_path: Path | None, name: str, quant: str) -> Path | None:
    """A catalogue model's file in the ``--model-path`` folder, if it holds that one (a live
    switch looks there first, as the start did; else where the catalogue's files go)."""
    from movinet_pi.model.catalogue import get_spec

    if model_path is None or not model_path.expanduser().is_dir():
        return None
    path = model_path.expanduser() / get_spec(name, quant).filename
    return path if path.is_file() else None


def make_loader(args: argparse.Namespace) -> Callable[..., tuple]:
    """How a live switch (keys 1/2/3, +/-) loads a model: as at start, but never
    downloading (that would stall the switch); a missing model says what to run."""

    def load(name: str | None, threads: int) -> tuple:
        overrides: dict[str, object] = {"threads": threads, "offline": True, "quiet": False,
                                        "switching": True}
        if name is not None:  # a catalogue model: its own (Kinetics) labels
            overrides.update(model=name, labels=None,
                             model_path=_in_model_folder(args.model_path, name, args.quant))
        return load_classifier(argparse.Namespace(**{**vars(args), **overrides}))

    return load
