"""Why is (S,G) forwarded, or not, out of each interface? ``mrouter explain``.

Theory of operation: two halves. :func:`diagnose` is pure: it takes :class:`Facts` (what
the kernel, the daemon and an optional short sniff showed) and walks one reasoning
chain per interface, returning a :class:`Verdict` with the *first* reason forwarding
fails there and the fix. :func:`gather` is the shell: it reads the calling thread's
network namespace (the multicast routing table over rtnetlink, ``/proc`` as fallback,
the ``conf/*`` sysctls, netlink for links, bridges and the route back to the source),
asks a running daemon over its control socket when one answers, and optionally sniffs
the flow for a few seconds to see the TTL and the interface it arrives on.

Both address families walk the same chain; the group's address picks the family, and
what differs is data in :data:`FAMILIES` (one :class:`Family` each: the kernel's words
-- VIF or MIF, TTL or hop limit, IGMP or MLD --, its sysctls, whether it has
rp_filter and honours per-interface thresholds). The chain, for an outbound interface
X (the packet's own path, in order)::

    link_scope           the group is link-local scope (224.0.0.0/24, ff02::/16...):
                         no router forwards it
    link_down            X is administratively or operationally down
    snooping_no_querier  X is a bridge with IGMP/MLD snooping on and no querier on the LAN
    no_mrouting          nobody called MRT_INIT/MRT6_INIT here (conf/all/mc_forwarding 0)
    sender_ttl           the flow arrives with TTL (hop limit) <= 1: no router forwards it
    rp_filter            IPv4: reverse-path filtering on the input interface drops it
    ipv6_disabled        IPv6: net.ipv6.conf.IF.disable_ipv6 = 1 on the input interface
                         (dropped on arrival) or on X (nothing goes out)
    no_vif_input         the interface the flow arrives on is not a VIF (MIF)
    no_vif               X is not a VIF (MIF)
    no_table_rule        the table explained is not the default one and no multicast rule
                         (`ip mrule`, `ip -6 mrule`) sends the flow to it
    foreign_owner        no route, and the table belongs to another process
    no_route             no (S,G) entry in the kernel's cache
    unresolved           only an unresolved entry (upcall sent, nobody answered)
    rpf_mismatch         the route expects the flow on another interface
    no_members           X is not an outbound interface of the route (nobody joined)
    ttl_threshold        the route's threshold on X is >= the packet's TTL (hop limit)
    forwarded            none of the above

What Linux's IPv6 multicast routing needs was measured, not carried over from IPv4
(tests/integration/test_explain_ipv6.py builds each case): a hop limit of 1 is not
forwarded, 2 is; ``net.ipv6.conf.all.forwarding`` (and each interface's) 0 does not stop
ip6mr, so it is no step; ``disable_ipv6`` 1 on the input interface or on X does; IPv6
has no rp_filter; ip6mr stores the threshold of ``struct mif6ctl`` but compares every
hop limit with 1 (its MFC dump says 1 for every outbound MIF), so a MIF threshold never
holds a packet back and the threshold step can only meet hop limit 1, which the sender
step has already named. The kernel dumps IPv6 MFC entries of every table over rtnetlink
(RTNL_FAMILY_IP6MR) but MIFs only in /proc/net/ip6_mr_vif, for the default table: for
another table the MIFs are the interfaces its routes use, and a missing MIF is not
claimed. IPv6's default table is 254 (ip6mr's RT6_TABLE_DFLT), IPv4's 253; a route in
another table sees a packet only if a multicast rule sends it there (measured for both:
a table-100 route counted 0 packets until ``ip mrule add iif up0 lookup 100``).

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
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path
from typing import Any

from mrouter.errors import MrouterError
from mrouter.igmp.ipv4 import MIN_HEADER_LEN
from mrouter.linux import netlink, sysctl
from mrouter.linux.constants import (
    ETH_P_IP,
    ETH_P_IPV6,
    INT,
    IPV4_DST_OFFSET,
    IPV4_SRC_OFFSET,
    IPV4_TTL_OFFSET,
    IPV6_HEADER_LEN,
    IPV6_NEXT_HEADER_OFFSET,
    PACKET_OUTGOING,
)
from mrouter.linux.netlink import (
    RT6_TABLE_DEFAULT,
    RT_TABLE_DEFAULT,
    RTNL_FAMILY_IP6MR,
    RTNL_FAMILY_IPMR,
)

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address

#: IPv6 header (RFC 8200 §3): hop limit at byte 7, source at 8, destination at 24.
IPV6_HOP_LIMIT_OFFSET, IPV6_SRC_OFFSET, IPV6_DST_OFFSET = 7, 8, 24
IPV4_LINK_LOCAL = IPv4Network("224.0.0.0/24")  # RFC 5771: never forwarded


@dataclass(frozen=True, slots=True)
class Family:
    """What differs between IPv4 and IPv6 multicast routing, as explain words and reads it.

    The chain is one; these are its nouns and the places the kernel keeps its state."""

    name: str  # "ipv4" | "ipv6": the JSON ``family``
    version: int
    protocol: str  # the membership protocol: IGMP or MLD
    vif: str  # the kernel's word for a routing interface: VIF or MIF
    ttl: str  # the header field a router decrements: TTL or hop limit
    ttl_option: str  # the sender's socket option for it
    init: str  # the option that takes the table: MRT_INIT or MRT6_INIT
    routing: str  # how the human output names the table's function
    table_words: str  # "the multicast routing table"
    mc_forwarding: str  # the sysctl MRT_INIT/MRT6_INIT sets
    members: str  # hosts that joined: members (IGMP) or listeners (MLD)
    owners: str  # other daemons that hold such a table
    rtnl_family: int
    ethertype: int
    has_rp_filter: bool  # IPv6 has none (only netfilter's rpfilter match)
    has_disable: bool  # net.ipv6.conf.IF.disable_ipv6 stops it on an interface
    frr: str  # the vtysh commands that show the rest of the path above a proxy
    config_hint: str  # what the daemon's config needs for this family
    default_table: int  # the table MRT_INIT/MRT6_INIT takes without MRT_TABLE


IPV4 = Family(
    "ipv4", 4, "IGMP", "VIF", "TTL", "IP_MULTICAST_TTL", "MRT_INIT", "multicast routing",
    "the multicast routing table", "mc_forwarding", "members",
    "smcroute, pimd, igmpproxy...", RTNL_FAMILY_IPMR, ETH_P_IP, True, False,
    "vtysh -c 'show ip igmp groups' -c 'show ip mroute {group}' -c 'show ip pim "
    "upstream' (and 'show ip rpf SOURCE')", "", RT_TABLE_DEFAULT)
IPV6 = Family(
    "ipv6", 6, "MLD", "MIF", "hop limit", "IPV6_MULTICAST_HOPS", "MRT6_INIT",
    "IPv6 multicast routing", "the IPv6 multicast routing table",
    "net.ipv6.conf.all.mc_forwarding", "listeners", "smcroute, pim6sd, mcproxy...",
    RTNL_FAMILY_IP6MR, ETH_P_IPV6, False, True,
    "vtysh -c 'show ipv6 mld groups' -c 'show ipv6 mroute {group}' -c 'show ipv6 pim "
    "upstream' (and 'show ipv6 rpf SOURCE')", ' with families = ["ipv6"] (or both)',
    RT6_TABLE_DEFAULT)
FAMILIES = {4: IPV4, 6: IPV6}


def family_of(group: IPAddress) -> Family:
    """The family of a group (or any address): IPv4 or IPv6."""
    return FAMILIES[group.version]


def is_link_scope(group: IPAddress) -> bool:
    """A group no router forwards: 224.0.0.0/24 (RFC 5771), or an IPv6 group of
    interface- or link-local scope (ff01::/16, ff02::/16; RFC 4291 §2.7)."""
    if isinstance(group, IPv6Address):
        return group.packed[1] & 0x0F <= 2
    return group in IPV4_LINK_LOCAL


class Reason(StrEnum):
    FORWARDED = "forwarded"
    INPUT = "input"
    LINK_SCOPE = "link_scope"
    LINK_DOWN = "link_down"
    SNOOPING_NO_QUERIER = "snooping_no_querier"
    NO_MROUTING = "no_mrouting"
    SENDER_TTL = "sender_ttl"
    RP_FILTER = "rp_filter"
    IPV6_DISABLED = "ipv6_disabled"
    NO_TABLE_RULE = "no_table_rule"
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
    disabled: bool = False  # IPv6 only: net.ipv6.conf.NAME.disable_ipv6 (or all) is 1


@dataclass(frozen=True, slots=True)
class Route:
    """One kernel MFC entry, with VIFs already turned into interface names."""

    source: IPAddress
    group: IPAddress
    iif: str | None  # None: unresolved (an upcall is pending)
    oifs: Mapping[str, int]  # name -> TTL threshold (IPv6: always 1)
    packets: int = 0
    wrong_if: int = 0


@dataclass(frozen=True, slots=True)
class Flow:
    """What a sniff saw of (S,G) arriving on one interface."""

    iface: str
    source: IPAddress
    ttl: int  # IPv6: the hop limit
    packets: int


@dataclass
class Facts:
    group: IPAddress
    source: IPAddress | None
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
    table: int = RT_TABLE_DEFAULT  # the multicast routing table explained (IPv6: 254)
    vifs_known: bool = True  # False: only the VIFs the routes use are known (IPv6, table N)
    #: iface -> the table an arrival there is looked up in (`ip mrule`); None: not read
    rule_tables: Mapping[str, int | None] | None = None

    @property
    def family(self) -> Family:
        return family_of(self.group)


@dataclass(frozen=True, slots=True)
class Verdict:
    iface: str
    forwarded: bool
    reason: Reason
    text: str
    fix: str
    source: str | None = None
    family: str = "ipv4"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reason"] = self.reason.value
        return d


# --- the chain (pure) -----------------------------------------------------------------------


def _route_for(facts: Facts, source: IPAddress | None) -> Route | None:
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
                how = (f"arrives here: {sum(f.packets for f in seen)} packets seen, "
                       f"{facts.family.ttl} {ttl}")
            elif facts.arrival:
                how = "arrives here (as you said with --from)"
            else:
                how = "should arrive here: the unicast route back to the source goes out here"
            verdicts.append(Verdict(iface.name, False, Reason.INPUT, f"{sg} {how}", "",
                                    str(source) if source else None, facts.family.name))
            continue
        reason, text, fix = _chain(facts, iface, by_name, route, arrival, ttl, sg)
        verdicts.append(Verdict(iface.name, reason is Reason.FORWARDED, reason, text, fix,
                                str(source) if source else None, facts.family.name))
    return verdicts


def _chain(facts: Facts, x: Interface, by_name: Mapping[str, Interface],
           route: Route | None, arrival: str | None, ttl: int | None,
           sg: str) -> tuple[Reason, str, str]:
    fam = facts.family
    v4 = fam is IPV4
    inp = by_name.get(arrival) if arrival else None
    if is_link_scope(facts.group):
        return (Reason.LINK_SCOPE,
                f"{facts.group} is a link-local scope group: it stays on the link it is "
                "sent on, and no router forwards it",
                "use a group of wider scope, e.g. "
                + ("239.1.1.1 (administratively scoped)" if v4 else "ff15::1 (site scope)"))
    if not x.up:
        return (Reason.LINK_DOWN, f"{x.name} is down",
                f"bring it up: ip link set {x.name} up (and check the cable or peer)")
    bridge = x if x.is_bridge else by_name.get(x.master or "")
    if bridge is not None and bridge.snooping and not bridge.bridge_querier \
            and not bridge.querier_seen:
        return (Reason.SNOOPING_NO_QUERIER,
                f"{bridge.name} is a bridge with {fam.protocol} snooping on and no querier "
                "on that LAN: it forwards a group only to ports where it heard a report, "
                "and without queries hosts stop reporting",
                f"run an {fam.protocol} querier on the LAN (mrouter run or mrouter querier "
                f"on {bridge.name}), or ip link set {bridge.name} type bridge mcast_querier "
                "1, or mcast_snooping 0" if v4 else
                f"run an MLD querier on the LAN (mrouter run with mld_version set on "
                f"{bridge.name}), or ip link set {bridge.name} type bridge mcast_querier 1, "
                "or mcast_snooping 0")
    if not facts.mc_forwarding:
        return (Reason.NO_MROUTING,
                f"{fam.routing} is not running in this namespace ({fam.mc_forwarding} = 0: "
                f"nobody holds {fam.init})",
                f"start the daemon{fam.config_hint}: mrouter run --config FILE (or smcrouted)")
    if ttl is not None and ttl <= 1:
        if v4:
            return (Reason.SENDER_TTL,
                    f"{sg} arrives on {arrival} with TTL {ttl}: a router forwards only "
                    "packets with TTL above 1 (and above the interface's threshold)",
                    "make the sender use a larger multicast TTL (IP_MULTICAST_TTL, e.g. "
                    "mrouter send --ttl 8); the socket default is 1")
        return (Reason.SENDER_TTL,
                f"{sg} arrives on {arrival} with hop limit {ttl}: a router forwards only "
                "packets with a hop limit above 1",
                "make the sender use a larger multicast hop limit (IPV6_MULTICAST_HOPS, "
                "e.g. mrouter send --ttl 8); the socket default is 1")
    if fam.has_rp_filter:
        filtered = _rp_filter(facts, inp, arrival)
        if filtered is not None:
            return filtered
    if fam.has_disable:
        # where the flow comes in: as seen, else where the route expects it
        expected = by_name.get(route.iif) if route is not None and route.iif else None
        for where, why in ((inp or expected, "the flow is dropped as it arrives there"),
                           (x, "nothing IPv6 goes out of it")):
            if where is not None and where.disabled:
                return (Reason.IPV6_DISABLED,
                        f"IPv6 is disabled on {where.name} (net.ipv6.conf.{where.name}."
                        f"disable_ipv6 = 1, or conf.all): {why}",
                        f"sysctl -w net.ipv6.conf.{where.name}.disable_ipv6=0 (and "
                        "net.ipv6.conf.all.disable_ipv6=0), then re-add its addresses")
    if inp is not None and inp.vif is None and facts.vifs_known:
        return (Reason.NO_VIF_INPUT,
                f"the flow arrives on {inp.name}, which is not a {fam.vif} of "
                f"{fam.table_words}",
                f"add {inp.name} to the daemon's config (or its phyint) and reload")
    if x.vif is None and facts.vifs_known:
        return (Reason.NO_VIF, f"{x.name} is not a {fam.vif} of {fam.table_words}",
                f"add {x.name} to the daemon's config (or its phyint) and reload")
    into = inp.name if inp is not None else (route.iif if route is not None else None)
    if facts.rule_tables is not None and into is not None:
        looked_up = facts.rule_tables.get(into)
        if looked_up is not None and looked_up != facts.table:
            ip = "ip" if v4 else "ip -6"
            return (Reason.NO_TABLE_RULE,
                    f"the flow arriving on {into} is looked up in table {looked_up}, not "
                    f"in table {facts.table}: no multicast rule sends it here, so this "
                    "table's routes never see it",
                    f"{ip} mrule add iif {into} lookup {facts.table}")
    if route is None:
        if facts.owner is Owner.OTHER:
            return (Reason.FOREIGN_OWNER,
                    f"no kernel route for {sg}, and {fam.routing} here is owned by "
                    f"another process ({fam.owners}), not an mrouter daemon",
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
            text = (f"{x.name} has {fam.members} of {facts.group} but is not an outbound "
                    f"interface of the route for {sg} (a static route or a source filter?)")
        else:
            text = (f"no {fam.members} of {facts.group} on {x.name}: it is not an outbound "
                    "interface")
        return (Reason.NO_MEMBERS, text,
                f"a receiver on {x.name} must join {facts.group} (mrouter recv), or add a "
                f"static membership: mrouter join --iface {x.name} {facts.group}")
    threshold = route.oifs[x.name]
    if ttl is not None and ttl <= threshold:
        if v4:
            return (Reason.TTL_THRESHOLD,
                    f"the TTL threshold of {x.name} is {threshold} and {sg} arrives with "
                    f"TTL {ttl}: only packets with a TTL above the threshold go out",
                    f"lower the threshold of {x.name} in the daemon's config "
                    f"(ttl_threshold), or raise the sender's TTL above {threshold}")
        return (Reason.TTL_THRESHOLD,
                f"the kernel's hop-limit threshold on {x.name} is {threshold} and {sg} "
                f"arrives with hop limit {ttl}: only packets with a hop limit above it go "
                "out",
                f"raise the sender's hop limit above {threshold} (IPv6 multicast routing "
                "has no other threshold to lower)")
    extra = ""
    if threshold > 1:
        extra = f", {fam.ttl} threshold {threshold}: packets need a {fam.ttl} above it"
        if ttl is None:
            extra += f"; --listen shows the {fam.ttl} they arrive with"
    return (Reason.FORWARDED,
            f"forwarded: route from {route.iif} ({route.packets} packets so far{extra})", "")


def _rp_filter(facts: Facts, inp: Interface | None,
               arrival: str | None) -> tuple[Reason, str, str] | None:
    """IPv4's reverse-path filter step (IPv6 has no rp_filter)."""
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
    return None


