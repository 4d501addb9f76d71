#!/usr/bin/env bash
# Install movinet-pi on a Raspberry Pi (64-bit Raspberry Pi OS, Bookworm or Trixie).
# Run ./scripts/install_pi.sh --help for what it does. Safe to run again: every step that is
# already done is skipped.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/install_pi.sh [--force] [--reinstall] [--venv DIR] [--source DIR] [--bin DIR]
                             [--no-link] [--help]

Installs movinet-pi on a Raspberry Pi running 64-bit Raspberry Pi OS:
  1. sudo apt-get install -y python3-picamera2 python3-venv libgl1 libglib2.0-0
     (only the packages not installed yet; picamera2 brings the system numpy)
  2. python3 -m venv --system-site-packages ~/.venvs/movinet-pi
     (the venv sees the apt-installed picamera2)
  3. pins numpy to the system numpy in the venv (DIR/pip.conf), so that no pip install can
     replace the numpy picamera2 was built against
  4. pip install the project (this checkout, or --source DIR)
  5. movinet-pi download a0   (the default model and labels; skipped if already there)
  6. links ~/.local/bin/movinet-pi to the venv's, so that `movinet-pi` runs from any
     shell (Raspberry Pi OS puts ~/.local/bin on PATH at login once it exists)
Then run:  movinet-pi      (or ~/.venvs/movinet-pi/bin/movinet-pi)

Options:
  --force       install even if this does not look like a 64-bit Raspberry Pi
  --reinstall   pip install the project again even if this version is installed
  --venv DIR    the virtual environment (default: ~/.venvs/movinet-pi)
  --source DIR  the movinet-pi checkout to install (default: the one holding this script)
  --bin DIR     where to link the movinet-pi command (default: ~/.local/bin)
  --no-link     do not link it (run it as DIR/bin/movinet-pi, or activate the venv)
  -h, --help    this help

Environment (for tests and unusual systems): MOVINET_PI_DEVICE_MODEL_FILE (default
/proc/device-tree/model), MOVINET_PI_OS_RELEASE (/etc/os-release), MOVINET_PI_ARCH (uname -m),
MOVINET_PI_PYTHON (/usr/bin/python3: the system Python that apt's picamera2 belongs to),
MOVINET_PI_SUDO (sudo unless run as root), MOVINET_PI_APT_PACKAGES (the apt packages, space
separated: scripts/test_aarch64.sh installs into a Debian arm64 chroot, which has no picamera2).
EOF
}

say() { printf 'install_pi: %s\n' "$*"; }
die() { printf 'install_pi: %s\n' "$*" >&2; exit 1; }
run() { printf '+ %s\n' "$*"; "$@"; }

force=0
reinstall=0
link=1
venv="${HOME}/.venvs/movinet-pi"
bin_dir="${HOME}/.local/bin"
source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --force) force=1 ;;
    --reinstall) reinstall=1 ;;
    --venv) [ $# -ge 2 ] || die "--venv needs a directory"; venv="$2"; shift ;;
    --venv=*) venv="${1#*=}" ;;
    --source) [ $# -ge 2 ] || die "--source needs a directory"; source_dir="$2"; shift ;;
    --source=*) source_dir="${1#*=}" ;;
    --bin) [ $# -ge 2 ] || die "--bin needs a directory"; bin_dir="$2"; shift ;;
    --bin=*) bin_dir="${1#*=}" ;;
    --no-link) link=0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done

if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  die "run this as $SUDO_USER, without sudo: it asks for sudo itself for apt, and the venv belongs in your home"
fi

model_file="${MOVINET_PI_DEVICE_MODEL_FILE:-/proc/device-tree/model}"
os_release="${MOVINET_PI_OS_RELEASE:-/etc/os-release}"
arch="${MOVINET_PI_ARCH:-$(uname -m)}"
python="${MOVINET_PI_PYTHON:-/usr/bin/python3}"
if [ -n "${MOVINET_PI_SUDO+set}" ]; then
  sudo_cmd="${MOVINET_PI_SUDO}"
elif [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=""
else
  sudo_cmd="sudo"
fi

# --- 0. is this a 64-bit Raspberry Pi? --------------------------------------------------------
device=""
if [ -r "$model_file" ]; then
  device="$(tr -d '\0' <"$model_file")"
fi
os_id="" os_like="" codename="" os_name=""
if [ -r "$os_release" ]; then
  # shellcheck disable=SC1090
  os_id="$(. "$os_release" && printf '%s' "${ID:-}")"
  # shellcheck disable=SC1090
  os_like="$(. "$os_release" && printf '%s' "${ID_LIKE:-}")"
  # shellcheck disable=SC1090
  codename="$(. "$os_release" && printf '%s' "${VERSION_CODENAME:-}")"
  # shellcheck disable=SC1090
  os_name="$(. "$os_release" && printf '%s' "${PRETTY_NAME:-}")"
fi
problems=()
case "$device" in
  *"Raspberry Pi"*) ;;
  "") problems+=("not a Raspberry Pi (no $model_file)") ;;
  *) problems+=("not a Raspberry Pi ($model_file says: $device)") ;;
esac
if [ "$arch" != "aarch64" ]; then
  problems+=("the OS is $arch, not 64-bit (aarch64): ai-edge-litert and opencv-python have no wheels for it; install the 64-bit Raspberry Pi OS")
fi
case " $os_id $os_like " in
  *" debian "*|*" raspbian "*) ;;
  *) problems+=("not a Debian-based OS (${os_name:-no $os_release}): apt is needed for picamera2") ;;
