"""The lab_factory fixture tears its labs down however the test ends: passed, failed,
or interrupted with Ctrl-C. Each case runs a small pytest session in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

INNER = '''
import os, pathlib, time

def test_passes(lab_factory):
    lab = lab_factory("basic.toml")
    pathlib.Path(os.environ["NS_FILE"]).write_text(" ".join(lab.namespaces))

def test_fails(lab_factory):
    lab = lab_factory("lan.toml")
    p = lab.node("h1").spawn(["sleep", "60"])
    pathlib.Path(os.environ["NS_FILE"] + ".pid").write_text(str(p.pid))
    pathlib.Path(os.environ["NS_FILE"]).write_text(" ".join(lab.namespaces))
    assert False, "this test fails on purpose"

def test_interrupted(lab_factory):
    lab = lab_factory("basic.toml")
    p = lab.node("r1").spawn(["sleep", "60"])
    pathlib.Path(os.environ["NS_FILE"] + ".pid").write_text(str(p.pid))
    pathlib.Path(os.environ["NS_FILE"]).write_text(" ".join(lab.namespaces))
    time.sleep(60)
'''


def existing(names: list[str]) -> list[str]:
    return [n for n in names if Path(f"/run/netns/{n}").exists()]


def spawned_alive(ns_file: Path) -> bool:
    pid_file = Path(f"{ns_file}.pid")
    return pid_file.exists() and Path(f"/proc/{pid_file.read_text()}").exists()


def inner_session(tmp_path: Path, test: str) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    ns_file = tmp_path / "namespaces"
    env = dict(os.environ, NS_FILE=str(ns_file), MROUTER_LAB_DIR=str(tmp_path / "labs"),
               MROUTER_LAB_PREFIX=f"mrfx{os.getpid()}-")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "mrouter.lab.fixtures",
         "-p", "no:cacheprovider", f"test_inner.py::{test}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return proc, ns_file, env


@pytest.mark.parametrize(("test", "status"), [("test_passes", 0), ("test_fails", 1)])
def test_labs_go_away_after_a_test_passes_or_fails(
    tmp_path: Path, test: str, status: int,
) -> None:
    proc, ns_file, _ = inner_session(tmp_path, test)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == status, out
    names = ns_file.read_text().split()
    assert len(names) >= 3
    assert existing(names) == []
    assert not spawned_alive(ns_file)
    assert not list(tmp_path.glob("labs/*.json"))


def test_labs_go_away_when_the_run_is_interrupted(tmp_path: Path) -> None:
    proc, ns_file, _ = inner_session(tmp_path, "test_interrupted")
    try:
        deadline = time.monotonic() + 30
        while not ns_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        names = ns_file.read_text().split()
        assert existing(names) == names
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in out
    assert existing(names) == []
    assert not spawned_alive(ns_file)
    assert not list(tmp_path.glob("labs/*.json"))
