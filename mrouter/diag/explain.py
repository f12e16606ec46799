"""Why is (S,G) forwarded, or not, out of each interface? ``mrouter explain``.

Theory of operation: two halves. :func:`diagnose` is pure: it takes :class:`Facts` (what
the kernel, the daemon and an optional short sniff showed) and walks one reasoning
chain per interface, returning a :class:`Verdict` with the *first* reason forwarding
fails there and the fix. :func:`gather` is the shell: it reads the calling thread's
network namespace (``/proc/thread-self/net/ip_mr_vif`` and ``ip_mr_cache``,
``/proc/sys/net/ipv4/conf/*/rp_filter`` and ``mc_forwarding``, netlink for links,
bridges and the route back to the source), asks a running daemon over its control
socket when one answers, and optionally sniffs the flow for a few seconds to see the
TTL and the interface it arrives on.

The chain, for an outbound interface X (the packet's own path, in order)::

    link_down            X is administratively or operationally down
    snooping_no_querier  X is a bridge with IGMP snooping on and no querier on the LAN
    no_mrouting          nobody called MRT_INIT in this namespace (mc_forwarding = 0)
    sender_ttl           the flow arrives with TTL <= 1: no router may forward it
    rp_filter            reverse-path filtering on the input interface drops the source
    no_vif_input         the interface the flow arrives on is not a VIF
    no_vif               X is not a VIF
    foreign_owner        no route, and the table belongs to another process
    no_route             no (S,G) entry in the kernel's cache
    unresolved           only an unresolved entry (upcall sent, nobody answered)
    rpf_mismatch         the route expects the flow on another interface
    no_members           X is not an outbound interface of the route (nobody joined)
    ttl_threshold        the route's TTL threshold on X is >= the packet's TTL
    forwarded            none of the above

Facts that are unknown (``None``) never fail a step: explain says only what it saw.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import select
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address
from typing import Any

from mrouter.errors import MrouterError
from mrouter.igmp.ipv4 import MIN_HEADER_LEN
from mrouter.linux import netlink, sysctl
from mrouter.linux.constants import (
    ETH_P_IP,
    INT,
    IPV4_DST_OFFSET,
    IPV4_SRC_OFFSET,
    IPV4_TTL_OFFSET,
    PACKET_OUTGOING,
)
from mrouter.linux.netlink import RT_TABLE_DEFAULT

log = logging.getLogger(__name__)


class Reason(StrEnum):
    FORWARDED = "forwarded"
    INPUT = "input"
    LINK_DOWN = "link_down"
    SNOOPING_NO_QUERIER = "snooping_no_querier"
    NO_MROUTING = "no_mrouting"
    SENDER_TTL = "sender_ttl"
    RP_FILTER = "rp_filter"
    NO_VIF_INPUT = "no_vif_input"
    NO_VIF = "no_vif"
    FOREIGN_OWNER = "foreign_owner"
    NO_ROUTE = "no_route"
    UNRESOLVED = "unresolved"
    RPF_MISMATCH = "rpf_mismatch"
    NO_MEMBERS = "no_members"
    TTL_THRESHOLD = "ttl_threshold"


class Owner(StrEnum):
    """Who holds the namespace's multicast routing table (MRT_INIT)."""

    NONE = "none"  # mc_forwarding 0: nobody
    DAEMON = "daemon"  # an mrouter daemon answered on its control socket
    OTHER = "other"  # held, and no mrouter daemon answered (smcroute, pimd, igmpproxy...)


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    ifindex: int
    up: bool = True
    rp_filter: int = 0  # effective: the larger of conf/all and conf/NAME
    vif: int | None = None
    is_bridge: bool = False
    snooping: bool = False
    bridge_querier: bool = False  # the bridge itself sends queries (mcast_querier)
    querier_seen: bool | None = None  # a querier is known on the LAN (None: unknown)
    master: str | None = None  # the bridge this interface is a port of


@dataclass(frozen=True, slots=True)
class Route:
    """One kernel MFC entry, with VIFs already turned into interface names."""

    source: IPv4Address
    group: IPv4Address
    iif: str | None  # None: unresolved (an upcall is pending)
    oifs: Mapping[str, int]  # name -> TTL threshold
    packets: int = 0
    wrong_if: int = 0


