"""scripts/test.sh (the README's test command, CI's too) says what it installs and why before it
installs Debian packages, and AEKIT_NO_APT=1 skips them. Run with stand-ins for python, id,
dpkg and apt-get on PATH that only record how they were called."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "test.sh"


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(tmp_path: Path, **env) -> tuple[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    _stub(bin_dir, "python", f'echo "python $*" >> {log}')
    _stub(bin_dir, "id", "echo 0")  # as root
    _stub(bin_dir, "dpkg", "exit 1")  # the packages are not installed
    _stub(bin_dir, "apt-get", f'echo "apt-get $*" >> {log}')
    full_env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", **env}
    out = subprocess.run(["bash", str(SCRIPT), "-q"], capture_output=True, text=True, env=full_env, timeout=60, check=True)
    return out.stdout, log.read_text()


def test_says_what_it_installs_before_installing(tmp_path):
    printed, calls = _run(tmp_path)
    assert "installing Debian packages dataset-fashion-mnist chromium" in printed and "AEKIT_NO_APT=1" in printed
    assert "apt-get install -y -qq dataset-fashion-mnist chromium" in calls
    assert calls.splitlines()[-1] == "python -m pytest -q"  # then the tests, with the arguments given


def test_no_apt_skips_the_debian_packages(tmp_path):
    printed, calls = _run(tmp_path, AEKIT_NO_APT="1")
    assert "not installing Debian packages" in printed
    assert "apt-get" not in calls and calls.splitlines()[-1] == "python -m pytest -q"


def test_browser_tests_must_run_where_chromium_is(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "chromium", "exit 0")
    log = tmp_path / "calls.log"
    _stub(bin_dir, "python", f'echo "python $* browser=$AEKIT_BROWSER_TESTS" >> {log}')
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "AEKIT_NO_APT": "1"}
    env.pop("AEKIT_BROWSER_TESTS", None)
    subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert log.read_text().splitlines()[-1] == "python -m pytest browser=required"
