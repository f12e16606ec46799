"""Lab topology files: parsing and validation (pure: no namespaces, no netlink).

Theory of operation
-------------------
A topology file is TOML (format and an annotated example in ``netns/README.md``)::

    [nodes.r1]                 # a node is one network namespace
    kind = "router"            # "router": ip_forward=1, rp_filter=0; "host": kernel defaults
                               # "frr": a router whose FRR daemons the lab runs (below)
    [[links]]                  # a point-to-point link: one veth pair
    endpoints = [{ node = "sender", iface = "eth0", address = "198.51.100.2/24",
                   address6 = "2001:db8:1::2/64" }, ...]   # address6: one or a list
    [lans.lan0]                # a LAN segment: a Linux bridge in its own namespace
    members = [{ node = "r1", iface = "dn0", address = "192.0.2.1/24" }, ...]

:func:`parse_topology` turns the text into a frozen :class:`Topology` or raises
:class:`~mrouter.errors.TopologyError` for the *first* problem found, naming the file,
the line (when it can be found), the key path (``links[0].endpoints[1].node``) and what
to do. Everything is checked here, before the builder creates anything, so that a bad
file never leaves half a lab behind.

TOML parsers do not report the line of a key, so :class:`_Where` finds it by searching
the text for the key or the offending value (:class:`mrouter.tomlpos.TomlLines`); the
key path is always given, the line when it is unambiguous enough to help.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import Path
from typing import Any

from mrouter import tomlpos
from mrouter.errors import TopologyError
from mrouter.tomlpos import TomlLines, key_line

#: Linux IFNAMSIZ is 16 bytes including the terminating NUL.
IFNAMSIZ = 16
MAX_IFNAME = IFNAMSIZ - 1

#: Node and LAN names become part of namespace names and bridge interface names.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
#: Interface names the kernel accepts and that are safe in paths and sysctl keys.
IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: Only per-namespace sysctls may be set: anything outside net.* would change the host.
SYSCTL_RE = re.compile(r"net(\.[A-Za-z0-9_-]+)+")
#: A key whose value is a multi-line string that starts on the next line.
_MULTILINE_OPEN = re.compile(r"""=\s*("{3}|'{3})\s*$""")


class NodeKind(StrEnum):
    """What a node is for; decides the default sysctls."""

    HOST = "host"
    ROUTER = "router"
    FRR = "frr"  # a router whose FRR daemons (zebra, pimd, ...) the lab runs


#: The FRR daemons a node of kind "frr" runs when its ``daemons`` key is not given.
FRR_DEFAULT_DAEMONS: tuple[str, ...] = ("zebra", "staticd", "pimd")
#: The FRR daemons a topology may name (FRR 8.x's; Debian's build lacks pim6d). zebra
#: is always one of them: the others reach the kernel only through it.
FRR_DAEMONS: frozenset[str] = frozenset({
    "zebra", "staticd", "pimd", "pim6d", "ospfd", "ospf6d", "bgpd", "ripd", "ripngd",
    "isisd", "fabricd", "ldpd", "eigrpd", "babeld", "nhrpd", "pbrd", "bfdd", "vrrpd",
    "pathd",
})


#: Sysctls every router gets before its own ``sysctls`` (which may override them).
#: rp_filter=0: a multicast router receives packets whose source is not reachable back
#: through the input interface in every lab (for example a sender on a LAN behind
#: another router); strict reverse-path filtering would drop them before the
#: multicast routing code sees them. The effective value is max(all, interface), so
#: ``all``, ``default`` and every lab interface are set (see :func:`router_sysctls`).
ROUTER_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
)

#: Routers of a lab with IPv6 addresses also forward IPv6 (``all.forwarding`` sets
#: every interface's too).
ROUTER_SYSCTLS6: tuple[tuple[str, str], ...] = (
    ("net.ipv6.conf.all.forwarding", "1"),
)

