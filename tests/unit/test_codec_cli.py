"""`mrouter igmp decode` and `mrouter igmp send --dry-run`, as a user runs them (no root)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cli_harness import run

from mrouter.cli.main import main
from mrouter.igmp.codec import decode_packet, encode_packet
from mrouter.igmp.messages import GroupRecord, Query, RecordType, V2Leave, V3Report
from mrouter.traffic import pcap

A = IPv4Address
G = A("239.1.2.3")
HOST = A("192.0.2.2")


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "igmp.pcap"
    report = encode_packet(V3Report((GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G),)),
                           HOST, A("224.0.0.22"))
    bad_checksum = bytearray(encode_packet(V2Leave(G), HOST, A("224.0.0.2")))
    bad_checksum[-1] ^= 0xFF
    udp = bytearray(report)
    udp[9] = 17
    with path.open("wb") as stream:
        writer = pcap.Writer(stream, pcap.LinkType.ETHERNET)
        eth = bytes(12) + b"\x08\x00"
        writer.write(eth + report, 100.0)
        writer.write(eth + report[:30], 101.0)           # cut short: an error, then go on
        writer.write(eth + bytes(udp), 102.0)            # not IGMP: skipped
        writer.write(bytes(12) + b"\x86\xdd" + bytes(40), 103.0)  # IPv6: skipped
        writer.write(eth + bytes(bad_checksum), 104.0)   # shown, checksum flagged
        writer.write(eth + encode_packet(Query(2, max_resp_code=100), A("192.0.2.1"),
                                         A("224.0.0.1")), 105.0)
    return path


def test_decode_json_shows_every_igmp_packet_and_errors(
        capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["igmp", "decode", str(capture), "--json"], capsys)
    assert status == 0
    rows = [json.loads(text) for text in out.splitlines()]
    assert [r["frame"] for r in rows] == [1, 2, 5, 6]
    assert rows[0]["records"] == [{"type": "TO_EX", "record_type": 4, "group": str(G),
                                   "sources": []}]
    assert rows[0]["router_alert"] is True and rows[0]["time"] == 100.0
    assert "truncated IPv4 packet" in rows[1]["error"] and rows[1]["offset"] == 30
    assert rows[2]["type"] == "v2_leave" and rows[2]["checksum_ok"] is False
    assert rows[3]["type"] == "query" and rows[3]["version"] == 2 and rows[3]["max_resp"] == 10


def test_decode_text_is_aligned_columns(capture: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["igmp", "decode", str(capture)], capsys)
    lines = out.splitlines()
    assert status == 0 and lines[0].startswith("TIME ")
    assert len(lines) == 5
    assert "TO_EX 239.1.2.3 {}" in lines[1]
    assert "error: truncated IPv4 packet" in lines[2]
    assert lines[3].split()[8:] == ["RA", "bad"]  # RA column, then the checksum verdict


def test_decode_of_a_non_capture_is_one_line_and_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a capture at all")
    status, out, err = run(["igmp", "decode", str(path)], capsys)
    assert status == 2 and out == ""
    assert err.startswith("mrouter igmp: error: not a pcap or pcapng capture")
    assert len(err.splitlines()) == 1


def _dry_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    status, out, _ = run(["igmp", "send", "--iface", "dn0", "--src", "192.0.2.1",
                          "--dry-run", "--json", *argv], capsys)
    assert status == 0
    row: dict[str, object] = json.loads(out)
    return row


def test_send_builds_queries_of_each_version(capsys: pytest.CaptureFixture[str]) -> None:
    v1 = _dry_run(["query", "--version", "1"], capsys)
    assert (v1["version"], v1["dst"], v1["max_resp"]) == (1, "224.0.0.1", 10.0)
    v2 = _dry_run(["query", "--version", "2", "--group", str(G), "--max-resp", "1"], capsys)
    assert (v2["version"], v2["dst"], v2["group"], v2["max_resp"]) == (2, str(G), str(G), 1.0)
    v3 = _dry_run(["query", "--group", str(G), "--source", "198.51.100.2", "-s",
                   "--qrv", "3", "--qqi", "300", "--max-resp", "30"], capsys)
    assert v3["query"] == "group-and-source" and v3["sources"] == ["198.51.100.2"]
    assert (v3["s_flag"], v3["qrv"], v3["qqi"]) == (True, 3, 288)  # 300 s rounds down
    assert (v3["max_resp"], v3["router_alert"], v3["ttl"]) == (28.8, True, 1)
    packet = decode_packet(bytes.fromhex(str(v3["hex"])))
    assert isinstance(packet.igmp, Query) and packet.igmp.qqic == 0x92


def test_send_builds_reports_and_leaves(capsys: pytest.CaptureFixture[str]) -> None:
    leave = _dry_run(["leave", "--group", str(G)], capsys)
    assert (leave["type"], leave["dst"]) == ("v2_leave", "224.0.0.2")
    v1 = _dry_run(["v1-report", "--group", str(G), "--no-router-alert"], capsys)
    assert (v1["type"], v1["dst"], v1["router_alert"]) == ("v1_report", str(G), False)
    v3 = _dry_run(["v3-report", "--record", "TO_IN:239.1.2.3",
                   "--record", "block:239.4.4.4:198.51.100.2,198.51.100.3"], capsys)
    assert v3["dst"] == "224.0.0.22"
    assert v3["records"] == [
        {"type": "TO_IN", "record_type": 3, "group": str(G), "sources": []},
        {"type": "BLOCK", "record_type": 6, "group": "239.4.4.4",
         "sources": ["198.51.100.2", "198.51.100.3"]},
    ]


def test_send_hex_goes_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    row = _dry_run(["--hex", "11 64 ee 9b 00 00 00 00"], capsys)
    assert row["type"] == "query" and row["checksum_ok"] is True
    row = _dry_run(["--hex", "1164000000000000"], capsys)
    assert row["checksum_ok"] is False  # not fixed: experiments need bad checksums too


@pytest.mark.parametrize(("argv", "message"), [
    (["leave"], "leave needs --group"),
    (["query", "--version", "2", "--max-resp", "0"], "v2 Max Resp Code is 1-255"),
    (["query", "--version", "2", "--source", "198.51.100.2"], "--source is for v3 queries"),
    ([], "say what to send"),
])
def test_send_usage_errors(argv: list[str], message: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["igmp", "send", "--iface", "dn0", "--src", "192.0.2.1",
                          "--dry-run", *argv], capsys)
    assert status == 2 and message in err


def test_help_says_what_send_builds_with(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["igmp", "send", "--help"])
    out = capsys.readouterr().out
    assert "mrouter's own codec" in out and "not\n  scapy" in out.replace("\nscapy", "\n  scapy")
    assert "example" in out
