"""One address family's part of the daemon: its engine, route table, kernel table, socket.

Theory of operation (issue 14, issue 12's seam): a dual-stack daemon is one loop over
one set of interfaces, with one :class:`FamilyPlane` per address family. A plane holds
what is per family and nothing else: the membership engine built over the family
object (:data:`~mrouter.igmp.family.IPV4` speaks IGMP, :data:`~mrouter.igmp.family.IPV6`
MLD), the :class:`~mrouter.router.routes.RouteTable` and
:class:`~mrouter.router.routes.ForwardingCache` over the same family, the kernel binding
of :func:`mrouter.kernel.for_family` (MRT_* or MRT6_*), the membership socket on the
binding's socket (IGMP and upcalls on one raw IGMP socket; MLD and upcalls on one raw
ICMPv6 socket), and in proxy mode the host side upstream. The daemon
(:mod:`mrouter.router.daemon`) drives every plane through the same methods; which plane
an address belongs to is its version (:meth:`Planes.of`).

What differs between the families is data here too: the engine settings of an interface
(``igmp`` or ``mld`` in its config), the VIF (MIF) threshold (ip6mr never compares one,
so IPv6 uses 1) and the querier state an interface shows (IPv4's lives on the
:class:`~mrouter.router.interfaces.Interface` as before; IPv6's in :attr:`FamilyPlane.querier`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mrouter.igmp.engine import Engine, InterfaceSettings
from mrouter.igmp.family import IPV4, IPV6, Address, AddressFamily
from mrouter.kernel import KernelBinding, for_family
from mrouter.router.config import FAMILIES, InterfaceConfig
from mrouter.router.routes import ForwardingCache, RouteTable

__all__ = ["FamilyPlane", "Planes"]


@dataclass(eq=False)
class FamilyPlane:
    """The per-family state of the daemon (see the module docstring). ``mrt``, ``sock``
    and ``shell`` are set when the daemon opens."""

    family: AddressFamily[Any, Any]
    engine: Engine
    table: RouteTable
    cache: ForwardingCache
    binding: KernelBinding
    mrt: Any = None
    sock: Any = None
    shell: Any = None
    upstream_host: Any = None
    in_kernel: set[tuple[Any, Any]] = field(default_factory=set)
    counted: dict[tuple[Any, Any], int] = field(default_factory=dict)
    wrongvif: dict[tuple[Any, Any], int] = field(default_factory=dict)
    # IPv6 only: interface -> (querier address or None, this router is the querier)
    querier: dict[str, tuple[Address | None, bool]] = field(default_factory=dict)
    # interfaces whose MLD could not start yet (a link-local address still tentative)
    waiting: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The family's JSON token: "ipv4" or "ipv6"."""
        return self.family.key

    @property
    def protocol(self) -> str:
        return self.family.protocol

    def settings(self, cfg: InterfaceConfig) -> InterfaceSettings:
        """The engine's settings of a configured interface for this family."""
        return cfg.igmp if self.family is IPV4 else cfg.mld

    def threshold(self, cfg: InterfaceConfig) -> int:
        """The VIF threshold: the configured TTL threshold for IPv4; 1 for IPv6, whose
        MIF threshold the kernel stores but never compares (mrouter.kernel.mroute6)."""
        return cfg.ttl_threshold if self.family is IPV4 else 1


class Planes:
    """The planes of the configured families, in the config's order (the first is the
    daemon's primary one: the attributes it kept from before dual stack)."""

    def __init__(self, families: tuple[str, ...], rng: random.Random, *,
                 upstream: str | None, expiry: float) -> None:
        self.by_key: dict[str, FamilyPlane] = {}
        for key in families:
            family: AddressFamily[Any, Any] = FAMILIES[key]  # type: ignore[assignment]
            table = RouteTable((), upstream=upstream, family=family)
            self.by_key[key] = FamilyPlane(family, Engine(rng, family), table,
                                           ForwardingCache(table, expiry=expiry),
                                           for_family(family))

    def __iter__(self) -> Iterator[FamilyPlane]:
        return iter(self.by_key.values())

    @property
    def primary(self) -> FamilyPlane:
        return next(iter(self.by_key.values()))

    def of(self, address: Any) -> FamilyPlane | None:
        """The plane of an address or network (by its version), None if not served."""
        return self.by_key.get(IPV6.key if address.version == 6 else IPV4.key)
