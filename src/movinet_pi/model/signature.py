"""What a streaming MoViNet's signature says, read from the model, and lasting tensor views.

A streaming MoViNet exported to TFLite has one signature. Its inputs are the
``image`` ([1, 1, H, W, 3] float32 in [0, 1]) and one tensor per internal
state; its outputs are ``logits`` plus the next value of every state under the
same name. Nothing here hard-codes tensor names, counts or the signature key:
:func:`read_signature` reads all of it from the model, and pairs each running
average's sum with its count (:class:`PoolPair`, what a history policy works on).

:func:`load_streaming_interpreter` loads a model the way the classifier runs it:
an int8 model with its stream states and image narrowed to int8 where that is
exact (:mod:`movinet_pi.model.graph`). :func:`tensor_view` gives lasting numpy
views of an allocated interpreter's tensors, so the classifier's hot path makes
no C call per tensor per step.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.catalogue import identify_file
from movinet_pi.model.frame_features import expose_frame_features
from movinet_pi.model.graph import GraphError, NarrowedIO, narrow_io
from movinet_pi.model.runtime import load_interpreter

IMAGE_INPUT_NAME = "image"
LOGITS_OUTPUT_NAME = "logits"
POOL_COUNT_SUFFIX = "frame_count"
POOL_BUFFER_SUFFIX = "buffer"


@dataclass(frozen=True)
class StateTensor:
    """One state: its signature name and the interpreter's input/output tensor indices."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    input_index: int
    output_index: int
    zero: int = 0  # what "nothing yet" is on the state's grid: its zero point if quantized

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def passthrough(self) -> bool:
        """The output *is* the input tensor (the official int8 exports do this for the
        squeeze-excite pools): nothing to carry, it stays zero."""
        return self.input_index == self.output_index


@dataclass(frozen=True)
class PoolPair:
    """A running-average state: ``buffer`` holds a sum over frames, ``count`` how many."""

    buffer: StateTensor
    count: StateTensor


@dataclass(frozen=True)
class ModelSignature:
    """What a streaming MoViNet's signature tells us, found by shape and name."""

    key: str
    image_index: int
    input_height: int
    input_width: int
    logits_index: int
    num_classes: int
    states: tuple[StateTensor, ...]
    pool_pairs: tuple[PoolPair, ...] = field(default=())
    image_dtype: np.dtype = field(default=np.dtype(np.float32))

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height), the order OpenCV takes sizes in."""
        return self.input_width, self.input_height

    @property
    def state_bytes(self) -> int:
        return sum(s.nbytes for s in self.states)


def _shape(details: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(d) for d in details["shape"])


def _pick_image_input(inputs: dict[str, dict[str, Any]]) -> str:
    if IMAGE_INPUT_NAME in inputs:
        return IMAGE_INPUT_NAME
    rank5 = [n for n, d in inputs.items() if len(d["shape"]) == 5 and int(d["shape"][-1]) == 3]
    if len(rank5) == 1:
        return rank5[0]
    raise MovinetPiError("model has no 'image' input: not a streaming MoViNet")


def _pick_logits_output(outputs: dict[str, dict[str, Any]], state_names: set[str]) -> str:
    if LOGITS_OUTPUT_NAME in outputs:
        return LOGITS_OUTPUT_NAME
    rank2 = [n for n, d in outputs.items() if n not in state_names and len(d["shape"]) == 2]
    if len(rank2) == 1:
        return rank2[0]
    raise MovinetPiError("model has no 'logits' output: not a streaming MoViNet classifier")


def find_pool_pairs(states: Sequence[StateTensor]) -> tuple[PoolPair, ...]:
    """Pair every ``<prefix>frame_count`` state with its ``<prefix>buffer`` state.

    Causal-convolution states (``*_stream_buffer``) have no count and are left
    out, so a history policy never touches them.
    """
    by_name = {s.name: s for s in states}
    pairs = []
    for state in states:
        if not state.name.endswith(POOL_COUNT_SUFFIX):
            continue
        prefix = state.name[: -len(POOL_COUNT_SUFFIX)]
        buffer = by_name.get(prefix + POOL_BUFFER_SUFFIX)
        if buffer is not None:
            pairs.append(PoolPair(buffer=buffer, count=state))
    return tuple(pairs)


def pool_state_names(names: Collection[str]) -> set[str]:
    """The running-average states (buffers and counts) among a model's state names."""
    present = set(names)
    pools = set()
    for name in present:
        if name.endswith(POOL_COUNT_SUFFIX):
            buffer = name[: -len(POOL_COUNT_SUFFIX)] + POOL_BUFFER_SUFFIX
            if buffer in present:
                pools |= {name, buffer}
    return pools


