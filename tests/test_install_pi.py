"""scripts/install_pi.sh, run against stub sudo/apt-get/dpkg-query/python on a fake "Pi".

No sudo, no Pi and no network: the device-tree model file, os-release, the architecture and
the system Python are overridden through the script's MOVINET_PI_* variables, and every
command the script runs is a stub that logs its arguments to a file (and keeps just enough
state for the script's "already done" checks: installed packages, the venv, the project).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install_pi.sh"
PACKAGES = ["python3-picamera2", "python3-venv", "libgl1", "libglib2.0-0"]

STUBS = {
    "sudo": """
echo "sudo $*" >>"$STUB_LOG"
exec "$@"
""",
    "apt-get": """
echo "apt-get $*" >>"$STUB_LOG"
if [ "$1" = install ]; then
  shift
  for p in "$@"; do [ "$p" = -y ] || echo "$p" >>"$STUB_STATE/dpkg"; done
fi
""",
    "dpkg-query": """
pkg="${*: -1}"
if grep -qx -- "$pkg" "$STUB_STATE/dpkg" 2>/dev/null; then
  printf 'install ok installed'
else
  echo "dpkg-query: no packages found matching $pkg" >&2
  exit 1
fi
""",
    # the system python3: answers the numpy question and makes venvs
    "system-python3": """
echo "python3 $*" >>"$STUB_LOG"
if [ "$1" = -c ]; then
  [ -n "${STUB_NUMPY:-}" ] || { echo "ModuleNotFoundError: No module named 'numpy'" >&2; exit 1; }
  echo "$STUB_NUMPY"
  exit 0
fi
if [ "$1 $2" = "-m venv" ]; then
  dir="${*: -1}"
  mkdir -p "$dir/bin"
  system=false
  [ "$3" = --system-site-packages ] && system=true
  echo "include-system-site-packages = $system" >"$dir/pyvenv.cfg"
  cp "$STUB_BIN/venv-python" "$dir/bin/python"
  cp "$STUB_BIN/venv-movinet-pi" "$dir/bin/movinet-pi"
  exit 0
fi
exit 2
""",
    # the venv's python: pip install records the version; -c reports it
    "venv-python": """
here="$(cd "$(dirname "$0")/.." && pwd)"
echo "venv-python $*" >>"$STUB_LOG"
if [ "$1" = -c ]; then
  [ -f "$here/installed" ] || exit 1
  cat "$here/installed"
  exit 0
fi
if [ "$1 $2 $3" = "-m pip install" ]; then
  sed -n 's/^version = "\\(.*\\)"/\\1/p' "${*: -1}/pyproject.toml" >"$here/installed"
  exit 0
fi
exit 2
""",
    "venv-movinet-pi": """
echo "movinet-pi $*" >>"$STUB_LOG"
""",
}

PI_OS_BOOKWORM = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
"""
UBUNTU = """PRETTY_NAME="Ubuntu 24.04 LTS"
ID=ubuntu
ID_LIKE=debian
VERSION_CODENAME=noble
"""


@dataclass
class Result:
    code: int
    out: str
    err: str
    log: list[str]  # what the stubs were asked to do, this run only

    @property
    def commands(self) -> list[str]:
        """The ``+ command`` lines the script printed before running each command."""
        return [line[2:] for line in self.out.splitlines() if line.startswith("+ ")]


