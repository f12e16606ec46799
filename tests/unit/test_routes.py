"""Route table: static routes and membership decide the outbound interfaces."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from mrouter.router.routes import (
    FilterMode,
    ForwardingCache,
    Install,
    RouteTable,
    StaticRoute,
    Uninstall,
)

S = IPv4Address("198.51.100.2")
S2 = IPv4Address("198.51.100.3")
G = IPv4Address("239.1.1.1")
IFACES = ("up0", "dn0", "dn1")


def route(group: str, iif: str, *oifs: str, source: IPv4Address | None = None) -> StaticRoute:
    return StaticRoute(IPv4Network(group), iif, frozenset(oifs), source)


def test_static_sg_matches_only_its_source_and_inbound_interface() -> None:
    t = RouteTable(IFACES)
    t.add_route(route("239.1.1.1/32", "up0", "dn0", source=S))
    assert t.oifs(S, G, "up0") == {"dn0"}
    assert t.oifs(S2, G, "up0") == set()
    assert t.oifs(S, G, "dn1") == set()


def test_star_g_and_prefix_routes_match_any_source() -> None:
    t = RouteTable(IFACES)
    t.add_route(route("239.1.1.1/32", "up0", "dn0"))
    t.add_route(route("239.1.0.0/16", "up0", "dn1"))
    assert t.oifs(S2, G, "up0") == {"dn0", "dn1"}
    assert t.oifs(S2, IPv4Address("239.1.9.9"), "up0") == {"dn1"}
    assert t.oifs(S2, IPv4Address("239.2.0.1"), "up0") == set()


def test_link_local_never_forwarded() -> None:
    t = RouteTable(IFACES)
    t.add_route(route("224.0.0.0/4", "up0", "dn0"))
    t.join("dn1", IPv4Address("224.0.0.251"))
    assert t.oifs(S, IPv4Address("224.0.0.251"), "up0") == set()
    assert t.oifs(S, IPv4Address("224.0.1.1"), "up0") == {"dn0"}


def test_never_back_out_of_the_inbound_interface() -> None:
    t = RouteTable(IFACES)
    t.set_membership("up0", G, FilterMode.EXCLUDE, [])
    t.set_membership("dn0", G, FilterMode.EXCLUDE, [])
    assert t.oifs(S, G, "up0") == {"dn0"}
    assert t.oifs(S, G, "dn0") == {"up0"}


def test_include_and_exclude_membership() -> None:
    t = RouteTable(IFACES)
    t.set_membership("dn0", G, FilterMode.INCLUDE, [S])
    t.set_membership("dn1", G, FilterMode.EXCLUDE, [S])
    assert t.oifs(S, G, "up0") == {"dn0"}
    assert t.oifs(S2, G, "up0") == {"dn1"}
    t.set_membership("dn0", G, FilterMode.INCLUDE, [])  # last member left
    assert t.oifs(S, G, "up0") == set()
    assert t.membership("dn0", G) is None


def test_static_membership_merges_with_dynamic() -> None:
    t = RouteTable(IFACES)
    assert t.join("dn0", G, S)
    assert not t.join("dn0", G, S)
    t.set_membership("dn0", G, FilterMode.EXCLUDE, [S, S2])
    m = t.membership("dn0", G)
    assert m is not None and m.filter_mode is FilterMode.EXCLUDE and m.sources == {S2}
    t.join("dn1", G)
    assert t.oifs(S2, G, "up0") == {"dn1"}
    assert t.leave("dn1", G)
    assert not t.leave("dn1", G)
    assert t.oifs(S2, G, "up0") == set()


def test_proxy_forwards_upstream_down_and_downstream_up() -> None:
    t = RouteTable(IFACES, upstream="up0")
    t.set_membership("dn0", G, FilterMode.EXCLUDE, [])
    assert t.oifs(S, G, "up0") == {"dn0"}
    assert t.oifs(S, G, "dn1") == {"up0", "dn0"}
    t.set_querier("dn0", is_self=False)  # another router serves dn0 (RFC 4605 §4.2)
    assert t.oifs(S, G, "up0") == set()
    assert t.oifs(S, G, "dn1") == {"up0"}
    # a source on a downstream another router serves still goes upstream and to member
    # downstreams this router is querier of: the querier rule is about where packets go
    t.set_membership("dn1", G, FilterMode.EXCLUDE, [])
    assert t.oifs(S, G, "dn0") == {"up0", "dn1"}
    t.set_querier("dn1", is_self=False)
    assert t.oifs(S, G, "dn0") == {"up0"}
    t.add_route(route("239.1.1.1/32", "dn0", "dn1"))  # static routes still apply
    assert t.oifs(S, G, "dn0") == {"up0", "dn1"}


def test_cache_resolves_and_updates_at_once_on_membership_change() -> None:
    t = RouteTable(IFACES)
    cache = ForwardingCache(t)
    assert cache.resolve(S, G, "up0", now=0.0) == [Install(S, G, "up0", frozenset())]
    assert cache.resolve(S, IPv4Address("224.0.0.5"), "up0", now=0.0) == []
    t.set_membership("dn0", G, FilterMode.EXCLUDE, [])
    assert cache.refresh(G) == [Install(S, G, "up0", frozenset({"dn0"}))]
    assert cache.refresh(G) == []  # nothing changed, nothing to do
    t.set_membership("dn0", G, FilterMode.INCLUDE, [])
    assert cache.refresh(G) == [Install(S, G, "up0", frozenset())]


def test_cache_installs_static_sg_and_ages_only_dynamic_entries() -> None:
    t = RouteTable(IFACES)
    t.add_route(route("239.1.1.1/32", "up0", "dn0", source=S))
    cache = ForwardingCache(t, expiry=300.0)
    assert cache.install_static(0.0) == [Install(S, G, "up0", frozenset({"dn0"}))]
    assert cache.install_static(1.0) == []
    cache.resolve(S2, G, "up0", now=0.0)
    assert cache.age({(S2, G): 5}, now=100.0) == []
    assert cache.age({(S2, G): 5}, now=399.0) == []
    assert cache.age({(S2, G): 5}, now=400.0) == [Uninstall(S2, G)]
    assert cache.age({}, now=10_000.0) == []  # the static entry stays
    assert list(cache.entries) == [(S, G)]


def test_removing_an_interface_drops_its_entries() -> None:
    t = RouteTable(IFACES)
    t.set_membership("dn0", G, FilterMode.EXCLUDE, [])
    cache = ForwardingCache(t)
    cache.resolve(S, G, "up0", 0.0)
    cache.resolve(S2, G, "dn1", 0.0)
    t.interfaces = ("up0", "dn1")
    assert cache.remove_interface("dn0") == [Install(S, G, "up0", frozenset()),
                                             Install(S2, G, "dn1", frozenset())]
    assert cache.remove_interface("up0") == [Uninstall(S, G)]


def test_entry_of_a_deleted_static_route_ages_like_any_other() -> None:
    t = RouteTable(IFACES)
    t.add_route(route("239.1.1.1/32", "up0", "dn0", source=S))
    cache = ForwardingCache(t, expiry=300.0)
    cache.install_static(0.0)
    t.remove_route(S, IPv4Network("239.1.1.1/32"), "up0")
    assert cache.refresh() == [Install(S, G, "up0", frozenset())]
    assert cache.age({(S, G): 0}, now=300.0) == [Uninstall(S, G)]
