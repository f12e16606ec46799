"""No command ends in a traceback (issue 16.6): without privilege, and on broken paths.

Every subcommand of :data:`mrouter.cli.main.COMMANDS` runs with minimal valid arguments
inside a network namespace this test made, with every capability dropped (uid 0, empty
bounding, inheritable and ambient sets: what a user without privilege has; the
interpreter lives under /root, so a real other uid could not even start it). Each either
works (status 0, or 1 where the command reports a finding) with nothing on stderr, or
says what was wrong and what to do in exactly one line with status 2. Then the
broken-path cases: a namespace that vanished, a path that cannot be read, a socket path
that is not a socket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import netns_list

from mrouter.cli.main import COMMANDS

pytestmark = pytest.mark.netns

DROP_ALL = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--ambient-caps", "-all"]


@dataclass
class Setup:
    ns: str  # the namespace the commands run in: veths d0 (192.0.2.1) and d1 (198.51.100.1)
    env: dict[str, str]  # a private lab directory and namespace prefix
    lab: str  # a lab (basic.toml) built with privilege, for lab exec/status/down
    tmp: Path

    def unprivileged(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns, *DROP_ALL, sys.executable,
                               "-m", "mrouter", *args], env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)

    def privileged(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrouter", *args], env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("errors")
    tag = f"{os.getpid()}x{time.monotonic_ns() % 100000}"
    ns = f"mre{tag}"
    prefix = f"mre{tag}-"
    env = dict(os.environ, MROUTER_LAB_DIR=str(tmp / "labs"), MROUTER_LAB_PREFIX=prefix)
    made = Setup(ns, env, "e", tmp)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                    ["addr", "add", "192.0.2.1/24", "dev", "d0"],
                    ["addr", "add", "198.51.100.1/24", "dev", "d1"],
                    ["link", "set", "d0", "up"], ["link", "set", "d1", "up"],
                    ["link", "set", "lo", "up"]):
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        up = made.privileged("lab", "up", "basic", "--name", made.lab)
        assert up.returncode == 0, up.stderr
        (tmp / "router.toml").write_text("[interfaces.d0]\n[interfaces.d1]\n")
        (tmp / "events.jsonl").write_text("")
        (tmp / "unreadable").write_text("x\n")
        (tmp / "unreadable").chmod(0)
        (tmp / "not-a-socket").write_text("")
        yield made
    finally:
        made.privileged("lab", "down", made.lab)
        subprocess.run(["ip", "netns", "del", ns], check=False)
        for name in netns_list():
            if name.startswith(prefix):
                subprocess.run(["ip", "netns", "del", name], check=False)


def _cases(tmp: Path, lab: str) -> list[tuple[list[str], int]]:
    """(arguments, expected status) for every subcommand without privilege."""
    sock = str(tmp / "none.sock")
    return [
        (["ifaces"], 0),
        (["memberships"], 0),
        (["send", "239.1.1.1:5000", "--iface", "d0", "--count", "1"], 0),  # UDP: no privilege
        (["recv", "239.1.1.1:5000", "--iface", "d0", "--count", "1", "--timeout", "0.2"], 1),
        (["lab", "list"], 0),
        (["lab", "status"], 2),  # reads each node's interfaces: setns needs CAP_SYS_ADMIN
        (["lab", "up", "basic", "--name", "u"], 2),
        (["lab", "exec", lab, "r1", "--", "true"], 2),
        (["lab", "down", lab], 2),
        (["igmp", "watch", "--iface", "d0", "--count", "1"], 2),
        (["igmp", "decode", str(tmp / "unreadable")], 2),
        (["igmp", "send", "query", "--iface", "d0"], 2),
        (["mld", "watch", "--iface", "d0", "--count", "1"], 2),
        (["mld", "send", "query", "--iface", "d0"], 2),
        (["querier", "--iface", "d0"], 2),
        (["run", "--config", str(tmp / "router.toml"), "--socket", sock], 2),
        (["config", "example", "router"], 0),
        (["config", "check", str(tmp / "router.toml")], 0),
        (["config", "unit"], 0),
        (["show", "routes", "--socket", sock], 2),
        (["metrics", "--socket", sock], 2),
        (["top", "--socket", sock, "--count", "1"], 2),
        (["route", "add", "--group", "239.1.1.1", "--from", "d0", "--to", "d1",
          "--socket", sock], 2),
        (["join", "--iface", "d0", "239.1.1.1", "--socket", sock], 2),
        (["leave", "--iface", "d0", "239.1.1.1", "--socket", sock], 2),
        (["reload", "--socket", sock], 2),
        (["stop", "--socket", sock], 2),
        (["explain", "239.1.1.1", "--source", "198.51.100.2", "--socket", sock], 1),  # a finding
        (["events", "--socket", sock], 2),
        (["timeline", str(tmp / "events.jsonl"), "-o", str(tmp / "t.html")], 0),
        (["completion", "bash"], 0),
    ]


def test_the_cases_cover_every_subcommand(tmp_path: Path) -> None:
    assert {args[0] for args, _ in _cases(tmp_path, "x")} == {c.name for c in COMMANDS}


@pytest.mark.parametrize("case", range(len(_cases(Path("/"), "x"))),
                         ids=[" ".join(a[:2]) for a, _ in _cases(Path("/"), "x")])
def test_every_subcommand_without_privilege(setup: Setup, case: int) -> None:
    args, status = _cases(setup.tmp, setup.lab)[case]
    out = setup.unprivileged(*args)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == status, (out.returncode, out.stderr)
    if status == 2:
        assert out.stderr.count("\n") == 1 and out.stderr.startswith(f"mrouter {args[0]}"), \
            out.stderr
    else:
        assert out.stderr == ""


def test_privilege_errors_say_what_to_do(setup: Setup) -> None:
    for args in (["lab", "up", "basic", "--name", "u"], ["lab", "exec", setup.lab, "r1", "--",
                                                          "true"], ["lab", "down", setup.lab]):
        out = setup.unprivileged(*args)
        assert "needs root" in out.stderr and "Operation not permitted" in out.stderr, args
    assert setup.privileged("lab", "status", setup.lab).returncode == 0  # still all there
    assert not (setup.tmp / "labs" / "u.json").exists()


def test_a_namespace_that_vanished(setup: Setup) -> None:
    up = setup.privileged("lab", "up", "basic", "--name", "gone")
    assert up.returncode == 0, up.stderr
    try:
        subprocess.run(["ip", "netns", "del", f"{setup.env['MROUTER_LAB_PREFIX']}gone-r1"],
                       check=True)
        out = setup.privileged("lab", "exec", "gone", "r1", "--", "true")
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert "does not exist" in out.stderr and "Traceback" not in out.stderr
        status = setup.privileged("lab", "status", "gone")
        assert status.returncode == 0 and "MISSING" in status.stdout
    finally:
        down = setup.privileged("lab", "down", "gone")
    assert down.returncode == 0, down.stderr


def test_a_path_that_cannot_be_read(setup: Setup) -> None:
    unreadable = str(setup.tmp / "unreadable")
    for args in (["config", "check", unreadable], ["igmp", "decode", unreadable],
                 ["timeline", unreadable, "-o", str(setup.tmp / "t.html")]):
        out = setup.unprivileged(*args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert "Permission denied" in out.stderr and "unreadable" in out.stderr


def test_a_socket_path_that_is_not_a_socket(setup: Setup) -> None:
    out = setup.unprivileged("show", "routes", "--socket", str(setup.tmp / "not-a-socket"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "not-a-socket is not a socket" in out.stderr


def test_route_add_without_to_names_the_flag(setup: Setup) -> None:
    out = setup.unprivileged("route", "add", "--group", "239.1.1.1", "--from", "d0",
                             "--socket", str(setup.tmp / "none.sock"))
    assert out.returncode == 2
    assert out.stderr == ("mrouter route: error: route add needs --to IFACE [IFACE ...]: "
                          "the outbound interfaces\n")
