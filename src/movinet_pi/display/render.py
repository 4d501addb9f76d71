"""The picture as shown: BGR, scaled to fit the screen (or up if small), mirrored if asked,
with the overlay.

Drawn into buffers kept from frame to frame (a new size makes new ones), so the
display loop allocates nothing per frame. The overlay is composed only when what it
says changes (:class:`~movinet_pi.display.overlay.OverlayPainter`) and blended on
per frame.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from movinet_pi.display.overlay import OverlayPainter, OverlayState, draw_roi

#: Pictures narrower than this are scaled up (by a whole factor) for display...
MIN_DISPLAY_WIDTH = 640
#: ...but not past this height: a phone's portrait clip (204x360) would otherwise be shown
#: 1440 pixels tall, its status line below the bottom of the screen, at 4x the cost a frame.
MAX_UPSCALED_HEIGHT = 720
#: What a window's frame and title bar and a desktop's panel take of the screen (w, h):
#: the picture fits in the rest (a Pi's 7" display, 800x480, leaves 784x400).
SCREEN_ROOM = (16, 80)


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """``size`` (w, h) scaled, up or down, to the largest that fits in ``box``, keeping its
    shape."""
    (w, h), (box_w, box_h) = size, box
    scale = min(box_w / w, box_h / h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def shown_size(size: tuple[int, int], screen: tuple[int, int] | None = None,
               chosen: tuple[int, int] | None = None) -> tuple[int, int]:
    """The size (w, h) a picture of ``size`` is shown at: fitted to ``chosen``
    (``--window-size``) if given; else a small one scaled up by a whole factor (to 640
    wide, not past 720 tall), and any one scaled down to fit ``screen`` (its size, less
    :data:`SCREEN_ROOM`)."""
    if chosen is not None:
        return fit(size, chosen)
    w, h = size
    if w < MIN_DISPLAY_WIDTH:
        factor = max(1, min(-(-MIN_DISPLAY_WIDTH // w), MAX_UPSCALED_HEIGHT // h))
        w, h = w * factor, h * factor
    if screen is not None:
        room = (max(1, screen[0] - SCREEN_ROOM[0]), max(1, screen[1] - SCREEN_ROOM[1]))
        if w > room[0] or h > room[1]:
            return fit((w, h), room)
    return w, h


def shown_shape(shape: tuple[int, ...], screen: tuple[int, int] | None = None,
                chosen: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """The shape (h, w, 3) of a picture of ``shape`` as shown (:func:`shown_size`)."""
    w, h = shown_size((shape[1], shape[0]), screen, chosen)
    return h, w, 3


class PictureRenderer:
    """Renders frames as shown, reusing its buffers; each result is overwritten by the
    next call."""

    def __init__(self, *, mirror: bool = False,
                 shape_of: Callable[[tuple[int, ...]], tuple[int, int, int]] = shown_shape
                 ) -> None:
        """``shape_of``: the shape a picture of a shape is shown at (the display's)."""
        self.mirror = mirror
        self.shape_of = shape_of
        self._bgr: np.ndarray | None = None
        self._shown: np.ndarray | None = None
        self._painter = OverlayPainter()

    def render(self, picture: np.ndarray, state: OverlayState,
               out: np.ndarray | None = None, *, bgr: bool = False) -> np.ndarray:
        """``picture`` (RGB, or BGR with ``bgr``) with the overlay for ``state``. ``out``:
        where to draw it instead (a display's own buffer, of the shape shown).

        A BGR picture is shown as it is: copied (scaled, mirrored) once into the result,
        no colour conversion; an RGB one is converted on that same pass."""
        h, w = picture.shape[:2]
        if self._bgr is None or self._bgr.shape[:2] != (h, w):
            self._bgr = np.empty((h, w, 3), np.uint8)
            shape = self.shape_of(picture.shape)
            # Small sources (a 172x172 clip) would leave the text unreadable: scale up;
            # large ones would not fit the screen: scale down.
            self._shown = np.empty(shape, np.uint8) if shape[:2] != (h, w) else None
        final = self._shown if self._shown is not None else self._bgr
        if out is None or out.shape != final.shape:
            out = final
        if bgr:
            shown = self._place(picture, out)
        elif self._shown is not None:
            shown = self._place(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR, dst=self._bgr), out)
        else:
            shown = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR, dst=out)
            if self.mirror:
                cv2.flip(shown, 1, dst=shown)
        draw_roi(shown, state.roi, self.mirror)  # under the panels
        return self._painter.draw(shown, state)

    def _place(self, image: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``image`` (BGR) into ``out`` in one pass: scaled to its size, mirrored if asked.
        (``image`` is never written to: it may be a frame the model still reads.)"""
        if out.shape[:2] != image.shape[:2]:
            cv2.resize(image, (out.shape[1], out.shape[0]), dst=out,
                       interpolation=cv2.INTER_LINEAR)
            if self.mirror:
                cv2.flip(out, 1, dst=out)
        elif self.mirror:
            cv2.flip(image, 1, dst=out)
        else:
            np.copyto(out, image)
        return out