esac
if [ ${#problems[@]} -gt 0 ]; then
  for problem in "${problems[@]}"; do
    printf 'install_pi: %s\n' "$problem" >&2
  done
  if [ "$force" -eq 0 ]; then
    die "this script installs on a Raspberry Pi with 64-bit Raspberry Pi OS only; elsewhere use: python3 -m venv .venv && .venv/bin/pip install $source_dir  (or pass --force)"
  fi
  say "--force: going on anyway"
fi
case "$codename" in
  bookworm|trixie|"") ;;
  *) say "warning: tested on Bookworm and Trixie, this is ${codename}" ;;
esac
say "${device:-unknown device}, ${os_name:-unknown OS}, $arch"

if ! grep -qs '^name = "movinet-pi"' "$source_dir/pyproject.toml"; then
  die "$source_dir is not a movinet-pi checkout (no pyproject.toml naming movinet-pi): pass --source DIR"
fi

# --- 1. system packages -----------------------------------------------------------------------
# python3-picamera2: the camera library (brings python3-numpy, python3-libcamera, simplejpeg);
# python3-venv: venvs with pip; libgl1 + libglib2.0-0: what the opencv-python wheel links to
# (missing on Raspberry Pi OS Lite: `import cv2` fails with "libGL.so.1: cannot open ...").
packages=(python3-picamera2 python3-venv libgl1 libglib2.0-0)
if [ -n "${MOVINET_PI_APT_PACKAGES:-}" ]; then
  read -r -a packages <<<"$MOVINET_PI_APT_PACKAGES"
fi
missing=()
for package in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "skip: apt packages already installed (${packages[*]})"
else
  say "installing with apt: ${missing[*]}"
  run ${sudo_cmd:+"$sudo_cmd"} apt-get update
  run ${sudo_cmd:+"$sudo_cmd"} apt-get install -y "${missing[@]}"
fi

# --- 2. the venv, seeing the system site-packages ---------------------------------------------
if [ -x "$venv/bin/python" ]; then
  if ! grep -Eqi '^include-system-site-packages *= *true' "$venv/pyvenv.cfg" 2>/dev/null; then
    die "$venv exists but was made without --system-site-packages, so it cannot see picamera2: remove it (rm -rf $venv) and run this again"
  fi
  say "skip: venv $venv already exists"
else
  run "$python" -m venv --system-site-packages "$venv"
fi

# --- 3. keep the system numpy ------------------------------------------------------------------
# picamera2 and its compiled helpers come from apt, built against the system numpy (1.24 on
# Bookworm, 2.x on Trixie). pip would put a newer numpy into the venv as soon as a dependency
# asks for one (opencv-python >= 4.12 wants numpy >= 2), and that numpy hides the system one:
# on Bookworm picamera2 then fails to import. The pin makes pip choose wheels that fit instead.
constraints="$venv/movinet-pi-constraints.txt"
numpy_version="$("$python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
if [ -n "$numpy_version" ]; then
  {
    printf '# written by movinet-pi scripts/install_pi.sh: picamera2 needs the system numpy\n'
    printf 'numpy==%s\n' "$numpy_version"
    # opencv-python 4.12 and later require numpy >= 2: saying so up front spares pip from
    # downloading each newer ~50 MB wheel only to reject it (4.11 works with numpy 1.24)
    case "$numpy_version" in 1.*) printf 'opencv-python<4.12\n' ;; esac
  } >"$constraints"
  printf '[global]\nconstraint = %s\n' "$constraints" >"$venv/pip.conf"
  say "numpy pinned to the system's $numpy_version (in $venv/pip.conf)"
else
  say "warning: the system Python has no numpy (is python3-picamera2 installed?): numpy not pinned"
  : >"$constraints"
fi

# --- 4. the project -----------------------------------------------------------------------------
wanted="$(sed -n 's/^version = "\(.*\)"/\1/p' "$source_dir/pyproject.toml" | head -n 1)"
have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("movinet-pi"))' 2>/dev/null || true)"
if [ "$reinstall" -eq 0 ] && [ -n "$have" ] && [ "$have" = "$wanted" ]; then
  say "skip: movinet-pi $have already installed in $venv (--reinstall to install again)"
else
  run "$venv/bin/python" -m pip install --constraint "$constraints" "$source_dir"
fi

# --- 5. the default model -------------------------------------------------------------------------
# `movinet-pi download` skips files already there (checked by sha256), so this is cheap to repeat.
run "$venv/bin/movinet-pi" download a0

# --- 6. the command on PATH ------------------------------------------------------------------------
# A venv's scripts are on PATH only while it is active: without a link, `movinet-pi` is "command
# not found" in every new shell. Debian's ~/.profile adds ~/.local/bin to PATH at login when it
# exists; a file there that is not our link is left alone.
command_path="$venv/bin/movinet-pi"
if [ "$link" -eq 1 ]; then
  target="$bin_dir/movinet-pi"
  if [ -e "$target" ] && ! [ "$target" -ef "$command_path" ]; then
    say "warning: $target exists and is not this venv's movinet-pi: left as it is"
  elif [ "$target" -ef "$command_path" ]; then
    say "skip: $target already links to $command_path"
    command_path="movinet-pi"
  else
    run mkdir -p "$bin_dir"
    run ln -sfn "$command_path" "$target"
    command_path="movinet-pi"
  fi
fi

echo
echo "install_pi: done. Run the camera classifier with:"
echo
echo "    $command_path"
echo
if [ "$command_path" = movinet-pi ]; then
  case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) echo "($bin_dir is not on this shell's PATH yet: open a new login shell, or run"
       echo " export PATH=\"$bin_dir:\$PATH\"; until then: $venv/bin/movinet-pi)" ;;
  esac
else
  echo "or activate the venv first:  . $venv/bin/activate && movinet-pi"
fi
