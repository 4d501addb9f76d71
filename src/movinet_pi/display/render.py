"""The picture as shown: BGR, scaled up if small, mirrored if asked, with the overlay.

Drawn into buffers kept from frame to frame (a new size makes new ones), so the
display loop allocates nothing per frame. The overlay is composed only when what it
says changes (:class:`~movinet_pi.display.overlay.OverlayPainter`) and blended on
per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from movinet_pi.display.overlay import OverlayPainter, OverlayState, draw_roi

#: Pictures narrower than this are scaled up (by a whole factor) for display...
MIN_DISPLAY_WIDTH = 640
#: ...but not past this height: a phone's portrait clip (204x360) would otherwise be shown
#: 1440 pixels tall, its status line below the bottom of the screen, at 4x the cost a frame.
MAX_UPSCALED_HEIGHT = 720


def shown_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The shape of a picture of ``shape`` as shown (small ones are scaled up)."""
    h, w = shape[:2]
    if w >= MIN_DISPLAY_WIDTH:
        return h, w, 3
    factor = max(1, min(-(-MIN_DISPLAY_WIDTH // w), MAX_UPSCALED_HEIGHT // h))
    return h * factor, w * factor, 3


class PictureRenderer:
    """Renders frames as shown, reusing its buffers; each result is overwritten by the
    next call."""

    def __init__(self, *, mirror: bool = False) -> None:
        self.mirror = mirror
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
            shape = shown_shape(picture.shape)
            # Small sources (a 172x172 clip) would leave the text unreadable: scale up.
            self._shown = np.empty(shape, np.uint8) if shape[1] != w else None
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