class FakePi:
    """A temporary "machine": stub commands, device files, a home and a checkout."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.state = tmp / "state"
        self.home = tmp / "home"
        self.source = tmp / "checkout"
        for folder in (self.bin, self.state, self.home, self.source):
            folder.mkdir()
        for name, body in STUBS.items():
            path = self.bin / name
            path.write_text("#!/usr/bin/env bash\nset -u\n" + body.lstrip("\n"))
            path.chmod(0o755)
        self.model = tmp / "model"
        self.model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
        self.os_release = tmp / "os-release"
        self.os_release.write_text(PI_OS_BOOKWORM)
        self.log = tmp / "log"
        self.log.touch()
        self.set_version("0.1.0")
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "STUB_LOG": str(self.log),
            "STUB_STATE": str(self.state),
            "STUB_BIN": str(self.bin),
            "STUB_NUMPY": "1.24.2",
            "MOVINET_PI_DEVICE_MODEL_FILE": str(self.model),
            "MOVINET_PI_OS_RELEASE": str(self.os_release),
            "MOVINET_PI_ARCH": "aarch64",
            "MOVINET_PI_PYTHON": str(self.bin / "system-python3"),
            "MOVINET_PI_SUDO": "sudo",
        }
        # never fall through to the real sudo/apt-get on the test machine
        assert shutil.which("apt-get", path=self.env["PATH"]) == str(self.bin / "apt-get")

    @property
    def venv(self) -> Path:
        return self.home / ".venvs" / "movinet-pi"

    def set_version(self, version: str) -> None:
        (self.source / "pyproject.toml").write_text(
            f'[project]\nname = "movinet-pi"\nversion = "{version}"\n'
        )

    def install_packages(self, *names: str) -> None:
        with (self.state / "dpkg").open("a") as dpkg:
            dpkg.writelines(f"{name}\n" for name in names)

    def run(self, *args: str, source: bool = True, **env: str) -> Result:
        before = len(self.log.read_text().splitlines())
        argv = ["bash", str(SCRIPT), *args]
        if source:
            argv += ["--source", str(self.source)]
        done = subprocess.run(
            argv, env={**self.env, **env}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        log = self.log.read_text().splitlines()[before:]
        return Result(done.returncode, done.stdout, done.stderr, log)


@pytest.fixture
def pi(tmp_path: Path) -> FakePi:
    return FakePi(tmp_path)


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_help(pi: FakePi) -> None:
    result = pi.run("--help", source=False)
    assert result.code == 0 and result.log == []
    for needle in ("--force", "--system-site-packages", "python3-picamera2",
                   "movinet-pi download a0", "MOVINET_PI_DEVICE_MODEL_FILE"):  # fmt: skip
        assert needle in result.out


def test_unknown_option(pi: FakePi) -> None:
    result = pi.run("--frobnicate")
    assert result.code == 1 and "unknown option: --frobnicate" in result.err
    assert result.log == []


def test_fresh_pi_runs_the_documented_install(pi: FakePi) -> None:
    result = pi.run()
    assert result.code == 0, result.err
    venv = pi.venv
    assert result.commands == [
        "sudo apt-get update",
        f"sudo apt-get install -y {' '.join(PACKAGES)}",
        f"{pi.bin / 'system-python3'} -m venv --system-site-packages {venv}",
        f"{venv}/bin/python -m pip install --constraint {venv}/movinet-pi-constraints.txt "
        f"{pi.source}",
        f"{venv}/bin/movinet-pi download a0",
        f"mkdir -p {pi.home}/.local/bin",
        f"ln -sfn {venv}/bin/movinet-pi {pi.home}/.local/bin/movinet-pi",
    ]
    # the stubs really ran them, apt through sudo
    assert "sudo apt-get install -y " + " ".join(PACKAGES) in result.log
    assert "movinet-pi download a0" in result.log
    assert (venv / "pyvenv.cfg").read_text().strip() == "include-system-site-packages = true"
    # the system numpy is pinned for this and every later pip install in the venv
    pins = (venv / "movinet-pi-constraints.txt").read_text().splitlines()
    assert "numpy==1.24.2" in pins
    assert "opencv-python<4.12" in pins  # the last OpenCV wheels that accept numpy 1.x
    assert (venv / "pip.conf").read_text() == (
        f"[global]\nconstraint = {venv}/movinet-pi-constraints.txt\n"
    )
    assert "Raspberry Pi 5 Model B Rev 1.0, Debian GNU/Linux 12 (bookworm), aarch64" in result.out
    assert "\n    movinet-pi\n" in result.out  # what to run: the command, on PATH
    assert f"{pi.home}/.local/bin is not on this shell's PATH yet" in result.out


def test_second_run_skips_what_is_done(pi: FakePi) -> None:
    assert pi.run().code == 0
    again = pi.run()
    assert again.code == 0, again.err
    # only the model download runs again: `movinet-pi download` skips present files itself
    assert again.commands == [f"{pi.venv}/bin/movinet-pi download a0"]
    assert f"skip: {pi.home}/.local/bin/movinet-pi already links to" in again.out
    assert not any(line.startswith(("sudo", "apt-get")) for line in again.log)
    assert not any("-m venv" in line or "pip install" in line for line in again.log)
    for needle in ("skip: apt packages already installed", f"skip: venv {pi.venv} already",
                   "skip: movinet-pi 0.1.0 already installed"):  # fmt: skip
        assert needle in again.out


# What Debian's /etc/skel/.profile (Raspberry Pi OS's too) does at login.
DEBIAN_PROFILE = """
if [ -d "$HOME/.local/bin" ] ; then
    PATH="$HOME/.local/bin:$PATH"