def narrow_for_streaming(model: bytes) -> tuple[bytes, NarrowedIO]:
    """The model as the classifier runs it, stream states and image as int8 where exact,
    and what was narrowed. Bytes it cannot read come back as they are.

    The pools stay as exported: a history policy works on their float sums.
    """
    try:
        return narrow_io(
            model,
            states=lambda names: set(names) - pool_state_names(names),
            image=IMAGE_INPUT_NAME,
        )
    except GraphError:
        return model, NarrowedIO()


def pool_buffer_names(names: Collection[str]) -> set[str]:
    """The running sums (``*_pool_buffer``) among a model's state names."""
    return {n for n in pool_state_names(names) if n.endswith(POOL_BUFFER_SUFFIX)}


def prepare_for_streaming(model: bytes) -> bytes:
    """The bytes the classifier runs: narrowed (:func:`narrow_for_streaming`), with each
    pool's per-frame features readable (:mod:`movinet_pi.model.frame_features`)."""
    narrowed, _ = narrow_for_streaming(model)
    return expose_frame_features(narrowed, pool_buffer_names)


def load_streaming_interpreter(
    model_path: str | Path, threads: int | None = None, runtime: Any = None, *, quiet: bool = True
) -> tuple[Any, Any]:
    """:func:`movinet_pi.model.runtime.load_interpreter`, with the model prepared for
    streaming (:func:`prepare_for_streaming`)."""
    return load_interpreter(model_path, threads, runtime, quiet=quiet,
                            transform=prepare_for_streaming)


def tensor_view(interpreter: Any, index: int) -> np.ndarray:
    """A lasting numpy view of one of the interpreter's tensors.

    ``interpreter.tensor(i)()`` views must not outlive an ``invoke()`` (the
    runtime refuses to run while one exists, because ``allocate_tensors()`` may
    move the memory), so the usual pattern is a C call per tensor per step. The
    classifier owns its interpreter and allocates it once, before this is
    called, so the memory stays put: one view per tensor, made once, is safe and
    saves ~1 µs per tensor per step. The view keeps the interpreter alive, and
    the interpreter's ``allocate_tensors`` and ``resize_tensor_input`` are
    replaced by ones that refuse (the runtime's own guard cannot see these views).
    """
    _forbid_reallocation(interpreter)
    array = interpreter.tensor(index)()
    shape, dtype, address, nbytes = array.shape, array.dtype, array.ctypes.data, array.nbytes
    del array
    memory = (ctypes.c_byte * nbytes).from_address(address)
    memory.owner = interpreter  # type: ignore[attr-defined]
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def _forbid_reallocation(interpreter: Any) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(
            "this interpreter belongs to a StreamingClassifier, which holds views of its "
            "tensors: re-allocating would leave them pointing at freed memory "
            "(load another interpreter instead)"
        )

    for name in ("allocate_tensors", "resize_tensor_input"):
        setattr(interpreter, name, refuse)


def _quantized_zero(details: dict[str, Any]) -> int:
    scale, zero_point = details.get("quantization", (0.0, 0))
    return int(zero_point) if scale and np.issubdtype(np.dtype(details["dtype"]), np.integer) else 0


def _is_byte_image(details: dict[str, Any]) -> bool:
    """An int8 image on the 1/255 grid with zero point -128: a uint8 frame ``v`` goes in
    as ``v - 128`` (what :func:`narrow_for_streaming` makes of the official models)."""
    scale, zero_point = details.get("quantization", (0.0, 0))
    return (np.dtype(details["dtype"]) == np.int8 and abs(scale * 255.0 - 1.0) <= 1e-5
            and zero_point == -128)


