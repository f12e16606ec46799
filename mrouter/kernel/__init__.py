"""The Linux kernel's multicast forwarding caches, IPv4 and IPv6 (MRT_*, MRT6_*, upcalls).

Everything that talks to the kernel's multicast routing API lives here, one place per C
struct layout, one place per option: :mod:`mrouter.kernel.mroute` (IPv4, ipmr),
:mod:`mrouter.kernel.mroute6` (IPv6, ip6mr) and what they share,
:mod:`mrouter.kernel.common`. The two bindings have the same public shape, and
:func:`for_family` picks one by the family's name (``"IPv4"``, ``"ipv6"``, or an
``AddressFamily`` from :mod:`mrouter.igmp.family`, whose ``name`` is read)::

    binding = for_family(IPV4)
    with binding.socket() as mrt:
        mrt.add_vif(0, ifindex)
        ...
        if binding.is_upcall(data):
            upcall = binding.parse_upcall(data)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mrouter.errors import KernelError
from mrouter.kernel import common, mroute, mroute6

__all__ = ["BINDINGS", "KernelBinding", "for_family"]


@dataclass(frozen=True, slots=True)
class KernelBinding:
    """One family's binding: its socket class, upcall test and parser, /proc readers."""

    family: common.KernelFamily
    socket: type[common.MrouteSocketBase[Any]]
    is_upcall: Callable[[bytes], bool]
    parse_upcall: Callable[[bytes], common.UpcallOf[Any]]
    read_vif_table: Callable[[], list[common.ProcVif]]
    read_mfc_table: Callable[[], Sequence[common.ProcMfcOf[Any]]]


BINDINGS: dict[str, KernelBinding] = {
    "ipv4": KernelBinding(mroute.FAMILY, mroute.MrouteSocket, mroute.is_upcall,
                          mroute.parse_upcall, mroute.read_vif_table, mroute.read_mfc_table),
    "ipv6": KernelBinding(mroute6.FAMILY, mroute6.Mroute6Socket, mroute6.is_upcall,
                          mroute6.parse_upcall, mroute6.read_vif_table,
                          mroute6.read_mfc_table),
}
"""Family name (lower case) -> binding."""


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def for_family(family: str | _Named) -> KernelBinding:
    """The binding of ``family``: a name (any case) or an object with a ``name``."""
    name = family if isinstance(family, str) else family.name
    try:
        return BINDINGS[name.lower()]
    except KeyError:
        raise KernelError(f"no kernel multicast routing binding for address family "
                          f"{name!r}; known: {', '.join(BINDINGS)}") from None
