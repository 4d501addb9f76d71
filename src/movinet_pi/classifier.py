"""StreamingClassifier: one frame in, class probabilities out, states carried.

A streaming MoViNet exported to TFLite has one signature. Its inputs are the
``image`` ([1, 1, H, W, 3] float32 in [0, 1]) and one tensor per internal
state; its outputs are ``logits`` plus the next value of every state under the
same name. Nothing here hard-codes tensor names, counts or the signature key:
all of it is read from the model.

The hot path allocates nothing per step: the frame is resized into a
preallocated buffer and normalised straight into the interpreter's input
tensor, and each output state is copied straight into its input tensor.

An int8 model is run with its stream states and image as int8 where that is
exact (:mod:`movinet_pi.tflite_graph`): the official A0 then carries 0.67 MB
of state per frame instead of 2.7 MB, skips 5 MB of (de)quantizing inside the
call, and is fed ``uint8 ^ 0x80`` instead of floats. The logits are the same to
the bit (``tests/test_tflite_graph.py``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.history import HistoryPolicy, PlainHistory, PoolSlot, input_grid
from movinet_pi.labels import Labels, check_label_count
from movinet_pi.tflite_graph import GraphError, NarrowedIO, narrow_io

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


def load_streaming_interpreter(
    model_path: str | Path, threads: int | None = None, runtime: Any = None, *, quiet: bool = True
) -> tuple[Any, Any]:
    """:func:`movinet_pi.runtime.load_interpreter`, with the model narrowed for streaming."""
    from movinet_pi.runtime import load_interpreter

    return load_interpreter(model_path, threads, runtime, quiet=quiet,
                            transform=lambda model: narrow_for_streaming(model)[0])


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


def softmax(logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax over the last axis (subtracts the max first)."""
    out = np.subtract(logits, np.max(logits, axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=-1, keepdims=True)
    return out


@dataclass(frozen=True)
class Prediction:
    """One class and its probability."""

    label: str
    score: float
    index: int


class LabelFilter:
    """Which classes may be reported: an allow list, a deny list, or both."""

    def __init__(
        self, labels: Labels, allow: Sequence[str] = (), deny: Sequence[str] = ()
    ) -> None:
        known = {name: i for i, name in enumerate(labels.names)}
        unknown = [n for n in (*allow, *deny) if n not in known]
        if unknown:
            raise MovinetPiError(
                f"unknown label {unknown[0]!r} in --allow/--deny: "
                f"use names from {labels.source}"
            )
        mask = np.zeros(len(labels), dtype=bool)
        if allow:
            mask[[known[n] for n in allow]] = True
        else:
            mask[:] = True
        if deny:
            mask[[known[n] for n in deny]] = False
        self.mask = mask
        self.active = bool(allow or deny)


class ShownList:
    """Which actions are shown, with hysteresis so a label near the threshold does not blink.

    A label enters the list when its probability reaches ``enter`` and stays
    until it falls below ``leave`` (< ``enter``); the list holds at most ``k``,
    the most probable first. An empty list is the "no action" state. Events
    (``--events``, MQTT, clips) start and end with this list, so the hysteresis
    here is what keeps them from flapping.
    """

    def __init__(
        self,
        labels: Labels,
        k: int,
        enter: float = 0.0,
        leave: float | None = None,
        label_filter: LabelFilter | None = None,
    ) -> None:
        self.labels = labels
        self.k = k
        self.enter = enter
        self.leave = enter / 2 if leave is None else min(leave, enter)
        self.mask = label_filter.mask if label_filter is not None and label_filter.active else None
        self._shown: list[int] = []

    def reset(self) -> None:
        self._shown = []

    def update(self, probs: np.ndarray) -> list[Prediction]:
        """This step's shown list from its class probabilities."""
        if self.mask is not None:
            probs = np.where(self.mask, probs, -1.0)
        k = min(self.k, probs.shape[-1])
        best = np.argpartition(probs, -k)[-k:]
        staying = {i for i in self._shown if probs[i] >= self.leave and probs[i] >= 0.0}
        entering = {int(i) for i in best if probs[i] >= self.enter and probs[i] >= 0.0}
        ranked = sorted(staying | entering, key=lambda i: -probs[i])[:k]
        self._shown = ranked
        return [Prediction(self.labels[i], float(probs[i]), i) for i in ranked]


class StreamingClassifier:
    """Runs a streaming MoViNet one frame at a time.

    >>> clf = StreamingClassifier.from_file("movinet_a0_stream_int8.tflite", labels)
    >>> probs = clf.step(rgb_frame)          # any size, RGB uint8
    >>> clf.top_k(probs, 3)
    """

    def __init__(
        self,
        interpreter: Any,
        labels: Labels,
        *,
        history: HistoryPolicy | None = None,
        runtime_name: str = "",
        threads: int = 0,
        model_path: str = "",
    ) -> None:
        self.interpreter = interpreter
        self.signature = read_signature(interpreter)
        check_label_count(labels, self.signature.num_classes)
        self.labels = labels
        self.history = history or PlainHistory()
        self.runtime_name = runtime_name
        self.threads = threads
        self.model_path = model_path
        sig = self.signature
        self._logits = np.empty(sig.num_classes, dtype=np.float32)
        self._probs = np.empty(sig.num_classes, dtype=np.float32)
        self._state_views = [
            (tensor_view(interpreter, s.input_index), tensor_view(interpreter, s.output_index))
            for s in sig.states
        ]
        live_pools = [
            p for p in sig.pool_pairs if not (p.buffer.passthrough or p.count.passthrough)
        ]
        pooled = {s.name for p in live_pools for s in (p.buffer, p.count)}
        self._carried = [
            views
            for s, views in zip(sig.states, self._state_views)
            if not s.passthrough and s.name not in pooled
        ]
        self.history.attach([
            PoolSlot(
                p.buffer.name,
                tensor_view(interpreter, p.buffer.input_index),
                tensor_view(interpreter, p.buffer.output_index),
                tensor_view(interpreter, p.count.input_index),
                tensor_view(interpreter, p.count.output_index),
                input_grid(interpreter, p.buffer.input_index),
            )
            for p in live_pools
        ])
        image = tensor_view(interpreter, sig.image_index)[0, 0]
        self._byte_image = sig.image_dtype == np.int8
        # A byte image is written as uint8 and flipped to int8 in place (v ^ 0x80 = v - 128).
        self._image = image.view(np.uint8) if self._byte_image else image
        # A float image is resized here first; a byte image is resized in place.
        self._resized = self._image if self._byte_image else np.empty(
            (sig.input_height, sig.input_width, 3), dtype=np.uint8)
        self._logits_out = tensor_view(interpreter, sig.logits_index)[0]
        self.steps = 0
        self.reset()
        self._check_it_runs()
        self.reset()

    def _check_it_runs(self) -> None:
        """One step on a black frame, so that a model the runtime cannot execute is
        refused at start-up, before a camera or window opens, not on the first frame."""
        self._image.fill(0x80 if self._byte_image else 0)  # black: int8 -128 or 0.0
        try:
            self.interpreter.invoke()
        except (RuntimeError, ValueError) as e:
            runtime = self.runtime_name or "this TFLite runtime"
            raise MovinetPiError(
                f"the model does not run on {runtime}: {one_line(e, first=True)} "
                "(install a newer runtime: pip install -U ai-edge-litert)"
            ) from e
        self._check_views_stay_put()

    def _check_views_stay_put(self) -> None:
        """The lasting views (:func:`tensor_view`) need tensors that an invoke does not
        move; a model with dynamically sized tensors could. Refuse it rather than read
        freed memory."""
        sig = self.signature
        indices = [sig.image_index, sig.logits_index]
        indices += [i for s in sig.states for i in (s.input_index, s.output_index)]
        views = [self._image, self._logits_out]
        views += [v for pair in self._state_views for v in pair]
        for index, view in zip(indices, views):
            if self.interpreter.tensor(index)().ctypes.data != view.ctypes.data:
                raise MovinetPiError(
                    "the model's tensors move while it runs (dynamic shapes): "
                    "not a streaming MoViNet this app can run (export it with fixed shapes)"
                )

    @classmethod
    def from_file(
        cls,
        model_path: str | Path,
        labels: Labels | None = None,
        *,
        threads: int | None = None,
        history: HistoryPolicy | None = None,
        runtime: Any = None,
    ) -> StreamingClassifier:
        """Load a model; labels default to those embedded in the model."""
        from movinet_pi.labels import embedded_labels
        from movinet_pi.runtime import default_threads

        threads = threads or default_threads()
        interpreter, rt = load_streaming_interpreter(model_path, threads, runtime)
        if labels is None:
            labels = embedded_labels(model_path)
        if labels is None:
            sig = read_signature(interpreter)
            labels = Labels(tuple(f"class {i}" for i in range(sig.num_classes)), "<none>")
        return cls(
            interpreter,
            labels,
            history=history,
            runtime_name=rt.name,
            threads=threads,
            model_path=str(model_path),
        )

    @property
    def input_size(self) -> tuple[int, int]:
        return self.signature.input_size

    @property
    def num_classes(self) -> int:
        return self.signature.num_classes

    def reset(self) -> None:
        """Start a new stream: every state back to zero."""
        for state, (state_in, _) in zip(self.signature.states, self._state_views):
            state_in.fill(state.zero)
        self.history.reset()
        self.steps = 0

    def preprocess(self, rgb: np.ndarray) -> None:
        """Resize an RGB uint8 frame of any size into the model's image input: floats in
        [0, 1], or, for a narrowed int8 image, the exact int8 form of those floats."""
        h, w = self.signature.input_height, self.signature.input_width
        resized = self._resized
        if rgb.shape[0] == h and rgb.shape[1] == w:
            np.copyto(resized, rgb[:, :, :3])
        else:
            cv2.resize(rgb, (w, h), dst=resized, interpolation=cv2.INTER_AREA)
        if self._byte_image:
            np.bitwise_xor(resized, 0x80, out=resized)
        else:
            # Divide rather than multiply by 1/255: bit-identical to the usual `x / 255.0`.
            np.divide(resized, np.float32(255.0), out=self._image, casting="unsafe")

    def invoke(self) -> None:
        """Run the model on the image already in the input tensor, then carry states."""
        self.interpreter.invoke()
        self.carry()

    def carry(self) -> None:
        """After an invoke: keep the logits, and make this step's states the next inputs."""
        np.copyto(self._logits, self._logits_out)
        for state_in, state_out in self._carried:
            np.copyto(state_in, state_out)
        self.history.carry()
        self.steps += 1

    def step(self, rgb: np.ndarray) -> np.ndarray:
        """Feed one RGB frame; return class probabilities (a buffer reused next step)."""
        self.preprocess(rgb)
        self.invoke()
        return softmax(self._logits, out=self._probs)

    @property
    def logits(self) -> np.ndarray:
        """Logits of the last step (a buffer reused next step)."""
        return self._logits

    def top_k(
        self,
        probs: np.ndarray,
        k: int,
        threshold: float = 0.0,
        label_filter: LabelFilter | None = None,
    ) -> list[Prediction]:
        """The k most probable classes at or above ``threshold``, best first."""
        if label_filter is not None and label_filter.active:
            probs = np.where(label_filter.mask, probs, -1.0)
        k = min(k, probs.shape[-1])
        idx = np.argpartition(probs, -k)[-k:]
        idx = idx[np.argsort(probs[idx])[::-1]]
        return [
            Prediction(self.labels[i], float(probs[i]), int(i))
            for i in idx
            if probs[i] >= threshold and probs[i] >= 0.0
        ]
