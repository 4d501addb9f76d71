"""StreamingClassifier: one frame in, class probabilities out, states carried; and the top k.

The signature (image, logits, states) is read from the model
(:mod:`movinet_pi.model.signature`); how far back the running averages reach is
a history policy's (:mod:`movinet_pi.model.history`).

The hot path allocates nothing per step: the frame is resized into a
preallocated buffer and normalised straight into the interpreter's input
tensor, and each output state is copied straight into its input tensor.

An int8 model is run with its stream states and image as int8 where that is
exact (:mod:`movinet_pi.model.graph`): the official A0 then carries 0.67 MB
of state per frame instead of 2.7 MB, skips 5 MB of (de)quantizing inside the
call, and is fed ``uint8 ^ 0x80`` instead of floats. The logits are the same to
the bit (``tests/test_graph.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.model.head import HeadScorer, head_only
from movinet_pi.model.history import HistoryPolicy, PlainHistory
from movinet_pi.model.labels import (
    Labels,
    check_label_count,
    embedded_labels,
    load_labels,
    resolve_labels,
)
from movinet_pi.model.pools import PoolSlot, frame_feature_tensor, input_grid, output_step
from movinet_pi.model.predictions import Prediction, softmax, top_k_indices
from movinet_pi.model.runtime import Runtime, check_model_file, default_threads
from movinet_pi.model.signature import (
    PoolPair,
    load_streaming_interpreter,
    read_signature,
    tensor_view,
)
from movinet_pi.model.taught import TaughtHead, read_taught


def head_scorer_for(model_path: str | Path, runtime: Runtime) -> HeadScorer | None:
    """The model's head on its own (:mod:`movinet_pi.model.head`), if its graph has one."""
    head = head_only(check_model_file(Path(model_path)))
    return None if head is None else HeadScorer(head, runtime.interpreter_class)


@dataclass
class StreamSnapshot:
    """A stream's whole state at one step (:meth:`StreamingClassifier.snapshot`)."""

    states: list[np.ndarray]
    history: dict[str, Any]
    logits: np.ndarray
    steps: int


