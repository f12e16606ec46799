"""`mrouter lab down --all` leaves labs that a running process owns (issue 16.8).

A test run (or any `with Lab(...)` block) owns its labs and tears them down itself;
`down --all` from another terminal must not pull them away from under it. The owner
here is a child process this test starts and ends by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import netns_list

pytestmark = pytest.mark.netns

OWNER = """\
import sys, time
from mrouter.lab import Lab
lab = Lab.from_file("basic.toml", name=sys.argv[1])
lab.start()
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = f"mrd{os.getpid()}x{time.monotonic_ns() % 100000}-"
    env = dict(os.environ, MROUTER_LAB_DIR=str(tmp_path / "labs"), MROUTER_LAB_PREFIX=prefix)
    yield env
    for ns in netns_list():
        if ns.startswith(prefix):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _owner(env: dict[str, str], name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER, name], env=env, text=True,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()


def _down_all(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mrouter", "lab", "down", "--all", *extra],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def _ours(env: dict[str, str]) -> set[str]:
    return {n for n in netns_list() if n.startswith(env["MROUTER_LAB_PREFIX"])}


def test_down_all_leaves_a_live_owners_lab_until_it_exits(env: dict[str, str]) -> None:
    owner = _owner(env, "owned")
    try:
        namespaces = _ours(env)
        assert len(namespaces) == 3
        kept = _down_all(env)
        assert kept.returncode == 0, kept.stderr
        assert f"lab owned left up: pid {owner.pid} owns it and is running" in kept.stdout
        assert "--force" in kept.stdout
        assert _ours(env) == namespaces
    finally:
        _kill(owner)  # it dies without tearing its lab down
    swept = _down_all(env)
    assert swept.returncode == 0, swept.stderr
    assert "lab owned down (3 namespaces removed)" in swept.stdout
    assert _ours(env) == set()


def test_down_all_force_removes_a_live_owners_lab(env: dict[str, str]) -> None:
    owner = _owner(env, "forced")
    try:
        forced = _down_all(env, "--force")
        assert forced.returncode == 0, forced.stderr
        assert "lab forced down (3 namespaces removed)" in forced.stdout
        assert _ours(env) == set()
    finally:
        _kill(owner)


def test_force_without_all_is_a_usage_error(env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-m", "mrouter", "lab", "down", "x", "--force"],
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--all" in out.stderr