fi
"""


def test_after_the_install_movinet_pi_is_a_command_in_a_new_login_shell(pi: FakePi) -> None:
    # "movinet-pi: command not found" after the install (issue #29)
    (pi.home / ".profile").write_text(DEBIAN_PROFILE)
    assert pi.run().code == 0
    link = pi.home / ".local" / "bin" / "movinet-pi"
    assert link.is_symlink() and link.resolve() == (pi.venv / "bin" / "movinet-pi").resolve()
    login = subprocess.run(["bash", "-l", "-c", "movinet-pi --version"],
                           env={**pi.env, "PATH": "/usr/bin:/bin"}, capture_output=True,
                           text=True, timeout=60)
    assert login.returncode == 0, login.stderr
    assert pi.log.read_text().splitlines()[-1] == "movinet-pi --version"  # the venv's


def test_a_movinet_pi_command_that_is_not_ours_is_left_alone(pi: FakePi) -> None:
    other = pi.home / ".local" / "bin" / "movinet-pi"
    other.parent.mkdir(parents=True)
    other.write_text("#!/bin/sh\necho mine\n")
    result = pi.run()
    assert result.code == 0, result.err
    assert other.read_text() == "#!/bin/sh\necho mine\n"
    assert f"warning: {other} exists and is not this venv's movinet-pi" in result.out
    assert f"\n    {pi.venv}/bin/movinet-pi\n" in result.out
    assert not any(c.startswith("ln ") for c in result.commands)


def test_no_link_leaves_path_alone(pi: FakePi) -> None:
    result = pi.run("--no-link")
    assert result.code == 0, result.err
    assert not (pi.home / ".local").exists()
    last = result.out.rstrip().splitlines()[-1]
    assert last == f"or activate the venv first:  . {pi.venv}/bin/activate && movinet-pi"


def test_only_missing_packages_are_installed(pi: FakePi) -> None:
    pi.install_packages("python3-venv", "libgl1", "libglib2.0-0")
    result = pi.run()
    assert result.code == 0, result.err
    assert "sudo apt-get install -y python3-picamera2" in result.commands


def test_root_needs_no_sudo(pi: FakePi) -> None:
    result = pi.run(MOVINET_PI_SUDO="")
    assert result.code == 0, result.err
    assert result.commands[:2] == ["apt-get update", f"apt-get install -y {' '.join(PACKAGES)}"]
    assert not any(line.startswith("sudo") for line in result.log)


def test_new_version_is_installed_and_reinstall_forces(pi: FakePi) -> None:
    assert pi.run().code == 0
    pi.set_version("0.2.0")
    upgraded = pi.run()
    assert any("pip install" in c for c in upgraded.commands)
    assert (pi.venv / "installed").read_text().strip() == "0.2.0"
    assert not any("pip install" in c for c in pi.run().commands)
    assert any("pip install" in c for c in pi.run("--reinstall").commands)


def test_trixie_numpy_2_is_pinned(pi: FakePi) -> None:
    pi.os_release.write_text(PI_OS_BOOKWORM.replace("bookworm", "trixie"))
    result = pi.run(STUB_NUMPY="2.2.4")
    assert result.code == 0, result.err
    pins = (pi.venv / "movinet-pi-constraints.txt").read_text().splitlines()
    assert "numpy==2.2.4" in pins
    assert not any(pin.startswith("opencv-python") for pin in pins)
    assert "warning" not in result.out


def test_default_source_is_the_checkout_holding_the_script(pi: FakePi) -> None:
    result = pi.run(source=False)
    assert result.code == 0, result.err
    assert f"--constraint {pi.venv}/movinet-pi-constraints.txt {ROOT}" in "\n".join(result.commands)


def test_custom_venv(pi: FakePi, tmp_path: Path) -> None:
    venv = tmp_path / "elsewhere" / "env"
    result = pi.run("--venv", str(venv))
    assert result.code == 0, result.err
    assert f"{venv}/bin/movinet-pi download a0" in result.commands
    assert (venv / "pip.conf").exists() and not pi.venv.exists()


@pytest.mark.parametrize(
    ("model", "arch", "os_release", "needle"),
    [
        (None, "x86_64", PI_OS_BOOKWORM, "not a Raspberry Pi (no "),
        (b"Generic DT based system\x00", "aarch64", PI_OS_BOOKWORM,
         "not a Raspberry Pi (", ),
        (b"Raspberry Pi 4 Model B Rev 1.5\x00", "armv7l", PI_OS_BOOKWORM,
         "the OS is armv7l, not 64-bit"),
        (b"Raspberry Pi 4 Model B Rev 1.5\x00", "aarch64", 'ID=fedora\nPRETTY_NAME="Fedora"\n',
         "not a Debian-based OS (Fedora)"),
    ],
    ids=["x86-pc", "other-arm-board", "32-bit-pi-os", "not-debian"],
)  # fmt: skip
def test_refuses_where_it_does_not_belong(
    pi: FakePi, model: bytes | None, arch: str, os_release: str, needle: str
) -> None:
    if model is None:
        pi.model.unlink()
    else:
        pi.model.write_bytes(model)
    pi.os_release.write_text(os_release)
    result = pi.run(MOVINET_PI_ARCH=arch)
    assert result.code == 1
    assert needle in result.err
    assert "Raspberry Pi with 64-bit Raspberry Pi OS only" in result.err
    assert "--force" in result.err
    assert result.log == [] and result.commands == []  # nothing was touched
    assert not pi.venv.exists()


def test_force_installs_anyway(pi: FakePi) -> None:
    pi.model.unlink()
    pi.os_release.write_text(UBUNTU)
    result = pi.run("--force", MOVINET_PI_ARCH="x86_64", STUB_NUMPY="")
    assert result.code == 0, result.err
    assert "--force: going on anyway" in result.out
    assert "warning: tested on Bookworm and Trixie, this is noble" in result.out
    # without a system numpy nothing is pinned, and the run says so
    assert "numpy not pinned" in result.out
    assert (pi.venv / "movinet-pi-constraints.txt").read_text() == ""
    assert not (pi.venv / "pip.conf").exists()
    assert f"{pi.venv}/bin/movinet-pi download a0" in result.commands


def test_existing_venv_without_system_site_packages_is_refused(pi: FakePi) -> None:
    subprocess.run(
        [str(pi.bin / "system-python3"), "-m", "venv", str(pi.venv)],
        env=pi.env, check=True,
    )  # fmt: skip
    result = pi.run()
    assert result.code == 1
    assert "made without --system-site-packages" in result.err
    assert f"rm -rf {pi.venv}" in result.err
    assert not any("pip install" in c for c in result.commands)


def test_source_must_be_a_movinet_pi_checkout(pi: FakePi, tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-a-checkout"
    elsewhere.mkdir()
    result = pi.run("--source", str(elsewhere), source=False)
    assert result.code == 1
    assert "is not a movinet-pi checkout" in result.err
    assert result.log == []


def test_refuses_to_run_under_sudo(pi: FakePi) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can look like `sudo ./install_pi.sh`")
    result = pi.run(SUDO_USER="pi")
    assert result.code == 1 and "run this as pi, without sudo" in result.err
    assert result.log == []


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK)
