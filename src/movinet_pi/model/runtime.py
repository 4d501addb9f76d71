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

from movinet_pi.errors import MovinetPiError, one_line

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


class _Truncated(Exception):
    pass


def _flatbuffer_reaches(data: bytes) -> None:
    """Walk a TFLite flatbuffer's model table and every buffer it names; raise
    :class:`_Truncated` if anything points past the end of the file.

    Old runtimes (tflite-runtime 2.14) do not verify a model before using it and
    crash the process on a truncated file, so we check the parts a cut file
    loses: the buffers (weights), which the converter writes last.
    """
    size = len(data)

    def u32(pos: int) -> int:
        if pos < 0 or pos + 4 > size:
            raise _Truncated
        return int.from_bytes(data[pos : pos + 4], "little")

    def field(table: int, index: int) -> int | None:
        vtable = table - int.from_bytes(data[table : table + 4], "little", signed=True)
        if vtable < 0 or vtable + 4 > size:
            raise _Truncated
        vt_size = int.from_bytes(data[vtable : vtable + 2], "little")
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        offset = int.from_bytes(data[vtable + slot : vtable + slot + 2], "little")
        return table + offset if offset else None

    def target(pos: int) -> int:
        return pos + u32(pos)

    def vector(table: int, index: int, elem_size: int) -> tuple[int, int]:
        pos = field(table, index)
        if pos is None:
            return 0, 0
        start = target(pos)
        length = u32(start)
        if start + 4 + length * elem_size > size:
            raise _Truncated
        return start + 4, length

    model = u32(0)
    u32(model)
    for index in (1, 2, 7):  # operator codes, subgraphs, signatures: tables
        first, count = vector(model, index, 4)
        for i in range(count):
            u32(target(first + 4 * i))
    first, count = vector(model, 4, 4)  # buffers
    for i in range(count):
        buffer = target(first + 4 * i)
        u32(buffer)
        vector(buffer, 0, 1)  # the data, inline
        offset_pos, size_pos = field(buffer, 1), field(buffer, 2)
        if offset_pos is not None and size_pos is not None:  # data after the flatbuffer
            offset = int.from_bytes(data[offset_pos : offset_pos + 8], "little")
            length = int.from_bytes(data[size_pos : size_pos + 8], "little")
            if offset + length > size:
                raise _Truncated


def model_not_found(path: Path | str) -> MovinetPiError:
    """The one error for a model file that is not there, and what to do about it."""
    return MovinetPiError(f"model file not found: {path} (check the path; `movinet-pi "
                          "download` fetches the catalogue's models)")


def check_model_file(path: Path) -> bytes:
    """The model file's bytes; refuse, with a one-line message, what is not a whole
    TFLite model file."""
    if path.is_dir():  # the run takes a folder of the catalogue's files; this needs the file
        raise MovinetPiError(f"{path} is a folder: give the .tflite model file itself")
    if not path.is_file():
        raise model_not_found(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MovinetPiError(f"cannot read model file {path}: {e.strerror}") from None
    if not data:
        raise MovinetPiError(f"model file is empty: {path} (fetch or copy it again)")
    # A TFLite flatbuffer carries the identifier "TFL3" at byte 4.
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise MovinetPiError(f"not a TFLite model: {path} (expected a .tflite flatbuffer)")
    try:
        _flatbuffer_reaches(data)
    except _Truncated:
        raise MovinetPiError(
            f"model file is truncated: {path} ({len(data):,} bytes; download it again)"
        ) from None
    return data


def load_interpreter(
    model_path: str | Path,
    threads: int | None = None,
    runtime: Runtime | None = None,
    *,
    quiet: bool = True,
    transform: Callable[[bytes], bytes] | None = None,
) -> tuple[Any, Runtime]:
    """Create and allocate an interpreter for ``model_path``.

    ``transform``, if given, rewrites the model's bytes in memory first (the
    file is not touched). Raises :class:`MovinetPiError` with a one-line message
    for a file that is missing, empty or not a TFLite flatbuffer.
    """
    path = Path(model_path)
    content = check_model_file(path)
    if transform is not None:
        content = transform(content)
    runtime = runtime or find_runtime()
    threads = threads or default_threads()
    try:
        with quiet_native_stderr(enabled=quiet):
            interpreter = runtime.interpreter_class(model_content=content, num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise MovinetPiError(
            f"cannot load model {path}: {one_line(e, first=True)} "
            "(is the file truncated? download it again)"
        ) from e
    return interpreter, runtime
