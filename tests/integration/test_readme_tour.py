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


def tour_blocks() -> list[str]:
    """The tour's shell blocks: IPv4 on basic.toml, then both families on dual-stack.toml."""
    text = README.read_text()
    section = text[text.index("## A five-minute tour"):text.index("## Running a router")]
    return [part.split("```\n")[0] for part in section.split("```sh\n")[1:]]


def run_block(script: str, name: str, word: str, tmp_path: Path) -> str:
    """Run one block as written, its lab name and /tmp paths made this run's own."""
    script = script.replace(". .venv/bin/activate", ":")
    script = re.sub(rf"/tmp/{word}\b", str(tmp_path / word), script)
    script = re.sub(rf"\b{word}\b(?![/.])", name, script)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True,
                            text=True, timeout=100, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [ns for ns in netns_list() if name in ns]  # the lab is gone
    return result.stdout


@pytest.mark.timeout(120)
def test_the_tour_routes_ten_datagrams_and_leaves_nothing(tmp_path: Path) -> None:
    block = tour_blocks()[0]
    assert "mrouter lab down tour" in block  # the block this test knows
    out = run_block(block, f"tour{os.getpid()}", "tour", tmp_path)
    summary = next(line for line in out.splitlines() if line.startswith("239.1.1.1"))
    assert summary.split()[2] == "10", out  # RECV: all 10 arrived
    assert "198.51.100.2" in out  # show routes: the forwarded (S,G)


@pytest.mark.timeout(120)
def test_the_dual_stack_tour_routes_an_ipv4_and_an_ipv6_flow(tmp_path: Path) -> None:
    block = tour_blocks()[1]
    assert "mrouter lab down tour6" in block
    out = run_block(block, f"tourv{os.getpid()}", "tour6", tmp_path)
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.startswith(("239.1.1.1 ", "ff15::1 "))}
    assert rows["239.1.1.1"][2] == rows["ff15::1"][2] == "10", out
    routes = [line.split()[:4] for line in out.splitlines()
              if line.startswith(("198.51.100.2 ", "2001:db8:1::2 "))]
    assert sorted(routes) == [["198.51.100.2", "239.1.1.1", "up0", "dn0"],
                              ["2001:db8:1::2", "ff15::1", "up0", "dn0"]], out
