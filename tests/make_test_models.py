"""Build the tiny streaming models in tests/data/ (and the synthetic clips tests feed them).

Run with TensorFlow, which the project itself never needs (keep it out of the dev venv)::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python tests/make_test_models.py          # writes tests/data/*.tflite

The models have the shape of a MoViNet stream export, so every code path that reads a
streaming signature runs on them, but their weights are set by hand so that their predictions
are *known*: a class is a dominant colour (red / green / blue), and in the ``motion`` models
also whether the picture moves. Per step, on an ``image`` [1, 1, H, W, 3] in [0, 1]:

* ``state_block0_layer0_stream_buffer`` [1, 1, 8, 8, 3] is a causal temporal convolution's
  buffer, as in MoViNet: it holds the previous frame averaged down to an 8x8 grid, and the
  step's motion feature is the mean |this grid - that grid| (0 on the first step);
* ``state_head_pool_buffer`` [1, 1, 1, 1, 4] / ``state_head_pool_frame_count`` [1] int32 are a
  running sum of the per-frame features (mean R, G, B, motion) and the number of frames
  summed (+1 a step): the head classifies their ratio, the mean since the stream started;
* ``logits`` [1, N] is a fixed linear map of that mean.

The clip helpers at the bottom (:func:`clip_frames`, :func:`write_clip`) need only numpy and
OpenCV: tests import them to generate clips the models classify with certainty. TensorFlow is
imported inside the build functions only.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

DATA = Path(__file__).resolve().parent / "data"

GRID = 8  # the stream buffer's spatial size
FEATURES = 4  # mean R, G, B and motion
STREAM_STATE = "state_block0_layer0_stream_buffer"
POOL_BUFFER_STATE = "state_head_pool_buffer"
POOL_COUNT_STATE = "state_head_pool_frame_count"

COLOURS = ("red", "green", "blue")
#: RGB of each class colour in the synthetic clips.
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 200, 40),
    "blue": (40, 60, 220),
}
BACKGROUND_RGB = (30, 30, 30)
COLOUR_GAIN = 20.0  # logit per unit of (channel mean - mean of the three)
MOTION_GAIN = 300.0  # logit per unit of mean |frame difference| above the threshold
MOTION_THRESHOLD = 0.01  # mean |difference| on the 8x8 grid: still clips stay far below


# --- the hand-set heads ----------------------------------------------------------------------


def colour_head() -> tuple[list[str], np.ndarray, np.ndarray]:
    """3 classes, red / green / blue: the channel whose mean stands out."""
    w = np.zeros((FEATURES, 3), np.float32)
    w[:3, :3] = COLOUR_GAIN * (np.eye(3) - 1.0 / 3.0)
    return list(COLOURS), w, np.zeros(3, np.float32)


def motion_head() -> tuple[list[str], np.ndarray, np.ndarray]:
    """6 classes, colour x (still, moving): each logit is a colour term plus a motion term,
    so the arg-max is the best colour paired with the right side of the motion threshold."""
    names, columns, biases = [], [], []
    for c, colour in enumerate(COLOURS):
        for moving in (False, True):
            sign = 1.0 if moving else -1.0
            col = np.zeros(FEATURES, np.float32)
            col[:3] = COLOUR_GAIN * (np.eye(3)[c] - 1.0 / 3.0)
            col[3] = sign * MOTION_GAIN
            names.append(f"{colour} {'moving' if moving else 'still'}")
            columns.append(col)
            biases.append(-sign * MOTION_GAIN * MOTION_THRESHOLD)
    return names, np.stack(columns, axis=1), np.asarray(biases, np.float32)


# --- building -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One file to write."""

    filename: str
    size: int  # input height = width
    head: Callable[[], tuple[list[str], np.ndarray, np.ndarray]]
    signature_key: str = "serving_default"
    float16: bool = False
    labels_file: str = ""  # written beside the model
    embed_labels: bool = False  # also append the labels as a TFLite associated-file zip


STREAMING = (
    Variant("tiny_rgb_stream.tflite", 64, colour_head, labels_file="tiny_rgb_labels.txt"),
    Variant("tiny_rgb_stream_f16.tflite", 64, colour_head, float16=True),
    Variant("tiny_motion_call.tflite", 172, motion_head, signature_key="call",
            labels_file="tiny_motion_labels.txt", embed_labels=True),
    Variant("tiny_motion_224.tflite", 224, motion_head),
)