# --- gathering (I/O) --------------------------------------------------------------------------

def _is_up(link: netlink.Link) -> bool:
    """Up and able to carry packets (a loopback's operstate is UNKNOWN)."""
    return link.admin_up and link.operstate in ("UP", "UNKNOWN")


def _route_back(source: IPAddress) -> str | None:
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


def sniff(group: IPAddress, source: IPAddress | None, seconds: float) -> list[Flow]:
    """Watch incoming packets to ``group`` (IPv4 or IPv6) on every interface for
    ``seconds``.

    An AF_PACKET socket sees a packet before rp_filter and multicast routing do, so a
    flow that is dropped still shows here, with the TTL (hop limit) it arrived with."""
    fam = family_of(group)
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(fam.ethertype))
    except PermissionError:
        raise MrouterError("--listen needs root (a packet socket); run as root or "
                           "leave --listen out") from None
    if fam is IPV4:
        size, header_len = 4, MIN_HEADER_LEN
        src_at, dst_at, ttl_at = IPV4_SRC_OFFSET, IPV4_DST_OFFSET, IPV4_TTL_OFFSET
    else:
        size, header_len = 16, IPV6_HEADER_LEN
        src_at, dst_at, ttl_at = IPV6_SRC_OFFSET, IPV6_DST_OFFSET, IPV6_HOP_LIMIT_OFFSET
    address = type(group)
    seen: dict[tuple[str, IPAddress], list[int]] = {}
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data, addr = sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING or len(data) < header_len:
                continue
            src = address(data[src_at:src_at + size])
            dst = address(data[dst_at:dst_at + size])
            if dst != group or (source is not None and src != source):
                continue
            name = addr[0]  # (ifname, protocol, pkttype, hatype, hwaddr)
            entry = seen.setdefault((name, src), [0, 255])
            entry[0] += 1
            entry[1] = min(entry[1], data[ttl_at])
    finally:
        sock.close()
    return [Flow(n, s, ttl, count) for (n, s), (count, ttl) in seen.items()]


