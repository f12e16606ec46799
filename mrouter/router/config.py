"""The daemon's configuration file (TOML), parsed and checked before anything starts.

Theory of operation: :func:`load_config` reads the file with :mod:`tomllib` and turns it
into frozen dataclasses, checking every key as it goes. Any problem raises one
:class:`~mrouter.errors.ConfigError` naming the file, the line (found by scanning the
text for the key), the key, what is wrong and what to write instead; the daemon starts
nothing when that happens. The module is pure: no sockets, no interfaces are looked up
here (the daemon checks that the named interfaces exist when it starts).

Minimal router config::

    mode = "router"
    [interfaces.up0]
    [interfaces.dn0]
    igmp_version = 3
    [[routes]]
    source = "198.51.100.2"      # omit for (*,G)
    group = "239.1.1.1"          # or a prefix such as "239.1.0.0/16"
    from = "up0"
    to = ["dn0"]

See examples/router.toml and examples/proxy.toml for every key with its default.

The IGMP keys of an interface are the engine's settings
(:class:`~mrouter.igmp.settings.InterfaceSettings`): their defaults and ranges are
written there once (``DEFAULTS``, ``LIMITS``), and the parser builds the settings
object, so a rule across keys (query_response_interval below query_interval, IGMPv2's
25.5 s Max Resp Time) is reported here, with the line, before anything starts. Besides
the RFC 3376 §8 timers they bound what a host or another router can make the engine
hold (issue 11)::

    max_groups = 4096           # groups learnt; reports for new ones are dropped, counted
    max_sources = 65536         # sources learnt on the interface, all groups together
    max_group_sources = 1024    # sources learnt in one group
    max_query_interval = 600.0  # largest QQI adopted from another querier's QQIC
    max_robustness = 4          # largest robustness adopted from its QRV
    require_router_alert = false  # drop IGMP without the IP Router Alert option

(Adopted values are lowered only to the larger of the bound and the interface's own
setting. IGMP with an IP TTL other than 1 is always dropped and counted.)

Dual stack (issue 14): ``families = ["ipv4", "ipv6"]`` (default ``["ipv4"]``, so a config
without the key runs as before) routes IPv6 as well, MLD on the same interfaces. An
interface's ``mld_version`` (1 or 2, default 2) is MLD's ``igmp_version``; the timer,
querier and bound keys above apply to both protocols, and each can be given for MLD
alone with an ``mld_`` prefix (``mld_query_interval = 60``). Routes and memberships take
IPv6 sources and groups (``ff15::1``, ``ff15::/16``); link-local scope (ff02::/16) is
refused as 224.0.0.0/24 is. ``ttl_threshold`` is IPv4's: ip6mr stores a MIF threshold
but never compares it (mrouter.kernel.mroute6), so IPv6 MIFs are declared with 1 and an
IPv6 packet is forwarded whenever its hop limit survives the decrement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import (
    AddressValueError,
    IPv6Address,
    IPv6Network,
    NetmaskValueError,
    ip_address,
    ip_network,
)
from pathlib import Path
from typing import Any

from mrouter import tomlpos
from mrouter.errors import ConfigError
from mrouter.igmp.family import IPV4, IPV6, Address, Network
from mrouter.igmp.settings import (
    DEFAULTS,
    LIMITS,
    MLD_DEFAULTS,
    InterfaceSettings,
    SettingError,
)
from mrouter.linux.constants import MAXVIFS
from mrouter.tomlpos import key_line

MULTICAST = IPV4.multicast
#: families key -> the family object; the config's order is kept
FAMILIES = {"ipv4": IPV4, "ipv6": IPV6}

MAX_INTERFACES = MAXVIFS


class Mode(StrEnum):
    ROUTER = "router"  # IGMP router side on every interface, routes any-to-any
    PROXY = "proxy"  # RFC 4605: one upstream (host side), downstreams (router side)


class Role(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


@dataclass(frozen=True, slots=True)
class InterfaceConfig:
    """One ``[interfaces.NAME]`` table; its IGMP keys are the engine's settings
    (:class:`~mrouter.igmp.settings.InterfaceSettings`, defaults RFC 3376 §8)."""

    name: str
    role: Role = Role.DOWNSTREAM
    ttl_threshold: int = 1
    optional: bool = False  # start without it; it is set up when it appears
    igmp: InterfaceSettings = DEFAULTS
    mld: InterfaceSettings = MLD_DEFAULTS  # used when families has "ipv6"

    @property
    def igmp_version(self) -> int:
        return self.igmp.version

    @property
    def querier(self) -> bool:
        return self.igmp.querier


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One ``[[routes]]`` entry: (S,G), (*,G) when ``source`` is None, or a group prefix."""

    group: Network
    iif: str
    oifs: tuple[str, ...]
    source: Address | None = None


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """One ``[[memberships]]`` entry: a static join on an interface (smcroute's mgroup)."""

    iface: str
    group: Address
    source: Address | None = None


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    mode: Mode = Mode.ROUTER
    table: int | None = None
    # Dynamic (S,G) entries whose packet count has not moved for expire_after seconds are
    # removed; the kernel's counters are read every poll_interval seconds (smcroute's
    # cache-timeout, igmpproxy's route ageing).
    expire_after: float = 300.0
    poll_interval: float = 30.0
    interfaces: tuple[InterfaceConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    memberships: tuple[MembershipConfig, ...] = field(default=())
    families: tuple[str, ...] = ("ipv4",)  # keys of FAMILIES

    def interface(self, name: str) -> InterfaceConfig:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        raise KeyError(name)

    @property
    def upstream(self) -> InterfaceConfig | None:
        for iface in self.interfaces:
            if iface.role is Role.UPSTREAM:
                return iface
        return None


class _Context:
    """Where we are in the file, to build messages that name file, line and key."""

    def __init__(self, path: str, text: str, *, inline: bool = False) -> None:
        self.path = path
        self.text = text
        self.inline = inline  # a control request, not a file: name just the key

    def error(self, table: str, key: str | None, message: str) -> ConfigError:
        if self.inline:
            return ConfigError(f"{self.path}: {key}: {message}" if key
                               else f"{self.path}: {message}")
        line = key_line(self.text, table, key)
        where = f"{self.path}:{line}" if line else self.path
        if "#" in table:  # an array of tables: "[[routes]] #2, key 'group'"
            array, number = table.split("#")
            what = f"[[{array}]] #{number}" + (f", key '{key}'" if key else "")
        else:
            what = ".".join(p for p in (table, key) if p)
        return ConfigError(f"{where}: {what}: {message}" if what else f"{where}: {message}")


# --- value checkers -----------------------------------------------------------------------


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"must be a whole number from {lo} to {hi}")
        return value
    return check