class ClassFilter(Protocol):
    """Which classes may be reported (``--allow``/``--deny``:
    :class:`movinet_pi.display.shown.LabelFilter`)."""

    mask: np.ndarray  # True: may be reported
    active: bool  # False: every class may


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
        head: TaughtHead | None = None,
        head_scorer: HeadScorer | None = None,
    ) -> None:
        self.interpreter = interpreter
        self.signature = read_signature(interpreter)
        self.head = head  # a taught head (movinet-pi teach): its classes replace the logits
        check_label_count(labels, head.num_classes if head else self.signature.num_classes)
        self.labels = labels
        self.history = history or PlainHistory()
        self.runtime_name = runtime_name
        self.threads = threads
        self.model_path = model_path
        sig = self.signature
        self._logits = np.empty(sig.num_classes, dtype=np.float32)
        self._probs = np.empty(head.num_classes if head else sig.num_classes, np.float32)
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
        self._head_scorer = head_scorer  # the model's own head, alone (history policies)
        scorer = self._score if head is not None or head_scorer is not None else None
        self._byte_image = sig.image_dtype == np.int8
        self.history.attach([self._pool_slot(p) for p in live_pools], scorer,
                            picture_flip=0x80 if self._byte_image else 0)
        self._head_slot = self._find_head_slot() if head else None
        image = tensor_view(interpreter, sig.image_index)[0, 0]
        # A byte image is written as uint8 and flipped to int8 in place (v ^ 0x80 = v - 128).
        self._image = image.view(np.uint8) if self._byte_image else image
        # A float image is resized here first; a byte image is resized in place.
        self._resized = self._image if self._byte_image else np.empty(
            (sig.input_height, sig.input_width, 3), dtype=np.uint8)
        self._logits_out = tensor_view(interpreter, sig.logits_index)[0]
        #: the resolution of the answer in logits: an int8 model's output grid step (0.0 for
        #: a float model or a taught head), which the shown list's order holds within
        #: (:class:`~movinet_pi.display.shown.ShownList`)
        self.logit_step = 0.0 if head else output_step(interpreter, sig.logits_index)
        self.steps = 0
        self.reset()
        self._check_it_runs()
        self.reset()

    def _pool_slot(self, pair: PoolPair) -> PoolSlot:
        interpreter = self.interpreter
        feature = frame_feature_tensor(interpreter, pair.buffer.input_index)
        return PoolSlot(
            pair.buffer.name,
            tensor_view(interpreter, pair.buffer.input_index),
            tensor_view(interpreter, pair.buffer.output_index),
            tensor_view(interpreter, pair.count.input_index),
            tensor_view(interpreter, pair.count.output_index),
            input_grid(interpreter, pair.buffer.input_index),
            feature=None if feature is None else tensor_view(interpreter, feature.index),
            feature_grid=feature,
        )

    def _find_head_slot(self) -> PoolSlot:
        heads = [s for s in self.history.slots if "head" in s.name]
        if not heads:
            raise MovinetPiError(f"{self.model_path or 'the model'} carries a taught head but "
                                 "has no head pool state: not the model it was taught on")
        return heads[-1]

    def head_features(self) -> np.ndarray:
        """What the classifier head saw at the last step: the head pool's mean (its
        running sum over its count), as float32; or the mean the history policy shows
        instead (:attr:`HistoryPolicy.shown_mean`)."""
        shown = self.history.shown_mean
        if shown is not None:
            return shown.astype(np.float32)
        slot = self._head_slot or self._find_head_slot()
        count = max(float(slot.count_out.reshape(-1)[0]), 1.0)
        return slot.buffer_out.reshape(-1).astype(np.float32) / np.float32(count)

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
        for slot in self.history.slots:
            if slot.feature is not None and slot.feature_grid is not None:
                indices.append(slot.feature_grid.index)
                views.append(slot.feature)
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
        threads = threads or default_threads()
        interpreter, rt = load_streaming_interpreter(model_path, threads, runtime)
        head = read_taught(model_path)
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
            head=head,
            head_scorer=None if head is not None else head_scorer_for(model_path, rt),
        )

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        threads: int,
        labels: Labels | str | Path | None = None,
        *,
        history: HistoryPolicy | None = None,
        download_labels: Callable[[], Path] | None = None,
        quiet: bool = True,
    ) -> StreamingClassifier:
        """Load a model as the app and ``eval`` do: ``labels`` given (a label file is read
        once the model has loaded), else chosen by :func:`~movinet_pi.model.labels.resolve_labels`,
        which calls ``download_labels`` only if it must fetch the Kinetics-600 map.
        ``quiet`` silences the runtime's own chatter on stderr while it loads."""
        interpreter, runtime = load_streaming_interpreter(model_path, threads, quiet=quiet)
        signature = read_signature(interpreter)
        if isinstance(labels, (str, Path)):
            labels = load_labels(labels)
        head = read_taught(model_path)
        labels = resolve_labels(model_path, head.num_classes if head else signature.num_classes,
                                labels, download=download_labels)
        return cls(interpreter, labels, history=history, runtime_name=runtime.name,
                   threads=threads, model_path=str(model_path), head=head,
                   head_scorer=None if head is not None else head_scorer_for(model_path, runtime))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.signature.input_size

    @property
    def num_classes(self) -> int:
        return len(self._probs)  # a taught head's classes, else the model's

    def reset(self) -> None:
        """Start a new stream: every state back to zero."""
        self._zero_states()
        self.history.reset()
        self.steps = 0

    def new_view(self) -> None:
        """The next frame is of another view (the crop moved): what the model saw before is
        of another picture. ``--history auto`` starts a fresh stream there and keeps the
        old memory aside until the new view's answer says whether the action is the same
        (:mod:`movinet_pi.model.adaptive`); other policies start afresh."""
        if not self.history.new_view():
            self.reset()

    def _zero_states(self) -> None:
        for state, (state_in, _) in zip(self.signature.states, self._state_views):
            state_in.fill(state.zero)

    def snapshot(self) -> StreamSnapshot:
        """Everything the next steps depend on: the state tensors, the history policy's
        memory and the last logits. :meth:`restore` puts it back, so one stream can be
        branched (benchmarks run many endings from one long beginning)."""
        history = {k: copy.deepcopy(v) for k, v in vars(self.history).items()
                   if k not in ("slots", "score")}
        return StreamSnapshot(
            states=[state_in.copy() for state_in, _ in self._state_views],
            history=history,
            logits=self._logits.copy(),
            steps=self.steps,
        )

    def restore(self, snapshot: StreamSnapshot) -> None:
        """Continue from a :meth:`snapshot` of this classifier."""
        for (state_in, _), saved in zip(self._state_views, snapshot.states):
            np.copyto(state_in, saved)
        for name, value in snapshot.history.items():
            setattr(self.history, name, copy.deepcopy(value))
        np.copyto(self._logits, snapshot.logits)
        self.steps = snapshot.steps

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
        self.begin()
        self.interpreter.invoke()
        self.carry()

    def begin(self) -> None:
        """Before the invoke: the history policy sees the picture, and may start a fresh
        stream at this frame (every state zeroed, as :meth:`reset` would, but keeping what
        the policy keeps)."""
        if self.history.begin(self._resized):
            self._zero_states()

    def carry(self) -> None:
        """After an invoke: keep the logits, and make this step's states the next inputs."""
        self._carry_states()
        self.history.carry()
        self.steps += 1
        shown = self.history.shown_mean
        if shown is not None and self._head_scorer is not None:
            np.copyto(self._logits, self._head_scorer.logits(shown))

    def _carry_states(self) -> None:
        np.copyto(self._logits, self._logits_out)
        for state_in, state_out in self._carried:
            np.copyto(state_in, state_out)

    def _score(self, mean: np.ndarray) -> np.ndarray:
        """The class probabilities this model gives a head-pool mean (a taught head's, or
        the model's own head alone): what a history policy weighs its memories with."""
        if self.head is not None:  # (without its "no answer": a policy weighs every class)
            return softmax(self.head.scores(mean.astype(np.float32)).astype(np.float64))
        assert self._head_scorer is not None
        return self._head_scorer.probabilities(mean)

    def step(self, rgb: np.ndarray) -> np.ndarray:
        """Feed one RGB frame; return class probabilities (a buffer reused next step)."""
        self.preprocess(rgb)
        self.invoke()
        return self.probabilities()

    def probabilities(self) -> np.ndarray:
        """The last step's class probabilities (a buffer reused next step): the softmax of
        the logits, or a taught head's answer on the head pool's mean."""
        if self.head is not None:
            return self.head.probs(self.head_features(), out=self._probs)
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
        label_filter: ClassFilter | None = None,
    ) -> list[Prediction]:
        """The k most probable classes at or above ``threshold``, best first."""
        if label_filter is not None and label_filter.active:
            probs = np.where(label_filter.mask, probs, -1.0)
        return [
            Prediction(self.labels[i], float(probs[i]), int(i))
            for i in top_k_indices(probs, k)
            if probs[i] >= threshold and probs[i] >= 0.0
        ]