def _stream_step(size: int, head: Callable[[], tuple[list[str], np.ndarray, np.ndarray]]
                 ) -> Callable[..., dict[str, Any]]:
    import tensorflow as tf

    _, weights, bias = head()
    w = tf.constant(weights)
    b = tf.constant(bias)
    cell = size // GRID

    def step(image: Any, stream: Any, pool_sum: Any, pool_count: Any) -> dict[str, Any]:
        x = tf.reshape(image, [1, size, size, 3])
        grid = tf.reshape(tf.nn.avg_pool2d(x, cell, cell, "VALID"), [1, 1, GRID, GRID, 3])
        started = tf.cast(tf.minimum(pool_count, 1), tf.float32)  # 0 on a fresh stream
        motion = tf.reduce_mean(tf.abs(grid - stream)) * started
        colour = tf.reduce_mean(x, axis=[1, 2])  # [1, 3]
        features = tf.concat([colour, tf.reshape(motion, [1, 1])], axis=1)
        new_sum = pool_sum + tf.reshape(features, [1, 1, 1, 1, FEATURES])
        new_count = pool_count + 1
        mean = tf.reshape(new_sum, [1, FEATURES]) / tf.cast(new_count, tf.float32)
        return {
            "logits": tf.matmul(mean, w) + b,
            STREAM_STATE: grid,
            POOL_BUFFER_STATE: new_sum,
            POOL_COUNT_STATE: new_count,
        }

    return step


def _convert(fn: Any, key: str, float16: bool = False) -> bytes:
    """Concrete function -> SavedModel with one signature under ``key`` -> TFLite bytes."""
    import tensorflow as tf

    module = tf.Module()
    module.fn = fn
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures={key: fn})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[key])
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def build_streaming(variant: Variant) -> bytes:
    import tensorflow as tf

    size = variant.size
    step = _stream_step(size, variant.head)

    @tf.function(input_signature=[
        tf.TensorSpec([1, 1, size, size, 3], tf.float32, name="image"),
        tf.TensorSpec([1, 1, GRID, GRID, 3], tf.float32, name=STREAM_STATE),
        tf.TensorSpec([1, 1, 1, 1, FEATURES], tf.float32, name=POOL_BUFFER_STATE),
        tf.TensorSpec([1], tf.int32, name=POOL_COUNT_STATE),
    ])
    def fn(image: Any, stream: Any, pool_sum: Any, pool_count: Any) -> dict[str, Any]:
        return step(image, stream, pool_sum, pool_count)

    return _convert(fn.get_concrete_function(), variant.signature_key, variant.float16)


def build_image_classifier(size: int = 64) -> bytes:
    """Negative test: a plain image classifier, [1, H, W, 3] -> [1, 3], no states."""
    import tensorflow as tf

    _, weights, _ = colour_head()
    w = tf.constant(weights[:3])

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="image")])
    def fn(image: Any) -> dict[str, Any]:
        return {"logits": tf.matmul(tf.reduce_mean(image, axis=[1, 2]), w)}

    return _convert(fn.get_concrete_function(), "serving_default")


def build_bad_image_shape(size: int = 64, frames: int = 2) -> bytes:
    """Negative test: states like a stream model, but the image is [1, 2, H, W, 3]."""
    import tensorflow as tf

    step = _stream_step(size, colour_head)

    @tf.function(input_signature=[
        tf.TensorSpec([1, frames, size, size, 3], tf.float32, name="image"),
        tf.TensorSpec([1, 1, GRID, GRID, 3], tf.float32, name=STREAM_STATE),
        tf.TensorSpec([1, 1, 1, 1, FEATURES], tf.float32, name=POOL_BUFFER_STATE),
        tf.TensorSpec([1], tf.int32, name=POOL_COUNT_STATE),
    ])
    def fn(image: Any, stream: Any, pool_sum: Any, pool_count: Any) -> dict[str, Any]:
        last = image[:, -1:]
        return step(last, stream, pool_sum, pool_count)

    return _convert(fn.get_concrete_function(), "serving_default")


