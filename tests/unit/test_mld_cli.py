"""`mrouter mld decode`, `mrouter mld send --dry-run` and `querier --mld`'s options, as a
user runs them (no root); a capture holding both protocols decodes under either command,
each showing its own messages."""

from __future__ import annotations

import argparse
import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from cli_harness import run

from mrouter.cli.querier import configure as configure_querier
from mrouter.cli.querier import human, settings_from
from mrouter.igmp import codec as igmp_codec
from mrouter.igmp.messages import GroupRecord, RecordType, V3Report
from mrouter.igmp.settings import MLD_DEFAULTS
from mrouter.mld import codec
from mrouter.mld.messages import (
    AddressRecord,
    Query,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
    code_to_delay_ms,
)
from mrouter.traffic import pcap

A6 = IPv6Address
G = A6("ff15::1:2")
HOST = A6("fe80::2")
ROUTER = A6("fe80::1")
ETH_IPV6 = bytes(12) + b"\x86\xdd"
ETH_IPV4 = bytes(12) + b"\x08\x00"


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """Frames 1-7: MLDv2 report, IGMPv3 report, MLDv1 query, truncated MLD, ICMPv6 echo
    (not MLD), MLD in a Linux cooked (SLL) frame, MLD with a bad checksum."""
    path = tmp_path / "both.pcap"
    report = codec.encode_packet(V2Report((AddressRecord(
        RecordType.CHANGE_TO_EXCLUDE_MODE, G),)), HOST, A6("ff02::16"))
    igmp = igmp_codec.encode_packet(V3Report((GroupRecord(
        RecordType.CHANGE_TO_EXCLUDE_MODE, IPv4Address("239.1.2.3")),)),
        IPv4Address("192.0.2.2"), IPv4Address("224.0.0.22"))
    query = codec.encode_packet(Query(1, max_resp_code=10000), ROUTER, A6("ff02::1"))
    echo = codec.encode_packet(UnknownMessage(128, 0, bytes(4)), HOST, ROUTER,
                               router_alert=False)
    bad = bytearray(codec.encode_packet(V1Done(G), HOST, A6("ff02::2")))
    bad[-1] ^= 0xFF
    sll = (0).to_bytes(2, "big") + bytes(12) + b"\x86\xdd"  # incoming, IPv6
    with path.open("wb") as stream:
        writer = pcap.Writer(stream, pcap.LinkType.ETHERNET)
        writer.write(ETH_IPV6 + report, 100.0)
        writer.write(ETH_IPV4 + igmp, 101.0)
        writer.write(ETH_IPV6 + query, 102.0)
        writer.write(ETH_IPV6 + report[:60], 103.0)
        writer.write(ETH_IPV6 + echo, 104.0)
        writer.write(ETH_IPV6 + bytes(bad), 106.0)
    sll_path = tmp_path / "sll.pcap"
    with sll_path.open("wb") as stream:
        pcap.Writer(stream, pcap.LinkType.LINUX_SLL).write(sll + report, 107.0)
    return path


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_mld_decode_shows_the_mld_of_a_mixed_capture(capture: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["mld", "decode", str(capture), "--json"], capsys)
    assert status == 0
    got = lines(out)
    assert [g["frame"] for g in got] == [1, 3, 4, 6]  # not the IGMP, not the echo
    report, query, cut, bad = got
    assert (report["family"], report["src"], report["dst"], report["ttl"],
            report["router_alert"], report["checksum_ok"]) == (
        "ipv6", "fe80::2", "ff02::16", 1, True, True)
    assert (report["version"], report["type"], report["records"]) == (2, "v2_report", [
        {"type": "TO_EX", "record_type": 4, "group": "ff15::1:2", "sources": []}])
    assert (query["version"], query["type"], query["query"], query["max_resp"]) == (
        1, "query", "general", 10.0)
    assert "truncated IPv6 packet" in str(cut["error"]) and cut["offset"] == 60
    assert (bad["type"], bad["checksum_ok"]) == ("v1_done", False)
    # the same keys as igmp decode's (both say their family), less IPv4's header checksum
    _, igmp_out, _ = run(["igmp", "decode", str(capture), "--json"], capsys)
    igmp = lines(igmp_out)
    assert [g["frame"] for g in igmp] == [2]  # igmp decode shows only the IGMP
    assert set(igmp[0]) - set(report) == {"ip_checksum_ok"}
    assert set(report) - set(igmp[0]) == set()
    assert (igmp[0]["family"], report["family"]) == ("ipv4", "ipv6")


def test_mld_decode_text_is_aligned_columns(capture: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["mld", "decode", str(capture)], capsys)
    header, first, second, third, fourth = out.splitlines()
    assert header.split()[:4] == ["TIME", "IFACE", "SOURCE", "DESTINATION"]
    assert header.index("VER") == first.index("v2 ") == second.index("v1 ")
    assert "TO_EX ff15::1:2 {}" in first and " report " in first
    assert " RA " in first and first.split()[-4:] == ["ok", "TO_EX", "ff15::1:2", "{}"]
    assert "error: truncated IPv6 packet" in third
    assert " done " in fourth and fourth.endswith(" RA bad")


