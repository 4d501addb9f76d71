"""What the pipeline shows frames on: the :class:`Display` interface."""

from __future__ import annotations

import numpy as np

from movinet_pi.display.overlay import OverlayState
from movinet_pi.display.render import shown_shape


class Display:
    """What the pipeline shows frames on (a window, a camera preview, or nowhere).

    A display that ``shows_picture`` gets every rendered frame through
    :meth:`show`; one that draws the picture itself (the camera's DRM or QTGL preview)
    gets only the overlay's state through :meth:`update`.
    """

    shows_picture = True

    def show(self, bgr: np.ndarray) -> int | None:
        """Show a frame; return a key code if one was pressed."""
        raise NotImplementedError

    def shown_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """The shape (h, w, 3) a picture of ``shape`` is shown at (small ones scaled up; a
        display that knows its screen fits them to it)."""
        return shown_shape(shape)

    def buffer(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """Where to render the next frame for :meth:`show`, if the display has a buffer of
        its own (the window's shared memory: no copy on the way); None: anywhere."""
        return None

    def busy(self) -> bool:
        """Still drawing the last frame (asked right after :meth:`buffer`): a frame shown
        now would be dropped, so the pipeline does not render it for this display."""
        return False

    def update(self, state: OverlayState) -> int | None:
        """Show what the overlay says (for displays that draw the picture themselves);
        return a key code to act on, if any (``q``: the user closed the preview)."""
        return None

    def close(self) -> None:  # pragma: no cover - trivial
        pass
