"""The kernel binding on a real namespace: VIFs, MFC entries, upcalls, counters.

Lab basic.toml: sender eth0 198.51.100.2 -- r1 up0 | r1 dn0 -- receiver eth0 192.0.2.2.
The MRT_INIT socket is opened inside r1; the sender and receiver sockets inside their
own nodes, all from this thread (sockets stay in the namespace they were made in).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from ipaddress import IPv4Address
from typing import Any

import pytest
from helpers import kernel_socket, member, received, send

from mrouter.errors import KernelError
from mrouter.kernel.mroute import (
    MrouteSocket,
    Upcall,
    UpcallType,
    is_upcall,
    parse_upcall,
    read_mfc_table,
)

pytestmark = pytest.mark.netns

SOURCE = IPv4Address("198.51.100.2")
GROUP = IPv4Address("239.1.1.1")
UP, DN = 0, 1


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


def mroute(lab: Any, **kwargs: Any) -> AbstractContextManager[MrouteSocket]:
    return kernel_socket(lab, MrouteSocket, **kwargs)  # VIF UP = up0, DN = dn0


def upcalls(mrt: MrouteSocket, wait: float = 2.0) -> list[Upcall]:
    return [parse_upcall(d) for d in received(mrt.sock, wait) if is_upcall(d)]


def test_mfc_entry_forwards_and_counts(lab: Any) -> None:
    with mroute(lab) as mrt:
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 1})
        with member(lab, "receiver", str(GROUP)) as rx:
            sent = send(lab, str(GROUP), "packet")
            got = received(rx)
        assert got == sent
        counters = mrt.sg_counters(SOURCE, GROUP)
        assert (counters.packets, counters.wrong_if) == (5, 0)
        assert counters.bytes == 5 * (20 + 8 + 8)  # IP + UDP + "packet N"
        assert mrt.vif_counters(UP).packets_in == 5
        assert mrt.vif_counters(DN).packets_out == 5
        with lab.node("r1").enter():
            (entry,) = read_mfc_table()
        assert (entry.source, entry.group, entry.iif_vif, entry.oifs) == (SOURCE, GROUP, UP,
                                                                          {DN: 1})
        assert mrt.version() == 0x305


def test_ttl_threshold_holds_back_low_ttl(lab: Any) -> None:
    with mroute(lab) as mrt:
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 8})
        with member(lab, "receiver", str(GROUP)) as rx:
            send(lab, str(GROUP), "packet", 3, ttl=5)  # decremented to 4 at r1: not above 8
            assert received(rx, 0.5) == []


def test_unknown_sg_gives_nocache_upcall_and_no_traffic(lab: Any) -> None:
    with mroute(lab) as mrt, member(lab, "receiver", str(GROUP)) as rx:
        send(lab, str(GROUP), "packet", 3)
        assert received(rx, 0.5) == []
        calls = upcalls(mrt)
    assert Upcall(UpcallType.NOCACHE, UP, SOURCE, GROUP) in calls


def test_wrong_interface_gives_wrongvif_upcall_and_counts(lab: Any) -> None:
    with mroute(lab, asserts=True) as mrt:
        mrt.add_mfc(SOURCE, GROUP, DN, {UP: 1})  # expects the group from dn0
        send(lab, str(GROUP), "packet", 3)
        calls = upcalls(mrt)
        assert Upcall(UpcallType.WRONGVIF, UP, SOURCE, GROUP) in calls
        assert mrt.sg_counters(SOURCE, GROUP).wrong_if == 3


def test_second_owner_gets_clear_message(lab: Any) -> None:
    with mroute(lab), lab.node("r1").enter(), pytest.raises(KernelError) as exc:
        MrouteSocket()
    assert "already owned by another process" in str(exc.value)
    assert "smcroute, pimd, igmpproxy or another mrouter" in str(exc.value)


def test_vif_limit_and_duplicate_vif_are_explained(lab: Any) -> None:
    with mroute(lab) as mrt:
        with pytest.raises(KernelError, match="at most 32 VIFs"):
            mrt.add_vif(32, lab.node("r1").ifindex("dn0"))
        with pytest.raises(KernelError, match="VIF 1 is already in use"):
            mrt.add_vif(DN, lab.node("r1").ifindex("dn0"))
