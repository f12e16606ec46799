"""`mrouter mld watch/decode/send` in a real lab, against the Linux host MLD stack.

basic.toml with IPv6 turned on for r1 dn0 -- receiver eth0 (link-local addresses, DAD
off). The receiver joins and leaves an ff15::/16 group with an ordinary IPv6 socket;
`mrouter mld watch` on r1's dn0 must show its MLDv2 reports with the right fields, write
them to a pcap that `mld decode` reads back; `mld send` puts out a query the host
answers (a Linux host answers only valid MLD: link-local source, hop limit 1, Router
Alert); and a pcapng capture of both protocols decodes under either command, each its
own messages. The host's own reports for its solicited-node groups (ff02::1:ff..) are
on the wire too: the tests look at the rows of their group.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helpers
import pytest
from helpers import member, watch_rows
from mld_lab import Listener, enable_ipv6, link_local_of

from mrouter.lab import Lab

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
GROUP = "ff15::7:1"
LabFactory = Callable[..., Lab]


def mld_lab(lab_factory: LabFactory) -> Lab:
    lab = lab_factory("basic.toml")
    enable_ipv6(lab.node("r1"), "dn0")
    enable_ipv6(lab.node("receiver"), "eth0")
    # the join's second report 100 ms after the first (default: up to 1 s)
    lab.node("receiver").sysctl("net.ipv6.conf.eth0.mldv2_unsolicited_report_interval", 100)
    time.sleep(0.5)  # the solicited-node reports of the new addresses are out
    return lab


def start_watch(lab: Lab, *extra: str) -> subprocess.Popen[str]:
    """Start `mrouter mld watch --json` on r1's dn0 and wait until it listens."""
    return helpers.start_watch(lab.node("r1"), ["mld", "watch", "--iface", "dn0", "--json",
                                                *extra], REPO)


def about(rows: list[dict[str, Any]], group: str = GROUP) -> list[dict[str, Any]]:
    return [r for r in rows if r["group"] == group
            or any(rec["group"] == group for rec in r["records"])]


