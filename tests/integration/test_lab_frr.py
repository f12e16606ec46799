"""FRR nodes in a lab, as a user drives them: `lab up` starts the daemons in the node's
namespace, plain `vtysh` in `lab exec` reaches them, `lab status` says whether they
answer, `lab down` leaves no process and no run directory; and each way FRR can fail
(not installed, a daemon that exits at once, a config it rejects) stops `lab up` with
FRR's own complaint and removes what was made.

Each test has its own record directory and namespace prefix (as test_lab_cli does)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import host_links, netns_list

from mrouter.errors import LabError
from mrouter.lab import Lab
from mrouter.lab.frr import RUN_ROOT

pytestmark = pytest.mark.netns

Cli = Callable[..., subprocess.CompletedProcess[str]]

TOPOLOGY = '''\
description = "two FRR routers on a link"

[nodes.r1]
kind = "frr"
frr_config = """
frr defaults traditional
interface eth0
 ip pim
 ip igmp
"""

[nodes.r2]
kind = "frr"
daemons = ["zebra", "pimd"]
frr_config_file = "r2.conf"

[[links]]
endpoints = [
  { node = "r1", iface = "eth0", address = "198.51.100.1/24" },
  { node = "r2", iface = "eth0", address = "198.51.100.2/24" },
]
'''

R2_CONF = "frr defaults traditional\ninterface eth0\n ip pim\n"


@pytest.fixture
def prefix() -> str:
    return f"mrf{os.getpid()}x{time.monotonic_ns() % 100000}-"


def frr_processes(prefix: str) -> list[str]:
    """Command lines of running processes started on one of our run directories."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        if f"{RUN_ROOT}/{prefix}".encode() in cmdline and b") Z" not in stat:
            found.append(cmdline.replace(b"\0", b" ").decode())
    return found


