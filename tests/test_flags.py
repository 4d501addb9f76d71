"""Flag parsing, property-based: any value is either taken exactly or refused in one line."""

from __future__ import annotations

import contextlib
import io
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movinet_pi.flags import build_run_parser

# Anything a user might type for a number: numbers, near-numbers and junk.
typed = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=12),
)


def _parse(flag: str, value: str):
    return build_run_parser().parse_args([flag, value])


def _refused(flag: str, value: str) -> str:
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as e, contextlib.redirect_stderr(stderr):
        _parse(flag, value)
    assert e.value.code == 2
    err = stderr.getvalue()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@settings(max_examples=150, deadline=None)
@given(value=typed)
def test_threshold_is_a_probability_or_refused(value: str) -> None:
    number = _as_float(value)
    if number is not None and 0.0 <= number <= 1.0:
        assert _parse("--threshold", value).threshold == number
    else:
        assert "--threshold" in _refused("--threshold", value)


@settings(max_examples=150, deadline=None)
@given(value=typed)
def test_history_is_auto_positive_seconds_inf_or_refused(value: str) -> None:
    number = _as_float(value)
    if value.strip().lower() == "auto":
        assert _parse("--history", value).history == "auto"
    elif number is not None and number > 0:  # NaN fails this, 'inf' passes
        assert _parse("--history", value).history == number
    else:
        assert "--history" in _refused("--history", value)


@settings(max_examples=150, deadline=None)
@given(value=typed)
def test_threads_and_top_k_are_whole_and_positive_or_refused(value: str) -> None:
    for flag, dest in (("--threads", "threads"), ("--top-k", "top_k")):
        try:
            number = int(value)
        except ValueError:
            number = None
        most = (os.cpu_count() or 1) if flag == "--threads" else math.inf
        if number is not None and 1 <= number <= most:
            assert getattr(_parse(flag, value), dest) == number
        else:
            assert flag in _refused(flag, value)


@settings(max_examples=150, deadline=None)
@given(width=st.integers(-5, 20000), height=st.integers(-5, 20000),
       sep=st.sampled_from(["x", "X", " x ", "*", ",", "\u00d7"]))
def test_frame_size_is_two_positive_sizes_or_refused(width: int, height: int, sep: str) -> None:
    text = f"{width}{sep}{height}"
    ok = sep.strip() in ("x", "X", "\u00d7") and 0 < width <= 16384 and 0 < height <= 16384
    if ok:
        assert _parse("--frame-size", text).frame_size == (width, height)
    else:
        assert "--frame-size" in _refused("--frame-size", text)


def test_inf_history_means_no_bound() -> None:
    assert math.isinf(_parse("--history", "inf").history)


def test_history_defaults_to_auto_and_takes_it_in_any_case() -> None:
    assert build_run_parser().parse_args([]).history == "auto"
    assert _parse("--history", "AUTO").history == "auto"
    assert "--history" in _refused("--history", "automatic")


def test_the_history_placeholder_lists_every_kind_of_value() -> None:
    from movinet_pi.flags import build_bench_parser, build_eval_parser, build_teach_parser

    for build in (build_run_parser, build_bench_parser, build_eval_parser, build_teach_parser):
        assert "--history auto|SECONDS|inf" in build().format_help()


def test_threads_beyond_the_machines_cores_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """More threads than cores only queue for the same cores: refused, as the live + key does."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert _parse("--threads", "4").threads == 4
    assert "--threads: must be 1 to 4 (this machine's cores), got 5" in _refused("--threads", "5")