def probe_owner(table: int | None = None, family: Family = IPV4) -> bool | None:
    """Try MRT_INIT (MRT6_INIT) on ``table``: True if another process holds it
    (EADDRINUSE), False if nobody does (the table is released at once), None if it
    cannot tell. Never used unless asked: a daemon starting at that instant would find
    the table busy."""
    from mrouter.kernel.mroute import MrtOption
    from mrouter.kernel.mroute6 import Mrt6Option

    init: int
    done: int
    table_opt: int
    if family is IPV4:
        kind, level = (socket.AF_INET, socket.IPPROTO_IGMP), socket.IPPROTO_IP
        init, done, table_opt = MrtOption.INIT, MrtOption.DONE, MrtOption.TABLE
    else:
        kind, level = (socket.AF_INET6, socket.IPPROTO_ICMPV6), socket.IPPROTO_IPV6
        init, done, table_opt = Mrt6Option.INIT, Mrt6Option.DONE, Mrt6Option.TABLE
    try:
        s = socket.socket(kind[0], socket.SOCK_RAW, kind[1])
    except OSError:
        return None
    try:
        if table is not None and table != family.default_table:
            s.setsockopt(level, table_opt, INT.pack(table))
        s.setsockopt(level, init, INT.pack(1))
    except OSError as exc:
        return True if exc.errno == errno.EADDRINUSE else None
    else:
        with contextlib.suppress(OSError):
            s.setsockopt(level, done, INT.pack(1))
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


