"""Build a validated topology into named network namespaces with pyroute2.

Theory of operation
-------------------
:func:`build` runs in a thread of its own (see :mod:`mrouter.lab.netns`): it creates
every namespace with unshare(2) while that thread is inside, opens one pyroute2
``IPRoute`` per namespace *from inside it* (a netlink socket stays bound to the
namespace it was opened in), and then does all the netlink work through those sockets:

1. namespaces (one per node, one per LAN), IPv6 off (but on in the nodes of a lab with
   IPv6 addresses), ``lo`` up;
2. LAN bridges: STP off and forward_delay 0 (ports forward at once), IGMP snooping as
   the topology says (off by default: multicast floods to every port);
3. veth pairs, each created inside one namespace with its peer born directly in the
   other (``IFLA_NET_NS_FD`` on the peer), so nothing ever appears in the host
   namespace, not even for a moment;
4. links up, addresses, routes; then the sysctls (routers: ip_forward=1, rp_filter=0,
   and IPv6 forwarding in a lab with IPv6);
5. wait until every interface is operationally up (a veth's qdisc is attached
   asynchronously by the kernel's linkwatch; a packet sent before that is dropped);
6. in a lab with IPv6, wait until no IPv6 address is tentative: duplicate address
   detection (RFC 4862 §5.4) holds a new address, the link-local ones included, for about
   a second, and no socket can bind to or send from it meanwhile.

Every namespace made is appended to ``created`` as soon as it exists, so the caller can
remove exactly those if anything fails halfway.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mrouter.errors import LabError
from mrouter.lab import netns
from mrouter.lab.topology import Endpoint, Topology, namespace_sysctls, router_sysctls
from mrouter.linux import netlink, sysctl

log = logging.getLogger(__name__)

#: How long to wait for interfaces to become operationally up (normally a few ms).
OPER_UP_TIMEOUT = 5.0
#: How long to wait for IPv6 duplicate address detection: the kernel waits a random delay
#: of up to router_solicitation_delay (1 s), then one retransmission timer (1 s).
DAD_TIMEOUT = 10.0
#: include/uapi/linux/if_bridge.h: BR_STATE_FORWARDING
BR_STATE_FORWARDING = 3


def write_sysctl(key: str, value: str) -> None:
    """Set a sysctl of the calling thread's network namespace (a node's, when inside)."""
    sysctl.write(key, value, error=LabError,
                 hint="check the name (interface names must match the topology)")


def port_name(e: Endpoint, index: int) -> str:
    """Name of the bridge-side veth of a LAN member: ``node-iface`` if it fits IFNAMSIZ."""
    name = f"{e.node}-{e.iface}"
    return name if len(name) <= 15 else f"port{index}"


@contextmanager
def _doing(what: str) -> Iterator[None]:
    """Turn netlink and OS errors into LabError saying what was being done."""
    try:
        yield
    except LabError:
        raise
    except Exception as exc:  # pyroute2 raises NetlinkError and friends
        detail = exc.args[1] if len(exc.args) > 1 else exc
        raise LabError(f"{what} failed: {detail}") from exc


def build(
    topology: Topology,
    namespaces: dict[str, str],
    created: list[str],
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Create the lab. ``namespaces`` maps node and LAN names to namespace names.

    Must run in a thread of its own (it moves between namespaces). Appends every
    namespace it creates to ``created``; on error the caller removes those.
    """
    from pyroute2 import IPRoute  # heavy import: only when a lab is built

    # The end of a veth made here gets an index from 100 up, unique in the lab; its peer
    # gets the next free small index of its namespace (pyroute2 cannot pass the peer's
    # ifinfomsg header), so the two never match. Not cosmetic: the kernel handles a
    # veth's carrier change at once only if its index differs from its peer's
    # (linkwatch_urgent_event compares ifindex with iflink); in fresh namespaces both
    # ends would be index 2, and the change would wait up to a second.
    indexes = itertools.count(100)
    original = netns.open_current_fd()
    iprs: dict[str, Any] = {}
    fds: dict[str, int] = {}
    try:
        # 1. namespaces, each with its own netlink socket opened from inside.
        bridges = {lan.name for lan in topology.lans}
        for name, ns in namespaces.items():
            if cancelled():
                raise LabError("lab start interrupted")
            netns.create_here(ns)
            created.append(ns)
            for key, value in namespace_sysctls(topology, bridge=name in bridges):
                write_sysctl(key, value)
            with _doing(f"opening netlink in namespace {ns}"):
                iprs[name] = IPRoute()
            fds[name] = netns.open_fd(ns)
            netns.setns(original)
            with _doing(f"setting lo up in {name}"):
                iprs[name].link("set", index=1, state="up")

        if cancelled():
            raise LabError("lab start interrupted")

        # 2. bridges.
        for lan in topology.lans:
            ipr = iprs[lan.name]
            with _doing(f"creating bridge {lan.name}"):
                ipr.link("add", ifname=lan.name, index=next(indexes), kind="bridge", br_stp_state=0,
                         br_forward_delay=0, br_mcast_snooping=int(lan.igmp_snooping))
                bridge = ipr.link_lookup(ifname=lan.name)[0]
                ipr.link("set", index=bridge, state="up")
            # 3b. LAN members: the veth is made in the bridge's namespace, the peer is
            # born in the member's.
            for i, m in enumerate(lan.members):
                port = port_name(m, i)
                with _doing(f"connecting {m.node}:{m.iface} to LAN {lan.name} ({m.where})"):
                    ipr.link("add", ifname=port, index=next(indexes), kind="veth",
                             peer={"ifname": m.iface, "net_ns_fd": fds[m.node]})
                    index = ipr.link_lookup(ifname=port)[0]
                    ipr.link("set", index=index, master=bridge, state="up")

        # 3a. point-to-point links.
        for link in topology.links:
            a, b = link.a, link.b
            with _doing(f"creating link {a.node}:{a.iface} -- {b.node}:{b.iface}"):
                iprs[a.node].link("add", ifname=a.iface, index=next(indexes), kind="veth",
                                  peer={"ifname": b.iface, "net_ns_fd": fds[b.node]})

        # 4. node interfaces up, addresses, routes, sysctls.
        for node in topology.nodes:
            ipr = iprs[node.name]
            for e in topology.interfaces(node.name):
                with _doing(f"configuring {node.name}:{e.iface} ({e.where})"):
                    index = ipr.link_lookup(ifname=e.iface)[0]
                    ipr.link("set", index=index, state="up")
                    if e.address is not None:
                        ipr.addr("add", index=index, address=str(e.address.ip),
                                 prefixlen=e.address.network.prefixlen)
                    for a6 in e.address6:
                        ipr.addr("add", index=index, address=str(a6.ip),
                                 prefixlen=a6.network.prefixlen, family=socket.AF_INET6)
            for route in node.routes:
                family = socket.AF_INET6 if route.via.version == 6 else socket.AF_INET
                with _doing(f"adding route {route.to} via {route.via} on {node.name}"):
                    ipr.route("add", dst=str(route.to), gateway=str(route.via), family=family)
            settings = router_sysctls(topology, node)
            if settings:
                with netns.entered_fd(fds[node.name]):
                    for key, value in settings:
                        try:
                            write_sysctl(key, value)
                        except LabError as exc:
                            raise LabError(f"node {node.name}: {exc}") from None

        # 5. ready means every interface is operationally up.
        _wait_oper_up(iprs, bridges)
        # 6. ... and no IPv6 address tentative (DAD done).
        if topology.has_ipv6:
            _wait_dad({n.name: (iprs[n.name],
                                {e.iface for e in topology.interfaces(n.name) if e.address6})
                       for n in topology.nodes})
    finally:
        for ipr in iprs.values():
            ipr.close()
        for fd in fds.values():
            os.close(fd)
        try:
            netns.setns(original)
        finally:
            os.close(original)


