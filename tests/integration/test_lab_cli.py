"""`mrouter lab` as a user drives it: up, status, exec, down; all idempotent.

Every test runs with its own record directory and namespace prefix
(MROUTER_LAB_DIR, MROUTER_LAB_PREFIX), so `down --all` here can never touch a lab
that someone else's test is using."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import host_links, netns_list

from mrouter.lab.topology import default_netns_dir

pytestmark = pytest.mark.netns

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def prefix() -> str:
    return f"mrt{os.getpid()}x{time.monotonic_ns() % 100000}-"


@pytest.fixture
def cli(tmp_path: Path, prefix: str) -> Iterator[Cli]:
    env = dict(os.environ, MROUTER_LAB_DIR=str(tmp_path / "labs"), MROUTER_LAB_PREFIX=prefix)

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrouter", "lab", *args], env=env,
                              capture_output=True, text=True, timeout=60, input=input)

    links_before = host_links()
    try:
        yield run
    finally:
        run("down", "--all")
        for ns in netns_list():  # belt and braces: nothing of ours may outlive the test
            if ns.startswith(prefix):
                subprocess.run(["ip", "netns", "del", ns], check=False)
    assert not {n for n in netns_list() if n.startswith(prefix)}
    assert host_links() == links_before


def test_up_status_exec_down(cli: Cli, prefix: str) -> None:
    up = cli("up", "basic.toml")
    assert up.returncode == 0, up.stderr
    assert "lab basic up" in up.stdout and "mrouter lab down basic" in up.stdout
    assert {f"{prefix}basic-{n}" for n in ("sender", "r1", "receiver")} <= netns_list()

    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    (lab,) = json.loads(status.stdout)["labs"]
    assert lab["name"] == "basic" and lab["up"] is True
    nodes = {n["name"]: n for n in lab["nodes"]}
    assert nodes["r1"]["kind"] == "router" and nodes["sender"]["kind"] == "host"
    r1 = {i["name"]: i for i in nodes["r1"]["interfaces"]}
    assert r1["up0"]["addresses"] == ["198.51.100.1/24"] and r1["up0"]["up"] is True
    assert r1["dn0"]["addresses"] == ["192.0.2.1/24"]

    human = cli("status", "basic")
    assert human.returncode == 0
    assert "r1" in human.stdout and "192.0.2.1/24" in human.stdout and "UP" in human.stdout

    ex = cli("exec", "basic", "r1", "--", "ip", "-o", "-4", "addr", "show", "dev", "dn0")
    assert ex.returncode == 0 and "192.0.2.1/24" in ex.stdout
    piped = cli("exec", "basic", "sender", "--", "sh", "-c", "cat; exit 7", input="through\n")
    assert (piped.returncode, piped.stdout) == (7, "through\n")

    down = cli("down", "basic")
    assert down.returncode == 0 and "lab basic down (3 namespaces removed)" in down.stdout
    assert not {n for n in netns_list() if n.startswith(prefix)}
    again = cli("down", "basic")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_up_twice_is_idempotent_and_a_clash_is_refused(cli: Cli) -> None:
    assert cli("up", "basic.toml", "--name", "demo").returncode == 0
    before = netns_list()
    again = cli("up", "basic.toml", "--name", "demo", "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["already_up"] is True
    assert netns_list() == before
    clash = cli("up", "lan.toml", "--name", "demo")
    assert clash.returncode == 2
    assert "already up from" in clash.stderr and "mrouter lab down demo" in clash.stderr
    assert len(clash.stderr.strip().splitlines()) == 1


def test_two_labs_then_down_all_including_strays(cli: Cli, prefix: str) -> None:
    assert cli("up", "basic.toml").returncode == 0
    assert cli("up", "lan.toml").returncode == 0
    subprocess.run(["ip", "netns", "add", f"{prefix}stray"], check=True)
    labs = json.loads(cli("status", "--json").stdout)
    assert {lab["name"] for lab in labs["labs"]} == {"basic", "lan"}
    assert labs["stray_namespaces"] == [f"{prefix}stray"]
    out = cli("down", "--all")
    assert out.returncode == 0
    assert "lab basic down" in out.stdout and "lab lan down" in out.stdout
    assert f"{prefix}stray" in out.stdout
    assert not {n for n in netns_list() if n.startswith(prefix)}
    again = cli("down", "--all")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert "no labs are up" in cli("status").stdout


def test_bad_topology_file_creates_nothing(cli: Cli, tmp_path: Path, prefix: str) -> None:
    text = (default_netns_dir() / "basic.toml").read_text().replace(
        'iface = "dn0"', 'iface = "downstream-port0"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = cli("up", str(path))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert str(path) in out.stderr and "IFNAMSIZ" in out.stderr and "line 29" in out.stderr
    assert not {n for n in netns_list() if n.startswith(prefix)}
    assert not list(tmp_path.glob("labs/*.json"))


def test_failure_halfway_through_up_removes_what_was_made(
    cli: Cli, tmp_path: Path, prefix: str,
) -> None:
    text = (default_netns_dir() / "two-lans.toml").read_text().replace(
        '[nodes.h4]\nkind = "host"',
        '[nodes.h4]\nkind = "host"\nsysctls = { "net.ipv4.conf.nosuch.forwarding" = 1 }')
    path = tmp_path / "late-failure.toml"
    path.write_text(text)
    out = cli("up", str(path))
    assert out.returncode == 2
    assert "net.ipv4.conf.nosuch.forwarding" in out.stderr
    assert not {n for n in netns_list() if n.startswith(prefix)}
    assert json.loads(cli("status", "--json").stdout)["labs"] == []


def test_node_commands_run_until_down(cli: Cli, tmp_path: Path, prefix: str) -> None:
    text = (default_netns_dir() / "basic.toml").read_text().replace(
        '[nodes.r1]\nkind = "router"',
        '[nodes.r1]\nkind = "router"\ncommands = ["sh -c \'echo started; exec sleep 60\'"]')
    path = tmp_path / "cmds.toml"
    path.write_text(text)
    assert cli("up", str(path), "--name", "cmds").returncode == 0
    (lab,) = json.loads(cli("status", "--json").stdout)["labs"]
    (pid,) = lab["pids"]
    ns_ino = Path(f"/run/netns/{prefix}cmds-r1").stat().st_ino
    assert Path(f"/proc/{pid}/ns/net").stat().st_ino == ns_ino
    deadline = time.monotonic() + 5
    log = tmp_path / "labs" / "cmds" / "r1.0.log"
    while time.monotonic() < deadline and "started" not in (
            log.read_text() if log.exists() else ""):
        time.sleep(0.01)
    assert "started" in log.read_text()
    assert cli("down", "cmds").returncode == 0
    assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text()


def test_exec_errors_are_one_line(cli: Cli) -> None:
    assert cli("up", "basic.toml").returncode == 0
    unknown_node = cli("exec", "basic", "r9", "--", "true")
    assert unknown_node.returncode == 2
    assert "no node 'r9'" in unknown_node.stderr and "sender, r1, receiver" in unknown_node.stderr
    unknown_lab = cli("exec", "nolab", "r1", "--", "true")
    assert unknown_lab.returncode == 2 and "no lab named 'nolab'" in unknown_lab.stderr
    missing = cli("exec", "basic", "r1", "--", "no-such-command-here")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    nocmd = cli("exec", "basic", "r1")
    assert nocmd.returncode == 2 and "no command given" in nocmd.stderr
