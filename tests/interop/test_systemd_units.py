"""systemd's own checker accepts the units `mrouter config unit` prints (issue 16.3).

``systemd-analyze verify`` (Debian's systemd package) parses each unit as systemd would
load it, and checks that its commands exist; a unit with a misspelt key or a command
that is not there fails it. The man pages are not looked up (--man=no): a checkout has
not installed them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                 reason="needs systemd-analyze (Debian's systemd)")]


def _unit(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "mrouter", "config", "unit", *args],
                          capture_output=True, text=True, timeout=60, check=True).stdout


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_systemd_analyze_accepts_both_units(tmp_path: Path) -> None:
    (tmp_path / "mrouter.service").write_text(_unit())
    (tmp_path / "mrouter@.service").write_text(_unit("--instance", "lan1"))
    for name in ("mrouter.service", "mrouter@lan1.service"):
        out = _verify(tmp_path / name)
        assert out.returncode == 0 and out.stderr == "", (name, out.stderr)


def test_systemd_analyze_catches_a_bad_unit(tmp_path: Path) -> None:
    # the checker is not a rubber stamp: one misspelt key in the shipped unit is reported
    shipped = Path(__file__).parents[2] / "systemd" / "mrouter.service"
    bad = tmp_path / "mrouter.service"
    bad.write_text(shipped.read_text().replace("Type=notify", "Typo=notify"))
    out = _verify(bad)
    assert "Unknown key" in out.stderr and "Typo" in out.stderr