def _seconds(lo: float, hi: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not lo < value <= hi:
            raise ValueError(f"must be a number of seconds above {lo:g} and at most {hi:g}")
        return float(value)
    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false (without quotes)")
    return value


def _choice(*allowed: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or value not in allowed:
            raise ValueError("must be " + " or ".join(str(a) for a in allowed))
        return int(value)
    return check


def _enum(cls: type[Mode] | type[Role]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        try:
            return cls(value)
        except ValueError:
            raise ValueError("must be " + " or ".join(f'"{m.value}"' for m in cls)) from None
    return check


def _source(value: Any) -> Address:
    if not isinstance(value, str):
        raise ValueError('must be a quoted IPv4 or IPv6 address such as "198.51.100.2" or '
                         '"2001:db8:1::2"')
    try:
        address = ip_address(value)
    except ValueError:
        if ":" in value:
            raise ValueError(f'"{value}" is not an IPv6 address; write e.g. '
                             '"2001:db8:1::2"') from None
        raise ValueError(f'"{value}" is not an IPv4 address; write e.g. "198.51.100.2"'
                         ) from None
    if address.is_multicast or address.is_unspecified:
        raise ValueError(f"{address} is not a unicast source address; omit source for (*,G)")
    return address


def _group_prefix(value: Any) -> Network:
    if not isinstance(value, str):
        raise ValueError('must be a quoted group such as "239.1.1.1", "239.1.0.0/16" or '
                         '"ff15::1"')
    try:
        network = ip_network(value)
    except (AddressValueError, NetmaskValueError, ValueError):
        raise ValueError(f'"{value}" is not a group address or prefix; write e.g. '
                         '"239.1.1.1", "239.1.0.0/16" or "ff15::1" (no host bits set)') from None
    family = IPV6 if isinstance(network, IPv6Network) else IPV4
    if not network.subnet_of(family.multicast):  # type: ignore[arg-type]
        raise ValueError(f"{network} is not multicast; groups are in {family.multicast}")
    if network.subnet_of(family.link_local):  # type: ignore[arg-type]
        raise ValueError(f"{network} is link-local ({family.link_local}) and is never "
                         "forwarded")
    return network


def _group(value: Any) -> Address:
    network = _group_prefix(value)
    if network.prefixlen != network.max_prefixlen:
        raise ValueError(f"{network} is a prefix; a membership needs one group address")
    return network.network_address


def family_key(address: Address | Network) -> str:
    """The families key of an address or network: "ipv4" or "ipv6"."""
    return "ipv6" if isinstance(address, IPv6Address | IPv6Network) else "ipv4"


_IFNAME = re.compile(r"^[^\s/:]{1,15}$")


def _ifname(value: Any) -> str:
    if not isinstance(value, str) or not _IFNAME.match(value):
        raise ValueError(f"{value!r} is not a Linux interface name (1-15 characters, no "
                         "spaces, '/' or ':')")
    return value


# --- tables of keys -----------------------------------------------------------------------

def _setting(name: str) -> Callable[[Any], Any]:
    """The checker of a numeric IGMP setting, with the engine's range (LIMITS)."""
    limit = LIMITS[name]
    if limit.seconds:
        return _seconds(limit.lo, limit.hi)
    return _int(int(limit.lo), int(limit.hi))


#: key -> (checker, InterfaceConfig field) for the keys that are not IGMP settings.
_INTERFACE_KEYS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "role": (_enum(Role), "role"),
    "ttl_threshold": (_int(1, 255), "ttl_threshold"),
    "optional": (_bool, "optional"),
}
#: key -> (checker, InterfaceSettings field): the IGMP settings, ranges from the engine.
#: A router speaks IGMPv2 or v3 (the querier command also speaks v1).
_IGMP_KEYS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "igmp_version": (_choice(2, 3), "version"),
    **{name: (_setting(name), name) for name in (
        "robustness", "query_interval", "query_response_interval", "startup_query_interval",
        "startup_query_count", "last_member_query_interval", "last_member_query_count",
        "max_groups", "max_sources", "max_group_sources", "max_query_interval",
        "max_robustness")},
    "fast_leave": (_bool, "fast_leave"),
    "querier": (_bool, "querier"),
    "require_router_alert": (_bool, "require_router_alert"),
}
#: The MLD settings: mld_version, and each IGMP setting again with an mld_ prefix (for
#: MLD alone; without the prefix a setting is both protocols').
_MLD_KEYS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "mld_version": (_choice(1, 2), "version"),
    **{f"mld_{k}": v for k, v in _IGMP_KEYS.items() if k != "igmp_version"},
}
_ALL_INTERFACE_KEYS = {**_INTERFACE_KEYS, **_IGMP_KEYS, **_MLD_KEYS}

