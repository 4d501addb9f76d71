"""The tests' own helpers: in CI a test that cannot run fails instead of skipping."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tmpfs


def _mount_refused(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], 1, "", "mount: /mnt: permission denied.\n")


@pytest.mark.parametrize("ci", ["1", None])
def test_a_tmpfs_that_cannot_be_mounted_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    monkeypatch.setattr(tmpfs.subprocess, "run", _mount_refused)
    monkeypatch.setattr(tmpfs.shutil, "which", lambda name: "/usr/bin/unshare")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception, match="cannot mount a tmpfs"):
            tmpfs.run_on_tmpfs(tmp_path, "size=1m", "print('{}')")
    else:
        monkeypatch.setenv("CI", ci)
        with pytest.raises(pytest.fail.Exception, match="cannot mount a tmpfs"):
            tmpfs.run_on_tmpfs(tmp_path, "size=1m", "print('{}')")


def test_no_unshare_fails_in_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tmpfs.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="unshare"):
        tmpfs.run_on_tmpfs(tmp_path, "size=1m", "print('{}')")
