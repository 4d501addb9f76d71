"""Our streaming step against a bare ``interpreter.invoke()``, and against a plain loop.

Runs, in alternating blocks in one process on the same model and frames:

* bare:      ``interpreter.invoke()`` alone on the model file as published (inputs left
             as they are);
* narrowed:  ``interpreter.invoke()`` alone on the graph as we run it (states and image
             as int8 where exact, see movinet_pi.model.graph): what is left of "ours"
             over this is the cost of carrying the states;
* ours:      ``StreamingClassifier.invoke()`` = invoke + logits copy + state carry;
* full:      ``StreamingClassifier.step()`` = resize/normalise + the above + softmax;
* reference: the TF tutorial's loop: signature runner, dict of states, astype/255;

and prints medians and the ratios. Goal: ours/bare ≤ 1.03; reference/full ≥ 1.25.

    python benchmarks/step_overhead.py [--model PATH] [--steps 500] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reference_loop import ReferenceLoop, sampled_rgb_frames  # noqa: E402

from movinet_pi.flags import DEFAULT_HISTORY  # noqa: E402
from movinet_pi.model.adaptive import history_policy  # noqa: E402
from movinet_pi.model.catalogue import MODEL_FPS  # noqa: E402
from movinet_pi.model.classifier import StreamingClassifier  # noqa: E402
from movinet_pi.model.labels import Labels  # noqa: E402
from movinet_pi.model.runtime import load_interpreter  # noqa: E402
from movinet_pi.model.signature import load_streaming_interpreter  # noqa: E402

SHARED = ROOT.parent / "shared"
BLOCK = 25


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path,
                    default=SHARED / "models" / "movinet_a0_stream_int8.tflite")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    labels = Labels(tuple(str(i) for i in range(600)), "bench")
    frames = list(sampled_rgb_frames(SHARED / "videos" / "arm_wrestling.mp4"))
    ours = StreamingClassifier.from_file(args.model, labels, threads=args.threads,
                                         history=history_policy(DEFAULT_HISTORY, MODEL_FPS))
    bare, _ = load_interpreter(args.model, args.threads)
    narrowed, _ = load_streaming_interpreter(args.model, args.threads)
    for interpreter in (bare, narrowed):  # from zeros, as a stream starts
        StreamingClassifier(interpreter, labels)
    ref = ReferenceLoop(args.model, threads=args.threads)

    times: dict[str, list[float]] = {
        "bare": [], "narrowed": [], "ours": [], "full": [], "reference": []}
    runs = {
        "bare": lambda rgb: bare.invoke(),
        "narrowed": lambda rgb: narrowed.invoke(),
        "ours": lambda rgb: ours.invoke(),
        "full": lambda rgb: ours.step(rgb),
        "reference": lambda rgb: ref.step(rgb),
    }
    # In blocks of BLOCK steps, variant after variant: drift in machine speed hits every
    # variant alike, and each keeps its memory in cache as it would running alone.
    for start in range(0, args.steps, BLOCK):
        for name, run in runs.items():
            for i in range(start, min(start + BLOCK, args.steps)):
                rgb = frames[i % len(frames)]
                if name == "ours":
                    ours.preprocess(rgb)
                times[name].append(timed(lambda run=run, rgb=rgb: run(rgb)))

    warm = args.steps // 10
    med = {k: statistics.median(v[warm:]) for k, v in times.items()}
    p99 = {k: sorted(v[warm:])[int(0.99 * (len(v) - warm)) - 1] for k, v in times.items()}
    print(f"model {args.model.name}, {args.steps} steps, {args.threads} threads, "
          f"ours with --history {ours.history.label} (the default)")
    for k in times:
        print(f"  {k:<10} p50 {med[k]:7.3f} ms   p99 {p99[k]:7.3f} ms")
    print(f"step overhead (ours/bare invoke): {(med['ours'] / med['bare'] - 1) * 100:+.1f} %")
    print(f"ours/bare invoke of the narrowed: {(med['ours'] / med['narrowed'] - 1) * 100:+.1f} %"
          " (the cost of carrying the states)")
    print(f"full step vs bare invoke:         {(med['full'] / med['bare'] - 1) * 100:+.1f} %")
    print(f"reference loop / our full step:   {med['reference'] / med['full']:.2f}x")


if __name__ == "__main__":
    main()
