#!/usr/bin/env python3
"""Check that every dependency of movinet-pi resolves to a real wheel on Raspberry Pi OS.

For each Raspberry Pi OS release (64-bit, linux aarch64) this runs

    pip download --only-binary=:all: --implementation cp --python-version X.Y --abi cpXY \
        --platform manylinux_2_N_aarch64 ... --platform manylinux2014_aarch64 -d TMP REQS

for the runtime dependencies read from pyproject.toml and for the `tflite` and `mqtt` extras,
prints a table of the wheels each set resolved to, and exits 1 if a set that must resolve
does not (no sdist builds: a Pi must never compile numpy or OpenCV).

The sets are resolved the way scripts/install_pi.sh installs them: against the *system* numpy
of that release (pinned with a constraint), because picamera2 and its compiled helpers
(simplejpeg, ...) come from apt, built against that numpy's ABI. A venv made with
--system-site-packages sees the system numpy, but pip replaces it with a wheel as soon as one
dependency asks for a newer numpy (opencv-python >= 4.12 asks for numpy >= 2), and then
picamera2 breaks on Bookworm. The "unpinned" row shows what pip would pick without the pin.

Targets: Bookworm (Python 3.11, glibc 2.36, python3-numpy 1.24.2) and Trixie (Python 3.13,
glibc 2.41, python3-numpy 2.2.4). tflite-runtime has no wheels past Python 3.11, so its extra
is expected to fail on Trixie; that row is reported, not counted as a failure.

pip's cache is used (`--cache-dir DIR` or $PIP_CACHE_DIR), so a second run downloads nothing;
a cold run downloads about 190 MB. Usage: python scripts/check_wheels.py [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

try:  # packaging is everywhere pip is; fall back to pip's own copy
    from packaging.requirements import Requirement
except ImportError:  # pragma: no cover
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

try:
    import tomllib
except ImportError:  # Python < 3.11
    from pip._vendor import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    """A Raspberry Pi OS release, as pip sees it."""

    name: str
    python: str  # "3.11"
    glibc_minor: int  # 2.N
    system_numpy: str  # the python3-numpy that apt installs there (picamera2's ABI)

    @property
    def cp(self) -> str:
        return "cp" + self.python.replace(".", "")

    def platforms(self) -> list[str]:
        """Every manylinux tag this glibc accepts (pip does not expand --platform itself)."""
        tags = [f"manylinux_2_{m}_aarch64" for m in range(self.glibc_minor, 16, -1)]
        return [*tags, "manylinux2014_aarch64"]


TARGETS = [
    Target("bookworm", "3.11", 36, "1.24.2"),
    Target("trixie", "3.13", 41, "2.2.4"),
]


@dataclass(frozen=True)
class Wheel:
    name: str
    size: int


@dataclass
class Check:
    target: Target
    label: str
    requirements: list[str]
    constraints: list[str]
    expect_ok: bool = True
    why_not: str = ""
    ok: bool = False
    wheels: list[Wheel] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def project_requirements(pyproject: Path) -> tuple[list[str], dict[str, list[str]]]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return list(data["dependencies"]), dict(data.get("optional-dependencies", {}))


def for_target(requirements: list[str], target: Target) -> list[str]:
    """The requirements that apply on ``target`` (markers evaluated), without their markers.

    pip evaluates markers against the interpreter running it, not against --python-version,
    so the markers are evaluated here for the target's Python on linux aarch64.
    """
    environment = {
        "python_version": target.python,
        "python_full_version": target.python + ".0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "aarch64",
        "os_name": "posix",
    }
    kept = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            requirement.marker = None
            kept.append(str(requirement))
    return kept


def checks(pyproject: Path) -> list[Check]:
    dependencies, extras = project_requirements(pyproject)
    out = []
    for target in TARGETS:
        system = [f"numpy=={target.system_numpy}"]
        if target.system_numpy.startswith("1."):
            system.append("opencv-python<4.12")  # as install_pi.sh: newer ones want numpy>=2
        deps = for_target(dependencies, target)
        out.append(Check(target, f"runtime (numpy=={target.system_numpy}, system)", deps, system))
        out.append(Check(target, "runtime, unpinned (plain pip)", deps, []))
        tflite = Check(target, "extra tflite", for_target(extras["tflite"], target), system)
        if target.python != "3.11":
            tflite.expect_ok = False
            tflite.why_not = f"tflite-runtime has no {target.cp} wheels"
        out.append(tflite)
        out.append(Check(target, "extra mqtt", for_target(extras["mqtt"], target), system))
    return out


def run(check: Check, cache_dir: Optional[str]) -> Check:
    with tempfile.TemporaryDirectory(prefix="check-wheels-") as tmp:
        dest = Path(tmp) / "wheels"
        command = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
            "--no-input", "--quiet", "--progress-bar", "off", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", check.target.python,
            "--abi", check.target.cp,
        ]  # fmt: skip
        for platform in check.target.platforms():
            command += ["--platform", platform]
        if cache_dir:
            command += ["--cache-dir", cache_dir]
        if check.constraints:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(check.constraints) + "\n", encoding="utf-8")
            command += ["--constraint", str(constraints)]
        command += ["-d", str(dest), *check.requirements]
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        check.seconds = time.monotonic() - started
        check.ok = result.returncode == 0
        if check.ok:
            check.wheels = [Wheel(p.name, p.stat().st_size) for p in sorted(dest.glob("*"))]
        else:
            errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
            check.error = " / ".join(errors[-2:]) or result.stderr.strip()[-300:]
    return check


_WHEEL_RE = re.compile(r"^(?P<dist>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<tags>.+)\.whl$")


def describe(wheel: Wheel) -> tuple[str, str]:
    match = _WHEEL_RE.match(wheel.name)
    if not match:
        return wheel.name, ""
    dist = match["dist"].replace("_", "-").lower()
    tags = match["tags"]
    python, abi, platform = tags.split("-", 2)
    platform = platform.split(".")[0]  # the lowest manylinux tag is enough
    return f"{dist}=={match['version']}", f"{python}-{abi}-{platform}"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=os.environ.get("PIP_CACHE_DIR"))
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)

    todo = checks(args.pyproject)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda c: run(c, args.cache_dir), todo))

    failures = 0
    unique: dict[str, int] = {}
    print("linux aarch64 wheels for Raspberry Pi OS (pip download --only-binary=:all:)\n")
    for check in done:
        target = f"{check.target.name} {check.target.cp}"
        head = f"{target:<14} {check.label:<34}"
        if check.ok:
            size = sum(w.size for w in check.wheels)
            note = "" if check.expect_ok else "  (expected to fail, resolves now: update docs)"
            count = f"{len(check.wheels)} wheel{'s' * (len(check.wheels) != 1)}"
            print(f"{head} OK    {count}, {size / 1e6:.1f} MB{note}")
            for wheel in check.wheels:
                unique[wheel.name] = wheel.size
                pin, tags = describe(wheel)
                print(f"{'':<16}{pin:<36} {tags:<40} {wheel.size / 1e6:6.1f} MB")
        elif check.expect_ok:
            failures += 1
            print(f"{head} FAIL  {check.error}")
        else:
            print(f"{head} none  as expected: {check.why_not}")
            print(f"{'':<16}pip: {check.error}")
    total = sum(unique.values()) / 1e6
    print(
        f"\n{len(done) - failures}/{len(done)} sets as expected; {len(unique)} distinct wheels, "
        f"{total:.0f} MB on a cold pip cache; {time.monotonic() - started:.1f} s"
    )
    if failures:
        print(f"check_wheels: {failures} set(s) did not resolve to wheels", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
