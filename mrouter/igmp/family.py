"""The facts of one address family that the group-membership engine and the route
table need, in one small object.

Theory of operation: RFC 3810 (MLDv2) is RFC 3376 (IGMPv3) with other names and
addresses: the same filter modes, timers, transition tables and querier election. What
differs is data: which addresses are multicast, which groups are link-local scope and
never forwarded, where queries and reports go, and which router wins the election. An
:class:`AddressFamily` holds exactly those facts, so a second family is a second
instance (and a second codec and kernel binding), not a copy of the engine or of the
route table. Only :data:`IPV4` exists today; nothing here implements MLD.

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Generic, TypeVar

from mrouter.igmp.messages import (
    ALL_IGMPV3_ROUTERS,
    ALL_ROUTERS,
    ALL_SYSTEMS,
    ANY,
    LINK_LOCAL,
    MULTICAST,
)

__all__ = ["IPV4", "Address", "AddressFamily", "Network"]

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
    source (a general query's group field, an anonymous report's source).
    """

    name: str
    protocol: str  # the membership protocol's name, for messages ("IGMP", "MLD")
    multicast: N
    link_local: N  # link-local scope: never forwarded by a router
    all_hosts: A
    all_routers: A
    report_destination: A
    unspecified: A

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
)
"""IPv4 with IGMP (RFC 1112, RFC 2236, RFC 3376)."""