def _choose_table(tables: set[int], table: int | None, notes: list[str],
                  what: str = "multicast routing tables", having: str = "have VIFs",
                  default: int = RT_TABLE_DEFAULT) -> int:
    """The table to explain: the one asked for, else the only one with VIFs."""
    if table is not None:
        return table
    if len(tables) <= 1:
        return next(iter(tables), default)
    chosen = default if default in tables else min(tables)
    notes.append(f"{what} {', '.join(map(str, sorted(tables)))} {having}; "
                 f"this explains table {chosen}: choose another with --table N")
    return chosen


def read_mroute(table: int | None, index_name: Mapping[int, str], notes: list[str],
                family: Family = IPV4) -> tuple[int, dict[int, str], list[Route], bool]:
    """(table, VIF -> interface name, MFC entries, whether the VIFs are all known) of one
    multicast routing table of ``family``.

    rtnetlink (RTNL_FAMILY_IPMR) sees every table, so a daemon with ``table = N`` is
    explained from its own table; /proc shows only the default one, and is read only
    where the kernel cannot dump multicast tables over netlink. IPv6: the MFC entries of
    every table come over rtnetlink (RTNL_FAMILY_IP6MR), the MIFs only from
    /proc/net/ip6_mr_vif (default table); another table's MIFs are those its routes use.
    """
    if family is IPV6:
        return _read_mroute6(table, index_name, notes)
    try:
        vifs = netlink.mroute_vifs()
        entries = netlink.mroute_entries()
    except OSError as exc:
        from mrouter.kernel.mroute import read_mfc_table, read_vif_table

        log.info("no multicast tables over rtnetlink (%s): reading /proc", exc)
        by_vif = {v.vif: v.name for v in read_vif_table()}
        return RT_TABLE_DEFAULT, by_vif, _proc_routes(read_mfc_table(), by_vif), True
    chosen = _choose_table({v.table for v in vifs}, table, notes)
    by_vif = {v.vif: index_name.get(v.ifindex, f"ifindex {v.ifindex}")
              for v in vifs if v.table == chosen}
    return chosen, by_vif, _netlink_routes(entries, chosen, index_name), True


