"""A systemd unit that runs movinet-pi with the flags given: ``movinet-pi service --print``.

Put ``service --print`` in front of the flags you run with; the unit runs the
same program (the same venv) with the same flags, as you, from the directory
you are in (so relative paths such as ``--model-path mine.tflite`` still work),
restarting it when it fails.

A system unit (starts at boot, no login needed; runs as you)::

    movinet-pi service --print --headless --mqtt mqtt://broker.local/cam1 \\
        | sudo tee /etc/systemd/system/movinet-pi.service
    sudo systemctl daemon-reload
    sudo systemctl enable --now movinet-pi
    journalctl -u movinet-pi -f                 # its output
    sudo systemctl reload movinet-pi            # reset the stream (SIGHUP)

A user unit (no sudo; runs while you are logged in, or always after
``sudo loginctl enable-linger $USER``)::

    mkdir -p ~/.config/systemd/user
    movinet-pi service --print --user-unit --headless > ~/.config/systemd/user/movinet-pi.service
    systemctl --user daemon-reload
    systemctl --user enable --now movinet-pi
    journalctl --user -u movinet-pi -f

Quoting follows systemd's rules (systemd.syntax(7), systemd.service(7),
"Command lines"), not the shell's: words are split on whitespace unless
double-quoted, C escapes apply, ``%`` starts a specifier (written ``%%``) and
``$`` a variable (written ``$$``).

A service has no desktop session, so a window (``--display window``) has
nowhere to go unless someone is logged in to the Pi's desktop: the unit says
so in a comment and suggests ``--display drm`` or ``--headless``.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Mapping, Sequence

from movinet_pi.errors import MovinetPiError

SERVICE_NAME = "movinet-pi"
#: The ``service`` subcommand's own flags: they are not passed on to the run.
SERVICE_FLAGS = ("--print", "--user-unit")
#: Environment variables carried into the unit: ours, except the password.
ENV_PREFIX = "MOVINET_PI_"
SECRET_ENV = ("MOVINET_PI_MQTT_PASSWORD", "MOVINET_PI_WEB_TOKEN")
#: The exit status of usage and configuration errors (see MovinetPiError):
#: restarting cannot fix those, so the unit doesn't.
CONFIG_ERROR_EXIT = 2

_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r",
              "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}


def _escape(text: str, *, dollars: bool) -> str:
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ch == "%":
            out.append("%%")
        elif ch == "$" and dollars:
            out.append("$$")
        else:
            out.append(ch)
    return "".join(out)


def systemd_quote(arg: str) -> str:
    """One word of an ``ExecStart=`` line, so that systemd passes ``arg`` unchanged.

    Backslash, double quote and control characters become C escapes, ``%``
    becomes ``%%`` and ``$`` becomes ``$$``; the word is double-quoted when it is
    empty or holds whitespace or a quote; a lone ``;`` (which would separate
    commands) is written ``\\;``.
    """
    if arg == ";":
        return "\\;"
    escaped = _escape(arg, dollars=True)
    if not arg or re.search(r"[\s\"']", arg):
        return f'"{escaped}"'
    return escaped


def _quote_assignment(name: str, value: str) -> str:
    """One ``Environment=`` assignment (no ``$`` expansion there, specifiers yes)."""
    text = _escape(f"{name}={value}", dollars=False)
    return f'"{text}"' if re.search(r"[\s\"']", f"{name}={value}") else text


def _quote_path(path: str) -> str:
    """A path for ``EnvironmentFile=`` (taken as it is, specifiers aside)."""
    return path.replace("%", "%%")


def run_args(argv: Sequence[str]) -> list[str]:
    """The run's flags from the ``service`` command line: without ``service`` and
    its own flags (``--print``, ``--user-unit``)."""
    args = list(argv)
    if args and args[0] == "service":
        args = args[1:]
    return [a for a in args if a not in SERVICE_FLAGS]


def _is_token_flag(arg: str) -> bool:
    """``--web-token`` or an abbreviation argparse accepts for it (``--web-tok``), with or
    without ``=VALUE``."""
    name = arg.split("=", 1)[0]
    return len(name) > len("--web") and "--web-token".startswith(name)


def without_secrets(args: Sequence[str]) -> tuple[list[str], bool]:
    """The run's flags without ``--web-token VALUE`` (in any spelling), and whether there
    was one: a unit file and its ExecStart are readable by every user."""
    kept: list[str] = []
    found = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            kept += args[i:]
            break
        if _is_token_flag(arg):
            found = True
            i += 1 if "=" in arg else 2
            continue
        kept.append(arg)
        i += 1
    return kept, found


def _config_file(user: str, name: str) -> str:
    """A file of ours in ``user``'s config folder (where the unit's secrets are read from)."""
    return f"{_home(user)}/.config/movinet-pi/{name}"


def _private_file_command(path: str, printf: str) -> str:
    """A shell command that writes ``printf``'s output to ``path``, readable only by its
    owner, making its folder first."""
    folder = shlex.quote(str(Path(path).parent))
    return f"(umask 077 && mkdir -p {folder} && printf {printf} > {shlex.quote(path)})"


def web_token_file(user: str) -> str:
    """Where the unit reads ``MOVINET_PI_WEB_TOKEN`` from (``EnvironmentFile=``)."""
    return _config_file(user, "web-token.env")


def token_file_hint(user: str) -> str:
    """How to make the token file the unit names (for stderr)."""
    path = web_token_file(user)
    command = _private_file_command(path, "'MOVINET_PI_WEB_TOKEN=%s\\n' YOUR_TOKEN")
    return (f"the unit reads the web token from {path}, not from its command line: create it, "
            f"readable only by {user or 'you'}: {command}")


def mqtt_password_file(user: str) -> str:
    """Where the unit's advice puts the MQTT password."""
    return _config_file(user, "mqtt-password")


