"""Drawing the predictions over the picture.

The overlay is drawn in place on a BGR uint8 image (what OpenCV windows and
video writers take). It is built to be read at a glance on a monitor across a
room: a dark translucent panel, one line per class with a probability bar, and
a status line with the model, display fps, model fps and inference time (for a
file, where it is in the file instead of the rates). Text too wide for the picture
is wrapped, never cut off at its edge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from movinet_pi.model.predictions import Prediction
from movinet_pi.progress import counted
from movinet_pi.sources.roi import is_whole, mirrored, pixel_rect

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
GREY = (180, 180, 180)
BAR_COLOUR = (80, 200, 80)  # BGR green
WARN_COLOUR = (60, 170, 255)  # BGR orange
ROI_COLOUR = (255, 220, 0)  # BGR cyan: the part of the picture the model reads


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
    #: the Pi is throttled or hot: the status line and these lines turn amber
    warning: bool = False
    threads: int = 0
    show_help: bool = False
    memory_s: float | None = None  # how far back the model remembers (--history)
    #: A file's position (s) and length (None: unknown): shown instead of the rates,
    #: which for a file say how fast the machine is, not anything about the picture.
    source_time: float | None = None
    source_duration: float | None = None
    #: the part of the picture the model read (--roi): (x, y, w, h), fractions; None: all
    roi: tuple[float, float, float, float] | None = None


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


#: The smallest status text: its size on a 640-wide picture.
MIN_STATUS_SCALE = 0.35
PANEL_DARKEN = 0.55  # how much of the picture a panel takes away


def _darken(image: np.ndarray, x0: int, y0: int, x1: int, y1: int,
            alpha: float = PANEL_DARKEN) -> None:
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


STATUS_SEPARATOR = "  |  "


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def status_line(state: OverlayState) -> str:
    """The status line, composed here alone: each item is one entry of ``parts``."""
    parts = [state.model_name] if state.model_name else []
    if state.threads:
        parts.append(counted(state.threads, "thread"))
    if state.source_time is not None:
        length = f" / {_clock(state.source_duration)}" if state.source_duration else ""
        parts.append(f"clip {_clock(state.source_time)}{length}")
    else:
        parts.append(f"display {state.display_fps:4.1f} fps")
        parts.append(f"model {state.model_fps:3.1f} fps")
    parts.append(f"infer {state.infer_ms:5.1f} ms")
    if state.memory_s is not None:
        parts.append(f"memory {state.memory_s:4.1f} s")
    return STATUS_SEPARATOR.join(parts)


@functools.lru_cache(maxsize=4096)
def _text_width(text: str, scale: float, font: int = FONT) -> int:
    """The width of ``text`` in pixels (remembered: the same labels, percentages and
    status parts are measured again at every composition)."""
    thickness = max(1, round(scale * 1.5))
    return cv2.getTextSize(text, font, scale, thickness)[0][0]


def wrap_text(text: str, scale: float, max_width: int) -> list[str]:
    """``text`` as lines that each fit in ``max_width`` pixels at ``scale``: broken at the
    status line's separators first, then at spaces, a word too long for a line at
    its characters."""
    if _text_width(text, scale) <= max_width:
        return [text]
    lines: list[str] = []
    line = ""
    for piece in _pieces(text, scale, max_width):
        candidate = line + piece if line else piece.lstrip(" |")
        if _text_width(candidate.rstrip(" |"), scale) <= max_width:
            line = candidate
            continue
        if line:
            lines.append(line.rstrip(" |"))
        line = piece.lstrip(" |")
        while _text_width(line, scale) > max_width and len(line) > 1:  # one long word
            cut = len(line) - 1
            while cut > 1 and _text_width(line[:cut], scale) > max_width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip(" |"):
        lines.append(line.rstrip(" |"))
    return lines


def _shorten(text: str, scale: float, max_width: int) -> str:
    """``text``, cut short with "..." if it is wider than ``max_width`` (a label)."""
    if _text_width(text, scale) <= max_width:
        return text
    while len(text) > 1 and _text_width(text + "...", scale) > max_width:
        text = text[:-1]
    return text.rstrip() + "..."


def _pieces(text: str, scale: float, max_width: int) -> list[str]:
    """``text`` split before each separator (keeping it), and a part too wide for a line
    of its own also before each space."""
    pieces: list[str] = []
    for i, segment in enumerate(text.split(STATUS_SEPARATOR)):
        prefix = STATUS_SEPARATOR if i else ""
        if _text_width(segment, scale) <= max_width:
            pieces.append(prefix + segment)
            continue
        for j, word in enumerate(segment.split(" ")):
            pieces.append((" " if j else prefix) + word)
    return pieces


PanelFn = Callable[[np.ndarray, int, int, int, int], None]


def draw_roi(image: np.ndarray, box: tuple[float, float, float, float] | None,
             mirror: bool = False) -> None:
    """Outline the part of the picture the model reads (``--roi``) on a BGR ``image``, in
    place; nothing for the whole picture. ``mirror``: the picture is shown flipped."""
    if box is None or is_whole(box):
        return
    h, w = image.shape[:2]
    x0, y0, x1, y1 = pixel_rect(mirrored(box) if mirror else box, w, h)
    thickness = max(2, round(w / 320))
    inset = thickness // 2  # the line stays inside the box, and inside the picture
    cv2.rectangle(image, (x0 + inset, y0 + inset), (x1 - 1 - inset, y1 - 1 - inset),
                  ROI_COLOUR, thickness, cv2.LINE_AA)


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
    text_scale = scale * 0.9
    # The percentage is right-aligned in a column as wide as "100.0%": the labels after
    # it stay put however the numbers change.
    pct_right = pad + bar_w + pad + _text_width("100.0%", text_scale)
    label_x = pct_right + pad
    y = pad
    if not state.predictions:
        italic = FONT | cv2.FONT_ITALIC
        text_w = _text_width("no action", text_scale, italic)
        cv2.putText(image, "no action", ((w - text_w) // 2, y + int(line_h * 0.62)), italic,
                    text_scale, GREY, max(1, round(text_scale * 1.5)), cv2.LINE_AA)
    for p in state.predictions:
        top, bottom = y + int(line_h * 0.15), y + int(line_h * 0.75)
        cv2.rectangle(image, (pad, top), (pad + bar_w, bottom), (70, 70, 70), -1)
        cv2.rectangle(image, (pad, top), (pad + int(bar_w * p.score), bottom), BAR_COLOUR, -1)
        baseline = y + int(line_h * 0.65)
        pct = f"{p.score * 100:.1f}%"
        _text(image, pct, (pct_right - _text_width(pct, text_scale), baseline), text_scale)
        _text(image, _shorten(p.label, text_scale, w - label_x - pad // 2), (label_x, baseline),
              text_scale)
        y += line_h

    # The status keeps the size it has on a 640-wide picture on narrower ones (a
    # portrait clip), wrapped onto more lines, instead of shrinking past reading.
    small_scale = max(MIN_STATUS_SCALE, scale * 0.5)
    status_colour = WARN_COLOUR if state.warning else GREY
    lines = [(status_line(state), status_colour)]
    if state.prediction_age_s > 1.0:
        lines.append((f"prediction is {state.prediction_age_s:.1f} s old", WARN_COLOUR))
    lines += [(line, status_colour) for line in state.extra_lines]
    if state.message:
        lines.append((state.message, WARN_COLOUR))
    bottom_lines = [(part, colour) for text, colour in lines
                    for part in wrap_text(text, small_scale, w - 2 * pad)]
    small_h = int(line_h * 0.6 * small_scale / (scale * 0.5))
    strip_top = h - len(bottom_lines) * small_h - pad // 2
    _panel(image, 0, strip_top, w, h)
    y = strip_top + int(small_h * 0.75)
    for text, colour in bottom_lines:
        _text(image, text, (pad, y), small_scale, colour)
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


def render_overlay_rgba(size: tuple[int, int], state: OverlayState,
                        mirror: bool = False) -> np.ndarray:
    """The overlay alone as an RGBA image of ``size`` (w, h): transparent but for the
    panels (translucent black) and what is drawn on them (opaque).

    For previews that composite it over the camera picture themselves
    (picamera2's ``set_overlay`` on the DRM preview). ``mirror``: the picture under it is
    mirrored, so the box of ``--roi`` is too (the text is not).
    """
    width, height = size
    bgr = np.zeros((height, width, 3), dtype=np.uint8)
    alpha = np.zeros((height, width), dtype=np.uint8)
    draw_roi(bgr, state.roi, mirror)

    def mark_panel(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
        alpha[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = PANEL_ALPHA

    draw_overlay(bgr, state, panel=mark_panel)
    alpha[bgr.any(axis=2)] = 255
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = bgr[..., ::-1]
    rgba[..., 3] = alpha
    return rgba


#: The status line (rates, the clip's clock, the prediction's age) is redrawn at most
#: this often unless something else changed: reading it needs no more, and each redraw
#: costs a composition.
STATUS_INTERVAL_S = 0.25


class OverlayPainter:
    """:func:`draw_overlay`'s picture at a fraction of its cost per frame.

    The overlay is composed only when what it says changes (a model step, a message,
    the help card; the status line at most every :data:`STATUS_INTERVAL_S`), into
    cached layers that cover only the rows its panels take: per pixel, how much of
    the picture shows through (the panel's darkening and the text's anti-aliasing
    together) and what is drawn on top. Each frame then costs one multiply and one add
    over those rows. The result matches :func:`draw_overlay` to within rounding.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        import time

        self._clock = clock or time.monotonic
        self._key: tuple | None = None
        self._status = ""
        self._status_at = -1e9
        self._bands: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self._canvas: tuple[np.ndarray, np.ndarray] | None = None  # black, white

    def draw(self, image: np.ndarray, state: OverlayState) -> np.ndarray:
        """Draw ``state`` over a BGR ``image`` in place and return it."""
        now = self._clock()
        key = (image.shape, tuple((p.label, p.score) for p in state.predictions),
               state.message, tuple(state.extra_lines), state.show_help,
               state.prediction_age_s > 1.0, state.warning)
        if key != self._key or now - self._status_at >= STATUS_INTERVAL_S:
            # (the status line is made only when it may be redrawn: not every frame)
            status = status_line(state)
            if state.prediction_age_s > 1.0:
                status += f"\n{state.prediction_age_s:.1f}"
            if key != self._key or status != self._status:
                self._compose(image.shape, state)
                self._key, self._status, self._status_at = key, status, now
        for y0, y1, keep, drawn in self._bands:
            region = image[y0:y1]
            cv2.multiply(region, keep, dst=region, scale=1.0 / 255.0)
            cv2.add(region, drawn, dst=region)
        return image

    def _compose(self, shape: tuple[int, ...], state: OverlayState) -> None:
        h, w = shape[:2]
        panels: list[tuple[int, int, int, int]] = []

        def mark_panel(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
            panels.append((max(0, x0), max(0, y0), min(w, x1), min(h, y1)))

        if self._canvas is None or self._canvas[0].shape != shape:  # kept: no page faults
            self._canvas = (np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8))
        black, white = self._canvas
        for y0, y1, _, _ in self._bands:  # all drawing is in the bands: wipe only those
            black[y0:y1] = 0
            white[y0:y1] = 255
        draw_overlay(black, state, panel=mark_panel)
        draw_overlay(white, state, panel=lambda *a: None)
        covered = np.zeros(h, bool)  # everything is drawn on a panel: only their rows change
        for x0, y0, x1, y1 in panels:
            if x1 > x0 and y1 > y0:
                covered[y0:y1] = True
        rows = np.flatnonzero(covered)
        self._bands = []
        if not rows.size:
            return
        breaks = np.flatnonzero(np.diff(rows) > 1)  # runs of consecutive panel rows
        starts = np.concatenate(([rows[0]], rows[breaks + 1])).tolist()
        ends = (np.concatenate((rows[breaks], [rows[-1]])) + 1).tolist()
        for y0, y1 in zip(starts, ends):
            # what shows through of the picture (of 255): the text's coverage, then each
            # panel's darkening (panels that overlap darken twice, as drawn)
            keep = cv2.subtract(white[y0:y1], black[y0:y1])
            for px0, py0, px1, py1 in panels:
                top, bottom = max(py0, y0), min(py1, y1)
                if px1 > px0 and bottom > top:
                    region = keep[top - y0:bottom - y0, px0:px1]
                    region[:] = cv2.addWeighted(region, 1.0 - PANEL_DARKEN, region, 0.0, 0.0)
            self._bands.append((y0, y1, keep, black[y0:y1].copy()))
