"""``movinet-pi service --print``: the systemd unit's content, quoting and user."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_shared

from movinet_pi import MovinetPiError
from movinet_pi.tools.service import (
    current_executable,
    install_hint,
    invoking_user,
    run_args,
    systemd_quote,
    systemd_unit,
)

EXE = "/home/pi/.venvs/movinet-pi/bin/movinet-pi"
WORKDIR = "/home/pi/project"


def unit(argv: list[str], **kwargs: object) -> str:
    options: dict[str, object] = {"user": "pi", "executable": EXE, "workdir": WORKDIR,
                                  "env": {}}
    options.update(kwargs)
    return systemd_unit(argv, **options)  # type: ignore[arg-type]


def directives(text: str, name: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{name}=")]


def directive(text: str, name: str) -> str:
    (value,) = directives(text, name)
    return value


# A reader of command lines that follows systemd's documented rules (systemd.service(5)
# "Command lines", systemd.syntax(7) "Quoting"): specifiers first (only %% is ours), then
# words split on whitespace, quoted words, C escapes, then $$ -> $ when executing.
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", ";": ";", " ": " "}


def systemd_split(line: str) -> list[str]:
    assert not re.search(r"%(?!%)", line.replace("%%", "")), f"a bare specifier in {line!r}"
    line = line.replace("%%", "%")
    words: list[str] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i == n:
            return words
        quote = line[i] if line[i] in "\"'" else None
        i += 1 if quote else 0
        word = []
        while True:
            assert i < n or not quote, f"unbalanced quotes in {line!r}"
            if i == n or (not quote and line[i] in " \t"):
                break
            ch = line[i]
            if quote and ch == quote:
                i += 1
                assert i == n or line[i] in " \t", "a closing quote must end the word"
                break
            if ch == "\\":
                nxt = line[i + 1]
                if nxt == "x":
                    word.append(chr(int(line[i + 2:i + 4], 16)))
                    i += 4
                    continue
                word.append(_ESCAPES[nxt])
                i += 2
                continue
            word.append(ch)
            i += 1
        text = "".join(word)
        assert not re.search(r"\$(?!\$)", text.replace("$$", "")), f"a variable in {text!r}"
        words.append(text.replace("$$", "$"))


TRICKY = [
    "plain", "with space", "", "double\"quote", "single'quote", "back\\slash",
    "100%", "%h", "$HOME", "${HOME}", "$$", ";", "a;b", "tab\there", "new\nline",
    "ünïcödé", "--allow=juggling balls,playing guitar", "mqtt://pi@broker:1883/home/cam 1",
    "'", '"', "\\", "trailing\\", " leading", "\x01",
]


@pytest.mark.parametrize("arg", TRICKY)
def test_systemd_quote_round_trips(arg: str) -> None:
    assert systemd_split(systemd_quote(arg)) == [arg]


def test_a_whole_command_line_round_trips() -> None:
    line = " ".join(systemd_quote(a) for a in TRICKY)
    assert systemd_split(line) == TRICKY


def test_simple_words_stay_readable() -> None:
    assert systemd_quote("--model") == "--model"
    assert systemd_quote("/home/pi/models/a0.tflite") == "/home/pi/models/a0.tflite"
    assert systemd_quote("with space") == '"with space"'
    assert systemd_quote("50%") == "50%%"
    assert systemd_quote("$HOME") == "$$HOME"
    assert systemd_quote(";") == "\\;"
    assert systemd_quote("") == '""'


# -- the unit -------------------------------------------------------------------------------
def test_unit_runs_the_flags_as_the_user_from_the_directory() -> None:
    text = unit(["service", "--print", "--model", "a2", "--headless", "--mqtt",
                 "mqtt://pi@broker/cam1"])
    assert "[Unit]" in text and "[Service]" in text and "[Install]" in text
    assert systemd_split(directive(text, "ExecStart")) == [
        EXE, "--model", "a2", "--headless", "--mqtt", "mqtt://pi@broker/cam1"]
    assert directive(text, "User") == "pi"
    assert directive(text, "WorkingDirectory") == WORKDIR
    assert directive(text, "Restart") == "on-failure"
    assert float(directive(text, "RestartSec")) > 0
    assert directive(text, "RestartPreventExitStatus") == "2"  # config errors: no loop
    assert directive(text, "After") == "network-online.target"
    assert directive(text, "Wants") == "network-online.target"
    assert directive(text, "WantedBy") == "multi-user.target"
    assert directive(text, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert "PYTHONUNBUFFERED=1" in directives(text, "Environment")
    assert text.endswith("\n")
    # the install commands are in the comments
    assert "sudo systemctl enable --now movinet-pi" in text
    assert "journalctl -u movinet-pi -f" in text
    # the flags, as a person would type them, head the file
    assert "#   --model a2 --headless --mqtt mqtt://pi@broker/cam1" in text


def test_service_and_its_flags_are_not_passed_on() -> None:
    assert run_args(["service", "--print", "--model", "a1"]) == ["--model", "a1"]
    assert run_args(["service", "--model", "a1", "--print", "--user-unit"]) == ["--model", "a1"]
    assert run_args(["--model", "a1"]) == ["--model", "a1"]
    text = unit(["service", "--print"])
    assert systemd_split(directive(text, "ExecStart")) == [EXE]
    assert "(no flags)" in text


def test_arguments_with_spaces_and_specials_survive(tmp_path: Path) -> None:
    args = ["--model-path", "my models/a0 100%.tflite", "--allow", 'say "hi",it\'s',
            "--source", "rtsp://cam/$stream"]
    text = unit(["service", "--print", *args], workdir="/home/pi/my project 50%")
    assert systemd_split(directive(text, "ExecStart")) == [EXE, *args]
    # WorkingDirectory= takes a path as it is, except for specifiers
    assert directive(text, "WorkingDirectory") == "/home/pi/my project 50%%"


def test_python_executable_runs_the_module() -> None:
    text = unit(["service", "--print", "--headless"], executable="/opt/venv/bin/python3")
    assert systemd_split(directive(text, "ExecStart")) == [
        "/opt/venv/bin/python3", "-m", "movinet_pi", "--headless"]


def test_environment_carries_ours_but_never_the_password() -> None:
    env = {"MOVINET_PI_MODELS": "/srv/my models/100%", "MOVINET_PI_RUNTIME": "tflite-runtime",
           "MOVINET_PI_MQTT_PASSWORD": "hunter2", "HOME": "/root", "PATH": "/usr/bin"}
    text = unit(["service", "--print"], env=env)
    assignments = [systemd_split(value) for value in directives(text, "Environment")]
    assert ["MOVINET_PI_MODELS=/srv/my models/100%"] in assignments
    assert ["MOVINET_PI_RUNTIME=tflite-runtime"] in assignments
    assert "hunter2" not in text
    assert not any("HOME" in a[0] or "PATH" in a[0] for a in assignments)
    assert "MOVINET_PI_MQTT_PASSWORD_FILE=" in text  # the advice, as a comment
    assert not any("PASSWORD_FILE" in a[0] for a in assignments)


def test_a_password_file_is_carried_over() -> None:
    text = unit(["service", "--print"],
                env={"MOVINET_PI_MQTT_PASSWORD_FILE": "/home/pi/.config/movinet-pi/pw"})
    assert "MOVINET_PI_MQTT_PASSWORD_FILE=/home/pi/.config/movinet-pi/pw" in directives(
        text, "Environment")


@pytest.mark.parametrize(("flags", "warned"), [
    (["--display", "window"], "--display window"),
    (["--display=window"], "--display window"),
    (["--display", "qtgl"], "--display qtgl"),  # the camera's preview, in a desktop window
    ([], "--display auto"),
    (["--display", "auto"], "--display auto"),
    (["--headless"], None),
    (["--display", "none"], None),
    (["--display", "drm"], None),
    (["--display", "window", "--headless"], None),
])
def test_a_window_in_a_service_gets_a_comment(flags: list[str], warned: str | None) -> None:
    text = unit(["service", "--print", *flags])
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    if warned is None:
        assert "no desktop" not in comments and "no $DISPLAY" not in comments
    else:
        assert warned in comments
        assert "--display drm" in comments and "--headless" in comments


def test_user_unit_has_no_user_and_wants_default_target() -> None:
    text = unit(["service", "--print", "--user-unit", "--headless"], user_unit=True)
    assert directives(text, "User") == []
    assert directive(text, "WantedBy") == "default.target"
    assert directives(text, "After") == []  # the user manager has no network-online.target
    assert systemd_split(directive(text, "ExecStart")) == [EXE, "--headless"]
    assert "systemctl --user enable --now movinet-pi" in text
    assert "loginctl enable-linger pi" in text


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"executable": "movinet-pi"}, "absolute program path"),
    ({"workdir": "project"}, "absolute working directory"),
    ({"workdir": "/a\nb"}, "absolute working directory"),
    ({"user": ""}, "cannot run the service as user"),
    ({"user": "pi pi"}, "cannot run the service as user"),
])
def test_bad_inputs_are_one_line_errors(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(MovinetPiError, match=says):
        unit(["service", "--print"], **kwargs)


def test_invoking_user_is_the_one_behind_sudo() -> None:
    assert invoking_user({"SUDO_USER": "pi"}) == "pi"
    me = invoking_user({})
    assert me and invoking_user({"SUDO_USER": "root"}) == me


def test_current_executable() -> None:
    assert current_executable("/opt/venv/bin/movinet-pi") == "/opt/venv/bin/movinet-pi"
    assert current_executable("bin/movinet-pi") == os.path.abspath("bin/movinet-pi")
    main = "/opt/venv/lib/python3.11/site-packages/movinet_pi/__main__.py"
    assert current_executable(main, python="/opt/venv/bin/python") == "/opt/venv/bin/python"


def test_install_hints() -> None:
    assert "sudo tee /etc/systemd/system/movinet-pi.service" in install_hint()
    assert "~/.config/systemd/user/movinet-pi.service" in install_hint(user_unit=True)


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """systemd's own parser finds nothing wrong (where systemd-analyze is installed)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    program = tmp_path / "bin dir" / "movinet-pi"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    workdir = tmp_path / "work dir 100%"
    workdir.mkdir()
    text = systemd_unit(
        ["service", "--print", "--display", "window", *TRICKY],
        user="root", executable=str(program), workdir=str(workdir),
        env={"MOVINET_PI_MODELS": "/srv/my models/100%", "MOVINET_PI_MQTT_PASSWORD": "x"})
    path = tmp_path / "movinet-pi.service"
    path.write_text(text)
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                            timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if str(path) in line or "movinet-pi.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


