"""Forwarding through r1, the same tests for the kernel and the userspace data plane.

basic.toml: sender eth0 198.51.100.2 -- up0 r1 dn0 -- eth0 192.0.2.2 receiver.
two-lans.toml: sender -- up0 r1; r1 dn0 on lan0 (h1 .11, h2 .12); r1 dn1 on lan1 (h3, h4).

Each test runs with a static route (a lookup: ``up0 -> dn0`` for 239.1.1.1 unless said)
on one of three data planes inside r1:
- ``kernel``: an MRT_INIT socket with one VIF per interface and an MFC entry per (S, G);
- ``user-packet`` / ``user-raw``: :class:`UserDataplane` in a thread of this process
  (sockets opened inside r1), sending with a packet socket or an IPPROTO_RAW socket.
No MRT_INIT in the user cases: r1's kernel does not forward multicast by itself.
Traffic is `mrouter send` and `mrouter recv`, as a user runs them.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from ipaddress import IPv4Address
from typing import Any

import pytest
from helpers import users, wait_for

from mrouter.dataplane import DataplaneInterface, SendWith, UserDataplane
from mrouter.kernel.mroute import MrouteSocket

pytestmark = pytest.mark.netns

MROUTER = [sys.executable, "-m", "mrouter"]
GROUP = "239.1.1.1"
PLANES = ["kernel", "user-packet", "user-raw"]
Routes = Mapping[tuple[str, str], frozenset[str]]  # (group, iif) -> oifs


class Plane:
    """A running data plane in r1; ``events`` are the user plane's decisions."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []


@contextlib.contextmanager
def user_plane(lab: Any, interfaces: list[DataplaneInterface], routes: Routes,
               send_with: SendWith) -> Iterator[Plane]:
    plane = Plane()

    def lookup(source: IPv4Address, group: IPv4Address, iif: str) -> frozenset[str]:
        return routes.get((str(group), iif), frozenset())

    with lab.node("r1").enter():
        dp = UserDataplane(interfaces, lookup, on_decision=plane.events.append,
                           send_with=send_with)
    stop = threading.Event()

    def loop() -> None:
        with selectors.DefaultSelector() as sel:
            for fd in dp.filenos():
                sel.register(fd, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in sel.select(0.05):
                    dp.handle_readable(key.fd)

    thread = threading.Thread(target=loop, name="dataplane", daemon=True)
    thread.start()
    try:
        yield plane
    finally:
        stop.set()
        thread.join(5)
        dp.close()


@contextlib.contextmanager
def kernel_plane(lab: Any, interfaces: list[DataplaneInterface], routes: Routes,
                 source: str) -> Iterator[Plane]:
    r1 = lab.node("r1")
    with r1.enter():
        mrt = MrouteSocket()
    try:
        vif = {i.name: n for n, i in enumerate(interfaces)}
        threshold = {i.name: i.ttl_threshold for i in interfaces}
        for i in interfaces:
            mrt.add_vif(vif[i.name], i.ifindex, threshold=i.ttl_threshold)
        for (group, iif), oifs in routes.items():
            mrt.add_mfc(IPv4Address(source), IPv4Address(group), vif[iif],
                        {vif[o]: threshold[o] for o in oifs})
        yield Plane()
    finally:
        mrt.close()


@contextlib.contextmanager
def data_plane(kind: str, lab: Any, names: list[str], routes: Routes, *,
               source: str = "198.51.100.2",
               thresholds: Mapping[str, int] | None = None) -> Iterator[Plane]:
    r1 = lab.node("r1")
    interfaces = [DataplaneInterface(n, r1.ifindex(n), (thresholds or {}).get(n, 1))
                  for n in names]
    if kind == "kernel":
        with kernel_plane(lab, interfaces, routes, source) as plane:
            yield plane
    else:
        send_with = SendWith.RAW if kind == "user-raw" else SendWith.PACKET
        with user_plane(lab, interfaces, routes, send_with) as plane:
            yield plane


def start_recv(node: Any, *args: str, group: str = GROUP) -> subprocess.Popen[str]:
    """`mrouter recv` in the background, returned once its join is in the kernel."""
    before = users(node, group)
    proc: subprocess.Popen[str] = node.spawn(
        [*MROUTER, "recv", f"{group}:5000", "--json", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    wait_for(lambda: proc.poll() is not None or users(node, group) > before, timeout=10.0)
    assert proc.poll() is None, proc.communicate()
    return proc


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 1), err
    (summary,) = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert isinstance(summary, dict)
    return summary


def send(node: Any, *args: str, group: str = GROUP) -> None:
    out = node.run([*MROUTER, "send", f"{group}:5000", "--rate", "500", *args], timeout=30)
    assert out.returncode == 0, out.stderr


@pytest.fixture(params=PLANES)
def plane_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


UP_TO_DN0: Routes = {(GROUP, "up0"): frozenset({"dn0"})}


def test_forwards_every_datagram_with_ttl_decremented(
        plane_kind: str, lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("basic.toml")
    with data_plane(plane_kind, lab, ["up0", "dn0"], UP_TO_DN0) as plane:
        rx = start_recv(lab.node("receiver"), "--count", "50", "--timeout", "10")
        send(lab.node("sender"), "--ttl", "8", "--count", "50")
        got = result(rx)
    assert (got["received"], got["lost"], got["duplicates"]) == (50, 0, 0)
    assert (got["ttl_min"], got["ttl_max"]) == (7, 7)
    assert got["sources"] == ["198.51.100.2"]
    if plane_kind != "kernel":
        mine = [e for e in plane.events if e["group"] == GROUP]
        assert len(mine) == 50
        assert all(e["oifs"] == ["dn0"] and e["reason"] is None and e["ttl"] == 8
                   for e in mine)


def test_ttl_one_is_not_forwarded(plane_kind: str, lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("basic.toml")
    with data_plane(plane_kind, lab, ["up0", "dn0"], UP_TO_DN0) as plane:
        rx = start_recv(lab.node("receiver"), "--timeout", "2")
        send(lab.node("sender"), "--ttl", "1", "--count", "10")
        send(lab.node("sender"), "--ttl", "2", "--count", "5")  # the path works
        got = result(rx)
    assert got["received"] == 5
    assert (got["ttl_min"], got["ttl_max"]) == (1, 1)
    if plane_kind != "kernel":
        reasons = [e["reason"] for e in plane.events if e["group"] == GROUP]
        assert reasons == ["ttl-expired"] * 10 + [None] * 5


def test_threshold_holds_back_low_ttl(plane_kind: str,
                                      lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("basic.toml")
    with data_plane(plane_kind, lab, ["up0", "dn0"], UP_TO_DN0,
                    thresholds={"dn0": 8}) as plane:
        rx = start_recv(lab.node("receiver"), "--timeout", "2")
        send(lab.node("sender"), "--ttl", "8", "--count", "10")  # not above 8: held back
        send(lab.node("sender"), "--ttl", "9", "--count", "5")
        got = result(rx)
    assert got["received"] == 5
    assert (got["ttl_min"], got["ttl_max"]) == (8, 8)
    if plane_kind != "kernel":
        held = [e for e in plane.events if e["reason"] == "below-threshold"]
        assert len(held) == 10
        assert all(e["held_back"] == ["dn0"] for e in held)


def test_only_to_the_lan_the_route_names(plane_kind: str,
                                        lab_factory: Callable[[str], Any]) -> None:
    lab = lab_factory("two-lans.toml")
    with data_plane(plane_kind, lab, ["up0", "dn0", "dn1"], UP_TO_DN0):
        on_lan0 = start_recv(lab.node("h1"), "--timeout", "2.5")
        on_lan1 = start_recv(lab.node("h3"), "--timeout", "2.5")
        send(lab.node("sender"), "--ttl", "8", "--count", "20")
        got0, got1 = result(on_lan0), result(on_lan1)
    assert (got0["received"], got0["ttl_min"]) == (20, 7)
    assert got1["received"] == 0


def test_never_back_out_of_the_inbound_interface(
        plane_kind: str, lab_factory: Callable[[str], Any]) -> None:
    """h2 sends on lan0; the route names lan0 itself and lan1: only lan1 gets a copy,
    so h1 (on lan0) sees h2's datagrams once, with h2's own TTL."""
    lab = lab_factory("two-lans.toml")
    routes: Routes = {(GROUP, "dn0"): frozenset({"dn0", "dn1"})}
    with data_plane(plane_kind, lab, ["up0", "dn0", "dn1"], routes, source="192.0.2.12"):
        same_lan = start_recv(lab.node("h1"), "--timeout", "2.5")
        other_lan = start_recv(lab.node("h3"), "--timeout", "2.5")
        send(lab.node("h2"), "--ttl", "8", "--count", "20")
        got0, got1 = result(same_lan), result(other_lan)
    assert (got0["received"], got0["duplicates"], got0["ttl_min"], got0["ttl_max"]) == (
        20, 0, 8, 8)
    assert (got1["received"], got1["ttl_min"]) == (20, 7)


def test_link_local_groups_are_never_forwarded(
        plane_kind: str, lab_factory: Callable[[str], Any]) -> None:
    """Even with a route for 224.0.0.251 (mDNS), nothing of 224.0.0.0/24 leaves the link."""
    lab = lab_factory("basic.toml")
    local = "224.0.0.251"
    routes: Routes = {**UP_TO_DN0, (local, "up0"): frozenset({"dn0"})}
    with data_plane(plane_kind, lab, ["up0", "dn0"], routes) as plane:
        rx_local = start_recv(lab.node("receiver"), "--timeout", "2", group=local)
        rx = start_recv(lab.node("receiver"), "--timeout", "2")
        send(lab.node("sender"), "--ttl", "8", "--count", "10", group=local)
        send(lab.node("sender"), "--ttl", "8", "--count", "5")  # the path works
        got_local, got = result(rx_local), result(rx)
    assert got_local["received"] == 0
    assert got["received"] == 5
    if plane_kind != "kernel":
        reasons = [e["reason"] for e in plane.events if e["group"] == local]
        assert reasons == ["link-local"] * 10