def _proc_routes(rows: Sequence[Any], by_vif: Mapping[int, str]) -> list[Route]:
    return [Route(m.source, m.group, by_vif.get(m.iif_vif) if m.iif_vif >= 0 else None,
                  {by_vif[v]: t for v, t in m.oifs.items() if v in by_vif}, m.packets,
                  m.wrong_if)
            for m in rows]


def _netlink_routes(entries: Sequence[netlink.MrouteEntry], table: int,
                    index_name: Mapping[int, str]) -> list[Route]:
    return [Route(e.source, e.group, None if e.iif is None else index_name.get(e.iif),
                  {index_name[i]: t for i, t in e.oifs.items() if i in index_name},
                  e.packets, e.wrong_if)
            for e in entries if e.table == table]


#: /proc/net/ip6_mr_vif of the calling thread's namespace (its default table's MIFs)
PROC_IP6_MR_VIF = Path("/proc/thread-self/net/ip6_mr_vif")


def _read_mroute6(table: int | None, index_name: Mapping[int, str], notes: list[str],
                  ) -> tuple[int, dict[int, str], list[Route], bool]:
    from mrouter.kernel.mroute6 import read_mfc_table, read_vif_table

    try:
        default_mifs = {v.vif: v.name for v in read_vif_table(PROC_IP6_MR_VIF)}
    except OSError:  # no CONFIG_IPV6_MROUTE (or IPv6 off): no table at all
        default_mifs = {}
    try:
        entries = netlink.mroute_entries(RTNL_FAMILY_IP6MR)
    except OSError as exc:
        log.info("no IPv6 multicast tables over rtnetlink (%s): reading /proc", exc)
        try:
            rows = read_mfc_table()
        except OSError:
            rows = []
        return RT6_TABLE_DEFAULT, default_mifs, _proc_routes(rows, default_mifs), True
    tables = {e.table for e in entries} | ({RT6_TABLE_DEFAULT} if default_mifs else set())
    chosen = _choose_table(tables, table, notes, "IPv6 multicast routing tables",
                           "have MIFs or routes", RT6_TABLE_DEFAULT)
    routes = _netlink_routes(entries, chosen, index_name)
    if chosen == RT6_TABLE_DEFAULT:
        return chosen, default_mifs, routes, True
    used = sorted({r.iif for r in routes if r.iif} | {o for r in routes for o in r.oifs})
    notes.append(f"the kernel lists the MIFs of the default IPv6 table only; table "
                 f"{chosen}'s are known from its routes ({', '.join(used) or 'none'})")
    return chosen, {}, routes, False


