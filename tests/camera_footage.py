"""Frames as a camera in a room films them: shared by the tests and benchmarks/camera_like.py."""

from __future__ import annotations

import numpy as np


def as_bytes(picture: np.ndarray) -> np.ndarray:
    """Levels clipped to 0..255, as uint8."""
    return np.clip(picture, 0, 255).astype(np.uint8)


def in_a_dim_room(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` as a camera in a dim room films it: gamma 1.3, 0.55 exposure, sensor noise
    (sigma 8 of 255), as uint8."""
    dim = (rgb.astype(np.float32) / 255.0) ** 1.3 * 0.55 * 255.0
    dim += rng.normal(0.0, 8.0, dim.shape)
    return as_bytes(dim)


def while_exposure_hunts(rgb: np.ndarray, i: int, fps: float = 5.0) -> np.ndarray:
    """Frame ``i`` of a clip (at ``fps``) as a camera whose auto-exposure hunts films it: the
    gain swinging +-25 % over 6 s, as uint8."""
    gain = 1.0 + 0.25 * np.sin(2.0 * np.pi * i / (6.0 * fps))
    return as_bytes(rgb.astype(np.float32) * gain)
