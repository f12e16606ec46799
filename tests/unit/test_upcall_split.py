"""The querier shell tells upcalls from IGMP with the one upcall test (kernel.mroute.is_upcall).

On the daemon's MRT_INIT socket both arrive interleaved; an upcall must reach
``on_other`` (the daemon's route resolver) and never the IGMP engine, and a report must
reach the engine and never ``on_other``.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from mrouter.igmp.codec import encode_packet
from mrouter.igmp.engine import Action, Engine, InterfaceSettings, MembershipChanged
from mrouter.igmp.messages import V2Report
from mrouter.kernel.mroute import Upcall, UpcallType, encode_upcall, is_upcall
from mrouter.router.querier import QuerierShell
from mrouter.sockets.igmp_socket import IgmpSocket, Received

GROUP = IPv4Address("239.1.1.1")
HOST = IPv4Address("192.0.2.10")


class _Sink:
    """Stands in for the raw IGMP socket: accepts every call, sends nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def shell() -> tuple[QuerierShell, list[Action], list[Received]]:
    actions: list[Action] = []
    others: list[Received] = []
    sock: IgmpSocket = _Sink()  # type: ignore[assignment]
    s = QuerierShell(Engine(random.Random(1)), sock, lambda: 0.0, actions.append,
                     on_other=others.append)
    s.add_interface("dn0", InterfaceSettings(version=2), ifindex=7,
                    address=IPv4Address("192.0.2.1"), network=IPv4Network("192.0.2.0/24"))
    actions.clear()
    return s, actions, others


def test_an_upcall_goes_to_on_other_not_to_the_engine() -> None:
    s, actions, others = shell()
    data = encode_upcall(Upcall(UpcallType.NOCACHE, 0, IPv4Address("198.51.100.2"), GROUP))
    assert is_upcall(data)
    s.handle_packet(Received(data, 7))
    assert others == [Received(data, 7)]
    assert actions == [] and s.undecodable == 0


def test_a_report_goes_to_the_engine_not_to_on_other() -> None:
    s, actions, others = shell()
    data = encode_packet(V2Report(GROUP), HOST, GROUP)
    assert not is_upcall(data)
    s.handle_packet(Received(data, 7))
    assert others == []
    assert [a.group for a in actions if isinstance(a, MembershipChanged)] == [GROUP]
