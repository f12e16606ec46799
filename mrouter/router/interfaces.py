"""The daemon's interfaces: the configured ones looked up in the namespace, and followed.

Theory of operation: each ``[interfaces.NAME]`` of the config becomes an
:class:`Interface` whose VIF number is its position in the file. At start
:func:`resolve_interfaces` finds each in this network namespace (index, first IPv4
address); a missing one is a config error unless it is ``optional``, then it waits,
inactive. Afterwards the daemon does not track interfaces message by message: a netlink
event (:mod:`mrouter.router.ifevents`) makes it re-read the namespace's interfaces, and
:func:`follow` compares that with what runs, stopping an interface that vanished, lost
its address or changed index, and starting one that is (back) there, through the
daemon's ``stop`` and ``start`` (which move its VIF, IGMP and routes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from mrouter.errors import ConfigError
from mrouter.router.config import Config, InterfaceConfig, Mode, Role

log = logging.getLogger("mrouter.router.daemon")  # the daemon's log, as before the split


@dataclass(slots=True)
class Interface:
    """A configured interface as the daemon runs it."""

    config: InterfaceConfig
    vif: int
    index: int
    address: IPv4Address
    network: IPv4Network
    igmp: bool  # router-side IGMP runs here
    querier: IPv4Address | None = None
    is_querier: bool = True
    active: bool = True  # False while the Linux interface is gone or has no address

    @property
    def name(self) -> str:
        return self.config.name


def resolve_interfaces(config: Config) -> list[Interface]:
    """Look up every configured interface in this namespace; ConfigError if one is
    missing or has no IPv4 address, unless it is ``optional`` (then it waits, inactive,
    and :func:`follow` starts it when it appears)."""
    from mrouter.sockets.mcast import interfaces

    known = {i.name: i for i in interfaces()}
    ipv4 = "ipv4" in config.families  # an IPv6-only daemon needs no IPv4 address
    result = []
    for vif, iface in enumerate(config.interfaces):
        igmp = not (config.mode is Mode.PROXY and iface.role is Role.UPSTREAM)
        found = known.get(iface.name)
        problem = None
        if found is None:
            problem = (f"no such interface in this network namespace (it has "
                       f"{', '.join(known)})")
            fix = "fix the name or create the interface"
        elif ipv4 and not found.addresses:
            problem = "has no IPv4 address"
            fix = f"add one (ip addr add ADDRESS/LEN dev {iface.name})"
        if problem is not None:
            if not iface.optional:
                raise ConfigError(f"{config.path}: interfaces.{iface.name}: {problem}; {fix}, "
                                  "or mark it optional = true to start without it")
            log.warning("%s: %s; optional, so it starts when it is there", iface.name,
                        problem)
            result.append(Interface(iface, vif, 0, IPv4Address(0), IPv4Network(0), igmp,
                                    is_querier=False, active=False))
            continue
        assert found is not None
        # querier until the election says otherwise, unless configured never to query
        address, network = (found.addresses[0].ip, found.addresses[0].network) \
            if found.addresses else (IPv4Address(0), IPv4Network(0))
        result.append(Interface(iface, vif, found.index, address, network, igmp,
                                is_querier=iface.querier))
    return result


def follow(running: Mapping[str, Interface], current: Mapping[str, Any],
           stop: Callable[[Interface], None], start: Callable[[Interface], None], *,
           need_address: bool = True) -> None:
    """Bring ``running`` in line with ``current`` (the namespace's interfaces by name, as
    :func:`mrouter.sockets.mcast.interfaces` gives them).

    An interface that vanished or lost its address stops; one that (re)appears with an
    address starts again on its VIF; a new index or address restarts it (the querier
    election depends on the address). Without ``need_address`` (an IPv6-only daemon) an
    interface needs no IPv4 address to run.
    """
    for iface in running.values():
        found = current.get(iface.name)
        usable = found is not None and (bool(found.addresses) or not need_address)
        if iface.active and (not usable or (found is not None
                                            and found.index != iface.index)):
            stop(iface)
        if found is None or not usable:
            continue
        address, network = (found.addresses[0].ip, found.addresses[0].network) \
            if found.addresses else (IPv4Address(0), IPv4Network(0))
        if iface.active and address != iface.address:
            log.info("%s: address changed from %s to %s", iface.name, iface.address,
                     address)
            stop(iface)
        if not iface.active:
            iface.index, iface.address, iface.network = found.index, address, network
            start(iface)


def querier_fields(iface: Interface) -> dict[str, Any]:
    """Who queries the interface's LAN, for the show commands."""
    return {"querier": str(iface.querier) if iface.querier else None,
            "is_querier": iface.is_querier if iface.igmp else None}
