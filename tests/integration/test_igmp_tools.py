"""`mrouter igmp watch/send/decode` in a real lab, against the Linux host IGMP stack.

basic.toml: r1 dn0 192.0.2.1 -- receiver eth0 192.0.2.2. The receiver joins and
leaves a group with an ordinary socket; `mrouter igmp watch` on r1's dn0 must show the
host's reports and leaves with the right fields. The receiver's unsolicited report
interval is shortened so that the number of messages is exact: a join is reported
twice (robustness 2) and, in v3, a leave too.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import host_igmp, member, watch_rows

from mrouter.lab import Lab
from mrouter.traffic import pcap

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
GROUP = IPv4Address("239.1.2.3")
RECEIVER = "192.0.2.2"
LabFactory = Callable[..., Lab]


def start_watch(lab: Lab, node: str, iface: str, *extra: str) -> subprocess.Popen[str]:
    """Start `mrouter igmp watch --json` and wait until it listens."""
    return helpers.start_watch(lab.node(node), ["igmp", "watch", "--iface", iface, "--json",
                                                "--timeout", "30", *extra], REPO)


def common_fields(row: dict[str, Any]) -> None:
    assert row["iface"] == "dn0" and row["direction"] == "in"
    assert row["src"] == RECEIVER and row["ttl"] == 1
    assert row["router_alert"] is True  # Linux sends IGMP with Router Alert
    assert row["checksum_ok"] is True and row["ip_checksum_ok"] is True
    assert isinstance(row["time"], float)


def test_watch_shows_v2_join_and_leave(lab_factory: LabFactory) -> None:
    lab = lab_factory("basic.toml")
    host_igmp(lab, "receiver", 2)
    watch = start_watch(lab, "r1", "dn0", "--count", "3")
    with member(lab, "receiver", str(GROUP)):
        time.sleep(1.0)  # both unsolicited reports (0-20 ms, then within 100 ms) go out
    rows = watch_rows(watch)

    for row in rows:
        common_fields(row)
    assert [(r["version"], r["type"], r["group"], r["dst"]) for r in rows] == [
        (2, "v2_report", str(GROUP), str(GROUP)),
        (2, "v2_report", str(GROUP), str(GROUP)),
        (2, "v2_leave", str(GROUP), "224.0.0.2"),
    ]
    assert all(r["max_resp"] is None and r["records"] == [] for r in rows)


def test_watch_shows_v3_join_and_leave_and_writes_a_capture(
        lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = lab_factory("basic.toml")  # fresh: a host that heard a v2 query stays v2
    host_igmp(lab, "receiver", 3)
    capture = tmp_path / "watch.pcap"
    watch = start_watch(lab, "r1", "dn0", "--count", "4", "--pcap", str(capture))
    with member(lab, "receiver", str(GROUP)):
        time.sleep(1.0)  # the state-change report and its retransmission
    rows = watch_rows(watch)

    for row in rows:
        common_fields(row)
        assert (row["version"], row["type"], row["dst"]) == (3, "v3_report", "224.0.0.22")
    records = [[(rec["type"], rec["group"], rec["sources"]) for rec in r["records"]]
               for r in rows]
    assert records == [
        [("TO_EX", str(GROUP), [])],  # join: EXCLUDE {} (RFC 3376 §5.1), sent twice
        [("TO_EX", str(GROUP), [])],
        [("TO_IN", str(GROUP), [])],  # leave: INCLUDE {}, sent twice
        [("TO_IN", str(GROUP), [])],
    ]

    # the capture holds the same four packets, and `igmp decode` shows the same fields
    result = subprocess.run(
        [sys.executable, "-m", "mrouter", "igmp", "decode", str(capture), "--json"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True,
    )
    decoded = [json.loads(text) for text in result.stdout.splitlines()]
    assert [d["frame"] for d in decoded] == [1, 2, 3, 4]
    for seen, read in zip(rows, decoded, strict=True):
        assert read["records"] == seen["records"] and read["src"] == seen["src"]
        assert read["time"] == pytest.approx(seen["time"], abs=1e-5)


def test_send_query_is_seen_going_out_and_answered(lab_factory: LabFactory) -> None:
    lab = lab_factory("basic.toml")
    host_igmp(lab, "receiver", 3)
    with member(lab, "receiver", str(GROUP)):
        time.sleep(0.5)  # let the unsolicited reports pass before watching
        watch = start_watch(lab, "r1", "dn0", "--count", "2")
        sent = lab.node("r1").run(
            [sys.executable, "-m", "mrouter", "igmp", "send", "--iface", "dn0", "query",
             "--group", str(GROUP), "--max-resp", "0.5", "--json"],
            check=True, timeout=60,
        )
        rows = watch_rows(watch)

    (sent_row,) = [json.loads(text) for text in sent.stdout.splitlines()]
    assert sent_row["src"] == "192.0.2.1" and sent_row["dst"] == str(GROUP)
    query, report = rows
    assert query["direction"] == "out"  # watch sees this host's own packets too
    assert (query["version"], query["type"], query["query"]) == (3, "query", "group")
    assert (query["group"], query["max_resp"], query["router_alert"]) == (str(GROUP), 0.5,
                                                                          True)
    assert query["checksum_ok"] and query["src"] == "192.0.2.1"
    common_fields(report)
    assert report["records"] == [  # current state: RFC 3376 §6.4, MODE_IS_EXCLUDE {}
        {"type": "IS_EX", "record_type": 2, "group": str(GROUP), "sources": []}]


def test_watch_on_a_missing_interface_is_one_line(lab_factory: LabFactory) -> None:
    lab = lab_factory("basic.toml")
    result = lab.node("r1").run(
        [sys.executable, "-m", "mrouter", "igmp", "watch", "--iface", "nope0"], timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mrouter igmp: error: no interface named 'nope0' in this network namespace; "
        "see `mrouter ifaces`"]


def test_watch_timeout_and_ctrl_c(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = lab_factory("basic.toml")
    r1 = lab.node("r1")
    watch = [sys.executable, "-m", "mrouter", "igmp", "watch", "--iface", "dn0"]
    quiet = r1.run([*watch, "--timeout", "0.5"], timeout=60)
    assert quiet.returncode == 0 and quiet.stdout == ""  # nothing seen, nothing printed
    short = r1.run([*watch, "--timeout", "0.5", "--count", "1"], timeout=60)
    assert short.returncode == 1
    assert "timed out after 0.5 s with 0 of 1 messages" in short.stderr

    # Ctrl-C: exit status 130, no traceback, and the capture so far is readable
    capture = tmp_path / "partial.pcap"
    proc = start_watch(lab, "r1", "dn0", "--pcap", str(capture))
    lab.node("receiver").sysctl("net.ipv4.conf.all.force_igmp_version", "2")
    with member(lab, "receiver", str(GROUP)):
        time.sleep(0.5)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    shown = [json.loads(text) for text in out.splitlines()]
    assert shown and shown[-1]["type"] == "v2_leave"
    with capture.open("rb") as stream:
        assert len(list(pcap.read(stream))) == len(shown)


def _start_capture(lab: Lab, argv: list[str], ready: str) -> subprocess.Popen[str]:
    return helpers.spawn_ready(lab.node("r1"), argv, ready, argv[0],
                               stdout=subprocess.DEVNULL)


@pytest.mark.interop
@pytest.mark.parametrize("tool", ["tcpdump", "tshark"])
def test_decode_reads_captures_of_other_tools(lab_factory: LabFactory, tmp_path: Path,
                                              tool: str) -> None:
    # tcpdump -i any writes pcap of Linux cooked frames (SLL2); tshark writes pcapng of
    # Ethernet frames: `mrouter igmp decode` must read both.
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian: apt-get install {tool})")
    lab = lab_factory("basic.toml")
    host_igmp(lab, "receiver", 3)
    capture = tmp_path / f"{tool}.cap"
    argv = {
        "tcpdump": (["tcpdump", "-i", "any", "-U", "-c", "4", "-w", str(capture), "igmp"],
                    "listening on"),
        "tshark": (["tshark", "-i", "dn0", "-c", "4", "-w", str(capture), "-f", "igmp"],
                   "Capture started"),
    }[tool]
    proc = _start_capture(lab, *argv)
    with member(lab, "receiver", str(GROUP)):
        time.sleep(1.0)
    proc.communicate(timeout=30)
    result = subprocess.run(
        [sys.executable, "-m", "mrouter", "igmp", "decode", str(capture), "--json"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True,
    )
    rows = [json.loads(text) for text in result.stdout.splitlines()]
    assert [[rec["type"] for rec in r["records"]] for r in rows] == [
        ["TO_EX"], ["TO_EX"], ["TO_IN"], ["TO_IN"]]
    assert all(r["src"] == RECEIVER and r["checksum_ok"] for r in rows)
    if tool == "tcpdump":
        assert {r["direction"] for r in rows} == {"in"}  # from the SLL2 packet type
