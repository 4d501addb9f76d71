"""movinet-pi: real-time action recognition with streaming MoViNet on a Raspberry Pi camera."""

from __future__ import annotations

from movinet_pi.errors import MovinetPiError

__version__ = "0.1.0"

__all__ = ["MovinetPiError", "__version__"]
