"""movinet-pi: real-time action recognition with streaming MoViNet on a Raspberry Pi camera."""

from __future__ import annotations

__version__ = "0.1.0"


class MovinetPiError(Exception):
    """An error with a one-line message meant for the user.

    ``exit_code`` follows the CLI convention: 2 for usage and configuration
    errors (bad flags, bad files), 1 for failures at run time.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


__all__ = ["MovinetPiError", "__version__"]