def read_signature(interpreter: Any) -> ModelSignature:
    """Inspect a loaded interpreter and describe its streaming signature.

    Raises :class:`MovinetPiError` when the model is not a streaming
    classifier (no signature, no state tensors, wrong image shape).
    """
    signatures = interpreter.get_signature_list()
    if not signatures:
        raise MovinetPiError(
            "model has no signature: not a streaming MoViNet (export it with a signature)"
        )
    if len(signatures) == 1:
        key = next(iter(signatures))
    else:
        # Prefer the usual keys, else the one with the most inputs (the stream step).
        usual = [k for k in ("serving_default", "call") if k in signatures]
        key = usual[0] if usual else max(signatures, key=lambda k: len(signatures[k]["inputs"]))
    runner = interpreter.get_signature_runner(key)
    inputs = runner.get_input_details()
    outputs = runner.get_output_details()

    if len(inputs) == 1:
        raise MovinetPiError(
            "model has a single input and no state tensors: an image or clip classifier, "
            "not a streaming model (use a MoViNet *-stream-* .tflite)"
        )
    image_name = _pick_image_input(inputs)
    image = inputs[image_name]
    shape = _shape(image)
    if len(shape) != 5 or shape[0] != 1 or shape[1] != 1 or shape[4] != 3:
        raise MovinetPiError(
            f"model image input has shape {list(shape)}, expected [1, 1, H, W, 3]: "
            "not a streaming MoViNet (use a *-stream-* model)"
        )

    if np.dtype(image["dtype"]) != np.float32 and not _is_byte_image(image):
        raise MovinetPiError(
            f"model image input is {np.dtype(image['dtype']).name}: this app feeds float32 "
            "frames in [0, 1] (export the model with a float32 input, as the official ones are)"
        )
    state_names = [n for n in inputs if n != image_name and n in outputs]
    if not state_names:
        raise MovinetPiError(
            "model has no state tensors: not a streaming model (use a MoViNet *-stream-* .tflite)"
        )
    states = tuple(
        StateTensor(
            name=n,
            shape=_shape(inputs[n]),
            dtype=np.dtype(inputs[n]["dtype"]),
            input_index=int(inputs[n]["index"]),
            output_index=int(outputs[n]["index"]),
            zero=_quantized_zero(inputs[n]),
        )
        for n in state_names
    )
    logits_name = _pick_logits_output(outputs, set(state_names))
    logits_shape = _shape(outputs[logits_name])
    if np.dtype(outputs[logits_name]["dtype"]) != np.float32:
        raise MovinetPiError(
            f"model logits are {np.dtype(outputs[logits_name]['dtype']).name}: this app reads "
            "float32 logits (export the model with a float32 output, as the official ones are)"
        )
    return ModelSignature(
        key=key,
        image_index=int(image["index"]),
        input_height=shape[2],
        input_width=shape[3],
        logits_index=int(outputs[logits_name]["index"]),
        num_classes=int(logits_shape[-1]),
        states=states,
        pool_pairs=find_pool_pairs(states),
        image_dtype=np.dtype(image["dtype"]),
    )


def weights_quantization(interpreter: Any) -> str:
    """int8 / float16 / float32, from the weights the model holds."""
    kinds = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    if "int8" in kinds or "uint8" in kinds:
        return "int8"
    if "float16" in kinds:
        return "float16"
    return "float32"


def catalogue_title(
    path: str | Path, interpreter: Any, signature: ModelSignature, num_classes: int
) -> str | None:
    """The catalogue's name for the model file at ``path`` (``MoViNet-A0 stream int8``),
    by its sha256, else its signature and quantization; None for any other model.
    ``num_classes``: the classes it answers (a taught head's, which no catalogue model has)."""
    return identify_file(Path(path), signature.input_width, num_classes,
                         len(signature.states), weights_quantization(interpreter))