#: Sysctls of every lab namespace (nodes and LAN bridges), set before any interface
#: exists: no IPv6, so captures show IPv4 and IGMP only (no MLD, ND or RS noise). A lab
#: whose topology has IPv6 addresses keeps IPv6 on in its nodes (see
#: :func:`namespace_sysctls`); its bridges' namespaces still have it off (a bridge
#: forwards IPv6 frames without an address of its own).
NAMESPACE_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
)


@dataclass(frozen=True)
class Endpoint:
    """One end of a link or one member of a LAN: an interface of a node."""

    node: str
    iface: str
    address: IPv4Interface | None
    where: str  # key path, for messages
    address6: tuple[IPv6Interface, ...] = ()  # besides the link-local one the kernel makes


@dataclass(frozen=True)
class Link:
    """A point-to-point link: a veth pair between two nodes."""

    a: Endpoint
    b: Endpoint


@dataclass(frozen=True)
class Lan:
    """A LAN segment: a bridge (in its own namespace) with any number of members."""

    name: str
    members: tuple[Endpoint, ...]
    igmp_snooping: bool = False


@dataclass(frozen=True)
class Route:
    """A static route; ``to`` and ``via`` are of one family."""

    to: IPv4Network | IPv6Network
    via: IPv4Address | IPv6Address


@dataclass(frozen=True)
class FrrSpec:
    """What the lab runs on a node of kind "frr": FRR daemons and their config."""

    daemons: tuple[str, ...] = FRR_DEFAULT_DAEMONS  # zebra first
    config: str = ""  # FRR's integrated config (frr.conf syntax), applied with vtysh
    #: where the config came from, for messages: "<topology file>: line N: nodes.X.
    #: frr_config" (inline: FRR's line 1 is the topology's ``config_line``) or a file
    config_source: str = ""
    config_line: int = 1  # the line of the topology file (or of the config file) that
    #                       holds FRR's line 1