@pytest.mark.parametrize("flags", [
    ["--web-token", "0123456789abcdef-SECRET"],
    ["--web-token=0123456789abcdef-SECRET"],
    ["--web-tok", "0123456789abcdef-SECRET"],  # argparse takes abbreviations
    ["--web-t=0123456789abcdef-SECRET"],
])
def test_the_web_token_never_goes_into_the_unit(flags: list[str]) -> None:
    text = unit(["service", "--print", "--headless", "--web", "0.0.0.0:8080", *flags])
    assert "SECRET" not in text
    assert systemd_split(directive(text, "ExecStart")) == [
        EXE, "--headless", "--web", "0.0.0.0:8080"]
    assert directive(text, "EnvironmentFile") == "/home/pi/.config/movinet-pi/web-token.env"
    assert "MOVINET_PI_WEB_TOKEN=" in text  # what the file holds, as a comment
    assert not any("TOKEN" in a for a in directives(text, "Environment"))


def test_a_token_in_the_environment_is_read_from_a_file_too() -> None:
    text = unit(["service", "--print", "--headless"], env={"MOVINET_PI_WEB_TOKEN": "SECRET-x"})
    assert "SECRET" not in text
    assert directive(text, "EnvironmentFile") == "/home/pi/.config/movinet-pi/web-token.env"
    assert "EnvironmentFile" not in unit(["service", "--print", "--headless", "--web", "8080"])


