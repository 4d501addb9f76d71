"""``movinet-pi bench``: where a step's time goes, on this machine, with this model.

Each step is timed stage by stage, as the live app runs them:

* ``capture``    reading (decoding) the next frame from the file, or making a synthetic one;
* ``preprocess`` resize to the model's input and normalise into the input tensor;
  beside it (not part of the step), the same from a lores-sized frame: what the Pi
  camera's ISP hands the model (its lores stream, YUV420 at the model's input size:
  converted to RGB, then copied in), so the saving of not resizing a full frame on
  the CPU shows;
* ``invoke``     the interpreter call;
* ``carry``      logits out, states back in, and the history policy (``--history``,
  default auto), whose own part is shown as ``memory``: its look at the picture before the
  invoke and its carry after it; the worst of it at a change of scene is shown too;
* ``answer``     the softmax and the shown list: reading the step's answer, which a
  bare ``invoke()`` has no part of either;
* ``overlay``    drawing the predictions over the picture as the window would show it;
  beside it (not part of the step), ``--roi auto`` finding its box in the frame
  (:class:`~movinet_pi.sources.roi_auto.AutoRoi`: the motion on a small grey copy, the box
  kept steady), as a share of our model step.

A second interpreter of the same model file, loaded as published, runs bare
``invoke()`` calls in blocks alternating with ours (so that drift in the
machine's speed hits both alike, while each keeps its memory in cache as it
would running alone); the overhead of our step is ``(invoke + carry) / bare
invoke - 1``. Ours runs the graph with its states and image narrowed to int8
where exact (:mod:`movinet_pi.model.graph`), so its invoke alone can be the
faster of the two.
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import cv2
import numpy as np

from movinet_pi.display.overlay import OverlayState, draw_overlay
from movinet_pi.display.shown import ShownList
from movinet_pi.model.catalogue import MODEL_FPS
from movinet_pi.model.classifier import StreamingClassifier
from movinet_pi.progress import counted
from movinet_pi.sources.picamera_lib import rgb_from_picamera
from movinet_pi.sources.roi_auto import AutoRoi

STAGES = ("capture", "preprocess", "invoke", "carry", "answer", "overlay")
BLOCK = 20  # steps in a row before switching between ours and the bare interpreter


@dataclass
class BenchResult:
    model: str
    runtime: str
    threads: int
    input_size: tuple[int, int]
    frame_size: tuple[int, int]
    source: str
    times_ms: dict[str, list[float]] = field(default_factory=dict)
    history: str = ""

    def p50(self, stage: str) -> float:
        return statistics.median(self.times_ms[stage])

    def p99(self, stage: str) -> float:
        values = sorted(self.times_ms[stage])
        return values[min(len(values) - 1, int(0.99 * len(values)))]

    @property
    def steps(self) -> int:
        return len(self.times_ms["invoke"])

    @property
    def step_ms_p50(self) -> float:
        """Our model step: invoke + carry (what a bare invoke is compared with)."""
        return statistics.median(
            a + b for a, b in zip(self.times_ms["invoke"], self.times_ms["carry"])
        )

    @property
    def total_ms_p50(self) -> float:
        """Everything for one step, capture to overlay."""
        return statistics.median(sum(t) for t in zip(*(self.times_ms[s] for s in STAGES)))

    @property
    def carry_pct(self) -> float:
        return self.p50("carry") / self.p50("bare_invoke") * 100.0

    @property
    def invoke_pct(self) -> float:
        """Our invoke against the bare one: negative when narrowing made it faster."""
        return (self.p50("invoke") / self.p50("bare_invoke") - 1.0) * 100.0

    @property
    def memory_pct(self) -> float:
        """The history policy's part of our step (invoke + carry)."""
        return self.p50("memory") / self.step_ms_p50 * 100.0

    @property
    def roi_auto_pct(self) -> float:
        """``--roi auto``'s box against our model step."""
        return self.p50("roi_auto") / self.step_ms_p50 * 100.0

    @property
    def overhead_pct(self) -> float:
        return (self.step_ms_p50 / self.p50("bare_invoke") - 1.0) * 100.0

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "model": self.model,
            "runtime": self.runtime,
            "threads": self.threads,
            "input": list(self.input_size),
            "frame": list(self.frame_size),
            "source": self.source,
            "steps": self.steps,
            "invoke_ms_p50": round(self.p50("invoke"), 4),
            "bare_invoke_ms_p50": round(self.p50("bare_invoke"), 4),
            "step_ms_p50": round(self.step_ms_p50, 4),
            "total_ms_p50": round(self.total_ms_p50, 4),
            "steps_per_s": round(1000.0 / self.total_ms_p50, 2),
            "overhead_pct": round(self.overhead_pct, 2),
            "carry_pct": round(self.carry_pct, 2),
            "invoke_pct": round(self.invoke_pct, 2),
            "history": self.history,
            "memory_ms_p50": round(self.p50("memory"), 4),
            "memory_pct": round(self.memory_pct, 2),
        }
        if self.times_ms.get("memory_at_change"):
            data["memory_at_change_ms_max"] = round(max(self.times_ms["memory_at_change"]), 4)
            data["changes"] = len(self.times_ms["memory_at_change"])
        if self.times_ms.get("preprocess_lores"):
            data["preprocess_lores_ms_p50"] = round(self.p50("preprocess_lores"), 4)
            data["preprocess_lores_ms_p99"] = round(self.p99("preprocess_lores"), 4)
        if self.times_ms.get("roi_auto"):
            data["roi_auto_ms_p50"] = round(self.p50("roi_auto"), 4)
            data["roi_auto_ms_p99"] = round(self.p99("roi_auto"), 4)
            data["roi_auto_pct"] = round(self.roi_auto_pct, 2)
        for stage in STAGES:
            data[f"{stage}_ms_p50"] = round(self.p50(stage), 4)
            data[f"{stage}_ms_p99"] = round(self.p99(stage), 4)
        return data

    def format(self) -> str:
        """A short table (one row a stage, then the step and the bare invoke) and one
        plain sentence; ``--json`` has every number."""
        w, h = self.input_size
        lines = [
            f"{self.model}: input {w}x{h}, {self.runtime}, {counted(self.threads, 'thread')}, "
            f"{counted(self.steps, 'step')} on {self.source} "
            f"({self.frame_size[0]}x{self.frame_size[1]})",
            "",
            f"  {'stage':<32}{'p50 ms':>9}{'p99 ms':>9}",
        ]
        rows = [(STAGE_NAMES[s], self.p50(s), self.p99(s)) for s in STAGES]
        rows.insert(STAGES.index("carry") + 1, (f"  of it, memory ({self.history})",
                                                self.p50("memory"), self.p99("memory")))
        if self.times_ms.get("memory_at_change"):
            at_change = self.times_ms["memory_at_change"]
            rows.insert(STAGES.index("carry") + 2, (
                f"  worst at a change ({len(at_change)})", max(at_change), None))
        if self.times_ms.get("preprocess_lores"):
            rows.insert(STAGES.index("preprocess") + 1, (
                f"  instead, from {w}x{h} lores", self.p50("preprocess_lores"),
                self.p99("preprocess_lores")))
        if self.times_ms.get("roi_auto"):
            rows.append(("  beside it, --roi auto's box", self.p50("roi_auto"),
                         self.p99("roi_auto")))
        rows.append(("whole step, capture to overlay", self.total_ms_p50, None))
        rows.append(("model step (invoke + carry)", self.step_ms_p50, None))
        rows.append(("bare invoke of the same file", self.p50("bare_invoke"),
                     self.p99("bare_invoke")))
        for name, p50, p99 in rows:
            lines.append(f"  {name:<32}{p50:9.2f}" + (f"{p99:9.2f}" if p99 is not None else ""))
        ratio = self.overhead_pct
        compared = (f"{abs(ratio):.0f} % {'slower' if ratio > 0 else 'faster'} than"
                    if abs(ratio) >= 0.5 else "as fast as")
        lines += [
            "",
            f"A step takes {self.total_ms_p50:.1f} ms from capture to overlay, so this machine "
            f"manages {1000.0 / self.total_ms_p50:.0f} steps a second (the model needs 5); "
            f"our model step is {compared} a bare invoke of the same file.",
        ]
        if self.times_ms.get("preprocess_lores"):
            lines.append(
                f"With the Pi camera the model reads the ISP's {w}x{h} lores stream instead "
                f"of resizing the {self.frame_size[0]}x{self.frame_size[1]} frame: "
                f"preprocess {self.p50('preprocess'):.2f} -> "
                f"{self.p50('preprocess_lores'):.2f} ms (the YUV420 -> RGB conversion "
                "included).")
        if self.times_ms.get("roi_auto"):
            lines.append(
                f"--roi auto finds its box in {self.p50('roi_auto'):.3f} ms a step, "
                f"{self.roi_auto_pct:.1f} % of our model step; the model then reads that part "
                "of the frame, which takes less to resize than all of it.")
        return "\n".join(lines)