def gather(group: IPAddress, source: IPAddress | None = None, *,
           socket_path: str | None = None, listen: float = 0.0,
           arrival: str | None = None, probe: bool = False,
           table: int | None = None) -> Facts:
    """Facts about (source, group) in the calling thread's network namespace, for the
    multicast routing table ``table`` (default: the one that has VIFs) of the group's
    address family."""
    fam = family_of(group)
    if source is not None and source.version != group.version:
        raise MrouterError(f"source {source} and group {group} are of different address "
                           "families; give an IPv4 source for an IPv4 group and an IPv6 "
                           "source for an IPv6 one")
    notes: list[str] = []
    # sniff first, so the counters read below include the packets seen
    pim = watch_pim(fam) if listen > 0 else None  # PIM hellos above a proxy: edge_view
    flows = sniff(group, source, listen) if listen > 0 else []
    links = netlink.query(netlink.links)
    index_name = {lk.index: lk.name for lk in links}
    table, vifs, mfc, vifs_known = read_mroute(table, index_name, notes, fam)
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
    if daemon is not None:
        # a dual-stack daemon's interface rows say their family (older ones are IPv4's);
        # group rows need no filter: the group's address already tells
        mine = [row for row in daemon["interfaces"]
                if row.get("family", "ipv4") == fam.name]
        if mine or not daemon["interfaces"]:
            daemon = {**daemon, "interfaces": mine}
        else:
            notes.append(f"the daemon on {socket_path} does not route IPv{fam.version} "
                         f"(no {fam.name} interface in its show interfaces); the kernel's "
                         "table is explained without it")
            daemon = None
    if fam is IPV4:
        all_rp = sysctl.read_int(sysctl.conf_key("all", "rp_filter"), 0)
        mc_key = sysctl.conf_key("all", "mc_forwarding")
    else:
        all_rp = 0
        mc_key = _conf6("all", "mc_forwarding")
        all_disabled = sysctl.read_int(_conf6("all", "disable_ipv6"), 0) == 1
    mc_forwarding = sysctl.read_int(mc_key, 0) == 1 or bool(vifs)
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
        if fam is IPV4:
            rp = max(all_rp, sysctl.read_int(sysctl.conf_key(lk.name, "rp_filter"), 0))
            disabled = False
        else:
            rp = 0
            disabled = all_disabled or sysctl.read_int(_conf6(lk.name, "disable_ipv6"), 0) == 1
        interfaces.append(Interface(
            lk.name, lk.index, _is_up(lk), rp, vif_of.get(lk.name), is_bridge,
            lk.mcast_snooping, lk.mcast_querier, querier_seen,
            index_name.get(lk.master) if lk.master else None, disabled))
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
            held = probe_owner(table, fam)
            if held is False:
                owner, mc_forwarding = Owner.NONE, False
        notes.append(f"{fam.routing} is held but no mrouter daemon answered"
                     + (f" on {socket_path}" if socket_path else "")
                     + ": treating the table as owned by another process")
    rule_tables = None
    if table != fam.default_table:
        try:
            rules = netlink.query(lambda ipr: netlink.mroute_rules(ipr, fam.rtnl_family))
        except OSError:  # no rules to read (no multiple tables): nothing is claimed
            pass
        else:
            rule_tables = {i.name: netlink.rule_table(rules, i.name) for i in interfaces}
    if listen > 0 and not flows:
        notes.append(f"no packet to {group} arrived in {listen:g} s of listening")
    edge = edge_view(group, daemon, routes, pim)
    if edge is not None:
        notes.extend(edge_notes(group, edge, listen))
    return Facts(group, source, interfaces, mc_forwarding, owner, routes, route_back,
                 source is not None, arrival, flows, members, notes, table, vifs_known,
                 rule_tables)


