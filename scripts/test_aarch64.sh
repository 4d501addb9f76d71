#!/usr/bin/env bash
# Run movinet-pi's tests on linux aarch64 under emulation: a Debian arm64 root filesystem
# (debootstrap) run through qemu-user-static via binfmt_misc, installed with the real
# scripts/install_pi.sh. Needs root (debootstrap, chroot, binfmt_misc) and ../shared.
#
#   sudo scripts/test_aarch64.sh [bookworm|trixie] [pytest args...]
#
# bookworm = Raspberry Pi OS Bookworm's base (Python 3.11, numpy 1.24); trixie = Trixie's
# (Python 3.13, numpy 2.x). Default tests: tests/test_classifier.py tests/test_shown.py
# tests/test_graph.py tests/test_pipeline.py.
# The CPU is a Cortex-A72 (the Pi 4's) unless QEMU_CPU says otherwise (cortex-a76: Pi 5).
#
# What is real here: the aarch64 wheels pip picks (ai-edge-litert, opencv-python, ...), the
# system numpy of that Debian release, the aarch64 XNNPACK kernels computing the real model,
# and install_pi.sh itself. What is not: a Pi (no camera, no picamera2 -- Debian does not
# package it -- so python3-numpy stands in for python3-picamera2 in the apt step), speed
# (emulation is many times slower than a Pi), and the model download (no Kaggle here: the
# shared model and labels are put in the cache first, so `movinet-pi download a0` finds them).
#
# First run: about 4 min of debootstrap + 4 min of installing; then only the tests.
# The root filesystems stay in $MOVINET_PI_AARCH64_ROOTS (default /var/tmp/movinet-pi-aarch64).
set -euo pipefail

suite="${1:-bookworm}"
[ $# -gt 0 ] && shift
case "$suite" in
  bookworm|trixie) ;;
  -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
  *) echo "test_aarch64: unknown suite $suite (bookworm or trixie)" >&2; exit 2 ;;
esac
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/test_classifier.py tests/test_shown.py tests/test_graph.py
  tests/test_pipeline.py)

project="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="$(cd "$project/.." && pwd)/shared"
roots="${MOVINET_PI_AARCH64_ROOTS:-/var/tmp/movinet-pi-aarch64}"
mirror="${MOVINET_PI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$roots/$suite"
cpu="${QEMU_CPU:-cortex-a72}"

say() { printf '\n== %s\n' "$*"; }
die() { echo "test_aarch64: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, binfmt_misc): run it with sudo"
[ -d "$shared/models" ] || die "$shared is missing: the tests need the real models and clips"

say "qemu-user-static + debootstrap"
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "binfmt_misc: aarch64 binaries run through qemu"
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/status" ] || mount -t binfmt_misc binfmt_misc "$binfmt" ||
  die "cannot mount binfmt_misc (a container without the privilege?): aarch64 binaries cannot run"
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  # the F flag opens the interpreter now, so it also works inside the chroot
  cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register"
fi
grep -q '^enabled' "$binfmt/qemu-aarch64" || die "the qemu-aarch64 binfmt handler is disabled"

if [ ! -e "$root/.movinet-pi-ready" ]; then
  say "debootstrap $suite arm64 into $root"
  rm -rf "$root"
  mkdir -p "$roots"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-venv,python3-pip,python3-numpy,ca-certificates \
    "$suite" "$root" "$mirror"
  touch "$root/.movinet-pi-ready"
fi

mounted=()
# shellcheck disable=SC2317  # (called by the EXIT trap)
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() { # bind SOURCE TARGET [ro]
  mkdir -p "$2"
  mountpoint -q "$2" || { mount --bind "$1" "$2" && mounted+=("$2"); }
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
bind /proc "$root/proc"
bind /dev "$root/dev"
bind "$shared" "$root/root/shared" ro

# the network, and the CA bundle this machine trusts (a proxy may re-sign TLS)
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/host-ca-bundle.crt"

say "project -> $root/root/movinet-pi"
rm -rf "$root/root/movinet-pi"
mkdir -p "$root/root/movinet-pi"
(cd "$project" && git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf -) | tar -xf - -C "$root/root/movinet-pi"
mkdir -p "$root/root/.cache/movinet-pi"
cp "$shared/models/movinet_a0_stream_int8.tflite" "$shared/labels/kinetics600_label_map.txt" \
  "$root/root/.cache/movinet-pi/"

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/root/.venvs/movinet-pi/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive QEMU_CPU="$cpu" CI="${CI:-}" "$@"
}

say "scripts/install_pi.sh inside the $suite arm64 root"
SECONDS=0
in_root env MOVINET_PI_APT_PACKAGES="python3-numpy python3-venv libgl1 libglib2.0-0" \
  bash /root/movinet-pi/scripts/install_pi.sh --force --reinstall
in_root python -c 'import pytest, hypothesis' 2>/dev/null ||
  in_root python -m pip install -q pytest hypothesis
echo "installed in ${SECONDS} s"

say "versions"
in_root python - <<'EOF'
import platform, sys
import numpy, cv2
from importlib.metadata import version
print(f"{platform.machine()} Python {platform.python_version()}, numpy {numpy.__version__} "
      f"from {numpy.__file__.rsplit('/numpy/', 1)[0]}, opencv-python {cv2.__version__}, "
      f"ai-edge-litert {version('ai-edge-litert')}")
EOF

say "pytest ${tests[*]} (QEMU_CPU=$cpu)"
SECONDS=0
status=0
in_root bash -c 'cd /root/movinet-pi && exec python -m pytest -p no:cacheprovider -q "$@"' \
  pytest "${tests[@]}" || status=$?
echo "test_aarch64: $suite, pytest exit $status after ${SECONDS} s under emulation"
exit "$status"