STAGE_NAMES = {
    "capture": "capture (read a frame)",
    "preprocess": "preprocess (resize, normalise)",
    "invoke": "invoke (the model)",
    "carry": "carry (states, memory)",
    "answer": "answer (softmax, shown)",
    "overlay": "overlay (draw the labels)",
}


def synthetic_frames(size: tuple[int, int], seed: int = 0) -> Iterator[np.ndarray]:
    """Moving noise of the camera's size: no decoder needed, never ends."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1], size[0] * 2, 3), dtype=np.uint8)
    for i in itertools.count():
        shift = (i * 7) % size[0]
        yield base[:, shift : shift + size[0]]


def file_frames(path: Path) -> Iterator[np.ndarray]:
    """A video file's frames (RGB), looped."""
    from movinet_pi.sources.open import open_source

    while True:
        source = open_source(str(path))
        try:
            frame = source.read()
            if frame is None:
                return
            while frame is not None:
                yield frame.rgb
                frame = source.read()
        finally:
            source.close()


def run_bench(
    classifier: StreamingClassifier,
    bare_interpreter: object,
    frames: Iterator[np.ndarray],
    *,
    steps: int,
    model_name: str,
    source_name: str,
    warmup: int = 10,
) -> BenchResult:
    """Time ``steps`` stream steps stage by stage (after ``warmup`` untimed ones)."""
    _zero_inputs(bare_interpreter)
    shown = ShownList(classifier.labels, k=3, logit_step=classifier.logit_step)
    times: dict[str, list[float]] = {
        s: [] for s in (*STAGES, "bare_invoke", "memory", "memory_at_change",
                        "preprocess_lores", "roi_auto")}
    roi = AutoRoi(classifier.input_size, fps=MODEL_FPS)
    memory = _time_history(classifier)
    frame_size = (0, 0)
    done = 0
    while done < warmup + steps:
        block = min(BLOCK, warmup + steps - done)
        for i in range(done, done + block):
            t0 = time.perf_counter()
            rgb = next(frames, None)
            if rgb is None:
                return _result(classifier, model_name, source_name, frame_size, times)
            t1 = time.perf_counter()
            classifier.preprocess(rgb)
            t2 = time.perf_counter()
            memory[0] = 0.0
            changes = _changes(classifier)
            classifier.begin()  # the policy's look at the picture: counted in the carry
            t2_invoke = time.perf_counter()
            classifier.interpreter.invoke()
            t3 = time.perf_counter()
            classifier.carry()
            t4_carry = time.perf_counter()
            top = shown.update(classifier.probabilities())
            t4 = time.perf_counter()
            draw_overlay(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), OverlayState(top, model_name))
            t5 = time.perf_counter()
            lores_ms = _time_lores_preprocess(classifier, rgb)  # (after the step: beside it)
            t6 = time.perf_counter()
            roi.update(rgb, i / MODEL_FPS)
            roi_ms = (time.perf_counter() - t6) * 1000.0
            frame_size = (rgb.shape[1], rgb.shape[0])
            if i >= warmup:
                spans = (t1 - t0, t2 - t1, t3 - t2_invoke, t4_carry - t3 + t2_invoke - t2,
                         t4 - t4_carry, t5 - t4)
                for stage, seconds in zip(STAGES, spans):
                    times[stage].append(seconds * 1000.0)
                times["memory"].append(memory[0] * 1000.0)
                if _changes(classifier) != changes:
                    times["memory_at_change"].append(memory[0] * 1000.0)
                times["preprocess_lores"].append(lores_ms)
                times["roi_auto"].append(roi_ms)
        for i in range(done, done + block):  # then as many bare invokes, on their own
            t0 = time.perf_counter()
            bare_interpreter.invoke()  # type: ignore[attr-defined]
            if i >= warmup:
                times["bare_invoke"].append((time.perf_counter() - t0) * 1000.0)
        done += block
    return _result(classifier, model_name, source_name, frame_size, times)


