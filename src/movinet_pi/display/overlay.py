"""Drawing the predictions over the picture.

The overlay is drawn in place on a BGR uint8 image (what OpenCV windows and
video writers take). It is built to be read at a glance on a monitor across a
room: a dark translucent panel, one line per class with a probability bar, and
a status line with the model, display fps, model fps and inference time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from movinet_pi.model.classifier import Prediction

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
GREY = (180, 180, 180)
BAR_COLOUR = (80, 200, 80)  # BGR green
WARN_COLOUR = (60, 170, 255)  # BGR orange


@dataclass
class OverlayState:
    """Everything the overlay shows besides the picture."""

    predictions: Sequence[Prediction] = ()
    model_name: str = ""
    display_fps: float = 0.0
    model_fps: float = 0.0
    infer_ms: float = 0.0
    prediction_age_s: float = 0.0
    message: str = ""
    extra_lines: list[str] = field(default_factory=list)
    threads: int = 0
    show_help: bool = False
    memory_s: float | None = None  # how far back the model remembers (--history)


HELP_KEYS = (
    ("1 / 2 / 3", "MoViNet-A0 / A1 / A2"),
    ("+ / -", "more / fewer threads"),
    ("r", "reset the stream"),
    ("h", "show / hide these keys"),
    ("q or Esc", "quit"),
)


def _scale_for(image: np.ndarray) -> float:
    """Text scale that stays readable from 320 px to 1920 px wide pictures."""
    return max(0.4, min(1.2, image.shape[1] / 900.0))


def _darken(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, alpha: float = 0.55) -> None:
    """Darken a rectangle in place (a translucent panel behind text)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        region = image[y0:y1, x0:x1]
        np.multiply(region, 1.0 - alpha, out=region, casting="unsafe")


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour=WHITE) -> None:
    """Anti-aliased text; the translucent panel behind it gives the contrast."""
    thickness = max(1, round(scale * 1.5))
    cv2.putText(image, text, org, FONT, scale, colour, thickness, cv2.LINE_AA)


def status_line(state: OverlayState) -> str:
    parts = [state.model_name] if state.model_name else []
    if state.threads:
        parts.append(f"{state.threads} thread{'s' if state.threads != 1 else ''}")
    parts.append(f"display {state.display_fps:4.1f} fps")
    parts.append(f"model {state.model_fps:3.1f} fps")
    parts.append(f"infer {state.infer_ms:5.1f} ms")
    if state.memory_s is not None:
        parts.append(f"memory {state.memory_s:4.1f} s")
    return "  |  ".join(parts)


PanelFn = Callable[[np.ndarray, int, int, int, int], None]


def draw_overlay(
    image: np.ndarray, state: OverlayState, panel: PanelFn | None = None
) -> np.ndarray:
    """Draw ``state`` over a BGR ``image`` in place and return it.

    Predictions go in a panel at the top, one bar and label a line; the status
    (model, rates, inference time) and any message go in a strip at the bottom.
    ``panel`` draws the translucent backgrounds (default: darken the picture).
    """
    _panel = panel or _darken
    scale = _scale_for(image)
    h, w = image.shape[:2]
    line_h = int(40 * scale)
    pad = int(12 * scale)

    rows = max(1, len(state.predictions))
    _panel(image, 0, 0, w, pad + rows * line_h + pad // 2)
    bar_w = int(w * 0.25)
    label_x = pad + bar_w + pad
    y = pad
    if not state.predictions:
        _text(image, "no action", (label_x, y + int(line_h * 0.6)), scale * 0.9, GREY)
    for p in state.predictions:
        top, bottom = y + int(line_h * 0.15), y + int(line_h * 0.75)
        cv2.rectangle(image, (pad, top), (pad + bar_w, bottom), (70, 70, 70), -1)
        cv2.rectangle(image, (pad, top), (pad + int(bar_w * p.score), bottom), BAR_COLOUR, -1)
        _text(image, f"{p.score * 100:5.1f}%  {p.label}", (label_x, y + int(line_h * 0.65)),
              scale * 0.9)
        y += line_h

    bottom_lines = [(status_line(state), GREY)]
    if state.prediction_age_s > 1.0:
        bottom_lines.append((f"prediction is {state.prediction_age_s:.1f} s old", WARN_COLOUR))
    bottom_lines += [(line, GREY) for line in state.extra_lines]
    if state.message:
        bottom_lines.append((state.message, WARN_COLOUR))
    small_h = int(line_h * 0.6)
    strip_top = h - len(bottom_lines) * small_h - pad // 2
    _panel(image, 0, strip_top, w, h)
    y = strip_top + int(small_h * 0.75)
    for text, colour in bottom_lines:
        _text(image, text, (pad, y), scale * 0.5, colour)
        y += small_h
    if state.show_help:
        _help_card(image, scale, _panel)
    return image


def _help_card(image: np.ndarray, scale: float, panel: PanelFn) -> None:
    """The keys, in a box in the middle of the picture."""
    h, w = image.shape[:2]
    line_h = int(34 * scale)
    box_w, box_h = int(w * 0.6), line_h * (len(HELP_KEYS) + 1) + line_h // 2
    x0, y0 = (w - box_w) // 2, (h - box_h) // 2
    panel(image, x0, y0, x0 + box_w, y0 + box_h)
    left, right = x0 + line_h // 2, x0 + int(box_w * 0.36)
    _text(image, "keys", (left, y0 + line_h), scale * 0.7, BAR_COLOUR)
    for i, (keys, action) in enumerate(HELP_KEYS, start=2):
        _text(image, keys, (left, y0 + line_h * i), scale * 0.7)
        _text(image, action, (right, y0 + line_h * i), scale * 0.7, GREY)


PANEL_ALPHA = 150  # of 255: the picture shows through the panels of an RGBA overlay


def render_overlay_rgba(size: tuple[int, int], state: OverlayState) -> np.ndarray:
    """The overlay alone as an RGBA image of ``size`` (w, h): transparent but for the
    panels (translucent black) and what is drawn on them (opaque).

    For previews that composite it over the camera picture themselves
    (picamera2's ``set_overlay`` on the DRM preview).
    """
    width, height = size
    bgr = np.zeros((height, width, 3), dtype=np.uint8)
    alpha = np.zeros((height, width), dtype=np.uint8)

    def mark_panel(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
        alpha[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = PANEL_ALPHA

    draw_overlay(bgr, state, panel=mark_panel)
    alpha[bgr.any(axis=2)] = 255
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = bgr[..., ::-1]
    rgba[..., 3] = alpha
    return rgba