_TOP_KEYS = ("mode", "families", "table", "expire_after", "poll_interval", "interfaces",
             "routes", "memberships")
_ROUTE_KEYS = ("source", "group", "from", "to")
_MEMBERSHIP_KEYS = ("iface", "group", "source")


def _check_keys(ctx: _Context, table: str, data: Mapping[str, Any],
                known: tuple[str, ...] | Mapping[str, Any]) -> None:
    for key in data:
        if key not in known:
            raise ctx.error(table, key, "unknown key; the known keys here are "
                            + ", ".join(known))


def _value(ctx: _Context, table: str, key: str, value: Any,
           check: Callable[[Any], Any]) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ctx.error(table, key, str(exc)) from None


def _table(ctx: _Context, table: str, key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(table, key, f"must be a table ([{key}...]), not a {type(value).__name__}")
    return value


def _array_of_tables(ctx: _Context, key: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ctx.error("", key, f"must be written as [[{key}]] tables")
    return value


def _parse_interface(ctx: _Context, name: str, data: Any) -> InterfaceConfig:
    table = f"interfaces.{name}"
    try:
        _ifname(name)
    except ValueError as exc:
        raise ctx.error(table, None, str(exc)) from None
    if not isinstance(data, dict):
        raise ctx.error("interfaces", name, f"must be a table: write [interfaces.{name}]")
    _check_keys(ctx, table, data, _ALL_INTERFACE_KEYS)
    fields = {_INTERFACE_KEYS[k][1]: _value(ctx, table, k, v, _INTERFACE_KEYS[k][0])
              for k, v in data.items() if k in _INTERFACE_KEYS}
    igmp = {_IGMP_KEYS[k][1]: _value(ctx, table, k, v, _IGMP_KEYS[k][0])
            for k, v in data.items() if k in _IGMP_KEYS}
    try:
        settings = InterfaceSettings(**igmp)
    except SettingError as exc:  # a rule across keys (QRI < QI, Max Resp Code ranges)
        key = next((k for k, (_, f) in _IGMP_KEYS.items() if f == exc.field), exc.field)
        if key not in data:
            key = "query_interval"  # the other side of QRI < QI
        raise ctx.error(table, key, exc.problem) from None
    # MLD: the shared settings (not igmp_version), then the mld_ ones over them
    mld = {f: v for f, v in igmp.items() if f != "version"}
    mld.update({_MLD_KEYS[k][1]: _value(ctx, table, k, v, _MLD_KEYS[k][0])
                for k, v in data.items() if k in _MLD_KEYS})
    try:
        mld_settings = InterfaceSettings(**{"version": 2, **mld, "protocol": "MLD"})
    except SettingError as exc:
        key = next((k for k, (_, f) in _MLD_KEYS.items() if f == exc.field and k in data),
                   next((k for k, (_, f) in _IGMP_KEYS.items()
                         if f == exc.field and k in data), "mld_version"))
        raise ctx.error(table, key, exc.problem) from None
    return InterfaceConfig(name=name, igmp=settings, mld=mld_settings, **fields)


def _parse_route(ctx: _Context, number: int, data: Mapping[str, Any],
                 names: tuple[str, ...]) -> RouteConfig:
    table = f"routes#{number}"
    _check_keys(ctx, table, data, _ROUTE_KEYS)
    for key in ("group", "from", "to"):
        if key not in data:
            raise ctx.error(table, None, f"missing key '{key}'; a route needs group, from "
                            "and to (source is optional: omit it for (*,G))")
    source = _value(ctx, table, "source", data["source"], _source) if "source" in data else None
    group = _value(ctx, table, "group", data["group"], _group_prefix)
    _same_family(ctx, table, group, source)
    if source is not None and group.prefixlen != group.max_prefixlen:
        raise ctx.error(table, "group", f"{group} is a prefix; an (S,G) route needs one group "
                        "(omit source for a prefix route)")
    iif = _known_iface(ctx, table, "from", data["from"], names)
    to = data["to"]
    if not isinstance(to, list) or not to:
        raise ctx.error(table, "to", f'must be a list of interface names such as ["{names[-1]}"]')
    oifs = tuple(_known_iface(ctx, table, "to", o, names) for o in to)
    if iif in oifs:
        raise ctx.error(table, "to", f"{iif} is the inbound interface (from); traffic is "
                        "never sent back out of it: remove it from 'to'")
    if len(set(oifs)) != len(oifs):
        raise ctx.error(table, "to", "names an interface twice")
    return RouteConfig(group=group, iif=iif, oifs=oifs, source=source)


def _known_iface(ctx: _Context, table: str, key: str, value: Any,
                 names: tuple[str, ...]) -> str:
    if value not in names:
        raise ctx.error(table, key, f"{value!r} is not one of the configured interfaces "
                        f"({', '.join(names)}); add [interfaces.{value}] or fix the name")
    return str(value)


def _parse_membership(ctx: _Context, number: int, data: Mapping[str, Any],
                      names: tuple[str, ...]) -> MembershipConfig:
    table = f"memberships#{number}"
    _check_keys(ctx, table, data, _MEMBERSHIP_KEYS)
    for key in ("iface", "group"):
        if key not in data:
            raise ctx.error(table, None, f"missing key '{key}'; a membership needs iface and "
                            "group (source is optional)")
    iface = _known_iface(ctx, table, "iface", data["iface"], names)
    group = _value(ctx, table, "group", data["group"], _group)
    source = _value(ctx, table, "source", data["source"], _source) if "source" in data else None
    _same_family(ctx, table, group, source)
    return MembershipConfig(iface=iface, group=group, source=source)


def _same_family(ctx: _Context, table: str, group: Address | Network,
                 source: Address | None) -> None:
    if source is not None and family_key(source) != family_key(group):
        raise ctx.error(table, "source", f"{source} and the group {group} are of different "
                        "address families; give an IPv4 source for an IPv4 group and an "
                        "IPv6 one for an IPv6 group")


def _families(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(v not in FAMILIES for v in value):
        raise ValueError('must be a list of address families: ["ipv4"], ["ipv6"] or '
                         '["ipv4", "ipv6"]')
    if len(set(value)) != len(value):
        raise ValueError("names a family twice")
    return tuple(value)


def parse_config(text: str, path: str = "<config>") -> Config:
    """Parse and check a config given as text; ``path`` is used in messages."""
    try:
        data = tomlpos.loads(text)
    except tomlpos.TomlError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    ctx = _Context(path, text)
    _check_keys(ctx, "", data, _TOP_KEYS)
    mode = _value(ctx, "", "mode", data.get("mode", "router"), _enum(Mode))
    families = _value(ctx, "", "families", data.get("families", ["ipv4"]), _families)
    table = _value(ctx, "", "table", data["table"], _int(0, 2**32 - 1)) \
        if "table" in data else None
    expire_after = _value(ctx, "", "expire_after", data.get("expire_after", 300.0),
                          _seconds(0, 86400))
    poll_interval = _value(ctx, "", "poll_interval", data.get("poll_interval", 30.0),
                           _seconds(0, 3600))
    if poll_interval > expire_after:
        raise ctx.error("", "poll_interval", f"{poll_interval:g} s is longer than "
                        f"expire_after ({expire_after:g} s): entries could not expire on "
                        "time; make poll_interval at most expire_after")
    raw_ifaces = _table(ctx, "", "interfaces", data.get("interfaces", {}))
    if not raw_ifaces:
        raise ConfigError(f"{path}: no interfaces: add an [interfaces.NAME] table for each "
                          "interface to route between (NAME is the Linux interface name)")
    if len(raw_ifaces) > MAX_INTERFACES:
        raise ctx.error("", "interfaces", f"{len(raw_ifaces)} interfaces, but the kernel "
                        f"allows at most {MAX_INTERFACES} VIFs")
    interfaces = tuple(_parse_interface(ctx, n, d) for n, d in raw_ifaces.items())
    _check_roles(ctx, mode, interfaces)
    names = tuple(i.name for i in interfaces)
    routes = tuple(_parse_route(ctx, n, d, names) for n, d in
                   enumerate(_array_of_tables(ctx, "routes", data.get("routes", [])), 1))
    memberships = tuple(
        _parse_membership(ctx, n, d, names) for n, d in
        enumerate(_array_of_tables(ctx, "memberships", data.get("memberships", [])), 1))
    groups = [("routes", n, r.group) for n, r in enumerate(routes, 1)] + [
        ("memberships", n, m.group) for n, m in enumerate(memberships, 1)]
    for kind, n, group in groups:
        if family_key(group) not in families:
            raise ctx.error(f"{kind}#{n}", "group", f"{group} is {family_key(group)}, which "
                            f"families does not list ({', '.join(families)}); add it to "
                            "families")
    return Config(path=path, mode=mode, table=table, expire_after=expire_after,
                  poll_interval=poll_interval, interfaces=interfaces, routes=routes,
                  memberships=memberships, families=families)


def _check_roles(ctx: _Context, mode: Mode, interfaces: tuple[InterfaceConfig, ...]) -> None:
    # In router mode roles are accepted and carry no meaning: a router routes between all
    # interfaces, so one config can switch modes by its first line.
    upstream = [i.name for i in interfaces if i.role is Role.UPSTREAM]
    if mode is Mode.PROXY:
        if len(upstream) != 1:
            where = f"interfaces.{upstream[1]}" if upstream else "interfaces"
            raise ctx.error(where, "role" if upstream else None,
                            f"proxy mode needs exactly one interface with role = "
                            f'"upstream" (RFC 4605), found {len(upstream)}')
        if len(interfaces) < 2:
            raise ctx.error("", "interfaces", "proxy mode needs at least one downstream "
                            "interface besides the upstream one")
        (up,) = [i for i in interfaces if i.role is Role.UPSTREAM]
        if up.optional:
            raise ctx.error(f"interfaces.{up.name}", "optional", "the upstream interface "
                            "cannot be optional: a proxy without it has nothing to do")


def load_config(path: str | Path) -> Config:
    """Read and check the config file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_config(text, str(path))


def parse_route(data: Mapping[str, Any], interfaces: tuple[str, ...]) -> RouteConfig:
    """Check a route given as a mapping (a ``route add`` request) like a [[routes]] entry."""
    return _parse_route(_Context("route", "", inline=True), 1, data, interfaces)


def parse_membership(data: Mapping[str, Any], interfaces: tuple[str, ...]) -> MembershipConfig:
    """Check a membership given as a mapping (a ``join``/``leave`` request)."""
    return _parse_membership(_Context("membership", "", inline=True), 1, data, interfaces)