def _conf6(iface: str, name: str) -> str:
    """The sysctl key net.ipv6.conf.IFACE.NAME (a dot in a VLAN's name becomes /)."""
    return f"net.ipv6.conf.{iface.replace('.', '/')}.{name}"


OWNER_TEXT = {Owner.NONE: "not running", Owner.DAEMON: "run by the mrouter daemon",
              Owner.OTHER: "held by another process (no mrouter daemon answered)"}


def facts_to_dict(facts: Facts) -> dict[str, Any]:
    d = asdict(facts)
    d["family"] = facts.family.name
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
ALL_PIM_ROUTERS6 = IPv6Address("ff02::d")
_IPV4_PROTOCOL_OFFSET = 9


@dataclass(frozen=True, slots=True)
class EdgeView:
    """What a proxy sees locally of the network above its upstream interface."""

    upstream: str
    membership: str | None  # the kernel's membership of the group there; None: not joined
    arriving: tuple[tuple[str, int], ...]  # (source, packets) of kernel routes in on it
    pim_neighbours: tuple[str, ...] | None  # PIM hello senders heard there; None: not heard


def edge_notes(group: IPAddress, view: EdgeView, listened: float = 0.0) -> list[str]:
    """The notes explain prints for a proxy's upstream side (pure)."""
    fam = family_of(group)
    up = view.upstream
    if view.membership is None:
        notes = [f"upstream {up}: this proxy is not a member of {group} there, so the "
                 f"router above has no reason to send it (no host joined downstream?)"]
    else:
        notes = [f"upstream {up}: this proxy is a member of {group} there "
                 f"({view.membership}); the router above learns it from its "
                 f"{fam.protocol} reports"]
    if view.arriving:
        flows = ", ".join(f"from {s}: {n} packets" for s, n in view.arriving)
        notes.append(f"traffic to {group} arrives upstream on {up} ({flows})")
    else:
        notes.append(f"no traffic to {group} has arrived upstream on {up} (no kernel "
                     f"route comes in on it)")
    rest = fam.frr.format(group=group)
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