def append_labels(model: bytes, names: Sequence[str], member: str = "labels.txt") -> bytes:
    """Labels as a TFLite associated file: a zip appended to the flatbuffer."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))  # same bytes each run
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, "\n".join(names) + "\n")
    return model + buf.getvalue()


# --- synthetic clips (numpy + OpenCV only) --------------------------------------------------


def clip_frames(colour: str, moving: bool, *, frames: int = 30, width: int = 160,
                height: int = 120, speed: int = 8) -> Iterator[np.ndarray]:
    """RGB frames of a square of ``colour`` (half the frame wide) on dark grey, still in the
    middle or bouncing left and right ``speed`` pixels a frame."""
    rgb = COLOUR_RGB[colour]
    side_w, side_h = width // 2, height // 2
    y0 = (height - side_h) // 2
    x, direction = (width - side_w) // 2, 1
    for _ in range(frames):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = BACKGROUND_RGB
        frame[y0:y0 + side_h, x:x + side_w] = rgb
        yield frame
        if moving:
            if not 0 <= x + direction * speed <= width - side_w:
                direction = -direction
            x += direction * speed


def write_clip(path: Path, colour: str, moving: bool = False, *, fps: float = 15.0,
               frames: int = 30, width: int = 160, height: int = 120) -> Path:
    """An mp4v clip of :func:`clip_frames` (2 s at 15 fps by default: 10 model steps)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for rgb in clip_frames(colour, moving, frames=frames, width=width, height=height):
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


# --- checking what was built ----------------------------------------------------------------


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize in numpy (TensorFlow's venv need not have OpenCV)."""
    ys = np.arange(size) * rgb.shape[0] // size
    xs = np.arange(size) * rgb.shape[1] // size
    return rgb[ys][:, xs]


def check_streaming(model: bytes, variant: Variant) -> None:
    """Run the model with TF's interpreter on synthetic frames: every class is predicted
    right, the pool pair is a running sum and a count +1 per step."""
    import tensorflow as tf

    names, _, _ = variant.head()
    interpreter = tf.lite.Interpreter(model_content=model)
    assert list(interpreter.get_signature_list()) == [variant.signature_key]
    runner = interpreter.get_signature_runner(variant.signature_key)
    inputs = runner.get_input_details()
    outputs = runner.get_output_details()
    states = {n: np.zeros(d["shape"], d["dtype"]) for n, d in inputs.items() if n != "image"}
    assert set(states) == {STREAM_STATE, POOL_BUFFER_STATE, POOL_COUNT_STATE}
    assert set(outputs) == {"logits", *states}
    for name in names:
        colour, _, motion = name.partition(" ")
        current = {n: v.copy() for n, v in states.items()}
        running = np.zeros(FEATURES, np.float64)
        for step, rgb in enumerate(clip_frames(colour, motion == "moving", frames=10, speed=24)):
            image = (_resize(rgb, variant.size).astype(np.float32) / 255.0)[None, None]
            out = runner(image=image, **current)
            logits = out.pop("logits")[0]
            running[:3] += image.reshape(-1, 3).mean(axis=0)
            running[3] = out[POOL_BUFFER_STATE].reshape(-1)[3]  # motion: checked by the class
            assert int(out[POOL_COUNT_STATE][0]) == step + 1, "frame count is not +1 a step"
            np.testing.assert_allclose(
                out[POOL_BUFFER_STATE].reshape(-1)[:3], running[:3], rtol=0.02, atol=1e-3
            )
            current = out
        predicted = names[int(np.argmax(logits))]
        assert predicted == name, f"{variant.filename}: {name} clip predicted as {predicted}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA, help="where to write (tests/data)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
    args.out.mkdir(parents=True, exist_ok=True)

    for variant in STREAMING:
        model = build_streaming(variant)
        check_streaming(model, variant)
        names = variant.head()[0]
        if variant.embed_labels:
            model = append_labels(model, names)
        (args.out / variant.filename).write_bytes(model)
        if variant.labels_file:
            (args.out / variant.labels_file).write_text("\n".join(names) + "\n")
        print(f"{variant.filename}: {len(model):,} bytes, {variant.size}x{variant.size}, "
              f"{len(names)} classes, signature {variant.signature_key!r}")
    for filename, model in (("image_classifier.tflite", build_image_classifier()),
                            ("bad_image_shape.tflite", build_bad_image_shape())):
        (args.out / filename).write_bytes(model)
        print(f"{filename}: {len(model):,} bytes (negative test)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
