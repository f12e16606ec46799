"""Labs with IPv6: addresses and routes as the file says, IPv6 forwarding on routers,
IPv6 off in bridge namespaces and in IPv4-only labs, and `up` returning only after
duplicate address detection (no tentative address; a socket can bind at once)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from mrouter.lab import netns
from mrouter.linux import netlink, sysctl

pytestmark = pytest.mark.netns


def addresses6(node: Any) -> list[netlink.Address6]:
    with node.enter():
        return netlink.query(netlink.addresses6)


def test_dual_stack_comes_up_with_no_tentative_address_and_binds_at_once(
        lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("dual-stack.toml")
    for node in lab.nodes:
        found = addresses6(node)
        assert found and not [str(a.address) for a in found if a.tentative], node.name
        with node.enter():
            names = {i: n for i, n in ((link.index, link.name)
                                       for link in netlink.query(netlink.links))}
        with_ll = {names[a.index] for a in found if a.link_local}
        assert with_ll == set(names.values()) - {"lo"}, node.name
    # the moment `up` returns, the global address is usable: no EADDRNOTAVAIL
    with lab.node("h2").enter(), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("2001:db8:2::12", 0))
    r1 = lab.node("r1")
    assert r1.sysctl("net.ipv6.conf.all.forwarding") == "1"
    assert r1.sysctl("net.ipv6.conf.dn0.forwarding") == "1"
    assert lab.node("h1").sysctl("net.ipv6.conf.all.forwarding") == "0"
    bridge_ns = lab.record.namespaces["lan0"]
    assert netns.call_in(bridge_ns, lambda: sysctl.read("net.ipv6.conf.all.disable_ipv6")) == "1"
    assert {str(a.address) for a in addresses6(r1)
            if not a.link_local and not a.address.ip.is_loopback} == {
        "2001:db8:1::1/64", "2001:db8:2::1/64"}
    routes = lab.node("h3").run(["ip", "-6", "route", "show", "default"], check=True).stdout
    assert routes.startswith("default via 2001:db8:2::1 dev eth0")


def test_an_ipv4_only_lab_still_has_ipv6_off(lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("basic.toml")
    for node in lab.nodes:
        assert node.sysctl("net.ipv6.conf.all.disable_ipv6") == "1"
        assert addresses6(node) == []


def test_ifaces_marks_an_address_still_in_dad(lab_factory: Callable[[str], Any]) -> None:
    import json
    import sys

    h1 = lab_factory("dual-stack.toml").node("h1")
    h1.run(["ip", "addr", "add", "2001:db8:2::99/64", "dev", "eth0"], check=True)
    out = h1.run([sys.executable, "-m", "mrouter", "ifaces", "--json"], check=True).stdout
    eth0 = next(i for i in map(json.loads, out.splitlines()) if i["name"] == "eth0")
    assert "2001:db8:2::99/64" in eth0["addresses6"]  # DAD takes >= 1 s
    assert eth0["tentative6"] == ["2001:db8:2::99"]