def password_file_hint(user: str) -> str:
    """How to give the unit the MQTT password that is in this shell only (for stderr)."""
    path = mqtt_password_file(user)
    command = _private_file_command(path, "'%s' YOUR_PASSWORD")
    return (f"the unit cannot carry $MOVINET_PI_MQTT_PASSWORD: put it in {path}, readable "
            f"only by {user or 'you'} ({command}), and uncomment the unit's "
            "MOVINET_PI_MQTT_PASSWORD_FILE line")


def needs_token_file(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether the unit for these flags reads the token from :func:`web_token_file`."""
    return without_secrets(run_args(argv))[1] or "MOVINET_PI_WEB_TOKEN" in env


def invoking_user(env: Mapping[str, str] | None = None) -> str:
    """Who the unit should run as: the user behind ``sudo``, else the current user."""
    env = os.environ if env is None else env
    sudo_user = env.get("SUDO_USER")
    if sudo_user and sudo_user != "root":
        return sudo_user
    return getpass.getuser()


def current_executable(argv0: str | None = None, python: str | None = None) -> str:
    """The program the unit should start: this ``movinet-pi`` script, or the
    interpreter when run as ``python -m movinet_pi`` (``systemd_unit`` then adds
    ``-m movinet_pi``). Absolute, symlinks kept (a venv's ``bin/python`` is one)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if not argv0 or argv0 == "-c" or Path(argv0).name == "__main__.py":
        return os.path.abspath(python or sys.executable)
    return os.path.abspath(argv0)


def _display_mode(args: Sequence[str]) -> str:
    """The run's display choice as the CLI will see it (the last flag wins)."""
    mode = "auto"
    for i, arg in enumerate(args):
        if arg == "--headless":
            return "none"
        if arg == "--display" and i + 1 < len(args):
            mode = args[i + 1]
        elif arg.startswith("--display="):
            mode = arg.split("=", 1)[1]
    return mode


def _display_comment(mode: str) -> list[str]:
    if mode in ("window", "qtgl"):
        return [
            f"# --display {mode}: a service has no desktop session, so the window only opens",
            "# while someone is logged in to the Pi's desktop. For the screen without a",
            "# desktop use --display drm; for no picture at all, --headless.",
        ]
    if mode == "auto":
        return [
            "# --display auto: a service has no $DISPLAY; the window goes to the Pi's desktop",
            "# when one is running, else to the camera's DRM preview on HDMI, else nowhere.",
            "# Say which: --display drm (the screen without a desktop) or --headless.",
        ]
    return []


def _home(user: str) -> str:
    home = os.path.expanduser(f"~{user}") if user else os.path.expanduser("~")
    return f"/home/{user}" if home.startswith("~") else home


def systemd_unit(
    argv: Sequence[str],
    *,
    user: str,
    executable: str,
    workdir: str,
    env: Mapping[str, str],
    user_unit: bool = False,
    restart_sec: float = 5,
) -> str:
    """The text of a systemd unit that runs ``executable`` with the run flags in ``argv``.

    ``argv`` is the command line after the program name, as given to
    ``movinet-pi service --print ...`` (``service``, ``--print`` and
    ``--user-unit`` are dropped). ``executable`` is the absolute path of the
    ``movinet-pi`` script, or of a Python interpreter (then ``-m movinet_pi``
    is added). ``workdir`` becomes the working directory, so relative paths in
    the flags keep working. From ``env`` only ``MOVINET_PI_*`` variables are
    carried over, never ``$MOVINET_PI_MQTT_PASSWORD``: unit files are readable
    by everyone, so the unit suggests ``$MOVINET_PI_MQTT_PASSWORD_FILE`` instead.

    A system unit (the default) runs as ``user`` with ``User=``; a user unit
    (``user_unit=True``) runs as its owner and cannot name a user (systemd's
    user manager refuses ``User=``) nor wait for the system's
    ``network-online.target``.
    """
    if not os.path.isabs(executable):
        raise MovinetPiError(f"the service needs an absolute program path, got {executable!r}")
    if not os.path.isabs(workdir) or re.search(r"[\x00-\x1f\x7f]", workdir):
        raise MovinetPiError(f"the service needs an absolute working directory, got {workdir!r}")
    if not user_unit and (not user or re.search(r"[\s\"'\\%$]", user)):
        raise MovinetPiError(f"cannot run the service as user {user!r}")
    args, token_flag = without_secrets(run_args(argv))
    command = [executable]
    if Path(executable).name.startswith("python"):
        command += ["-m", "movinet_pi"]
    command += args

    # For people (copy-paste into a shell), not systemd: shell quoting, one line.
    shown = shlex.join(args).replace("\n", "\\n").replace("\r", "\\r") or "(no flags)"
    lines = [
        f"# {SERVICE_NAME} as a systemd {'user ' if user_unit else ''}service, made by "
        f"`{SERVICE_NAME} service --print{' --user-unit' if user_unit else ''}` for the flags:",
        f"#   {shown}",
    ]
    if user_unit:
        lines += [
            f"# Install: save as ~/.config/systemd/user/{SERVICE_NAME}.service, then",
            f"#   systemctl --user daemon-reload && systemctl --user enable --now {SERVICE_NAME}",
            f"#   journalctl --user -u {SERVICE_NAME} -f",
            "# It runs while you are logged in; to run from boot: sudo loginctl enable-linger "
            + (user or "$USER"),
        ]
    else:
        lines += [
            f"# Install: save as /etc/systemd/system/{SERVICE_NAME}.service "
            "(| sudo tee that file), then",
            f"#   sudo systemctl daemon-reload && sudo systemctl enable --now {SERVICE_NAME}",
            f"#   journalctl -u {SERVICE_NAME} -f",
        ]
    lines += _display_comment(_display_mode(args))
    lines += ["", "[Unit]", "Description=movinet-pi: real-time action recognition (MoViNet)"]
    if user_unit:
        lines.append("# (a user unit cannot wait for the network: MQTT and streams retry)")
    else:
        lines += ["Wants=network-online.target", "After=network-online.target"]

    lines += ["", "[Service]", "Type=simple"]
    if not user_unit:
        lines.append(f"User={user}")
    # WorkingDirectory= takes the path as it is (no quotes, no C escapes), specifiers aside.
    lines.append(f"WorkingDirectory={workdir.replace('%', '%%')}")
    lines.append("Environment=PYTHONUNBUFFERED=1")
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in SECRET_ENV:
            lines.append(f"Environment={_quote_assignment(name, env[name])}")
    if token_flag or "MOVINET_PI_WEB_TOKEN" in env:
        lines += [
            "# The web token is not written here (anyone can read unit files and `ps`): put",
            "# the line MOVINET_PI_WEB_TOKEN=... in this file, readable only by you (chmod 600):",
            f"EnvironmentFile={_quote_path(web_token_file(user))}",
        ]
    if "MOVINET_PI_MQTT_PASSWORD" in env:
        lines += [
            "# $MOVINET_PI_MQTT_PASSWORD is not written here (anyone can read unit files):",
            "# put the password in a file only you can read (chmod 600) and name it:",
            f"# Environment=MOVINET_PI_MQTT_PASSWORD_FILE={mqtt_password_file(user)}",
        ]
    lines.append("ExecStart=" + " ".join(systemd_quote(a) for a in command))
    lines += [
        "# systemctl reload resets the stream (SIGHUP); stop ends open events cleanly (SIGTERM)",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        f"RestartSec={restart_sec:g}",
        f"# exit status {CONFIG_ERROR_EXIT} is a usage or configuration error: "
        "a restart cannot fix it",
        f"RestartPreventExitStatus={CONFIG_ERROR_EXIT}",
        "TimeoutStopSec=20",
        "",
        "[Install]",
        f"WantedBy={'default.target' if user_unit else 'multi-user.target'}",
    ]
    return "\n".join(lines) + "\n"


def install_hint(user_unit: bool = False) -> str:
    """What to do with the printed unit (for stderr when stdout is a terminal)."""
    if user_unit:
        return (f"save it: movinet-pi service --print --user-unit [flags] > "
                f"~/.config/systemd/user/{SERVICE_NAME}.service, then "
                f"systemctl --user enable --now {SERVICE_NAME}")
    return (f"install it: movinet-pi service --print [flags] | sudo tee "
            f"/etc/systemd/system/{SERVICE_NAME}.service, then "
            f"sudo systemctl enable --now {SERVICE_NAME}")