def test_service_print_says_how_to_make_the_token_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from movinet_pi.cli import main

    monkeypatch.delenv("MOVINET_PI_WEB_TOKEN", raising=False)
    assert main(["service", "--print", "--headless", "--web", "0.0.0.0:8080",
                 "--web-token", "0123456789abcdef-SECRET"]) == 0
    out, err = capsys.readouterr()
    assert "SECRET" not in out and "SECRET" not in err
    assert "EnvironmentFile=" in out
    assert "web-token.env" in err and "umask 077" in err and err.count("\n") == 1


def test_service_print_says_how_to_give_the_unit_the_mqtt_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from movinet_pi.cli import main

    monkeypatch.setenv("MOVINET_PI_MQTT_PASSWORD", "SECRET-pw")
    monkeypatch.delenv("MOVINET_PI_MQTT_PASSWORD_FILE", raising=False)
    assert main(["service", "--print", "--headless", "--mqtt", "mqtt://broker/cam"]) == 0
    out, err = capsys.readouterr()
    assert "SECRET" not in out and "SECRET" not in err
    assert "# Environment=MOVINET_PI_MQTT_PASSWORD_FILE=" in out
    assert "the unit cannot carry $MOVINET_PI_MQTT_PASSWORD" in err and "umask 077" in err
    monkeypatch.setenv("MOVINET_PI_MQTT_PASSWORD_FILE", "/home/pi/pw")  # given: nothing to say
    assert main(["service", "--print", "--headless", "--mqtt", "mqtt://broker/cam"]) == 0
    assert "cannot carry" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--model-path", "/no/such/mine.tflite"], "model file not found: /no/such/mine.tflite"),
        (["/no/such/clip.mp4"], "/no/such/clip.mp4"),
        (["--labels", "/no/such/labels.txt"], "label file not found: /no/such/labels.txt"),
        (["--pre-seconds", "5"], "--pre-seconds goes with --record"),
        (["--threshold", "0.2", "--leave-threshold", "0.5"], "is above --threshold"),
    ],
)
def test_service_print_writes_no_unit_whose_run_would_be_refused(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The unit restarts on failure but not on exit 2 (a usage error): a unit whose run is
    refused at once would stay dead, with the reason only in the journal. Said now instead."""
    from movinet_pi.cli import main

    assert main(["service", "--print", "--headless", *flags]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert says in err and len(err.strip().splitlines()) == 1


def test_service_print_notes_that_a_video_file_plays_once(
    capsys: pytest.CaptureFixture[str]
) -> None:
    from movinet_pi.cli import main

    clip = str(require_shared("videos", "carving_ice.mp4"))
    assert main(["service", "--print", "--headless", clip]) == 0
    out, err = capsys.readouterr()
    assert "ExecStart=" in out and "plays once, and the service then stops: add --loop" in err
    assert main(["service", "--print", "--headless", "--loop", clip]) == 0
    assert "plays once" not in capsys.readouterr().err
    assert main(["service", "--print", "--headless", "--source", "0"]) == 0  # a camera
    assert "plays once" not in capsys.readouterr().err


def test_a_unit_that_cannot_be_written_out_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`service --print > /dev/full`, or into a pipe already closed."""
    import errno
    import sys

    from movinet_pi.cli import main

    class Full:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Full())
    assert main(["service", "--print", "--headless"]) == 1
    err = capsys.readouterr().err
    assert err == ("movinet-pi: error: cannot write: No space left on device (output): free "
                   "some space or choose another place\n")