def test_watch_shows_mldv2_join_and_leave_and_decode_reads_its_capture(
        lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = mld_lab(lab_factory)
    host = link_local_of(lab.node("receiver"), "eth0")
    capture = tmp_path / "mld.pcap"
    watch = start_watch(lab, "--timeout", "3", "--pcap", str(capture))
    listener = Listener(lab.node("receiver"))
    try:
        listener.join(GROUP)
        time.sleep(1.0)
        listener.leave(GROUP)
    finally:
        listener.close()
    rows = about(watch_rows(watch))

    assert rows, "no report for the group"
    for row in rows:
        assert (row["family"], row["iface"], row["direction"], row["src"]) == (
            "ipv6", "dn0", "in", host)
        assert (row["ttl"], row["router_alert"], row["checksum_ok"]) == (1, True, True)
        assert (row["version"], row["type"], row["dst"]) == (2, "v2_report", "ff02::16")
    records = [[(rec["type"], rec["sources"]) for rec in r["records"]
                if rec["group"] == GROUP] for r in rows]
    # join: EXCLUDE {} (RFC 3810 §6.1), sent [Robustness] times; leave: INCLUDE {}
    assert records[0] == [("TO_EX", [])] and records[-1] == [("TO_IN", [])]
    assert all(r in ([("TO_EX", [])], [("TO_IN", [])]) for r in records)
    assert len(records) >= 3  # the join's repeat came 100 ms after it

    result = subprocess.run(
        [sys.executable, "-m", "mrouter", "mld", "decode", str(capture), "--json"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=True,
    )
    decoded = about([json.loads(text) for text in result.stdout.splitlines()])
    assert [(d["src"], d["records"]) for d in decoded] == [(r["src"], r["records"])
                                                          for r in rows]
    assert [d["time"] for d in decoded] == pytest.approx([r["time"] for r in rows], abs=1e-5)


def test_send_query_is_seen_going_out_and_answered(lab_factory: LabFactory) -> None:
    lab = mld_lab(lab_factory)
    listener = Listener(lab.node("receiver"))
    try:
        listener.join(GROUP)
        time.sleep(0.5)  # let the unsolicited reports pass before watching
        watch = start_watch(lab, "--timeout", "2")
        sent = lab.node("r1").run(
            [sys.executable, "-m", "mrouter", "mld", "send", "--iface", "dn0", "query",
             "--group", GROUP, "--max-resp", "0.5", "--json"], check=True, timeout=60)
        rows = about(watch_rows(watch))
    finally:
        listener.close()

    router = link_local_of(lab.node("r1"), "dn0")
    (sent_row,) = [json.loads(text) for text in sent.stdout.splitlines()]
    assert (sent_row["src"], sent_row["dst"], sent_row["ttl"]) == (router, GROUP, 1)
    query, report = rows
    assert query["direction"] == "out"  # watch sees this host's own packets too
    assert (query["version"], query["type"], query["query"], query["group"]) == (
        2, "query", "group", GROUP)
    assert (query["max_resp"], query["max_resp_code"], query["router_alert"],
            query["ttl"], query["checksum_ok"]) == (0.5, 500, True, 1, True)
    assert report["src"] == link_local_of(lab.node("receiver"), "eth0")
    assert report["records"] == [  # current state (RFC 3810 §6.3): MODE_IS_EXCLUDE {}
        {"type": "IS_EX", "record_type": 2, "group": GROUP, "sources": []}]
    assert report["time"] - query["time"] < 0.6  # within the Maximum Response Delay


@pytest.mark.interop
def test_a_pcapng_of_both_protocols_decodes_under_either_command(
        lab_factory: LabFactory, tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian: apt-get install tshark)")
    lab = mld_lab(lab_factory)
    capture = tmp_path / "both.pcapng"
    # "ip6", not "icmp6": libpcap's icmp6 does not look past the Hop-by-Hop header
    proc = lab.node("r1").spawn(
        ["tshark", "-i", "dn0", "-w", str(capture), "-F", "pcapng", "-a", "duration:4",
         "-f", "igmp or ip6"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    while "Capture started" not in (line := proc.stderr.readline()) and line:
        pass
    listener = Listener(lab.node("receiver"))
    try:
        listener.join(GROUP)
        with member(lab, "receiver", "239.7.7.7"):
            time.sleep(1.0)
    finally:
        listener.close()
    proc.communicate(timeout=30)

    def decode(command: str) -> list[dict[str, Any]]:
        result = subprocess.run(
            [sys.executable, "-m", "mrouter", command, "decode", str(capture), "--json"],
            capture_output=True, text=True, timeout=60, cwd=REPO, check=True)
        return [json.loads(text) for text in result.stdout.splitlines()]

    mld, igmp = decode("mld"), decode("igmp")
    assert about(mld) and all(r["family"] == "ipv6" for r in mld)
    assert {rec["group"] for r in igmp for rec in r["records"]} == {"239.7.7.7"}
    assert not {r["frame"] for r in mld} & {r["frame"] for r in igmp}
    assert all(r["checksum_ok"] for r in mld + igmp)


def test_the_queriers_queries_on_the_wire(lab_factory: LabFactory) -> None:
    """What `querier --mld` puts on the link, seen by `mld watch` on the receiver:
    MLDv2 general queries to ff02::1 from r1's link-local address, hop limit 1, Hop-by-Hop
    Router Alert, a good checksum and the Maximum Response Code in ms."""
    lab = mld_lab(lab_factory)
    proc = lab.node("receiver").spawn(
        [sys.executable, "-m", "mrouter", "mld", "watch", "--iface", "eth0", "--json",
         "--timeout", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stderr is not None and "listening on" in proc.stderr.readline()
    lab.node("r1").spawn([sys.executable, "-m", "mrouter", "querier", "--iface", "dn0",
                          "--mld", "--startup-query-interval", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    rows = [r for r in watch_rows(proc) if r["type"] == "query"]
    assert len(rows) >= 2  # startup queries, 1 s apart
    router = link_local_of(lab.node("r1"), "dn0")
    for q in rows:
        assert (q["direction"], q["src"], q["dst"], q["ttl"], q["router_alert"]) == (
            "in", router, "ff02::1", 1, True)
        assert (q["version"], q["query"], q["max_resp"], q["max_resp_code"], q["qrv"],
                q["qqi"], q["checksum_ok"]) == (2, "general", 10.0, 10000, 2, 125, True)