def watch_pim(family: Family = IPV4) -> socket.socket | None:
    """A packet socket that collects what arrives from now on (for :func:`pim_hellos`)."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                             socket.htons(family.ethertype))
    except PermissionError:
        return None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    return sock


def pim_hellos(sock: socket.socket, iface: str, family: Family = IPV4) -> tuple[str, ...]:
    """The sources of PIM packets to ALL-PIM-ROUTERS (224.0.0.13, ff02::d) that
    ``sock`` collected on ``iface``."""
    found: list[str] = []
    with sock:
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except BlockingIOError:
                break
            if addr[0] != iface or addr[2] == PACKET_OUTGOING:
                continue
            src = _pim_source(data, family)
            if src is not None and src not in found:
                found.append(src)
    return tuple(found)


def _pim_source(data: bytes, family: Family) -> str | None:
    """The source of a PIM packet to ALL-PIM-ROUTERS (a hello), else None."""
    if family is IPV4:
        if len(data) < MIN_HEADER_LEN or data[_IPV4_PROTOCOL_OFFSET] != PIM_PROTOCOL:
            return None
        dst = IPv4Address(data[IPV4_DST_OFFSET:IPV4_DST_OFFSET + 4])
        if dst != ALL_PIM_ROUTERS:
            return None
        return str(IPv4Address(data[IPV4_SRC_OFFSET:IPV4_SRC_OFFSET + 4]))
    # RFC 7761 §4.9: PIM over IPv6 is next header 103, hellos to ff02::d, no extension
    if len(data) < IPV6_HEADER_LEN or data[IPV6_NEXT_HEADER_OFFSET] != PIM_PROTOCOL:
        return None
    if IPv6Address(data[IPV6_DST_OFFSET:IPV6_DST_OFFSET + 16]) != ALL_PIM_ROUTERS6:
        return None
    return str(IPv6Address(data[IPV6_SRC_OFFSET:IPV6_SRC_OFFSET + 16]))


def edge_view(group: IPAddress, daemon: Mapping[str, Any] | None,
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
    from mrouter.sockets import mcast, mcast6

    membership = None
    table = mcast.memberships() if group.version == 4 else mcast6.memberships6()
    for ifm in table:
        g = ifm.group(group) if ifm.name == upstream else None
        if g is not None:
            included = [str(s.source) for s in g.sources if s.include > 0]
            excluded = [str(s.source) for s in g.sources if s.exclude > 0 and not s.include]
            membership = (f"INCLUDE {{{', '.join(included)}}}" if included
                          else f"EXCLUDE {{{', '.join(excluded)}}}")
    arriving = tuple((str(r.source), r.packets) for r in routes if r.iif == upstream)
    hellos = pim_hellos(pim, upstream, family_of(group)) if pim is not None else ()
    return EdgeView(upstream, membership, arriving, hellos or None)
