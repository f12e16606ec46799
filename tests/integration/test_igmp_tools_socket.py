"""IgmpSocket, the raw IGMP socket shell the querier and the daemon use, in a real lab.

basic.toml: r1 dn0 192.0.2.1 -- receiver eth0 192.0.2.2.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest
from helpers import host_igmp, member

from mrouter.errors import McastError
from mrouter.igmp.codec import Packet, decode_packet, encode_packet
from mrouter.igmp.messages import GroupRecord, Query, RecordType, V2Leave, V2Report, V3Report
from mrouter.lab import Lab
from mrouter.sockets.igmp_socket import IgmpSocket, Received

pytestmark = pytest.mark.netns

GROUP = IPv4Address("239.1.2.3")
LabFactory = Callable[..., Lab]


def receive_all(sock: IgmpSocket, seconds: float) -> list[tuple[Received, Packet]]:
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        received = sock.recv()
        if received is None:
            time.sleep(0.01)
            continue
        got.append((received, decode_packet(received.data)))
    return got


def test_v3_reports_need_the_router_groups_and_arrive_with_ifindex(
        lab_factory: LabFactory) -> None:
    lab = lab_factory("basic.toml")
    r1 = lab.node("r1")
    dn0 = r1.ifindex("dn0")
    with r1.enter():
        igmp = IgmpSocket()
    with igmp:
        igmp.join_router_groups(dn0)
        igmp.join_router_groups(dn0)  # joining twice is not an error
        host_igmp(lab, "receiver", 3)
        with member(lab, "receiver", str(GROUP)):
            got = receive_all(igmp, 1.0)
    # r1's own kernel reports (for 224.0.0.22 and 224.0.0.2, which it just joined) are
    # looped back to local sockets too: the engine must tell them by their source.
    reports = [(r, p) for r, p in got
               if isinstance(p.igmp, V3Report) and p.ip.src == IPv4Address("192.0.2.2")]
    assert reports, f"no v3 report arrived: {got}"
    for received, packet in reports:
        assert received.ifindex == dn0
        assert packet.ip.dst == IPv4Address("224.0.0.22")
    assert reports[0][1].igmp == V3Report((GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE,
                                                       GROUP),))


def test_send_goes_out_of_the_interface_and_is_answered(lab_factory: LabFactory) -> None:
    lab = lab_factory("basic.toml")
    r1 = lab.node("r1")
    dn0 = r1.ifindex("dn0")
    host_igmp(lab, "receiver", 2)
    with r1.enter():
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    # IgmpSocket wrapping an existing socket, as the daemon does
    with member(lab, "receiver", str(GROUP)) as host, IgmpSocket(raw) as igmp:
        assert igmp.sock is raw and igmp.fileno() == raw.fileno()
        # Without MRT_INIT, the kernel delivers IGMP only for groups this host joined:
        # 224.0.0.2 for leaves, and here GROUP itself for the v2 reports.
        igmp.join_router_groups(dn0)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                       struct.pack("=4s4si", GROUP.packed, bytes(4), dn0))
        time.sleep(0.5)
        receive_all(igmp, 0.1)  # the unsolicited reports
        query = Query(2, GROUP, 5)  # group-specific, 0.5 s
        igmp.send(encode_packet(query, IPv4Address("192.0.2.1"), GROUP), dn0)
        got = receive_all(igmp, 1.5)
        host.close()  # the host leaves: a v2 leave to 224.0.0.2 reaches us unjoined
        got += receive_all(igmp, 0.5)
    from_host = [p.igmp for _, p in got if p.ip.src == IPv4Address("192.0.2.2")]
    assert from_host[:1] == [V2Report(GROUP)]  # the answer to our query
    assert from_host[-1:] == [V2Leave(GROUP)]
    # multicast loopback is off: our own query does not come back to us
    assert query not in [p.igmp for _, p in got]


def test_errors_name_the_interface(lab_factory: LabFactory) -> None:
    lab = lab_factory("basic.toml")
    with lab.node("r1").enter():
        igmp = IgmpSocket()
    with igmp:
        with pytest.raises(McastError, match="interface index 9999"):
            igmp.join_router_groups(9999)
        with pytest.raises(McastError, match="not an IPv4 packet"):
            igmp.send(b"short", 1)
        assert igmp.sock.gettimeout() == 0.0  # non-blocking: recv() returns at once
        assert igmp.recv() is None  # nothing has been sent to r1
