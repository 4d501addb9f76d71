"""What a flag's value may be: argparse ``type=`` checks that fail in one line.

Each says what was expected and what it got; :mod:`movinet_pi.flags` uses them.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Callable, TypeVar

from movinet_pi.errors import MovinetPiError
from movinet_pi.tools.teach_record import SHORTEST_TAKE_S

T = TypeVar("T", int, float)


def _number(
    text: str, convert: Callable[[str], T], expected: str, ok: Callable[[T], bool], rule: str
) -> T:
    """Parse a flag's number; the error says what was expected and what was given."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: v >= 1, "1 or more")


def thread_count(text: str) -> int:
    """Interpreter threads: 1 up to this machine's cores (more only queue for the same cores,
    the same rule as the live ``+`` key)."""
    cores = os.cpu_count() or 1
    return _number(text, int, "a whole number", lambda v: 1 <= v <= cores,
                   f"1 to {cores} (this machine's cores)")


def positive_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 < v < math.inf, "more than 0")


def take_seconds(text: str) -> float:
    return _number(text, float, "a number of seconds",
                   lambda v: SHORTEST_TAKE_S <= v < math.inf,
                   f"{SHORTEST_TAKE_S:g} or more (teach leaves out each clip's first second)")


def probability(text: str) -> float:
    return _number(text, float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def history_spec(text: str) -> float | str:
    """``auto``, or seconds (``inf``: no bound)."""
    if text.strip().lower() == "auto":
        return "auto"
    # NaN fails `v > 0`, 'inf' passes: no bound.
    return _number(text, float, "'auto', seconds or 'inf'", lambda v: v > 0,
                   "more than 0 seconds (or 'auto' or 'inf')")


def frame_size(text: str) -> tuple[int, int]:
    from movinet_pi.sources.open import parse_frame_size

    try:
        return parse_frame_size(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def roi(text: str) -> tuple[float, float, float, float] | str:
    """``auto`` or ``X,Y,W,H`` (fractions of the picture)."""
    from movinet_pi.sources.roi import parse_roi

    try:
        return parse_roi(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def non_negative_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 <= v < math.inf, "0 or more")


def mqtt_url(text: str) -> str:
    from movinet_pi.outputs.mqtt_target import parse_mqtt_url

    try:
        parse_mqtt_url(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e)) from None  # never echoes a password
    return text


def ha_prefix(text: str) -> str:
    from movinet_pi.outputs.mqtt_target import topic_prefix_problem

    text = text.strip().strip("/")
    problem = topic_prefix_problem(text) if text else "empty"
    if problem:
        raise argparse.ArgumentTypeError(f"bad topic prefix {text!r}: {problem}")
    return text


def web_address(text: str) -> tuple[str, int]:
    from movinet_pi.outputs.web_access import parse_web_address

    try:
        return parse_web_address(text)
    except MovinetPiError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--web: ")) from None


def label_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


# -- parsers ----------------------------------------------------------------------------
