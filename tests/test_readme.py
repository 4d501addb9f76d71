"""The README as a new user reads it (issue #29): short, its links and commands true, and its
"any other Linux" install leaving `movinet-pi` on PATH."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _code_block_after(text: str, heading: str) -> str:
    """The first ```bash block after the line holding ``heading``."""
    start = text.index(heading)
    match = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert match, f"no bash block after {heading!r}"
    return match.group(1)


def test_the_readme_is_for_users_and_short() -> None:
    assert len(_text().splitlines()) <= 400
    for heading in ("## Install", "## Using it", "## Models", "## Display", "## Outputs",
                    "## Raspberry Pi notes", "## Troubleshooting"):
        assert f"\n{heading}\n" in _text()


def test_every_link_of_the_readme_and_its_docs_leads_somewhere() -> None:
    for page in (README, *(ROOT / "docs" / name for name in ("DEVELOPMENT.md", "performance.md",
                                                         "roi.md", "live-fidelity.md"))):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith("http"):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                         for h in headings}
                assert anchor in slugs, f"{page.name}: {target}"


def test_measurements_and_design_notes_live_in_docs_and_are_linked() -> None:
    text = _text()
    for doc in ("docs/performance.md", "docs/live-fidelity.md", "docs/DEVELOPMENT.md"):
        assert (ROOT / doc).is_file() and f"]({doc}" in text
    assert "# Live fidelity" in (ROOT / "docs" / "live-fidelity.md").read_text()
    assert "| A0 int8 |" not in text  # the bench tables are not the README's
    assert "berlin0308/Raspberrypi-MoViNet-TFLite" in text  # the Pi 4 column's source
    assert "counts as its first class" not in text  # eval counts "no answer" as (other)


def test_the_two_commands_at_the_top_are_true() -> None:
    top = _code_block_after(_text(), "# movinet-pi")
    assert "./scripts/install_pi.sh && ~/.venvs/movinet-pi/bin/movinet-pi" in top
    assert os.access(ROOT / "scripts" / "install_pi.sh", os.X_OK)
    assert "pip install -e '.[test]' && python -m pytest" in top
    assert "../shared" in top and "venv" in top  # what the tests read, and where they run
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()  # CI runs the same


STUB_PYTHON = """#!/usr/bin/env bash
# python3 for the README's block: a real venv without pip (no network here), then a pip
# that "installs" a movinet-pi command which logs how it was called
set -eu
if [ "$1 $2" = "-m venv" ]; then
  "$REAL_PYTHON" -m venv --without-pip "$3"
  cat >"$3/bin/pip" <<'PIP'
#!/usr/bin/env bash
here="$(cd "$(dirname "$0")" && pwd)"
printf '#!/bin/sh\\necho "movinet-pi $*" >>"$STUB_LOG"\\n' >"$here/movinet-pi"
chmod +x "$here/movinet-pi"
echo "pip $*" >>"$STUB_LOG"
PIP
  chmod +x "$3/bin/pip"
  exit 0
fi
exit 2
"""


def test_the_any_other_linux_install_leaves_movinet_pi_on_path(tmp_path: Path) -> None:
    # "movinet-pi: command not found" after following the README (issue #29)
    block = _code_block_after(_text(), "**Any other Linux**")
    home, bin_dir, log = tmp_path / "home", tmp_path / "bin", tmp_path / "log"
    home.mkdir()
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(STUB_PYTHON)
    (bin_dir / "python3").chmod(0o755)
    env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_LOG": str(log),
           "REAL_PYTHON": sys.executable}
    done = subprocess.run(["bash", "-e", "-c", block], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "pip install ." and calls[-1].startswith("movinet-pi ")


@pytest.mark.parametrize("flag", ["--window-size", "--event-min-s", "--history"])
def test_flags_the_readme_names_exist(flag: str) -> None:
    from movinet_pi.flags import build_run_parser

    assert flag in _text() and flag in build_run_parser().format_help()
