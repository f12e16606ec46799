"""Topology files: the shipped ones say what the brief says, and a bad file is refused
before anything is built, with a message naming the file, the line, the key and a fix."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from mrouter.errors import TopologyError
from mrouter.lab.topology import (
    NodeKind,
    Topology,
    default_netns_dir,
    load_topology,
    parse_topology,
    resolve_topology_path,
    router_sysctls,
)

NETNS = default_netns_dir()
SHIPPED = ["basic.toml", "lan.toml", "two-lans.toml", "chain.toml", "querier-election.toml"]

GOOD = """\
[nodes.a]
kind = "host"
default_route = "192.0.2.1"

[nodes.r]
kind = "router"

[[links]]
endpoints = [
  { node = "a", iface = "eth0", address = "192.0.2.2/24" },
  { node = "r", iface = "dn0", address = "192.0.2.1/24" },
]
"""


def addresses(topo: Topology) -> dict[tuple[str, str], str]:
    return {(e.node, e.iface): str(e.address) for e in topo.endpoints()}


def gateway(topo: Topology, node: str) -> IPv4Address | None:
    for r in topo.node(node).routes:
        if r.to == IPv4Network("0.0.0.0/0"):
            return r.via
    return None


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_topology_parses(name: str) -> None:
    topo = load_topology(NETNS / name)
    assert topo.description
    assert topo.source.endswith(name)


def test_basic_is_as_documented() -> None:
    topo = load_topology(NETNS / "basic.toml")
    assert addresses(topo) == {
        ("sender", "eth0"): "198.51.100.2/24", ("r1", "up0"): "198.51.100.1/24",
        ("r1", "dn0"): "192.0.2.1/24", ("receiver", "eth0"): "192.0.2.2/24",
    }
    assert not topo.lans and len(topo.links) == 2
    assert gateway(topo, "sender") == IPv4Address("198.51.100.1")
    assert gateway(topo, "receiver") == IPv4Address("192.0.2.1")
    assert topo.node("r1").kind is NodeKind.ROUTER
    assert topo.node("sender").kind is NodeKind.HOST


def test_lan_is_as_documented() -> None:
    topo = load_topology(NETNS / "lan.toml")
    (lan,) = topo.lans
    assert lan.name == "lan0" and lan.igmp_snooping is False
    assert {(m.node, m.iface, str(m.address)) for m in lan.members} == {
        ("r1", "dn0", "192.0.2.1/24"), ("h1", "eth0", "192.0.2.11/24"),
        ("h2", "eth0", "192.0.2.12/24"), ("h3", "eth0", "192.0.2.13/24"),
    }
    assert addresses(topo)[("r1", "up0")] == "198.51.100.1/24"
    for h in ("h1", "h2", "h3"):
        assert gateway(topo, h) == IPv4Address("192.0.2.1")


def test_two_lans_is_as_documented() -> None:
    topo = load_topology(NETNS / "two-lans.toml")
    lans = {lan.name: {(m.node, m.iface, str(m.address)) for m in lan.members}
            for lan in topo.lans}
    assert lans == {
        "lan0": {("r1", "dn0", "192.0.2.1/24"), ("h1", "eth0", "192.0.2.11/24"),
                 ("h2", "eth0", "192.0.2.12/24")},
        "lan1": {("r1", "dn1", "203.0.113.1/24"), ("h3", "eth0", "203.0.113.11/24"),
                 ("h4", "eth0", "203.0.113.12/24")},
    }


def test_chain_is_as_documented() -> None:
    topo = load_topology(NETNS / "chain.toml")
    a = addresses(topo)
    assert a[("r1", "dn0")] == "203.0.113.1/24" and a[("r2", "up0")] == "203.0.113.2/24"
    assert a[("r2", "dn0")] == "192.0.2.1/24"
    assert a[("h1", "eth0")] == "192.0.2.11/24" and a[("h2", "eth0")] == "192.0.2.12/24"
    assert gateway(topo, "r2") == IPv4Address("203.0.113.1")
    assert topo.node("r2").kind is NodeKind.ROUTER


def test_querier_election_is_as_documented() -> None:
    topo = load_topology(NETNS / "querier-election.toml")
    (lan,) = topo.lans
    assert {(m.node, str(m.address)) for m in lan.members} == {
        ("r1", "192.0.2.1/24"), ("r2", "192.0.2.2/24"),
        ("h1", "192.0.2.11/24"), ("h2", "192.0.2.12/24"),
    }
    assert not topo.links


def test_shipped_addresses_come_from_the_documentation_ranges() -> None:
    ranges = [IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    for name in SHIPPED:
        for e in load_topology(NETNS / name).endpoints():
            assert e.address is not None
            assert any(e.address.ip in r for r in ranges), (name, e)


def test_routers_get_forwarding_and_no_rp_filter_on_every_link() -> None:
    topo = load_topology(NETNS / "basic.toml")
    settings = dict(router_sysctls(topo, topo.node("r1")))
    assert settings["net.ipv4.ip_forward"] == "1"
    assert settings["net.ipv4.conf.all.rp_filter"] == "0"
    assert settings["net.ipv4.conf.up0.rp_filter"] == "0"
    assert settings["net.ipv4.conf.dn0.rp_filter"] == "0"
    assert router_sysctls(topo, topo.node("sender")) == []


def test_options_parse() -> None:
    topo = parse_topology(GOOD.replace('[nodes.r]\nkind = "router"', """[nodes.r]
