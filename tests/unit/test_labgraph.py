"""mrouter lab graph (mrouter/diag/labgraph.py, mrouter/cli/labweb.py): every topology in
netns/ drawn with its nodes, LANs, interface names and addresses; lab web's listen
address is the loopback or nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mrouter.cli.labweb import parse_listen
from mrouter.cli.main import main
from mrouter.diag.labgraph import layout, render_svg
from mrouter.errors import MrouterError
from mrouter.lab.topology import load_topology

SVG = "{http://www.w3.org/2000/svg}"
NETNS = sorted((Path(__file__).resolve().parents[2] / "netns").glob("*.toml"))


@pytest.mark.parametrize("path", NETNS, ids=lambda p: p.stem)
def test_every_node_lan_and_interface_is_drawn(path: Path) -> None:
    topo = load_topology(path)
    root = ET.fromstring(render_svg(topo))
    boxes = {g.get("data-node"): g.get("class") for g in root.iter(f"{SVG}g")
             if g.get("class") in ("router", "frr", "host", "lan")}
    assert boxes == {**{n.name: n.kind.value for n in topo.nodes},
                     **{lan.name: "lan" for lan in topo.lans}}
    labels = {(g.get("data-node"), g.get("data-iface")): [t.text for t in g.iter(f"{SVG}text")]
              for g in root.iter(f"{SVG}g") if g.get("class") == "iface"}
    for ep in topo.endpoints():
        assert labels[(ep.node, ep.iface)][:2] == [ep.iface, str(ep.address)], ep


def test_a_chain_reads_left_to_right_from_its_sender() -> None:
    places = layout(load_topology(Path(__file__).resolve().parents[2] / "netns" / "chain.toml"))
    xs = {name: p.x for name, p in places.items()}
    assert xs["sender"] < xs["r1"] < xs["r2"] < xs["h1"]


def test_cli_writes_svg_and_refuses_other_outputs(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "graph", "lan.toml", "-o", str(tmp_path / "lan.svg")]) == 0
    ET.parse(tmp_path / "lan.svg")
    assert main(["lab", "graph", "lan.toml", "-o", str(tmp_path / "lan.png")]) == 2
    assert main(["lab", "graph", "no-such-lab", "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "name the output FILE.svg" in err[0]
    assert "neither a running lab" in err[1]


@pytest.mark.parametrize("text", ["127.0.0.1:8017", "127.0.0.2:0", "localhost:9000"])
def test_loopback_listen_addresses(text: str) -> None:
    host, port = parse_listen(text)
    assert host.startswith("127.") and port == int(text.rsplit(":", 1)[1])


@pytest.mark.parametrize("text", ["0.0.0.0:8017", "192.0.2.1:80", ":8017", "[::]:80",
                                  "example.org:80", "127.0.0.1", "127.0.0.1:99999"])
def test_other_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(MrouterError, match="--listen"):
        parse_listen(text)
