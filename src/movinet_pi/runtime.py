"""Finding a TFLite interpreter.

Three runtimes ship the same Python ``Interpreter`` class: ``ai_edge_litert``
(the maintained successor, preferred), ``tflite_runtime`` (older, numpy<2 only)
and full TensorFlow's ``tf.lite``. Everything above this module talks to
whichever one :func:`load_interpreter` finds.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from movinet_pi import MovinetPiError

#: (name shown to users, module to import, attribute path to the Interpreter class)
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai-edge-litert", "ai_edge_litert.interpreter", "Interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow", "tensorflow", "lite.Interpreter"),
)

INSTALL_HINT = (
    "no TFLite runtime found: install one with `pip install ai-edge-litert` "
    "(or `pip install 'movinet-pi[tflite]'` / `pip install tensorflow`)"
)


@dataclass(frozen=True)
class Runtime:
    """A TFLite runtime that imported: its name, version and Interpreter class."""

    name: str
    version: str
    interpreter_class: Callable[..., Any]


def _import_runtime(module_name: str, attr_path: str) -> Callable[..., Any] | None:
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    for attr in attr_path.split("."):
        obj = getattr(obj, attr, None)
        if obj is None:
            return None
    return obj


def _version_of(distribution: str) -> str:
    try:
        from importlib.metadata import version

        return version(distribution)
    except Exception:
        return "unknown"


def find_runtime(preferred: str | None = None) -> Runtime:
    """Return the first runtime that imports, trying ``preferred`` alone if given.

    ``preferred`` may also come from ``$MOVINET_PI_RUNTIME``.
    """
    preferred = preferred or os.environ.get("MOVINET_PI_RUNTIME") or None
    candidates = RUNTIMES
    if preferred:
        candidates = tuple(r for r in RUNTIMES if r[0] == preferred)
        if not candidates:
            names = ", ".join(r[0] for r in RUNTIMES)
            raise MovinetPiError(f"unknown runtime {preferred!r}: choose one of {names}")
    for name, module_name, attr_path in candidates:
        cls = _import_runtime(module_name, attr_path)
        if cls is not None:
            return Runtime(name, _version_of(name), cls)
    if preferred:
        raise MovinetPiError(f"runtime {preferred!r} is not installed: pip install {preferred}")
    raise MovinetPiError(INSTALL_HINT)


def default_threads() -> int:
    """All the cores this process may use (the default for ``--threads``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True):
    """Silence what native code prints on fd 2 while loading a model.

    The runtimes print lines such as "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU." from C++ straight to file descriptor 2; they mean nothing
    to a user and break up our one-line messages. Python exceptions are not
    affected. Set ``MOVINET_PI_NATIVE_LOGS=1`` to see them.
    """
    if not enabled or os.environ.get("MOVINET_PI_NATIVE_LOGS"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded, some test runners)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_interpreter(
    model_path: str | Path, threads: int | None = None, runtime: Runtime | None = None
) -> tuple[Any, Runtime]:
    """Create and allocate an interpreter for ``model_path``.

    Raises :class:`MovinetPiError` with a one-line message for a file that is
    missing, empty or not a TFLite flatbuffer.
    """
    path = Path(model_path)
    if not path.is_file():
        raise MovinetPiError(f"model file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise MovinetPiError(f"model file is empty: {path} (download it again)")
    with path.open("rb") as f:
        head = f.read(8)
    # A TFLite flatbuffer carries the identifier "TFL3" at byte 4.
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise MovinetPiError(f"not a TFLite model: {path} (expected a .tflite flatbuffer)")
    runtime = runtime or find_runtime()
    threads = threads or default_threads()
    try:
        with quiet_native_stderr():
            interpreter = runtime.interpreter_class(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MovinetPiError(
            f"cannot load model {path}: {first_line} (is the file truncated? download it again)"
        ) from e
    return interpreter, runtime