kind = "router"
sysctls = { "net.ipv4.conf.all.force_igmp_version" = 2, "net.ipv4.conf.all.mc_forwarding" = true }
commands = ["sleep 'a b'", ["echo", "x"]]
routes = [{ to = "198.51.100.0/24", via = "192.0.2.2" }]"""))
    r = topo.node("r")
    assert r.sysctls == (("net.ipv4.conf.all.force_igmp_version", "2"),
                         ("net.ipv4.conf.all.mc_forwarding", "1"))
    assert r.commands == (("sleep", "a b"), ("echo", "x"))
    assert r.routes[0].to == IPv4Network("198.51.100.0/24")
    # the user's sysctls come after the router defaults, so they win
    assert router_sysctls(topo, r)[-1] == ("net.ipv4.conf.all.mc_forwarding", "1")
    assert topo.links[0].a.address == IPv4Interface("192.0.2.2/24")


def bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TopologyError) as exc:
        load_topology(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: "), message
    return message


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_node_in_a_link(tmp_path: Path) -> None:
    text = GOOD.replace('{ node = "r",', '{ node = "r9",')
    msg = bad(tmp_path, text)
    assert f"line {line_of(text, 'r9')}" in msg
    assert "links[0].endpoints[1].node" in msg
    assert "unknown node 'r9'" in msg and "a, r" in msg
    assert "add a [nodes.r9] table" in msg


def test_duplicate_address(tmp_path: Path) -> None:
    text = GOOD.replace('"192.0.2.1/24"', '"192.0.2.2/24"')
    msg = bad(tmp_path, text)
    assert "links[0].endpoints[1].address" in msg
    assert "duplicate address 192.0.2.2" in msg and "links[0].endpoints[0]" in msg
    assert msg.startswith(f"{tmp_path / 'bad.toml'}: line 11: ")
    assert "also at links[0].endpoints[0], line 10" in msg
    assert "own address" in msg


@pytest.mark.parametrize(("address", "words"), [
    ("192.0.2.2/33", "bad prefix length /33"),
    ("192.0.2.2/0", "bad prefix length /0"),
    ("192.0.2.2/x", "bad prefix length /x"),
    ("192.0.2.2", "has no prefix length"),
    ("192.0.2.300/24", "not an IPv4 address"),
    ("192.0.2.0/24", "network address"),
    ("239.1.1.1/24", "cannot be an interface address"),
])
def test_bad_address_or_prefix(tmp_path: Path, address: str, words: str) -> None:
    text = GOOD.replace('"192.0.2.2/24"', f'"{address}"')
    msg = bad(tmp_path, text)
    assert words in msg
    assert "links[0].endpoints[0].address" in msg
    assert f"line {line_of(text, address)}" in msg


def test_interface_name_longer_than_ifnamsiz(tmp_path: Path) -> None:
    text = GOOD.replace('iface = "eth0"', 'iface = "averyverylongname"')
    msg = bad(tmp_path, text)
    assert "links[0].endpoints[0].iface" in msg
    assert "17 characters" in msg and "at most 15 (IFNAMSIZ-1)" in msg
    assert "use a shorter name" in msg
    assert f"line {line_of(text, 'averyverylongname')}" in msg


@pytest.mark.parametrize(("old", "new", "key"), [
    ('kind = "router"', 'kind = "router"\nforwarding = true', "nodes.r.forwarding"),
    ('[nodes.a]', 'descripton = "typo"\n[nodes.a]', "descripton"),
    ('{ node = "a", iface = "eth0",', '{ node = "a", ifname = "eth0",',
     "links[0].endpoints[0].ifname"),
])
def test_unknown_key(tmp_path: Path, old: str, new: str, key: str) -> None:
    text = GOOD.replace(old, new, 1)
    msg = bad(tmp_path, text)
    assert f"{key}: unknown key" in msg
    assert "use one of:" in msg
    last = key.rsplit(".", 1)[-1]
    assert f"line {line_of(text, last + ' =')}" in msg


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    msg = bad(tmp_path, GOOD.replace('kind = "router"', 'kind = router'))
    assert "not valid TOML" in msg and "line 6" in msg


@pytest.mark.parametrize(("old", "new", "words"), [
    ('kind = "router"', 'kind = "switch"', "unknown kind 'switch'"),
    ('kind = "router"', '', "nodes.r.kind: missing"),
    ('default_route = "192.0.2.1"', 'default_route = "203.0.113.1"',
     "gateway 203.0.113.1 of route to 0.0.0.0/0 is not on any subnet of 'a'"),
    ('default_route = "192.0.2.1"', 'default_route = "192.0.2.1/24"', "no prefix"),
    ('kind = "router"', 'kind = "router"\nsysctls = { "kernel.hostname" = "x" }',
     "only net.* sysctls"),
    ('[nodes.r]', '[lans.a]\nmembers = [{ node = "r", iface = "x0" }]\n[nodes.r]',
     "a LAN and a node are both named 'a'"),
    ('{ node = "r", iface = "dn0", address = "192.0.2.1/24" },',
     '{ node = "r", iface = "dn0", address = "192.0.2.1/24" }, { node = "r", iface = "dn1" },',
     "exactly 2 endpoints"),
    ('{ node = "r", iface = "dn0",', '{ node = "a", iface = "eth0",',
     "already has an interface 'eth0'"),
    ('[nodes.a]', '[nodes."a b"]', "bad node name 'a b'"),
    ('iface = "dn0"', 'iface = "lo"', "bad interface name 'lo'"),
    ('iface = "dn0"', 'iface = "dn0.5"', "no dots"),
])
def test_other_mistakes_are_explained(tmp_path: Path, old: str, new: str, words: str) -> None:
    assert words in bad(tmp_path, GOOD.replace(old, new, 1))


def test_empty_topology(tmp_path: Path) -> None:
    assert "has no nodes" in bad(tmp_path, 'description = "nothing"\n')


def test_missing_file_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no such topology file"):
        load_topology(tmp_path / "nope.toml")


def test_bare_names_resolve_in_netns_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_topology_path("basic.toml") == NETNS / "basic.toml"
    assert resolve_topology_path("basic") == NETNS / "basic.toml"
    (tmp_path / "basic.toml").write_text(GOOD)
    assert resolve_topology_path("basic.toml") == Path("basic.toml")  # a local file wins
    assert resolve_topology_path("sub/x.toml") == Path("sub/x.toml")


def test_the_annotated_example_in_the_readme_is_valid() -> None:
    readme = (NETNS / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    topo = parse_topology(example, source="netns/README.md")
    assert {n.name for n in topo.nodes} == {"sender", "r1", "h1"}
    assert topo.node("r1").commands[1] == ("sh", "-c", "echo hi; sleep 3600")
    assert dict(topo.node("r1").sysctls)["net.ipv4.icmp_echo_ignore_broadcasts"] == "0"
    assert topo.lans[0].igmp_snooping is False
