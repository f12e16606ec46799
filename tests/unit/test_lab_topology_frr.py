"""Nodes of kind "frr" in topology files: daemons, the FRR config inline or from a file
next to the topology, and one clear line (file, line, key, fix) for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrouter.errors import TopologyError
from mrouter.lab.topology import (
    FRR_DEFAULT_DAEMONS,
    NodeKind,
    load_topology,
    parse_topology,
    router_sysctls,
)

LINK = """
[nodes.h]
kind = "host"

[[links]]
endpoints = [
  { node = "h", iface = "eth0", address = "192.0.2.2/24" },
  { node = "r", iface = "eth0", address = "192.0.2.1/24" },
]
"""


def frr_node(body: str) -> str:
    return f'[nodes.r]\nkind = "frr"\n{body}\n{LINK}'


def error(text: str, source: str = "t.toml") -> str:
    with pytest.raises(TopologyError) as exc:
        parse_topology(text, source=source)
    return str(exc.value)


def test_an_frr_node_runs_zebra_staticd_pimd_and_gets_router_sysctls() -> None:
    topo = parse_topology(frr_node(""))
    r = topo.node("r")
    assert r.kind is NodeKind.FRR
    assert r.frr is not None
    assert r.frr.daemons == FRR_DEFAULT_DAEMONS == ("zebra", "staticd", "pimd")
    assert r.frr.config == ""
    assert ("net.ipv4.ip_forward", "1") in router_sysctls(topo, r)
    assert ("net.ipv4.conf.eth0.rp_filter", "0") in router_sysctls(topo, r)
    assert topo.node("h").frr is None


def test_daemons_are_started_zebra_first_whatever_the_order_written() -> None:
    r = parse_topology(frr_node('daemons = ["pimd", "zebra", "ospfd"]')).node("r")
    assert r.frr is not None and r.frr.daemons == ("zebra", "pimd", "ospfd")


def test_inline_config_keeps_its_text_and_knows_the_topology_line_of_its_first_line(
        ) -> None:
    text = frr_node('frr_config = """\nfrr defaults traditional\ninterface eth0\n ip pim\n"""')
    r = parse_topology(text, source="t.toml").node("r")
    assert r.frr is not None
    assert r.frr.config == "frr defaults traditional\ninterface eth0\n ip pim\n"
    # line 3 holds frr_config = """, so FRR's line 1 is the topology's line 4
    assert text.splitlines()[r.frr.config_line - 1] == "frr defaults traditional"
    assert r.frr.config_source == "t.toml: nodes.r.frr_config"


def test_config_file_is_read_relative_to_the_topology_file(tmp_path: Path) -> None:
    (tmp_path / "frr").mkdir()
    (tmp_path / "frr" / "r.conf").write_text("interface eth0\n ip igmp\n")
    topo_file = tmp_path / "lab.toml"
    topo_file.write_text(frr_node('frr_config_file = "frr/r.conf"'))
    r = load_topology(topo_file).node("r")
    assert r.frr is not None and r.frr.config == "interface eth0\n ip igmp\n"
    assert r.frr.config_source == str(tmp_path / "frr" / "r.conf")


def test_a_missing_config_file_names_the_line_and_the_path(tmp_path: Path) -> None:
    topo_file = tmp_path / "lab.toml"
    topo_file.write_text(frr_node('frr_config_file = "nowhere.conf"'))
    with pytest.raises(TopologyError) as exc:
        load_topology(topo_file)
    assert str(exc.value) == (
        f"{topo_file}: line 3: nodes.r.frr_config_file: cannot read "
        f"{tmp_path / 'nowhere.conf'}: no such file; give a path relative to the "
        f"topology file's folder")


@pytest.mark.parametrize(("body", "expected"), [
    ('daemons = ["zebra", "pimd", "quaggad"]',
     "t.toml: line 3: nodes.r.daemons: 'quaggad' is not an FRR daemon; use some of: "),
    ('daemons = ["pimd"]',
     "t.toml: line 3: nodes.r.daemons: zebra is missing (the other FRR daemons reach the "
     "kernel only through it); add it: daemons = [\"zebra\", ...]"),
    ('daemons = ["zebra", "pimd", "pimd"]',
     "t.toml: line 3: nodes.r.daemons: a daemon is named twice; name each daemon once"),
    ('daemons = "zebra"',
     "t.toml: line 3: nodes.r.daemons: expected an array, got a string; write it as [ ... ]"),
    ('daemons = ["zebra", 7]',
     "t.toml: line 3: nodes.r.daemons: a number is not an FRR daemon; use some of: "),
    ('frr_config = "ip pim rp 192.0.2.1"\nfrr_config_file = "r.conf"',
     "t.toml: line 4: nodes.r.frr_config_file: both frr_config and frr_config_file are "
     "given; keep one of them"),
    ("frr_config = 7",
     "t.toml: line 3: nodes.r.frr_config: expected a string, got a number; put the value "
     "in double quotes"),
])
def test_bad_frr_keys_are_refused_with_line_and_fix(body: str, expected: str) -> None:
    assert error(frr_node(body)).startswith(expected)


def test_frr_keys_on_a_router_are_refused() -> None:
    text = '[nodes.r]\nkind = "router"\nfrr_config = "ip pim"\n' + LINK
    assert error(text) == ('t.toml: line 3: nodes.r.frr_config: frr_config belongs to FRR '
                           'nodes and this one is a router; set kind = "frr" or remove '
                           'the key')


def test_unknown_kind_lists_frr() -> None:
    text = '[nodes.r]\nkind = "pim"\n' + LINK
    assert error(text) == ('t.toml: line 2: nodes.r.kind: unknown kind \'pim\'; use "host", '
                           '"router" or "frr"')


def test_pim_domain_is_as_documented() -> None:
    from ipaddress import IPv4Network

    from mrouter.lab.topology import default_netns_dir

    topo = load_topology(default_netns_dir() / "pim-domain.toml")
    kinds = {n.name: n.kind.value for n in topo.nodes}
    assert {n for n, k in kinds.items() if k == "frr"} == {"fhr", "rp", "lhr", "br"}
    assert kinds["edge"] == kinds["edge2"] == "router"
    assert {n for n, k in kinds.items() if k == "host"} == {"sender", "h1", "h2", "h3", "h4"}
    lans = {lan.name: {m.node for m in lan.members} for lan in topo.lans}
    assert lans == {"lan0": {"edge", "h1", "h2"}, "lan1": {"edge2", "br", "h3"}}
    docs = [IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    for e in topo.endpoints():
        assert e.address is not None and any(e.address.ip in d for d in docs), e
    lhr = topo.node("lhr").frr
    assert lhr is not None and "interface edge0\n ip pim\n ip pim hello 2 7\n ip igmp" \
        in lhr.config
    for name in ("fhr", "rp", "lhr", "br"):
        spec = topo.node(name).frr
        assert spec is not None and "ip pim rp 198.51.100.254 239.0.0.0/8" in spec.config
