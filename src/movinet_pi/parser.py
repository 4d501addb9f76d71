"""argparse, but every usage error is one line that says what to do.

:class:`OneLineParser` is the parser of every command (:mod:`movinet_pi.flags` builds
them); :func:`suggest_command` and :func:`looks_like_source` tell a mistyped command
from a source to classify.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from pathlib import Path
from typing import NoReturn

from movinet_pi.log import PROG


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line saying what to do (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        hint = self.suggestion(message)  # (prefixed as every other error of every command)
        self.exit(2, f"{PROG}: error: {message}{hint} (see `{self.prog} --help`)\n")

    def suggestion(self, message: str) -> str:
        """``: did you mean `--source`?`` for a mistyped flag in ``message``; how to give a
        value that starts with '-' (argparse takes it for a flag); else ""."""
        missing = re.match(r"argument (--[\w-]+)(?:/\S+)?: expected one argument", message)
        if missing:
            flag = missing.group(1)
            return f" (a value that starts with '-' goes as {flag}=VALUE)"
        match = re.match(r"unrecognized arguments: (.*)", message)
        if not match:
            return ""
        words = match.group(1).split()
        if (words and not any(w.startswith("-") for w in words)  # (`--treshold 0.5`: a flag)
                and any(a.dest == "source_arg" for a in self._actions)):
            return f": {words[0]!r} would be a second source; a run reads one"
        options = [o for o in self._option_string_actions if o.startswith("--")]
        unknown = [w.split("=", 1)[0] for w in match.group(1).split() if w.startswith("-")]
        pairs = [(w, difflib.get_close_matches(w, options, n=1, cutoff=0.6)) for w in unknown]
        guesses = [(w, close[0]) for w, close in pairs if close]
        if not guesses:
            return ""
        if len(unknown) == 1:
            return f": did you mean `{guesses[0][1]}`?"
        return ": did you mean " + ", ".join(f"`{g}` for `{w}`" for w, g in guesses) + "?"


def suggest_command(word: str, commands: list[str]) -> str:
    """``did you mean `download`?`` for a mistyped subcommand, else ""."""
    close = difflib.get_close_matches(word.lower(), commands, n=1, cutoff=0.6)
    return f": did you mean `{close[0]}`?" if close else ""


def looks_like_source(word: str) -> bool:
    """Whether a run's positional word is what to classify (``movinet-pi clip.mp4``, as
    with mpv or ffplay) rather than a mistyped command: a URL, a device or camera index,
    the Pi camera, or a path (one that exists, or has a folder or a file ending)."""
    return ("://" in word or "/" in word or word.isdigit() or bool(Path(word).suffix)
            or word.lower().startswith("picamera") or os.path.exists(word))