@dataclass(frozen=True)
class NodeSpec:
    name: str
    kind: NodeKind
    routes: tuple[Route, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    frr: FrrSpec | None = None  # set for kind "frr" only


@dataclass(frozen=True)
class Topology:
    """A validated topology: every name resolves, every address is unique."""

    nodes: tuple[NodeSpec, ...]
    links: tuple[Link, ...] = ()
    lans: tuple[Lan, ...] = ()
    description: str = ""
    source: str = "<string>"  # the file it came from, for messages and `lab status`
    _by_name: dict[str, NodeSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({n.name: n for n in self.nodes})

    def node(self, name: str) -> NodeSpec:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(n.name for n in self.nodes)
            raise TopologyError(
                f"{self.source}: no node named {name!r}; the nodes are: {known}"
            ) from None

    def endpoints(self) -> Iterator[Endpoint]:
        """Every interface of every node (links first, then LAN members)."""
        for link in self.links:
            yield link.a
            yield link.b
        for lan in self.lans:
            yield from lan.members

    def interfaces(self, node: str) -> list[Endpoint]:
        return [e for e in self.endpoints() if e.node == node]

    @property
    def has_ipv6(self) -> bool:
        """Whether any endpoint has an IPv6 address: then the nodes keep IPv6 on."""
        return any(e.address6 for e in self.endpoints())


def namespace_sysctls(topology: Topology, *, bridge: bool) -> tuple[tuple[str, str], ...]:
    """The sysctls a lab namespace gets before any interface exists: IPv6 off, except in
    the nodes of a lab with IPv6 addresses."""
    return () if topology.has_ipv6 and not bridge else NAMESPACE_SYSCTLS


def router_sysctls(topology: Topology, node: NodeSpec) -> list[tuple[str, str]]:
    """The sysctls the builder sets on a node after its interfaces exist, in order."""
    out: list[tuple[str, str]] = []
    if node.kind in (NodeKind.ROUTER, NodeKind.FRR):
        out.extend(ROUTER_SYSCTLS)
        out.extend(
            (f"net.ipv4.conf.{e.iface}.rp_filter", "0") for e in topology.interfaces(node.name)
        )
        if topology.has_ipv6:
            out.extend(ROUTER_SYSCTLS6)
    out.extend(node.sysctls)
    return out


# ---------------------------------------------------------------------------------------
# Parsing


class _Where:
    """Builds error messages that name the file, the line (if found) and the key path."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.lines = TomlLines(text)
        self.source = source

    def error(
        self, key: str, problem: str, fix: str, *, value: object = None,
        name: str | None = None, line: int | None = None,
    ) -> TopologyError:
        """``key`` is the key path; ``value`` or ``name`` (a key) helps find the line."""
        if line is None:
            line = self.lines.value_line(key, value)
        if line is None and name is not None:
            line = self.lines.name_line(name)
        at = f"{self.source}: line {line}: " if line else f"{self.source}: "
        return TopologyError(f"{at}{key}: {problem}; {fix}")


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file; raises TopologyError (nothing is created)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(
            f"{p}: no such topology file; give a path, or the name of a shipped one "
            f"(e.g. basic; 'mrouter lab list' names them)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(f"{p}: cannot read the topology file: {exc}") from None
    return parse_topology(text, source=str(p))


def parse_topology(text: str, source: str = "<string>") -> Topology:
    """Parse and validate topology TOML text; raises TopologyError naming ``source``."""
    where = _Where(text, source)
    try:
        doc = tomlpos.loads(text)
    except tomlpos.TomlError as exc:
        raise TopologyError(f"{source}: not valid TOML: {exc}; fix the syntax there") from None
    return _Parser(where).topology(doc)


_TOP_KEYS = {"description": "a one-line description", "nodes": "the namespaces",
             "links": "point-to-point links", "lans": "LAN segments (bridges)"}
_NODE_KEYS = {"kind", "default_route", "default_route6", "routes", "sysctls", "commands",
              "daemons", "frr_config", "frr_config_file"}
_FRR_KEYS = ("daemons", "frr_config", "frr_config_file")
_LINK_KEYS = {"endpoints"}
_LAN_KEYS = {"members", "igmp_snooping"}
_ENDPOINT_KEYS = {"node", "iface", "address", "address6"}
_ROUTE_KEYS = {"to", "via"}


class _Parser:
    def __init__(self, where: _Where) -> None:
        self.w = where

    # -- helpers ---------------------------------------------------------------------

    def _keys(self, table: Mapping[str, Any], allowed: set[str] | dict[str, str], key: str) -> None:
        for k in table:
            if k not in allowed:
                shown = key + "." + k if key else k
                raise self.w.error(
                    shown, f"unknown key {k!r}",
                    f"use one of: {', '.join(sorted(allowed))} (see netns/README.md)", name=k,
                )

    def _table(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.w.error(key, f"expected a table, got {_kind(value)}",
                               "see netns/README.md for the format", name=key.rsplit(".", 1)[-1])
        return value

    def _list(self, value: object, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.w.error(key, f"expected an array, got {_kind(value)}",
                               "write it as [ ... ]", name=key.rsplit(".", 1)[-1])
        return value

    def _str(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise self.w.error(key, f"expected a string, got {_kind(value)}",
                               "put the value in double quotes", name=key.rsplit(".", 1)[-1])
        return value

    def _name(self, name: str, key: str, what: str) -> str:
        if not NAME_RE.fullmatch(name):
            raise self.w.error(
                key, f"bad {what} name {name!r}",
                "use 1-32 letters, digits, '_' or '-', starting with a letter or digit",
                name=name,
            )
        return name

    # -- sections --------------------------------------------------------------------

    def topology(self, doc: Mapping[str, Any]) -> Topology:
        self._keys(doc, _TOP_KEYS, "")
        description = self._str(doc.get("description", ""), "description")
        nodes_t = self._table(doc.get("nodes", {}), "nodes")
        if not nodes_t:
            raise self.w.error("nodes", "the topology has no nodes",
                               "add at least one [nodes.NAME] table with kind = \"host\"")
        nodes = [self.node(name, self._table(t, f"nodes.{name}")) for name, t in nodes_t.items()]
        known = {n.name for n in nodes}
        links = [
            self.link(self._table(t, f"links[{i}]"), f"links[{i}]", known)
            for i, t in enumerate(self._list(doc.get("links", []), "links"))
        ]
        lans_t = self._table(doc.get("lans", {}), "lans")
        lans = [self.lan(name, self._table(t, f"lans.{name}"), known) for name, t in lans_t.items()]
        topo = Topology(
            nodes=tuple(nodes), links=tuple(links), lans=tuple(lans),
            description=description, source=self.w.source,
        )
        self.cross_checks(topo)
        return topo

    def node(self, name: str, t: Mapping[str, Any]) -> NodeSpec:
        key = f"nodes.{name}"
        self._name(name, key, "node")
        self._keys(t, _NODE_KEYS, key)
        if "kind" not in t:
            raise self.w.error(f"{key}.kind", "missing",
                               'add kind = "host", kind = "router" or kind = "frr"', name=name)
        kind_s = self._str(t["kind"], f"{key}.kind")
        try:
            kind = NodeKind(kind_s)
        except ValueError:
            raise self.w.error(f"{key}.kind", f"unknown kind {kind_s!r}",
                               'use "host", "router" or "frr"', value=kind_s) from None
        routes: list[Route] = []
        if "default_route" in t:
            routes.append(Route(IPv4Network("0.0.0.0/0"),
                                self._address(t["default_route"], f"{key}.default_route")))
        if "default_route6" in t:
            via6 = self._address6(t["default_route6"], f"{key}.default_route6")
            routes.append(Route(IPv6Network("::/0"), via6))
        for i, r in enumerate(self._list(t.get("routes", []), f"{key}.routes")):
            rkey = f"{key}.routes[{i}]"
            rt = self._table(r, rkey)
            self._keys(rt, _ROUTE_KEYS, rkey)
            for needed in ("to", "via"):
                if needed not in rt:
                    raise self.w.error(f"{rkey}.{needed}", "missing",
                                       'write { to = "192.0.2.0/24", via = "203.0.113.2" }')
            to_s = self._str(rt["to"], f"{rkey}.to")
            via_s = self._str(rt["via"], f"{rkey}.via")
            # the family is the gateway's: "default" is 0.0.0.0/0 or ::/0 accordingly
            if ":" in via_s:
                via: IPv4Address | IPv6Address = self._address6(via_s, f"{rkey}.via")
            else:
                via = self._address(via_s, f"{rkey}.via")
            to: IPv4Network | IPv6Network
            if to_s == "default":
                to = IPv6Network("::/0") if via.version == 6 else IPv4Network("0.0.0.0/0")
            else:
                try:
                    to = IPv6Network(to_s) if via.version == 6 else IPv4Network(to_s)
                except ValueError as exc:
                    example = '"2001:db8:2::/64"' if via.version == 6 else '"192.0.2.0/24"'
                    raise self.w.error(f"{rkey}.to", f"bad destination {to_s!r} ({exc}; the "
                                       f"gateway {via} makes it an IPv{via.version} route)",
                                       f'give a network such as {example} or "default"',
                                       value=to_s) from None
            routes.append(Route(to, via))
        sysctls: list[tuple[str, str]] = []
        for skey, value in self._table(t.get("sysctls", {}), f"{key}.sysctls").items():
            if not SYSCTL_RE.fullmatch(skey):
                raise self.w.error(
                    f"{key}.sysctls", f"sysctl {skey!r} is not a per-namespace net.* key",
                    "only net.* sysctls can be set in a lab (others would change the host)",
                    name=skey,
                )
            if isinstance(value, bool):
                sysctls.append((skey, "1" if value else "0"))
            elif isinstance(value, int | str):
                sysctls.append((skey, str(value)))
            else:
                raise self.w.error(f"{key}.sysctls.{skey}", f"expected a number or string, "
                                   f"got {_kind(value)}", "write e.g. 2 or \"2\"", name=skey)
        commands: list[tuple[str, ...]] = []
        for i, c in enumerate(self._list(t.get("commands", []), f"{key}.commands")):
            ckey = f"{key}.commands[{i}]"
            if isinstance(c, str):
                try:
                    argv = tuple(shlex.split(c))
                except ValueError as exc:
                    raise self.w.error(ckey, f"cannot split {c!r} into words ({exc})",
                                       "fix the quoting or give an array of words",
                                       value=c) from None
            elif isinstance(c, list) and all(isinstance(a, str) for a in c):
                argv = tuple(c)
            else:
                raise self.w.error(ckey, f"expected a string or an array of strings, "
                                   f"got {_kind(c)}", 'write "sleep 60" or ["sleep", "60"]',
                                   name="commands")
            if not argv:
                raise self.w.error(ckey, "empty command", "remove it or give a program to run",
                                   name="commands")
            commands.append(argv)
        frr = self.frr(name, t) if kind is NodeKind.FRR else None
        if frr is None:
            for k in _FRR_KEYS:
                if k in t:
                    raise self.w.error(f"{key}.{k}", f"{k} belongs to FRR nodes and this "
                                       f"one is a {kind.value}",
                                       'set kind = "frr" or remove the key',
                                       line=key_line(self.w.text, key, k))
        return NodeSpec(name=name, kind=kind, routes=tuple(routes), sysctls=tuple(sysctls),
                        commands=tuple(commands), frr=frr)

    def frr(self, name: str, t: Mapping[str, Any]) -> FrrSpec:
        """``daemons`` and ``frr_config`` or ``frr_config_file`` of an FRR node."""
        key = f"nodes.{name}"

        def line(k: str) -> int | None:
            return key_line(self.w.text, key, k)

        daemons: tuple[str, ...] = FRR_DEFAULT_DAEMONS
        if "daemons" in t:
            names = self._list(t["daemons"], f"{key}.daemons")
            for d in names:
                if not isinstance(d, str) or d not in FRR_DAEMONS:
                    shown = repr(d) if isinstance(d, str) else _kind(d)
                    raise self.w.error(f"{key}.daemons", f"{shown} is not an FRR daemon",
                                       f"use some of: {', '.join(sorted(FRR_DAEMONS))}",
                                       line=line("daemons"))
            if len(set(names)) != len(names):
                raise self.w.error(f"{key}.daemons", "a daemon is named twice",
                                   "name each daemon once", line=line("daemons"))
            if "zebra" not in names:
                raise self.w.error(f"{key}.daemons", "zebra is missing (the other FRR "
                                   "daemons reach the kernel only through it)",
                                   'add it: daemons = ["zebra", ...]', line=line("daemons"))
            daemons = ("zebra", *(d for d in names if d != "zebra"))
        if "frr_config" in t and "frr_config_file" in t:
            raise self.w.error(f"{key}.frr_config_file", "both frr_config and "
                               "frr_config_file are given", "keep one of them",
                               line=line("frr_config_file"))
        if "frr_config" in t:
            config = self._str(t["frr_config"], f"{key}.frr_config")
            at = line("frr_config") or 1
            # TOML drops the newline right after an opening """: FRR's line 1 is then
            # the next line of the topology file.
            raw = self.w.lines.lines[at - 1] if at <= len(self.w.lines.lines) else ""
            if _MULTILINE_OPEN.search(raw):
                at += 1
            return FrrSpec(daemons, config, f"{self.w.source}: nodes.{name}.frr_config", at)
        if "frr_config_file" in t:
            rel = self._str(t["frr_config_file"], f"{key}.frr_config_file")
            base = Path(self.w.source).parent if self.w.source != "<string>" else Path(".")
            path = base / rel
            try:
                config = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = "no such file" if isinstance(exc, FileNotFoundError) else str(exc)
                raise self.w.error(f"{key}.frr_config_file", f"cannot read {path}: {reason}",
                                   "give a path relative to the topology file's folder",
                                   line=line("frr_config_file")) from None
            return FrrSpec(daemons, config, str(path), 1)
        return FrrSpec(daemons, "", f"{self.w.source}: nodes.{name}", 1)

    def _address(self, value: object, key: str) -> IPv4Address:
        s = self._str(value, key)
        try:
            return IPv4Address(s)
        except ValueError:
            raise self.w.error(key, f"{s!r} is not an IPv4 address",
                               'give a plain address such as "192.0.2.1" (no prefix)',
                               value=s) from None

    def _address6(self, value: object, key: str) -> IPv6Address:
        s = self._str(value, key)
        try:
            return IPv6Address(s)
        except ValueError:
            raise self.w.error(key, f"{s!r} is not an IPv6 address",
                               'give a plain address such as "2001:db8:1::1" (no prefix)',
                               value=s) from None

    def _interface6(self, a: str, key: str) -> IPv6Interface:
        if "/" not in a:
            raise self.w.error(key, f"address {a!r} has no prefix length",
                               f'write it with one, e.g. "{a}/64"', value=a)
        addr_s, prefix_s = a.split("/", 1)
        digits = prefix_s.isascii() and prefix_s.isdigit() and len(prefix_s) <= 3
        if not digits or not 1 <= int(prefix_s) <= 128:
            raise self.w.error(key, f"bad prefix length /{prefix_s} in {a!r}",
                               "use a number from 1 to 128, e.g. /64", value=a)
        try:
            iface = IPv6Interface(a)
        except ValueError:
            raise self.w.error(key, f"{addr_s!r} is not an IPv6 address",
                               'write e.g. "2001:db8:1::1/64"', value=a) from None
        ip = iface.ip
        if ip.is_multicast or ip.is_loopback or ip.is_unspecified or ip.is_link_local:
            what = "link-local (the kernel makes that one)" if ip.is_link_local else "unicast"
            raise self.w.error(key, f"{a} cannot be an interface address here"
                               + (f": it is {what}" if ip.is_link_local else ""),
                               "use a unicast address, e.g. from 2001:db8::/32", value=a)
        if ip.ipv4_mapped is not None:
            raise self.w.error(key, f"{a} is an IPv4-mapped address",
                               "give the IPv4 address as address, the IPv6 one as address6",
                               value=a)
        return iface

    def _addresses6(self, value: object, key: str) -> tuple[IPv6Interface, ...]:
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            k = f"{key}[{i}]" if isinstance(value, list) else key
            out.append(self._interface6(self._str(item, k), k))
        return tuple(out)

    def endpoint(self, value: object, key: str, known: set[str]) -> Endpoint:
        t = self._table(value, key)
        self._keys(t, _ENDPOINT_KEYS, key)
        for needed in ("node", "iface"):
            if needed not in t:
                raise self.w.error(f"{key}.{needed}", "missing",
                                   'write { node = "r1", iface = "eth0", '
                                   'address = "192.0.2.1/24" }')
        node = self._str(t["node"], f"{key}.node")
        if node not in known:
            raise self.w.error(f"{key}.node", f"unknown node {node!r} (the nodes are: "
                               f"{', '.join(sorted(known))})",
                               f"add a [nodes.{node}] table or fix the name", value=node)
        iface = self._str(t["iface"], f"{key}.iface")
        if len(iface.encode()) > MAX_IFNAME:
            raise self.w.error(f"{key}.iface", f"interface name {iface!r} is "
                               f"{len(iface.encode())} characters; Linux allows at most "
                               f"{MAX_IFNAME} (IFNAMSIZ-1)", "use a shorter name", value=iface)
        if not IFNAME_RE.fullmatch(iface) or iface == "lo":
            raise self.w.error(f"{key}.iface", f"bad interface name {iface!r}",
                               "use letters, digits, '_' or '-' (not 'lo'; no dots: they "
                               "would split sysctl keys)", value=iface)
        address: IPv4Interface | None = None
        if "address" in t:
            a = self._str(t["address"], f"{key}.address")
            if ":" in a:
                raise self.w.error(f"{key}.address", f"{a!r} is an IPv6 address",
                                   f'give it as address6 = "{a}" (address is the IPv4 one)',
                                   value=a)
            address = self._interface(a, f"{key}.address")
        address6 = self._addresses6(t["address6"], f"{key}.address6") if "address6" in t else ()
        return Endpoint(node=node, iface=iface, address=address, where=key, address6=address6)

    def _interface(self, a: str, key: str) -> IPv4Interface:
        if "/" not in a:
            raise self.w.error(key, f"address {a!r} has no prefix length",
                               f'write it with one, e.g. "{a}/24"', value=a)
        addr_s, prefix_s = a.split("/", 1)
        digits = prefix_s.isascii() and prefix_s.isdigit() and len(prefix_s) <= 3
        if not digits or not 1 <= int(prefix_s) <= 32:
            raise self.w.error(key, f"bad prefix length /{prefix_s} in {a!r}",
                               "use a number from 1 to 32, e.g. /24", value=a)
        try:
            iface = IPv4Interface(a)
        except ValueError:
            raise self.w.error(key, f"{addr_s!r} is not an IPv4 address",
                               'write e.g. "192.0.2.1/24"', value=a) from None
        net = iface.network
        if int(prefix_s) < 31 and iface.ip in (net.network_address, net.broadcast_address):
            which = "network" if iface.ip == net.network_address else "broadcast"
            raise self.w.error(key, f"{a} is the {which} address of {net}",
                               "pick a host address inside the subnet", value=a)
        if iface.ip.is_multicast or iface.ip.is_loopback or iface.ip.is_unspecified:
            raise self.w.error(key, f"{a} cannot be an interface address",
                               "use a unicast address, e.g. from 192.0.2.0/24", value=a)
        return iface

    def link(self, t: Mapping[str, Any], key: str, known: set[str]) -> Link:
        self._keys(t, _LINK_KEYS, key)
        ends = self._list(t.get("endpoints", []), f"{key}.endpoints")
        if len(ends) != 2:
            raise self.w.error(f"{key}.endpoints", f"a link has exactly 2 endpoints, "
                               f"this one has {len(ends)}",
                               "for more members use a LAN ([lans.NAME] with members = [...])",
                               name="endpoints")
        a = self.endpoint(ends[0], f"{key}.endpoints[0]", known)
        b = self.endpoint(ends[1], f"{key}.endpoints[1]", known)
        return Link(a, b)

    def lan(self, name: str, t: Mapping[str, Any], known: set[str]) -> Lan:
        key = f"lans.{name}"
        self._name(name, key, "LAN")
        if len(name) > MAX_IFNAME:
            raise self.w.error(key, f"LAN name {name!r} is {len(name)} characters; it names the "
                               f"bridge, and Linux allows at most {MAX_IFNAME}",
                               "use a shorter name", name=name)
        if name in known:
            raise self.w.error(key, f"a LAN and a node are both named {name!r}",
                               "rename one of them (each gets a namespace of that name)",
                               name=name)
        self._keys(t, _LAN_KEYS, key)
        snooping = t.get("igmp_snooping", False)
        if not isinstance(snooping, bool):
            raise self.w.error(f"{key}.igmp_snooping", f"expected true or false, got "
                               f"{_kind(snooping)}", "write igmp_snooping = true",
                               name="igmp_snooping")
        members_l = self._list(t.get("members", []), f"{key}.members")
        if not members_l:
            raise self.w.error(f"{key}.members", "a LAN needs at least one member",
                               'add members = [{ node = "h1", iface = "eth0", '
                               'address = "192.0.2.11/24" }]', name=name)
        members = tuple(
            self.endpoint(m, f"{key}.members[{i}]", known) for i, m in enumerate(members_l)
        )
        return Lan(name=name, members=members, igmp_snooping=snooping)

    def cross_checks(self, topo: Topology) -> None:
        seen_if: dict[tuple[str, str], Endpoint] = {}
        seen_ip: dict[IPv4Address | IPv6Address, Endpoint] = {}
        for e in topo.endpoints():
            other = seen_if.get((e.node, e.iface))
            if other is not None:
                raise self.w.error(e.where + ".iface", f"node {e.node!r} already has an "
                                   f"interface {e.iface!r} (at {other.where})",
                                   "give each interface of a node its own name", value=e.iface)
            seen_if[(e.node, e.iface)] = e
            if e.address is not None:
                dup = seen_ip.get(e.address.ip)
                if dup is not None:
                    # the same address on two lines: point at the later, name the other
                    lines = self.w.lines.matching(re.compile(f'"{re.escape(str(e.address.ip))}/'))
                    also = f", line {lines[0]}" if len(lines) > 1 else ""
                    raise self.w.error(e.where + ".address", f"duplicate address "
                                       f"{e.address.ip} (also at {dup.where}{also})",
                                       "give every interface its own address",
                                       value=str(e.address), line=lines[-1] if lines else None)
                seen_ip[e.address.ip] = e
            for a6 in e.address6:
                dup = seen_ip.get(a6.ip)
                if dup is not None:
                    raise self.w.error(e.where + ".address6", f"duplicate address {a6.ip} "
                                       f"(also at {dup.where})",
                                       "give every interface its own address",
                                       value=str(a6))
                seen_ip[a6.ip] = e
        for node in topo.nodes:
            nets: list[IPv4Network | IPv6Network] = [
                e.address.network for e in topo.interfaces(node.name) if e.address]
            nets += [a6.network for e in topo.interfaces(node.name) for a6 in e.address6]
            for route in node.routes:
                if not any(route.via.version == net.version and route.via in net
                           for net in nets):
                    raise self.w.error(
                        f"nodes.{node.name}.routes", f"gateway {route.via} of route to "
                        f"{route.to} is not on any subnet of {node.name!r} "
                        f"({', '.join(map(str, nets)) or 'it has no addresses'})",
                        "use the address of a neighbour on a directly connected subnet",
                        value=str(route.via),
                    )
            dests = [r.to for r in node.routes]
            if len(set(dests)) != len(dests):
                raise self.w.error(f"nodes.{node.name}.routes", "two routes to the same "
                                   "destination", "keep one route per destination",
                                   name=node.name)


def _kind(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def resolve_topology_path(name: str | Path, netns_dir: Path | None = None) -> Path:
    """A path as given, or a bare file name (``basic.toml`` or ``basic``) in netns/."""
    p = Path(name)
    if p.exists() or p.parent != Path("."):
        return p
    folder = netns_dir if netns_dir is not None else default_netns_dir()
    for candidate in (folder / p.name, folder / f"{p.name}.toml"):
        if candidate.exists():
            return candidate
    return p


def default_netns_dir() -> Path:
    """The shipped topologies: the repository's netns/, or the installed package's copy."""
    from mrouter.shipped import folder

    return folder("netns")


__all__ = [
    "FRR_DAEMONS",
    "FRR_DEFAULT_DAEMONS",
    "IFNAMSIZ",
    "NAMESPACE_SYSCTLS",
    "ROUTER_SYSCTLS",
    "ROUTER_SYSCTLS6",
    "Endpoint",
    "FrrSpec",
    "Lan",
    "Link",
    "NodeKind",
    "NodeSpec",
    "Route",
    "Topology",
    "default_netns_dir",
    "load_topology",
    "namespace_sysctls",
    "parse_topology",
    "resolve_topology_path",
    "router_sysctls",
]