def _time_lores_preprocess(classifier: StreamingClassifier, rgb: np.ndarray) -> float:
    """Milliseconds to preprocess ``rgb`` as the Pi camera's lores stream would give it
    (made first, untimed: the ISP's work)."""
    lores = _lores_of(rgb, classifier.input_size)
    started = time.perf_counter()
    classifier.preprocess(rgb_from_picamera(lores, "YUV420", lores.shape[1]))
    return (time.perf_counter() - started) * 1000.0


def _lores_of(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` as the Pi camera's lores stream would give it at ``size``: I420 planes,
    shaped (h * 3 / 2, w) as picamera2's ``make_array`` returns them."""
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2YUV_I420)


def _time_history(classifier: StreamingClassifier) -> list[float]:
    """Time the history policy's work inside the classifier's (its look at the picture
    before the invoke and its carry after it; seconds, summed over a step, in the list
    returned)."""
    policy = classifier.history
    begin, carry = policy.begin, policy.carry
    spent = [0.0]

    def timed_begin(picture: np.ndarray) -> bool:
        t0 = time.perf_counter()
        fresh = begin(picture)
        spent[0] += time.perf_counter() - t0
        return fresh

    def timed_carry() -> None:
        t0 = time.perf_counter()
        carry()
        spent[0] += time.perf_counter() - t0

    policy.begin = timed_begin  # type: ignore[method-assign]
    policy.carry = timed_carry  # type: ignore[method-assign]
    return spent


def _changes(classifier: StreamingClassifier) -> tuple[int, ...]:
    """The history policy's count of scene changes it has acted on (forks at another
    place, changes of action, folds back), where it keeps one: a step that moves it is
    a step at a change."""
    history = classifier.history
    return tuple(getattr(history, name, 0) for name in ("forks", "changes", "folds"))


def _zero_inputs(interpreter: object) -> None:
    """A fresh interpreter's inputs hold whatever was in memory; a garbage frame count
    can make a quantized model divide by zero. Start the bare one from zeros too."""
    for detail in interpreter.get_input_details():  # type: ignore[attr-defined]
        interpreter.set_tensor(  # type: ignore[attr-defined]
            detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))


def _result(
    classifier: StreamingClassifier,
    model_name: str,
    source_name: str,
    frame_size: tuple[int, int],
    times: dict[str, list[float]],
) -> BenchResult:
    return BenchResult(
        model=model_name,
        runtime=classifier.runtime_name,
        threads=classifier.threads,
        input_size=classifier.input_size,
        frame_size=frame_size,
        source=source_name,
        times_ms=times,
        history=classifier.history.label,
    )


def print_result(result: BenchResult, as_json: bool, out: IO[str]) -> None:
    out.write((json.dumps(result.to_json()) if as_json else result.format()) + "\n")
