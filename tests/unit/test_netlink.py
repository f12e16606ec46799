"""mrouter.linux.netlink: the records every shell reads links and addresses as.

The parsing is checked on stand-ins for pyroute2's messages (a bridge with snooping, a
veth that is its port, a point-to-point address); one test reads this namespace's
loopback for real (a netlink dump sends nothing on any link).
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from mrouter.linux import netlink


class _Msg:
    """A pyroute2 message: fields by ``msg[name]``, attributes by ``get_attr``."""

    def __init__(self, fields: dict[str, Any], **attrs: Any) -> None:
        self.fields = fields
        self.attrs = attrs

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)

    def get(self, path: tuple[str, ...]) -> Any:
        value: Any = self
        for name in path:
            value = value.get_attr(name) if value is not None else None
        return value


class _Ipr:
    def __init__(self, links: list[_Msg], addrs: list[_Msg]) -> None:
        self._links, self._addrs = links, addrs

    def get_links(self, index: int | None = None, family: int | None = None) -> list[_Msg]:
        if family is not None:  # AF_BRIDGE: the ports
            return [m for m in self._links if m.get_attr("IFLA_PROTINFO") is not None]
        return [m for m in self._links if index is None or m["index"] == index]

    def get_addr(self, family: int, index: int | None = None) -> list[_Msg]:
        return [m for m in self._addrs if index is None or m["index"] == index]


BRIDGE = _Msg({"index": 2, "flags": 0x1003}, IFLA_IFNAME="lan0", IFLA_OPERSTATE="UP",
              IFLA_LINKINFO=_Msg({}, IFLA_INFO_KIND="bridge", IFLA_INFO_DATA=_Msg(
                  {}, IFLA_BR_MCAST_SNOOPING=1, IFLA_BR_MCAST_QUERIER=0)))
PORT = _Msg({"index": 3, "flags": 0x1002}, IFLA_IFNAME="r1-dn0", IFLA_OPERSTATE="DOWN",
            IFLA_MASTER=2, IFLA_LINKINFO=_Msg({}, IFLA_INFO_KIND="veth"),
            IFLA_PROTINFO=_Msg({}, IFLA_BRPORT_STATE=3))
LO = _Msg({"index": 1, "flags": 0x9}, IFLA_IFNAME="lo", IFLA_OPERSTATE="UNKNOWN")
IPR = _Ipr([LO, BRIDGE, PORT], [
    _Msg({"index": 1, "prefixlen": 8}, IFA_ADDRESS="127.0.0.1", IFA_LOCAL="127.0.0.1"),
    _Msg({"index": 3, "prefixlen": 32}, IFA_ADDRESS="192.0.2.2", IFA_LOCAL="192.0.2.1"),
])


def test_links_carry_kind_master_state_and_a_bridges_snooping() -> None:
    lo, bridge, port = netlink.links(IPR)
    assert (lo.name, lo.kind, lo.operstate, lo.admin_up) == ("lo", None, "UNKNOWN", True)
    assert (bridge.kind, bridge.mcast_snooping, bridge.mcast_querier) == ("bridge", True, False)
    assert (port.kind, port.master, port.admin_up, port.operstate) == ("veth", 2, False, "DOWN")
    assert not port.mcast_snooping  # only a bridge has snooping
    assert netlink.links(IPR, 3) == [port]


def test_an_address_is_the_hosts_own_even_on_a_point_to_point_link() -> None:
    assert netlink.addresses(IPR) == [
        netlink.Address(1, IPv4Interface("127.0.0.1/8")),
        netlink.Address(3, IPv4Interface("192.0.2.1/32")),  # IFA_LOCAL, not the peer
    ]
    assert [a.address.ip for a in netlink.addresses(IPR, 1)] == [IPv4Address("127.0.0.1")]


def test_bridge_ports_and_their_stp_state() -> None:
    assert netlink.bridge_port_states(IPR) == {"r1-dn0": 3}


def test_the_loopback_of_this_namespace_read_for_real() -> None:
    links = netlink.query(netlink.links)
    lo = next(link for link in links if link.name == "lo")
    assert lo.kind is None and lo.admin_up
    route = netlink.query(lambda ipr: netlink.route_to(ipr, IPv4Address("127.0.0.1")))
    assert route is not None and route.oif == lo.index
    assert route.type != netlink.RTN_UNICAST  # a local route: no way back to a source


def test_a_query_from_inside_an_asyncio_loop_gives_the_same_answer() -> None:
    async def inside() -> list[netlink.Link]:
        return netlink.query(netlink.links)

    assert [link.name for link in asyncio.run(inside())] == [
        link.name for link in netlink.query(netlink.links)]