@dataclass(frozen=True, slots=True)
class Flow:
    """What a sniff saw of (S,G) arriving on one interface."""

    iface: str
    source: IPv4Address
    ttl: int
    packets: int


@dataclass
class Facts:
    group: IPv4Address
    source: IPv4Address | None
    interfaces: list[Interface]
    mc_forwarding: bool
    owner: Owner
    routes: list[Route] = field(default_factory=list)
    route_back: str | None = None  # interface of the unicast route to the source
    route_back_known: bool = False  # False: no lookup was made (no source given)
    arrival: str | None = None  # interface the flow arrives on (sniff or --from)
    flows: list[Flow] = field(default_factory=list)
    members: Mapping[str, bool] | None = None  # from the daemon: iface -> has members
    notes: list[str] = field(default_factory=list)
    table: int = RT_TABLE_DEFAULT  # the multicast routing table explained


@dataclass(frozen=True, slots=True)
class Verdict:
    iface: str
    forwarded: bool
    reason: Reason
    text: str
    fix: str
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reason"] = self.reason.value
        return d


# --- the chain (pure) -----------------------------------------------------------------------


def _route_for(facts: Facts, source: IPv4Address | None) -> Route | None:
    for r in facts.routes:
        if r.group == facts.group and (source is None or r.source == source):
            return r
    return None


def _arrival(facts: Facts, route: Route | None) -> str | None:
    if facts.arrival:
        return facts.arrival
    if facts.flows:
        return max(facts.flows, key=lambda f: f.packets).iface
    return facts.route_back


def diagnose_all(facts: Facts) -> list[Verdict]:
    """:func:`diagnose` for each source of the group when none was given and the kernel
    has routes for several."""
    if facts.source is not None or len(facts.routes) < 2:
        return diagnose(facts)
    out: list[Verdict] = []
    for r in facts.routes:
        out += diagnose(dataclasses.replace(facts, source=r.source))
    return out


def diagnose(facts: Facts) -> list[Verdict]:
    """One verdict per interface (the input interface gets reason ``input``)."""
    source = facts.source
    route = _route_for(facts, source)
    if source is None and route is not None:
        source = route.source
    arrival = _arrival(facts, route)
    by_name = {i.name: i for i in facts.interfaces}
    sg = f"({source or '*'}, {facts.group})"
    ttl = max((f.ttl for f in facts.flows if f.iface == arrival), default=None)
    verdicts = []
    for iface in facts.interfaces:
        if iface.name == arrival:
            seen = [f for f in facts.flows if f.iface == arrival]
            if seen:
                how = f"arrives here: {sum(f.packets for f in seen)} packets seen, TTL {ttl}"
            elif facts.arrival:
                how = "arrives here (as you said with --from)"
            else:
                how = "should arrive here: the unicast route back to the source goes out here"
            verdicts.append(Verdict(iface.name, False, Reason.INPUT, f"{sg} {how}", "",
                                    str(source) if source else None))
            continue
        reason, text, fix = _chain(facts, iface, by_name, route, arrival, ttl, sg)
        verdicts.append(Verdict(iface.name, reason is Reason.FORWARDED, reason, text, fix,
                                str(source) if source else None))
    return verdicts


