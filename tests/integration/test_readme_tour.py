"""The README's five-minute tour, run as written (with a lab name and paths of its own).

A user pastes the block into a root shell; here bash runs it with the venv's bin first on
PATH (what `. .venv/bin/activate` does) and the lab name ``tour`` and the /tmp paths made
unique to this run, so it never meets anyone else's lab. What the user must see: the
receiver gets all 10 datagrams through r1's daemon, its memberships show the group, r1
shows the forwarded (S,G), and nothing is left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import netns_list

pytestmark = pytest.mark.netns

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_block() -> str:
    text = README.read_text()
    section = text[text.index("## A five-minute tour"):]
    return section[section.index("```sh\n") + 6:section.index("```\n", section.index("```sh"))]


@pytest.mark.timeout(120)
def test_the_tour_routes_ten_datagrams_and_leaves_nothing(tmp_path: Path) -> None:
    name = f"tour{os.getpid()}"
    script = tour_block()
    assert "mrouter lab down tour" in script  # the block this test knows
    script = script.replace(". .venv/bin/activate", ":")
    script = re.sub(r"/tmp/tour\b", str(tmp_path / "tour"), script)
    script = re.sub(r"\btour\b(?![/.])", name, script)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True,
                            text=True, timeout=100, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    summary = next(line for line in out.splitlines() if line.startswith("239.1.1.1"))
    assert re.search(r"\b10\b", summary), out  # received 10
    assert "198.51.100.2" in out  # show routes: the forwarded (S,G)
    assert not [ns for ns in netns_list() if name in ns]  # the lab is gone