def test_mld_decode_reads_linux_cooked_frames(capture: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["mld", "decode", str(capture.with_name("sll.pcap")), "--json"],
                         capsys)
    assert status == 0 and [(g["direction"], g["type"]) for g in lines(out)] == [
        ("in", "v2_report")]


def _dry_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    status, out, err = run(["mld", "send", "--iface", "lo", "--src", "fe80::1", "--dry-run",
                            "--json", *argv], capsys)
    assert status == 0, err
    fields: dict[str, object] = json.loads(out)
    packet = codec.decode_packet(bytes.fromhex(str(fields["hex"])))
    assert packet.ip.hop_limit == 1 and packet.ip.router_alert_value == 0
    return fields


def test_send_builds_queries_of_both_versions(capsys: pytest.CaptureFixture[str]) -> None:
    q = _dry_run(["query"], capsys)
    assert (q["dst"], q["version"], q["max_resp_code"], q["qqi"], q["qrv"]) == (
        "ff02::1", 2, 10000, 125, 2)
    q = _dry_run(["query", "--max-resp", "40", "--group", "ff15::1", "--source",
                  "2001:db8:1::2"], capsys)
    assert q["dst"] == "ff15::1" and q["query"] == "group-and-source"
    assert code_to_delay_ms(int(str(q["max_resp_code"]))) == 40000 and q["max_resp"] == 40.0
    q = _dry_run(["query", "--version", "1", "--group", "ff15::1", "--max-resp", "1"], capsys)
    assert (q["version"], q["max_resp_code"], q["dst"]) == (1, 1000, "ff15::1")


def test_send_builds_reports_and_dones(capsys: pytest.CaptureFixture[str]) -> None:
    r = _dry_run(["v2-report", "--record", "TO_EX:ff15::1",
                  "--record", "ALLOW:[ff15::2]:2001:db8:1::2,2001:db8:1::3"], capsys)
    assert r["dst"] == "ff02::16" and [(x["type"], x["group"], x["sources"]) for x in
                                       r["records"]] == [  # type: ignore[attr-defined]
        ("TO_EX", "ff15::1", []), ("ALLOW", "ff15::2", ["2001:db8:1::2", "2001:db8:1::3"])]
    assert _dry_run(["v1-report", "--group", "ff15::1"], capsys)["dst"] == "ff15::1"
    assert _dry_run(["done", "--group", "ff15::1"], capsys)["dst"] == "ff02::2"
    assert codec.decode_packet(bytes.fromhex(str(_dry_run(
        ["v1-report", "--group", "ff15::9"], capsys)["hex"]))).mld == V1Report(A6("ff15::9"))


@pytest.mark.parametrize(("argv", "message"), [
    (["v1-report"], "v1-report needs --group"),
    (["query", "--record", "TO_EX:ff15::1"], "--record is for v2-report"),
    (["query", "--version", "1", "--source", "2001:db8::1"], "--source is for MLDv2"),
    (["query", "--version", "1", "--max-resp", "70"], "at most 65535 ms"),
    (["v2-report", "--record", "TO_EX:[ff15::1:2001:db8::1"], "record 'TO_EX:[ff15::1"),
    (["v2-report", "--record", "XX:ff15::1"], "record type 'XX'"),
    (["query", "--group", "239.1.1.1"], "is not an IPv6 address"),
])
def test_send_usage_errors_are_one_line(argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status, _, err = run(["mld", "send", "--iface", "lo", "--src", "fe80::1", "--dry-run",
                              *argv], capsys)
    except SystemExit as exc:  # argparse's own errors
        status, err = int(str(exc.code)), capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err


def _querier_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_querier(parser)
    return parser.parse_args(["--iface", "dn0", *argv])


def test_querier_mld_options_become_mld_settings() -> None:
    assert settings_from(_querier_args("--mld")) == MLD_DEFAULTS
    s = settings_from(_querier_args("--mld", "--mld-version", "1", "--query-interval", "20"))
    assert (s.protocol, s.version, s.query_interval) == ("MLD", 1, 20.0)


@pytest.mark.parametrize(("argv", "message"), [
    (["--mld-version", "1"], "--mld-version is for an MLD querier: add --mld"),
    (["--mld", "--version", "2"], "--version is the IGMP version; for MLD give --mld-version"),
])
def test_querier_version_options_of_the_other_protocol_are_one_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["querier", "--iface", "dn0", *argv], capsys)
    assert status == 2 and message in err
    assert "Traceback" not in err


def test_querier_human_lines_name_mld() -> None:
    line = human({"time": 0.0, "event": "query", "iface": "dn0", "dst": "ff02::1",
                  "version": 2, "group": "::", "s_flag": False, "max_resp": 10.0,
                  "sources": [], "family": "ipv6"})
    assert "sent MLDv2 query general" in line