def _chain(facts: Facts, x: Interface, by_name: Mapping[str, Interface],
           route: Route | None, arrival: str | None, ttl: int | None,
           sg: str) -> tuple[Reason, str, str]:
    inp = by_name.get(arrival) if arrival else None
    if not x.up:
        return (Reason.LINK_DOWN, f"{x.name} is down",
                f"bring it up: ip link set {x.name} up (and check the cable or peer)")
    bridge = x if x.is_bridge else by_name.get(x.master or "")
    if bridge is not None and bridge.snooping and not bridge.bridge_querier \
            and not bridge.querier_seen:
        return (Reason.SNOOPING_NO_QUERIER,
                f"{bridge.name} is a bridge with IGMP snooping on and no querier on that "
                "LAN: it forwards a group only to ports where it heard a report, and "
                "without queries hosts stop reporting",
                f"run an IGMP querier on the LAN (mrouter run or mrouter querier on "
                f"{bridge.name}), or ip link set {bridge.name} type bridge mcast_querier 1, "
                f"or mcast_snooping 0")
    if not facts.mc_forwarding:
        return (Reason.NO_MROUTING,
                "multicast routing is not running in this namespace (mc_forwarding = 0: "
                "nobody holds MRT_INIT)",
                "start the daemon: mrouter run --config FILE (or smcrouted)")
    if ttl is not None and ttl <= 1:
        return (Reason.SENDER_TTL,
                f"{sg} arrives on {arrival} with TTL {ttl}: a router forwards only "
                "packets with TTL above 1 (and above the interface's threshold)",
                "make the sender use a larger multicast TTL (IP_MULTICAST_TTL, e.g. "
                "mrouter send --ttl 8); the socket default is 1")
    if inp is not None and inp.rp_filter and (
            (inp.rp_filter == 1 and facts.route_back_known and facts.route_back != inp.name)
            or (inp.rp_filter == 2 and facts.route_back_known and facts.route_back is None)):
        back = facts.route_back or "nowhere (no route)"
        return (Reason.RP_FILTER,
                f"rp_filter={inp.rp_filter} on {inp.name} drops the flow before multicast "
                f"routing sees it: the route back to the source points {back}",
                f"sysctl -w net.ipv4.conf.{inp.name}.rp_filter=0 net.ipv4.conf.all."
                "rp_filter=0, or add a unicast route to the source through "
                f"{inp.name}")
    if arrival is None and facts.route_back_known and facts.route_back is None:
        filtering = [i.name for i in facts.interfaces if i.rp_filter]
        if filtering:
            return (Reason.RP_FILTER,
                    f"there is no route back to the source and rp_filter is on for "
                    f"{', '.join(filtering)}: the flow is dropped wherever it arrives",
                    "set rp_filter=0 on the input interface and on all, or add a "
                    "unicast route to the source")
    if inp is not None and inp.vif is None:
        return (Reason.NO_VIF_INPUT,
                f"the flow arrives on {inp.name}, which is not a VIF of the multicast "
                "routing table",
                f"add {inp.name} to the daemon's config (or its phyint) and reload")
    if x.vif is None:
        return (Reason.NO_VIF, f"{x.name} is not a VIF of the multicast routing table",
                f"add {x.name} to the daemon's config (or its phyint) and reload")
    if route is None:
        if facts.owner is Owner.OTHER:
            return (Reason.FOREIGN_OWNER,
                    f"no kernel route for {sg}, and multicast routing here is owned by "
                    "another process (smcroute, pimd, igmpproxy...), not an mrouter daemon",
                    "configure that daemon, or stop it and run mrouter run; two cannot "
                    "share one table")
        return (Reason.NO_ROUTE, f"no kernel route (MFC entry) for {sg}",
                "add a route (mrouter route add --group G --from IIF --to OIF) or make a "
                "receiver join on the outbound interface; is traffic arriving at all?")
    if route.iif is None:
        return (Reason.UNRESOLVED,
                f"only an unresolved entry for {sg}: the kernel sent an upcall and "
                "nobody installed a route",
                "check the daemon is running and has a route or members for this group "
                "(mrouter show routes)")
    if arrival is not None and route.iif != arrival:
        return (Reason.RPF_MISMATCH,
                f"the route for {sg} expects it on {route.iif} but it arrives on "
                f"{arrival} ({route.wrong_if} packets arrived on the wrong interface)",
                f"change the route's inbound interface to {arrival} (--from {arrival}), "
                "or fix the unicast routing so the flow comes in on " + route.iif)
    if arrival is None and route.wrong_if > 0 and route.packets == 0:
        return (Reason.RPF_MISMATCH,
                f"the route for {sg} expects it on {route.iif} but {route.wrong_if} "
                "packets arrived on another interface",
                "run explain with --listen 2 to see where it arrives, and fix the route's "
                "inbound interface")
    if x.name not in route.oifs:
        if facts.members is not None and facts.members.get(x.name):
            text = (f"{x.name} has members of {facts.group} but is not an outbound "
                    f"interface of the route for {sg} (a static route or a source filter?)")
        else:
            text = f"no members of {facts.group} on {x.name}: it is not an outbound interface"
        return (Reason.NO_MEMBERS, text,
                f"a receiver on {x.name} must join {facts.group} (mrouter recv), or add a "
                f"static membership: mrouter join --iface {x.name} {facts.group}")
    threshold = route.oifs[x.name]
    if ttl is not None and ttl <= threshold:
        return (Reason.TTL_THRESHOLD,
                f"the TTL threshold of {x.name} is {threshold} and {sg} arrives with TTL "
                f"{ttl}: only packets with a TTL above the threshold go out",
                f"lower the threshold of {x.name} in the daemon's config (ttl_threshold), or "
                f"raise the sender's TTL above {threshold}")
    extra = ""
    if threshold > 1:
        extra = f", TTL threshold {threshold}: packets need a TTL above it"
        if ttl is None:
            extra += "; --listen shows the TTL they arrive with"
    return (Reason.FORWARDED,
            f"forwarded: route from {route.iif} ({route.packets} packets so far{extra})", "")


