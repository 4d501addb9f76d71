"""Errors meant for the user: :class:`MovinetPiError`, and any error's text as one line."""

from __future__ import annotations


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


def one_line(error: BaseException | str, *, limit: int | None = None, first: bool = False) -> str:
    """An error's text (or any text) as one line, for a message that must stay one line.

    Library messages may span lines: by default every run of white space, line
    breaks included, becomes one space; with ``first`` only the first line is
    kept (native runtimes put their log after the message). An exception with
    no text is named by its type. Text longer than ``limit`` is cut to it,
    ending in ``...``.
    """
    text = str(error).strip()
    lines = text.splitlines() or [""]
    text = lines[0] if first else " ".join(text.split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