def test_the_flag_after_a_web_token_given_with_equals_is_kept() -> None:
    text = unit(["service", "--print", "--web-token=SECRET", "--headless"])
    assert directive(text, "ExecStart") == f"{EXE} --headless"


def test_after_a_double_dash_nothing_is_taken_out() -> None:
    from movinet_pi.tools.service import without_secrets

    args = ["--headless", "--", "--web-token", "x"]
    assert without_secrets(args) == (args, False)


def test_a_dollar_in_an_environment_value_is_written_as_it_is() -> None:
    # (systemd expands no $ in Environment=: doubling it would change the value)
    text = unit(["service", "--print"], env={"MOVINET_PI_MODELS": "/srv/$models"})
    assert "Environment=MOVINET_PI_MODELS=/srv/$models" in text.splitlines()


def test_every_flag_reaches_execstart() -> None:
    flags = [f"--flag{i}" for i in range(12)]
    text = unit(["service", "--print", *flags])
    assert directive(text, "ExecStart") == f"{EXE} " + " ".join(flags)


def test_headless_anywhere_means_no_window_and_no_desktop_note() -> None:
    # The CLI takes --headless over any --display: so does the unit's note about a desktop.
    assert "no desktop" not in unit(["service", "--print", "--headless", "--display", "window"])