def running_pids() -> set[int]:
    """PIDs of processes that are alive (not zombies)."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        if b") Z" not in stat:
            found.add(int(pid))
    return found


def leftovers(prefix: str) -> dict[str, object]:
    return {
        "namespaces": sorted(n for n in netns_list() if n.startswith(prefix)),
        "run_dirs": sorted(p.name for p in RUN_ROOT.glob(f"{prefix}*")),
        "processes": frr_processes(prefix),
    }


NOTHING = {"namespaces": [], "run_dirs": [], "processes": []}


def wait_gone(prefix: str, timeout: float = 3.0) -> dict[str, object]:
    """What is left of the labs of ``prefix`` (an exiting daemon takes a moment)."""
    deadline = time.monotonic() + timeout
    while (left := leftovers(prefix)) != NOTHING and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "lab.toml").write_text(TOPOLOGY)
    (tmp_path / "r2.conf").write_text(R2_CONF)
    return tmp_path


@pytest.fixture
def cli(workdir: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    env = dict(os.environ, MROUTER_LAB_DIR=str(workdir / "labs"), MROUTER_LAB_PREFIX=prefix)
    monkeypatch.setenv("MROUTER_LAB_PREFIX", prefix)  # for the Lab objects of a test too

    def run(*args: str, extra_env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrouter", "lab", *args],
                              env={**env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=60)

    links_before = host_links()
    try:
        yield run
    finally:
        run("down", "--all")
        for ns in netns_list():
            if ns.startswith(prefix):
                subprocess.run(["ip", "netns", "del", ns], check=False)
    assert wait_gone(prefix) == NOTHING
    assert host_links() == links_before


def test_up_exec_vtysh_status_down(cli: Cli, workdir: Path, prefix: str) -> None:
    up = cli("up", str(workdir / "lab.toml"), "--name", "frr")
    assert up.returncode == 0, up.stderr
    assert {f"{prefix}frr-r1", f"{prefix}frr-r2"} <= netns_list()

    # plain vtysh, as the user writes it, reaches r1's own daemons
    ex = cli("exec", "frr", "r1", "--", "vtysh", "-c", "show ip igmp interface json")
    assert ex.returncode == 0, ex.stderr
    assert json.loads(ex.stdout)["eth0"]["address"] == "198.51.100.1"
    mroute = cli("exec", "frr", "r1", "--", "vtysh", "-c", "show ip mroute json")
    assert mroute.returncode == 0 and json.loads(mroute.stdout) == {}
    # ...and r2's from r2, with its config from the file next to the topology
    r2 = cli("exec", "frr", "r2", "--", "vtysh", "-c", "show running-config")
    assert " ip pim" in r2.stdout and "ip igmp" not in r2.stdout
    # the two routers are PIM neighbours: the daemons really run in the namespaces
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        nb = cli("exec", "frr", "r1", "--", "vtysh", "-c", "show ip pim neighbor json")
        if "198.51.100.2" in json.loads(nb.stdout).get("eth0", {}):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"r1 never saw r2 as a PIM neighbour: {nb.stdout}")

    status = cli("status", "frr", "--json")
    assert status.returncode == 0, status.stderr
    (lab,) = json.loads(status.stdout)["labs"]
    nodes = {n["name"]: n for n in lab["nodes"]}
    assert [(d["name"], d["running"], d["answers"]) for d in nodes["r1"]["frr"]["daemons"]] \
        == [("zebra", True, True), ("staticd", True, True), ("pimd", True, True)]
    assert [d["name"] for d in nodes["r2"]["frr"]["daemons"]] == ["zebra", "pimd"]
    assert nodes["r1"]["kind"] == "frr"
    human = cli("status", "frr")
    assert "FRR on r1: zebra (answers), staticd (answers), pimd (answers)" in human.stdout
    assert len(frr_processes(prefix)) == 5
    # a daemon that dies shows in status (its PID is the one the lab started)
    (pimd,) = [d for d in nodes["r2"]["frr"]["daemons"] if d["name"] == "pimd"]
    os.kill(pimd["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pimd["pid"] in running_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    human = cli("status", "frr")
    assert "FRR on r2: zebra (answers), pimd (NOT running)" in human.stdout, human.stdout

    down = cli("down", "frr")
    assert down.returncode == 0 and "lab frr down (2 namespaces removed)" in down.stdout
    assert wait_gone(prefix) == NOTHING


def test_a_lab_object_stops_its_daemons_at_teardown(workdir: Path, prefix: str,
                                                    cli: Cli) -> None:
    with Lab.from_file(workdir / "lab.toml") as lab:
        r1 = lab.node("r1")
        assert [s.answers for s in r1.frr_status()] == [True, True, True]
        assert "198.51.100.1" in r1.vtysh_json("show ip pim interface json")["eth0"]["address"]
        assert r1.run(["vtysh", "-c", "show version"]).returncode == 0  # Node.run finds it
        r1.frr_stop()
        assert [s.running for s in r1.frr_status()] == [False, False, False]
        r1.frr_start()  # a restart from the same config
        assert "ip igmp" in r1.vtysh("show running-config")
    assert wait_gone(prefix) == NOTHING


def fails(cli: Cli, workdir: Path, prefix: str, **env: str) -> str:
    """`lab up` of workdir/lab.toml fails: its one-line message; nothing is left."""
    up = cli("up", str(workdir / "lab.toml"), "--name", "bad", extra_env=env)
    assert up.returncode == 2, (up.stdout, up.stderr)
    assert "Traceback" not in up.stderr and len(up.stderr.strip().splitlines()) == 1
    assert wait_gone(prefix) == NOTHING
    status = cli("status", "--json")
    assert json.loads(status.stdout)["labs"] == []
    said = up.stderr.strip()
    assert said.startswith("mrouter lab: error: ")
    return said.removeprefix("mrouter lab: error: ")


def test_frr_not_installed(cli: Cli, workdir: Path, prefix: str, tmp_path: Path) -> None:
    empty = tmp_path / "no-frr"
    empty.mkdir()
    said = fails(cli, workdir, prefix, MROUTER_FRR_SBIN=str(empty))
    assert said == (f"FRR is not installed or lacks zebra, staticd, pimd (no "
                    f"{empty}/zebra, {empty}/staticd, {empty}/pimd); install it with "
                    f"'apt-get install frr' (scripts/setup.sh does), or set "
                    f"MROUTER_FRR_SBIN to the folder of FRR's daemons")


@pytest.mark.skipif(os.path.exists("/usr/lib/frr/pim6d"), reason="this FRR has pim6d")
def test_a_daemon_this_frr_lacks(cli: Cli, workdir: Path, prefix: str) -> None:
    (workdir / "lab.toml").write_text(TOPOLOGY.replace('["zebra", "pimd"]',
                                                       '["zebra", "pim6d"]'))
    said = fails(cli, workdir, prefix)
    assert "FRR is not installed or lacks pim6d (no /usr/lib/frr/pim6d)" in said


def test_a_daemon_that_exits_at_once(cli: Cli, workdir: Path, prefix: str,
                                     tmp_path: Path) -> None:
    # FRR's own pimd, given an option it refuses: it prints its complaint and exits
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    for daemon in ("zebra", "staticd"):
        (sbin / daemon).symlink_to(f"/usr/lib/frr/{daemon}")
    (sbin / "pimd").write_text('#!/bin/sh\nexec /usr/lib/frr/pimd --no-such-option "$@"\n')
    (sbin / "pimd").chmod(0o755)
    said = fails(cli, workdir, prefix, MROUTER_FRR_SBIN=str(sbin))
    assert said.startswith("node r1: FRR's pimd exited at once (status 1); it said: ")
    assert "unrecognized option '--no-such-option'" in said


def test_a_config_frr_rejects(cli: Cli, workdir: Path, prefix: str) -> None:
    text = TOPOLOGY.replace(" ip igmp\n", " ip igmp\n ip igmp query-interval banana\n")
    (workdir / "lab.toml").write_text(text)
    said = fails(cli, workdir, prefix)
    line = text.splitlines().index(" ip igmp query-interval banana") + 1
    assert said == (f"node r1: FRR rejects its config ({workdir / 'lab.toml'}: "
                    f"nodes.r1.frr_config): line {line}: % Unknown command[17]:  ip igmp "
                    f"query-interval banana; fix it there")


def test_a_config_file_frr_rejects_names_that_file(cli: Cli, workdir: Path,
                                                   prefix: str) -> None:
    (workdir / "r2.conf").write_text(R2_CONF + "ip pim rp 198.51.100.300\n")
    said = fails(cli, workdir, prefix)
    assert said.startswith(f"node r2: FRR rejects its config ({workdir / 'r2.conf'}"
                           f"): line 4: % Unknown command")


def test_the_python_api_raises_lab_error_and_cleans_up(workdir: Path, prefix: str,
                                                      cli: Cli) -> None:
    (workdir / "r2.conf").write_text("frobnicate\n")
    lab = Lab.from_file(workdir / "lab.toml")
    with pytest.raises(LabError, match="node r2: FRR rejects its config"):
        lab.start()
    assert wait_gone(prefix) == NOTHING
