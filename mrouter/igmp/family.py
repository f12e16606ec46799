"""The facts of one address family that the group-membership engine and the route
table need, in one small object.

Theory of operation: RFC 3810 (MLDv2) is RFC 3376 (IGMPv3) with other names and
addresses: the same filter modes, timers, transition tables and querier election. What
differs is data: which addresses are multicast, which groups are link-local scope and
never forwarded, where queries and reports go, and which router wins the election. An
:class:`AddressFamily` holds exactly those facts, so a second family is a second
instance (and a second codec and kernel binding), not a copy of the engine or of the
route table. :data:`IPV4` is IGMP's family, :data:`IPV6` MLD's; each carries its
protocol's message adapter (:mod:`mrouter.igmp.adapter`), the one place where the
engine meets a protocol's message classes and units.

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Generic, TypeVar

from mrouter.igmp.adapter import IGMP, MessageAdapter
from mrouter.igmp.messages import (
    ALL_IGMPV3_ROUTERS,
    ALL_ROUTERS,
    ALL_SYSTEMS,
    ANY,
    LINK_LOCAL,
    MULTICAST,
)
from mrouter.mld.adapter import MLD
from mrouter.mld.messages import ALL_MLDV2_ROUTERS, ALL_NODES, UNSPECIFIED
from mrouter.mld.messages import ALL_ROUTERS as ALL_ROUTERS_V6

__all__ = ["IPV4", "IPV6", "Address", "AddressFamily", "Network"]

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
A = TypeVar("A", IPv4Address, IPv6Address)
N = TypeVar("N", IPv4Network, IPv6Network)


@dataclass(frozen=True, slots=True)
class AddressFamily(Generic[A, N]):
    """One family's addresses and rules (see the module docstring).

    Generic over the family's address and network types, so that code written for one
    family keeps precise types (``AddressFamily[IPv4Address, IPv4Network]``) while the
    engine and the route table take every fact from the instance they are given.

    ``all_hosts`` is where general queries go, ``all_routers`` where IGMPv2 leaves go,
    ``report_destination`` where IGMPv3 reports go; ``unspecified`` is the "no address"
    source (a general query's group field, an anonymous report's source); ``key`` is
    the token JSON output uses (``"ipv4"``, ``"ipv6"``); ``adapter`` maps the
    protocol's messages onto the engine (:mod:`mrouter.igmp.adapter`).
    """

    name: str
    protocol: str  # the membership protocol's name, for messages ("IGMP", "MLD")
    multicast: N
    link_local: N  # link-local scope: never forwarded by a router
    all_hosts: A
    all_routers: A
    report_destination: A
    unspecified: A
    adapter: MessageAdapter
    key: str

    def is_multicast(self, address: A) -> bool:
        return address in self.multicast

    def is_link_local(self, group: A) -> bool:
        """A group of link-local scope (RFC 5771's 224.0.0.0/24): never forwarded."""
        return group in self.link_local

    def is_forwardable(self, group: A) -> bool:
        """A multicast group a router may forward: multicast and not link-local scope."""
        return group in self.multicast and group not in self.link_local

    def wins_election(self, candidate: A, current: A | None) -> bool:
        """Whether ``candidate`` beats ``current`` in the querier election.

        RFC 3376 §6.6.2 and RFC 3810 §7.6.2: the lowest address wins (None: no querier
        known yet, so anyone wins).
        """
        return current is None or candidate < current


IPV4: AddressFamily[IPv4Address, IPv4Network] = AddressFamily(
    name="IPv4",
    protocol="IGMP",
    multicast=MULTICAST,  # 224.0.0.0/4
    link_local=LINK_LOCAL,  # 224.0.0.0/24, RFC 5771 Local Network Control Block
    all_hosts=ALL_SYSTEMS,  # 224.0.0.1, RFC 1112
    all_routers=ALL_ROUTERS,  # 224.0.0.2, RFC 2236 §3: where leaves go
    report_destination=ALL_IGMPV3_ROUTERS,  # 224.0.0.22, RFC 3376 §4.2.14
    unspecified=ANY,
    adapter=IGMP,
    key="ipv4",
)
"""IPv4 with IGMP (RFC 1112, RFC 2236, RFC 3376)."""

IPV6: AddressFamily[IPv6Address, IPv6Network] = AddressFamily(
    name="IPv6",
    protocol="MLD",
    multicast=IPv6Network("ff00::/8"),  # RFC 4291 §2.7
    # ff02::/16: link-local scope (scope 2, flags 0), RFC 4291 §2.7; never forwarded.
    link_local=IPv6Network("ff02::/16"),
    all_hosts=ALL_NODES,  # ff02::1: where general queries go (RFC 3810 §5.1.15)
    all_routers=ALL_ROUTERS_V6,  # ff02::2: where MLDv1 dones go (RFC 2710 §3)
    report_destination=ALL_MLDV2_ROUTERS,  # ff02::16 (RFC 3810 §5.2.14)
    unspecified=UNSPECIFIED,
    adapter=MLD,
    key="ipv6",
)
"""IPv6 with MLD (RFC 2710, RFC 3810)."""
