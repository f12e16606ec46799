"""`mrouter ifaces/memberships/send/recv` as a user meets them before any packet is sent:
help that teaches, usage errors as one line and exit status 2."""

from __future__ import annotations

import argparse
import subprocess
import sys
from ipaddress import IPv4Address

import pytest

from mrouter.cli.main import main
from mrouter.cli.sockets import group_port, table


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mrouter", *args],
                          capture_output=True, text=True, timeout=60)


def test_group_port_parses_and_checks_both_halves() -> None:
    assert group_port("239.1.1.1:5000") == (IPv4Address("239.1.1.1"), 5000)
    for bad in ("239.1.1.1", "239.1.1.1:0", "239.1.1.1:70000", "239.1.1.1:x", ":5000"):
        with pytest.raises(argparse.ArgumentTypeError):
            group_port(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="not a multicast group"):
        group_port("10.1.1.1:5000")


def test_table_aligns_columns() -> None:
    assert table(("A", "LONGER", "Z"), [(1, 2, "x y"), (333, 4, "-")]).splitlines() == [
        "A    LONGER  Z",
        "1    2       x y",
        "333  4       -",
    ]


@pytest.mark.parametrize(("argv", "message"), [
    (["recv", "10.1.1.1:5000"], "10.1.1.1 is not a multicast group address"),
    (["recv", "239.1.1.1"], "is not GROUP:PORT"),
    (["recv", "239.1.1.1:5000", "--source", "239.9.9.9"], "not a unicast address"),
    (["send", "239.1.1.1:5000", "--count", "-1"], "is negative"),
])
def test_usage_errors_exit_2_with_the_reason(argv: list[str], message: str) -> None:
    out = run(*argv)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["send", "239.1.1.1:5000", "--ttl", "300"], "TTL 300 is out of range"),
    (["send", "239.1.1.1:5000", "--size", "10"], "datagram size 10 is out of range"),
])
def test_bad_values_are_refused_before_any_datagram_is_sent(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["ifaces", "memberships", "send", "recv"])
def test_each_command_help_explains_and_shows_an_example(command: str) -> None:
    out = run(command, "--help")
    assert out.returncode == 0
    assert f"example:\n  mrouter {command}" in out.stdout
    assert "--json" in out.stdout


def test_recv_help_documents_the_exit_statuses() -> None:
    text = run("recv", "--help").stdout
    assert "0 when --count was reached" in text and "1 on --timeout" in text
