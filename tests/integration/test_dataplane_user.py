"""UserDataplane as the daemon drives it: the lookup cache, invalidate(), counters.

two-lans.toml: sender -- up0 r1; r1 dn0 on lan0 (h1, h2); r1 dn1 on lan1 (h3, h4).
No MRT_INIT in r1: only the userspace data plane forwards. The plane is driven from
this thread (handle_readable on each readable fd), as the daemon's loop will.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import pytest
from helpers import member, send

from mrouter.dataplane import DataplaneError, DataplaneInterface, UserDataplane
from mrouter.kernel.mroute import MrouteSocket

pytestmark = pytest.mark.netns

GROUP = IPv4Address("239.1.1.1")
SOURCE = IPv4Address("198.51.100.2")


def drain(sock: socket.socket) -> int:
    """How many datagrams are waiting on ``sock`` (read without blocking)."""
    n = 0
    while True:
        try:
            sock.recv(2048, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return n
        n += 1


def pump(dp: UserDataplane, lab: Any, count: int) -> None:
    """Send ``count`` datagrams and run the data plane until they are all handled."""
    with selectors.DefaultSelector() as sel:
        for fd in dp.filenos():
            sel.register(fd, selectors.EVENT_READ)
        send(lab, str(GROUP), "datagram", count, gap=0)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            for key, _ in sel.select(0.05):
                dp.handle_readable(key.fd)


def test_cache_invalidate_and_counters(lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("two-lans.toml")
    r1 = lab.node("r1")
    asked: list[tuple[IPv4Address, IPv4Address, str]] = []
    route = {"oifs": frozenset({"dn0"})}

    def lookup(source: IPv4Address, group: IPv4Address, iif: str) -> frozenset[str]:
        asked.append((source, group, iif))
        return route["oifs"] if iif == "up0" else frozenset()

    interfaces = [DataplaneInterface(n, r1.ifindex(n)) for n in ("up0", "dn0", "dn1")]
    with r1.enter():
        dp = UserDataplane(interfaces, lookup, batch=4)
    with dp, member(lab, "h1", str(GROUP)) as lan0, member(lab, "h3", str(GROUP)) as lan1:
        pump(dp, lab, 10)
        assert (drain(lan0), drain(lan1)) == (10, 0)
        assert asked == [(SOURCE, GROUP, "up0")]  # asked once, then cached

        route["oifs"] = frozenset({"dn1"})  # the table changed, nobody said so yet
        pump(dp, lab, 5)
        assert (drain(lan0), drain(lan1)) == (5, 0)

        dp.invalidate()
        pump(dp, lab, 7)
        assert (drain(lan0), drain(lan1)) == (0, 7)
        assert len(asked) == 2

        counters = dp.interface_counters()
        assert counters["up0"]["packets_in"] == 22
        assert counters["dn0"]["packets_out"] == 15
        assert counters["dn1"]["packets_out"] == 7
        (sg,) = list(dp.route_counters())
        assert (sg["source"], sg["group"], sg["iif"], sg["packets"], sg["forwarded"]) == (
            str(SOURCE), str(GROUP), "up0", 22, 22)
        assert dp.packet_counts() == {(SOURCE, GROUP): 22}

        dp.set_interfaces(interfaces[:2])  # dn1 went away: the route leads nowhere now
        assert len(dp.sockets()) == len(dp.filenos()) == 2
        pump(dp, lab, 3)
        assert (drain(lan0), drain(lan1)) == (0, 0)
        assert dp.interface_counters()["up0"]["drops"] == {"no-route": 3}


def test_unknown_interface_is_a_dataplane_error(lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("basic.toml")
    with lab.node("r1").enter(), pytest.raises(DataplaneError, match="eth7"):
        UserDataplane([DataplaneInterface("eth7", 99)], lambda s, g, i: frozenset())


def test_beside_an_mrt_init_socket_with_empty_kernel_routes(
        lab_factory: Callable[[str], Any]) -> None:
    """How the daemon runs it: MRT_INIT and VIFs stay (IGMP reports to any group reach
    the daemon only through them), kernel MFC entries get no oifs, so the kernel counts
    the packets (for aging) and forwards none: every datagram arrives exactly once."""
    lab = lab_factory("two-lans.toml")
    r1 = lab.node("r1")
    interfaces = [DataplaneInterface(n, r1.ifindex(n)) for n in ("up0", "dn0", "dn1")]
    with r1.enter():
        mrt = MrouteSocket()
        dp = UserDataplane(interfaces, lambda s, g, i: frozenset({"dn0"}) if i == "up0"
                           else frozenset())
    with mrt, dp, member(lab, "h1", str(GROUP)) as lan0:
        for vif, iface in enumerate(interfaces):
            mrt.add_vif(vif, iface.ifindex)
        mrt.add_mfc(SOURCE, GROUP, 0, {})
        pump(dp, lab, 12)
        assert drain(lan0) == 12
        assert mrt.sg_counters(SOURCE, GROUP).packets == 12
        assert mrt.vif_counters(1).packets_out == 0
