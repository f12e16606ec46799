"""The service pieces that need no namespace: statistics, the Prometheus text, the
--metrics and --instance arguments, sd_notify, the control server's counters, the units."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mrouter.cli.main import main
from mrouter.errors import ConfigError, ControlError
from mrouter.igmp.messages import Query, V2Leave, V2Report, V3Report
from mrouter.linux.service import notify
from mrouter.router.control import ControlServer, check_instance, instance_socket
from mrouter.router.daemon import describe_reload
from mrouter.router.metrics import exposition, parse_listen
from mrouter.router.stats import Statistics, message_kind

GROUP = IPv4Address("239.1.1.1")


def _snapshot() -> dict[str, Any]:
    stats = Statistics()
    stats.igmp_received("dn0", "report", 2)
    stats.igmp_received("dn0", "report", 2)
    stats.igmp_received("dn0", "query", 3)
    stats.igmp_sent("dn0", "query", 2)
    stats.upcall("up0", "NOCACHE")
    stats.route("installs")
    stats.route("removals")
    return stats.snapshot(["up0", "dn0"], {"dn0": {"bad-ttl": 4}}, {"show": 3, "unknown": 1},
                          {"unknown": 1}, 12.5, 1)


def test_snapshot_rows_follow_the_config_and_count_by_type_and_version() -> None:
    snap = _snapshot()
    assert [row["name"] for row in snap["interfaces"]] == ["up0", "dn0"]
    up0, dn0 = snap["interfaces"]
    assert dn0["received"] == [{"type": "query", "version": 3, "count": 1},
                               {"type": "report", "version": 2, "count": 2}]
    assert dn0["sent"] == [{"type": "query", "version": 2, "count": 1}]
    assert dn0["dropped"] == {"bad-ttl": 4} and up0["upcalls"] == {"NOCACHE": 1}
    assert snap["routes"] == {"installs": 1, "updates": 0, "removals": 1}
    assert snap["control"] == {"requests": {"show": 3, "unknown": 1}, "errors": {"unknown": 1}}


def test_message_kinds() -> None:
    assert message_kind(V2Report(GROUP)) == ("report", 2)
    assert message_kind(V2Leave(GROUP)) == ("leave", 2)
    assert message_kind(V3Report(())) == ("report", 3)
    assert message_kind(Query(version=2))[0] == "query"


def test_exposition_parses_with_prometheus_client() -> None:
    families = {f.name: f for f in text_string_to_metric_families(exposition(_snapshot()))}
    received = families["mrouter_igmp_messages_received"]
    assert received.type == "counter"
    assert {(s.labels["type"], s.labels["version"], s.value) for s in received.samples} == {
        ("report", "2", 2.0), ("query", "3", 1.0)}
    dropped = families["mrouter_igmp_messages_dropped"].samples
    assert [(s.labels, s.value) for s in dropped] == [
        ({"interface": "dn0", "reason": "bad-ttl"}, 4.0)]
    assert families["mrouter_uptime_seconds"].samples[0].value == 12.5
    assert families["mrouter_kernel_routes"].type == "gauge"
    changes = {s.labels["change"]: s.value for s in families["mrouter_route_changes"].samples}
    assert changes == {"installs": 1.0, "updates": 0.0, "removals": 1.0}


def test_label_values_are_escaped() -> None:
    snap = _snapshot()
    snap["interfaces"][0]["name"] = 'we"ird\\'
    families = {f.name: f for f in text_string_to_metric_families(exposition(snap))}
    (sample,) = families["mrouter_upcalls"].samples
    assert sample.labels["interface"] == 'we"ird\\'


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9641", ("127.0.0.1", 9641)), ("[::1]:9641", ("::1", 9641)),
    ("0.0.0.0:80", ("0.0.0.0", 80))])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9641", "localhost:9641", "127.0.0.1:0", "127.0.0.1:x",
                                  "1.2.3.4:70000"])
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="write ADDRESS:PORT"):
        parse_listen(text)


def test_instance_names() -> None:
    assert instance_socket("lan1") == "/run/mrouter/lan1.sock"
    assert instance_socket() == "/run/mrouter/mrouter.sock"
    for bad in ("../x", "", "-x", ".hidden", "a/b", "x" * 65):
        with pytest.raises(ControlError, match="instance name"):
            check_instance(bad)


def test_socket_wins_over_instance(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["stop", "--instance", "nosuch", "--socket", str(tmp_path / "x.sock")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "x.sock") in err and "nosuch" not in err
    assert main(["stop", "--instance", "../x"]) == 2
    assert "instance name '../x'" in capsys.readouterr().err


def test_reload_summary_is_a_sentence() -> None:
    assert describe_reload({"routes_added": 1, "routes_removed": 0, "memberships_added": 2,
                            "memberships_removed": 1}) == \
        "1 route added, 0 removed; 2 memberships added, 1 removed"


def test_notify_sends_one_datagram(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        assert notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": path})
        assert sock.recv(100) == b"READY=1\nSTATUS=up"
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_control_server_counts_requests_and_errors(tmp_path: Path) -> None:
    server = ControlServer(tmp_path / "c.sock", {"ping": lambda r: {}})
    try:
        assert server.answer(b'{"command": "ping"}')["ok"]
        assert not server.answer(b'{"command": "nope"}')["ok"]
        assert not server.answer(b"not json")["ok"]
        assert server.requests == {"ping": 1, "unknown": 2}
        assert server.errors == {"unknown": 2}
    finally:
        server.close()


def test_config_unit_runs_this_mrouter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "unit"]) == 0
    plain = capsys.readouterr().out
    assert "Type=notify" in plain and "ExecReload=/bin/kill -HUP $MAINPID" in plain
    assert "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW" in plain
    assert "/usr/local/bin/mrouter" not in plain  # replaced by the running one
    assert main(["config", "unit", "--instance", "lan1"]) == 0
    template = capsys.readouterr().out
    assert template.startswith("# instance lan1: systemctl enable --now mrouter@lan1")
    assert "--config /etc/mrouter/%i.toml --instance %i" in template


def test_run_without_config_names_the_default_path(capsys: pytest.CaptureFixture[str]) -> None:
    name = "nosuch-test-instance"
    assert not Path(f"/etc/mrouter/{name}.toml").exists()
    assert main(["run", "--instance", name]) == 2
    assert capsys.readouterr().err == (
        f"mrouter run: error: no config at /etc/mrouter/{name}.toml: write one (mrouter "
        f"config example router > /etc/mrouter/{name}.toml) or name it with --config FILE\n")


def test_run_with_an_unknown_user_starts_nothing(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    # an interface that is nowhere: were the check missed, the daemon would stop there,
    # before touching the kernel of the host's namespace
    (tmp_path / "r.toml").write_text("[interfaces.nosuch0]\n")
    assert main(["run", "--config", str(tmp_path / "r.toml"), "--socket",
                 str(tmp_path / "s.sock"), "--user", "no-such-user-here"]) == 2
    assert "--user no-such-user-here: no such user" in capsys.readouterr().err
    assert not (tmp_path / "s.sock").exists()


def test_syslog_without_a_socket_is_one_line(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    # an interface that is nowhere: were the check missed, the daemon would stop there,
    # before touching the kernel of the host's namespace
    (tmp_path / "r.toml").write_text("[interfaces.nosuch0]\n")
    assert main(["run", "--config", str(tmp_path / "r.toml"), "--socket",
                 str(tmp_path / "s.sock"), "--syslog", str(tmp_path / "none")]) == 2
    assert f"--syslog: no syslog socket at {tmp_path / 'none'}" in capsys.readouterr().err