def _wait_oper_up(iprs: dict[str, Any], bridges: set[str]) -> None:
    """Wait until every veth is operationally up and every bridge port forwards.

    The bridge devices themselves are not waited for: their operstate follows a
    non-urgent linkwatch event (up to a second later), and forwarding between ports
    does not depend on it (no lab address lives on a bridge).
    """
    deadline = time.monotonic() + OPER_UP_TIMEOUT
    pending = dict(iprs)
    while pending:
        for name, ipr in list(pending.items()):
            down = [
                link.name for link in netlink.links(ipr)
                if link.name != "lo" and link.name not in bridges and link.operstate != "UP"
            ]
            if name in bridges:
                down += [
                    f"{port} (bridge port not forwarding)"
                    for port, state in netlink.bridge_port_states(ipr).items()
                    if state != BR_STATE_FORWARDING
                ]
            if not down:
                del pending[name]
            elif time.monotonic() > deadline:
                raise LabError(
                    f"interfaces {', '.join(down)} of {name} did not come up within "
                    f"{OPER_UP_TIMEOUT:.0f} s; is the kernel short of memory or busy?"
                )
        if pending:
            time.sleep(0.001)


def _wait_dad(nodes: dict[str, tuple[Any, set[str]]]) -> None:
    """Wait until no IPv6 address of any node is tentative and each interface given IPv6
    addresses has its link-local one (a node's ``sysctls`` may have turned IPv6 off on
    others); a failed DAD (a duplicate) is an error."""
    deadline = time.monotonic() + DAD_TIMEOUT
    pending = dict(nodes)
    while pending:
        for name, (ipr, dual) in list(pending.items()):
            found = netlink.addresses6(ipr)
            failed = [str(a.address) for a in found if a.dad_failed]
            if failed:
                raise LabError(f"node {name}: duplicate address detection failed for "
                               f"{', '.join(failed)} (another node on the link has it); "
                               f"give every interface its own address")
            with_ll = {a.index for a in found if a.link_local}
            waiting = [str(a.address) for a in found if a.tentative]
            waiting += [f"{link.name} (no link-local address yet)"
                        for link in netlink.links(ipr)
                        if link.name in dual and link.index not in with_ll]
            if not waiting:
                del pending[name]
            elif time.monotonic() > deadline:
                raise LabError(f"node {name}: IPv6 addresses {', '.join(waiting)} still "
                               f"tentative after {DAD_TIMEOUT:.0f} s (duplicate address "
                               f"detection did not finish); is the kernel busy?")
        if pending:
            time.sleep(0.02)