# --- gathering (I/O) --------------------------------------------------------------------------

def _is_up(link: netlink.Link) -> bool:
    """Up and able to carry packets (a loopback's operstate is UNKNOWN)."""
    return link.admin_up and link.operstate in ("UP", "UNKNOWN")


def _route_back(source: IPv4Address) -> str | None:
    """The interface of the unicast route back to ``source``; None when there is none
    (local and unreachable routes are not a way back)."""

    def lookup(ipr: Any) -> str | None:
        route = netlink.route_to(ipr, source)
        if route is None or route.oif is None:
            return None
        found = netlink.links(ipr, route.oif)
        name = found[0].name if found else None
        return name if route.type == netlink.RTN_UNICAST else None

    return netlink.query(lookup)


def _bridge_router_ports(bridge: str) -> bool | None:
    """Whether the bridge knows a multicast router port (a querier heard on the LAN)."""
    try:
        out = subprocess.run(["bridge", "-j", "-d", "mdb", "show", "dev", bridge],
                             capture_output=True, text=True, timeout=5, check=False)
        data = json.loads(out.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    return any(entry.get("router") for entry in data if isinstance(entry, dict))


def sniff(group: IPv4Address, source: IPv4Address | None, seconds: float) -> list[Flow]:
    """Watch incoming IPv4 packets to ``group`` on every interface for ``seconds``.

    An AF_PACKET socket sees a packet before rp_filter and multicast routing do, so a
    flow that is dropped still shows here, with the TTL it arrived with."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    except PermissionError:
        raise MrouterError("--listen needs root (a packet socket); run as root or "
                           "leave --listen out") from None
    seen: dict[tuple[str, IPv4Address], list[int]] = {}
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data, addr = sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING or len(data) < MIN_HEADER_LEN:
                continue
            src = IPv4Address(data[IPV4_SRC_OFFSET:IPV4_SRC_OFFSET + 4])
            dst = IPv4Address(data[IPV4_DST_OFFSET:IPV4_DST_OFFSET + 4])
            if dst != group or (source is not None and src != source):
                continue
            name = addr[0]  # (ifname, protocol, pkttype, hatype, hwaddr)
            entry = seen.setdefault((name, src), [0, 255])
            entry[0] += 1
            entry[1] = min(entry[1], data[IPV4_TTL_OFFSET])
    finally:
        sock.close()
    return [Flow(n, s, ttl, count) for (n, s), (count, ttl) in seen.items()]


def probe_owner(table: int = RT_TABLE_DEFAULT) -> bool | None:
    """Try MRT_INIT on ``table``: True if another process holds it (EADDRINUSE), False if
    nobody does (the table is released at once), None if it cannot tell. Never used
    unless asked: a daemon starting at that instant would find the table busy."""
    from mrouter.kernel.mroute import MrtOption

    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    except OSError:
        return None
    try:
        if table != RT_TABLE_DEFAULT:
            s.setsockopt(socket.IPPROTO_IP, MrtOption.TABLE, INT.pack(table))
        s.setsockopt(socket.IPPROTO_IP, MrtOption.INIT, INT.pack(1))
    except OSError as exc:
        return True if exc.errno == errno.EADDRINUSE else None
    else:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.IPPROTO_IP, MrtOption.DONE, INT.pack(1))
        return False
    finally:
        s.close()


def _daemon(socket_path: str | None) -> dict[str, Any] | None:
    if not socket_path:
        return None
    from mrouter.router.control import request

    try:
        return {"groups": request(socket_path, "show", timeout=3.0, what="groups"),
                "interfaces": request(socket_path, "show", timeout=3.0, what="interfaces")}
    except MrouterError as exc:
        log.info("no daemon: %s", exc)
        return None


def _choose_table(tables: set[int], table: int | None, notes: list[str]) -> int:
    """The table to explain: the one asked for, else the only one with VIFs."""
    if table is not None:
        return table
    if len(tables) <= 1:
        return next(iter(tables), RT_TABLE_DEFAULT)
    chosen = RT_TABLE_DEFAULT if RT_TABLE_DEFAULT in tables else min(tables)
    notes.append(f"multicast routing tables {', '.join(map(str, sorted(tables)))} have VIFs; "
                 f"this explains table {chosen}: choose another with --table N")
    return chosen


def read_mroute(table: int | None, index_name: Mapping[int, str], notes: list[str],
                ) -> tuple[int, dict[int, str], list[Route]]:
    """(table, VIF -> interface name, MFC entries) of one multicast routing table.

    rtnetlink (RTNL_FAMILY_IPMR) sees every table, so a daemon with ``table = N`` is
    explained from its own table; /proc shows only the default one, and is read only
    where the kernel cannot dump multicast tables over netlink.
    """
    try:
        vifs = netlink.mroute_vifs()
        entries = netlink.mroute_entries()
    except OSError as exc:
        from mrouter.kernel.mroute import read_mfc_table, read_vif_table

        log.info("no multicast tables over rtnetlink (%s): reading /proc", exc)
        by_vif = {v.vif: v.name for v in read_vif_table()}
        return RT_TABLE_DEFAULT, by_vif, [
            Route(m.source, m.group, by_vif.get(m.iif_vif) if m.iif_vif >= 0 else None,
                  {by_vif[v]: t for v, t in m.oifs.items() if v in by_vif}, m.packets,
                  m.wrong_if)
            for m in read_mfc_table()]
    chosen = _choose_table({v.table for v in vifs}, table, notes)
    by_vif = {v.vif: index_name.get(v.ifindex, f"ifindex {v.ifindex}")
              for v in vifs if v.table == chosen}
    return chosen, by_vif, [
        Route(e.source, e.group, None if e.iif is None else index_name.get(e.iif),
              {index_name[i]: t for i, t in e.oifs.items() if i in index_name}, e.packets,
              e.wrong_if)
        for e in entries if e.table == chosen]


def gather(group: IPv4Address, source: IPv4Address | None = None, *,
           socket_path: str | None = None, listen: float = 0.0,
           arrival: str | None = None, probe: bool = False,
           table: int | None = None) -> Facts:
    """Facts about (source, group) in the calling thread's network namespace, for the
    multicast routing table ``table`` (default: the one that has VIFs)."""
    notes: list[str] = []
    # sniff first, so the counters read below include the packets seen
    pim = watch_pim() if listen > 0 else None  # PIM hellos above a proxy: edge_view
    flows = sniff(group, source, listen) if listen > 0 else []
    links = netlink.query(netlink.links)
    index_name = {lk.index: lk.name for lk in links}
    table, vifs, mfc = read_mroute(table, index_name, notes)
    vif_of = {name: vif for vif, name in vifs.items()}
    daemon = _daemon(socket_path)
    if daemon is not None:
        local = {(lk.name, lk.index) for lk in links}
        # only active ones: a stopped or not-yet-present interface has no (current) index
        theirs = {(row["name"], row["ifindex"]) for row in daemon["interfaces"]
                  if row.get("active", True)}
        if not theirs <= local:  # the socket path is shared by every namespace
            notes.append(f"the daemon on {socket_path} runs in another network namespace "
                         "(its interfaces differ from these); its view was not used")
            daemon = None
    all_rp = sysctl.read_int(sysctl.conf_key("all", "rp_filter"), 0)
    mc_forwarding = sysctl.read_int(sysctl.conf_key("all", "mc_forwarding"), 0) == 1 \
        or bool(vifs)
    querier_on: dict[str, bool] = {}
    members: dict[str, bool] | None = None
    if daemon is not None:
        for row in daemon["interfaces"]:
            querier_on[row["name"]] = bool(row.get("querier") or row.get("is_querier"))
        members = {}
        for row in daemon["groups"]:
            if row["group"] != str(group):
                continue
            included = row["filter_mode"] == "EXCLUDE" and str(source) not in row["sources"]
            included |= row["filter_mode"] == "INCLUDE" and (
                (source is None and bool(row["sources"])) or str(source) in row["sources"])
            members[row["iface"]] = members.get(row["iface"], False) or included
    interfaces = []
    for lk in links:
        if lk.name == "lo":
            continue
        is_bridge = lk.kind == "bridge"
        querier_seen: bool | None = querier_on.get(lk.name)
        if is_bridge and lk.mcast_snooping and not querier_seen:
            querier_seen = _bridge_router_ports(lk.name)
        interfaces.append(Interface(
            lk.name, lk.index, _is_up(lk),
            max(all_rp, sysctl.read_int(sysctl.conf_key(lk.name, "rp_filter"), 0)),
            vif_of.get(lk.name), is_bridge, lk.mcast_snooping, lk.mcast_querier, querier_seen,
            index_name.get(lk.master) if lk.master else None))
    routes = [r for r in mfc if r.group == group]
    if source is None and len(routes) == 1:
        source = routes[0].source
    route_back = _route_back(source) if source is not None else None
    if source is None and flows:
        source = flows[0].source
        route_back = _route_back(source)
    if daemon is not None:
        owner = Owner.DAEMON
    elif not mc_forwarding:
        owner = Owner.NONE
    else:
        owner = Owner.OTHER
        if probe:
            held = probe_owner(table)
            if held is False:
                owner, mc_forwarding = Owner.NONE, False
        notes.append("multicast routing is held but no mrouter daemon answered"
                     + (f" on {socket_path}" if socket_path else "")
                     + ": treating the table as owned by another process")
    if listen > 0 and not flows:
        notes.append(f"no packet to {group} arrived in {listen:g} s of listening")
    edge = edge_view(group, daemon, routes, pim)
    if edge is not None:
        notes.extend(edge_notes(group, edge, listen))
    return Facts(group, source, interfaces, mc_forwarding, owner, routes, route_back,
                 source is not None, arrival, flows, members, notes, table)


OWNER_TEXT = {Owner.NONE: "not running", Owner.DAEMON: "run by the mrouter daemon",
              Owner.OTHER: "held by another process (no mrouter daemon answered)"}


def facts_to_dict(facts: Facts) -> dict[str, Any]:
    d = asdict(facts)
    return json.loads(json.dumps(d, default=str))  # type: ignore[no-any-return]


def filter_iface(verdicts: Sequence[Verdict], iface: str | None) -> list[Verdict]:
    if iface is None:
        return list(verdicts)
    chosen = [v for v in verdicts if v.iface == iface]
    if not chosen:
        raise MrouterError(f"no interface {iface!r} here; known: "
                           + ", ".join(v.iface for v in verdicts))
    return chosen



# --- at the edge of a PIM domain --------------------------------------------------------------
#
# A proxy (RFC 4605) sees only its side of the upstream link: its own membership there
# and the traffic that comes in. When the router above runs PIM (FRR's pimd), the rest of
# the path (the router's IGMP state, its (*,G)/(S,G) joins toward the RP or the source)
# is in that router; explain says what it saw here and which FRR command shows the rest.

#: IANA protocol number of PIM (RFC 7761 §4.9), and ALL-PIM-ROUTERS, where hellos go.
PIM_PROTOCOL = 103
ALL_PIM_ROUTERS = IPv4Address("224.0.0.13")
_IPV4_PROTOCOL_OFFSET = 9


@dataclass(frozen=True, slots=True)
class EdgeView:
    """What a proxy sees locally of the network above its upstream interface."""

    upstream: str
    membership: str | None  # the kernel's membership of the group there; None: not joined
    arriving: tuple[tuple[str, int], ...]  # (source, packets) of kernel routes in on it
    pim_neighbours: tuple[str, ...] | None  # PIM hello senders heard there; None: not heard


def edge_notes(group: IPv4Address, view: EdgeView, listened: float = 0.0) -> list[str]:
    """The notes explain prints for a proxy's upstream side (pure)."""
    up = view.upstream
    if view.membership is None:
        notes = [f"upstream {up}: this proxy is not a member of {group} there, so the "
                 f"router above has no reason to send it (no host joined downstream?)"]
    else:
        notes = [f"upstream {up}: this proxy is a member of {group} there "
                 f"({view.membership}); the router above learns it from its IGMP reports"]
    if view.arriving:
        flows = ", ".join(f"from {s}: {n} packets" for s, n in view.arriving)
        notes.append(f"traffic to {group} arrives upstream on {up} ({flows})")
    else:
        notes.append(f"no traffic to {group} has arrived upstream on {up} (no kernel "
                     f"route comes in on it)")
    rest = (f"vtysh -c 'show ip igmp groups' -c 'show ip mroute {group}' "
            f"-c 'show ip pim upstream' (and 'show ip rpf SOURCE')")
    if view.pim_neighbours:
        notes.append(f"the router above ({', '.join(view.pim_neighbours)}) speaks PIM: the "
                     f"rest of the path is in the PIM domain; on it (FRR) run: {rest}")
    elif listened > 0:
        notes.append(f"no PIM hello was heard on {up} in {listened:g} s; if the router "
                     f"above runs PIM (FRR), see the rest there: {rest}")
    else:
        notes.append(f"if the router above runs PIM (FRR), the rest of the path is there: "
                     f"{rest} (--listen also tells whether it speaks PIM)")
    return notes


def watch_pim() -> socket.socket | None:
    """A packet socket that collects what arrives from now on (for :func:`pim_hellos`)."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    except PermissionError:
        return None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    return sock


def pim_hellos(sock: socket.socket, iface: str) -> tuple[str, ...]:
    """The sources of PIM packets to ALL-PIM-ROUTERS that ``sock`` collected on ``iface``."""
    found: list[str] = []
    with sock:
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except BlockingIOError:
                break
            if addr[0] != iface or addr[2] == PACKET_OUTGOING or len(data) < MIN_HEADER_LEN:
                continue
            dst = IPv4Address(data[IPV4_DST_OFFSET:IPV4_DST_OFFSET + 4])
            if data[_IPV4_PROTOCOL_OFFSET] == PIM_PROTOCOL and dst == ALL_PIM_ROUTERS:
                src = str(IPv4Address(data[IPV4_SRC_OFFSET:IPV4_SRC_OFFSET + 4]))
                if src not in found:
                    found.append(src)
    return tuple(found)


def edge_view(group: IPv4Address, daemon: Mapping[str, Any] | None,
              routes: Sequence[Route], pim: socket.socket | None) -> EdgeView | None:
    """The upstream side of a proxy daemon, from the kernel; None if it is no proxy."""
    if daemon is None:
        upstream = None
    else:
        upstream = next((row["name"] for row in daemon["interfaces"]
                         if row.get("role") == "upstream"), None)
    if upstream is None:
        if pim is not None:
            pim.close()
        return None
    from mrouter.sockets import mcast

    membership = None
    for ifm in mcast.memberships():
        g = ifm.group(group) if ifm.name == upstream else None
        if g is not None:
            included = [str(s.source) for s in g.sources if s.include > 0]
            excluded = [str(s.source) for s in g.sources if s.exclude > 0 and not s.include]
            membership = (f"INCLUDE {{{', '.join(included)}}}" if included
                          else f"EXCLUDE {{{', '.join(excluded)}}}")
    arriving = tuple((str(r.source), r.packets) for r in routes if r.iif == upstream)
    hellos = pim_hellos(pim, upstream) if pim is not None else ()
    return EdgeView(upstream, membership, arriving, hellos or None)
