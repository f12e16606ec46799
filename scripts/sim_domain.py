#!/usr/bin/env python3
"""Simulation: mrouter proxies at the edge of an FRR PIM-SM core, as the edges multiply.

For each N it generates a lab: a chain of K FRR core routers (c0 holds the RP on its lo
and the sender), N edges (mrouter, proxy mode) attached round robin to the core routers,
each with a LAN of ``--hosts`` hosts. The sender streams one group per edge all the time
(the FHR registers the ones nobody wants). Then, edge after edge, a real receiver (a
kernel socket, IGMPv3 reports) on that edge's LAN joins its group, which the previous
edges keep joined: **join convergence** is from the join to the first packet at that
host. Then edge after edge the receivers leave: **leave convergence** is from the
leave to the last packet of the group seen on that LAN (a packet socket on a host).
It prints p50/p99 of both, the RSS of each mrouter daemon and of each FRR node (the sum
of its daemons), and the CPU they used over the run, as % of one core. Needs root and FRR.

    .venv/bin/python scripts/sim_domain.py                  # N = 5 and 20, K = 3
    .venv/bin/python scripts/sim_domain.py -n 5 20 40 -k 4

Addresses: documentation ranges only; at most 48 edges (the LANs are /29s of
192.0.2.0/24 and 198.51.100.128/25) and 5 hosts per LAN.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchlib import (  # noqa: E402
    DATA_PORT,
    Daemon,
    cpu_ticks,
    lab_from_text,
    median,
    percentile,
    progress,
    rss_kb,
    start_mrouter,
    start_sender,
    stop,
)

from mrouter.igmp.ipv4 import parse_header  # noqa: E402
from mrouter.lab import Lab  # noqa: E402
from mrouter.lab import frr as lab_frr  # noqa: E402
from mrouter.linux.constants import ETH_P_IP  # noqa: E402

RP = "198.51.100.254"
SOURCE_NET = IPv4Network("198.51.100.0/30")  # sender .2, c0 .1
FIRST_GROUP = IPv4Address("239.10.0.0")
MAX_EDGES = 48
#: each edge's group gets this many packets/s (the join figures' resolution is 1/rate)
GROUP_RATE = 50.0

EDGE_CONFIG = """\
mode = "proxy"
[interfaces.up0]
role = "upstream"
[interfaces.dn0]
query_interval = 10
query_response_interval = 1
last_member_query_interval = 0.1
"""


def core_link(j: int) -> IPv4Network:
    """The link c(j) -- c(j+1): c(j) is .1, c(j+1) is .2."""
    return IPv4Network(f"198.51.100.{4 + 4 * j}/30")


def edge_link(i: int) -> IPv4Network:
    """The link core -- edge i: the core router is .1, the edge .2."""
    return IPv4Network(f"203.0.113.{4 * i}/30")


def lan(i: int) -> IPv4Network:
    if i < 32:
        return IPv4Network(f"192.0.2.{8 * i}/29")
    return IPv4Network(f"198.51.100.{128 + 8 * (i - 32)}/29")


def host_addr(net: IPv4Network, n: int) -> str:
    return str(net.network_address + n)


def topology(k: int, n: int, hosts: int) -> str:
    """The lab's TOML: K core routers in a chain, N edges, their LANs."""
    attach = {i: i % k for i in range(n)}
    out = [f'description = "sim: {k} FRR core routers, {n} mrouter proxy edges"\n',
           '[nodes.sender]\nkind = "host"\ndefault_route = "198.51.100.1"\n']

    def nets_behind(j: int) -> list[tuple[IPv4Network, int]]:
        """Every subnet beyond core router j's own links, with the core router it hangs on."""
        found = [(IPv4Network(f"{RP}/32"), 0), (SOURCE_NET, 0)]
        for i, c in attach.items():
            found += [(edge_link(i), c), (lan(i), c)]
        return [(net, c) for net, c in found if c != j]

    for j in range(k):
        lines = ["frr defaults traditional", f"ip pim rp {RP} 239.0.0.0/8"]
        for net, c in nets_behind(j):
            via = core_link(j - 1).network_address + 1 if c < j else \
                core_link(j).network_address + 2
            lines.append(f"ip route {net} {via}")
        for i, c in attach.items():
            if c == j:
                lines.append(f"ip route {lan(i)} {edge_link(i).network_address + 2}")
        ifaces = []
        if j == 0:
            lines += ["interface lo", f" ip address {RP}/32", " ip pim",
                      "interface eth0", " ip pim"]
        if j > 0:
            ifaces.append("w0")
        if j < k - 1:
            ifaces.append("e0")
        for iface in ifaces:
            lines += [f"interface {iface}", " ip pim", " ip pim hello 2 7"]
        for i, c in attach.items():
            if c == j:
                lines += [f"interface x{i}", " ip pim", " ip igmp",
                          " ip igmp query-max-response-time 10", " ip igmp query-interval 5",
                          " ip igmp last-member-query-interval 1",
                          " ip igmp last-member-query-count 2"]
        config = "\n".join(lines)
        out.append(f'[nodes.c{j}]\nkind = "frr"\nfrr_config = """\n{config}\n"""\n')
    for i in range(n):
        out.append(f'[nodes.e{i}]\nkind = "router"\n'
                   f'default_route = "{edge_link(i).network_address + 1}"\n')
        for h in range(hosts):
            out.append(f'[nodes.e{i}h{h}]\nkind = "host"\n'
                       f'default_route = "{host_addr(lan(i), 1)}"\n')
    out.append('[[links]]\nendpoints = [{ node = "sender", iface = "eth0", address = '
               '"198.51.100.2/30" }, { node = "c0", iface = "eth0", address = '
               '"198.51.100.1/30" }]\n')
    for j in range(k - 1):
        net = core_link(j)
        out.append(f'[[links]]\nendpoints = [{{ node = "c{j}", iface = "e0", address = '
                   f'"{host_addr(net, 1)}/30" }}, {{ node = "c{j + 1}", iface = "w0", '
                   f'address = "{host_addr(net, 2)}/30" }}]\n')
    for i, c in attach.items():
        net = edge_link(i)
        out.append(f'[[links]]\nendpoints = [{{ node = "c{c}", iface = "x{i}", address = '
                   f'"{host_addr(net, 1)}/30" }}, {{ node = "e{i}", iface = "up0", '
                   f'address = "{host_addr(net, 2)}/30" }}]\n')
    for i in range(n):
        members = [f'{{ node = "e{i}", iface = "dn0", address = "{host_addr(lan(i), 1)}/29" }}']
        members += [f'{{ node = "e{i}h{h}", iface = "eth0", address = '
                    f'"{host_addr(lan(i), 2 + h)}/29" }}' for h in range(hosts)]
        out.append(f'[lans.l{i}]\nmembers = [\n  ' + ",\n  ".join(members) + "\n]\n")
    return "\n".join(out)


def pim_neighbours(lab: Lab, node: str) -> int:
    found = lab.node(node).vtysh_json("show ip pim neighbor json")
    return sum(len(v) for v in found.values())


def frr_pids(lab: Lab, node: str) -> list[int]:
    n = lab.node(node)
    assert n.spec.frr is not None
    return [p for p in (lab_frr.read_pid(n.netns, d) for d in n.spec.frr.daemons)
            if p is not None]


@dataclass
class Result:
    n: int
    k: int
    up_s: float
    joins: list[float]
    leaves: list[float]
    mrouter_rss_kb: list[int]
    frr_rss_kb: list[int]
    mrouter_cpu: float  # % of one core, all mrouter daemons together
    frr_cpu: float  # % of one core, all FRR daemons together
    seconds: float


class Receiver:
    """A kernel socket on a host that joins one group (the kernel sends IGMPv3 reports)."""

    def __init__(self, lab: Lab, node: str, group: IPv4Address) -> None:
        self.group = group
        self.address = lab.node(node).address("eth0")
        with lab.node(node).enter():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.lan = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                     socket.htons(ETH_P_IP))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((str(group), DATA_PORT))
        self.lan.bind(("eth0", ETH_P_IP))

    def _mreq(self) -> bytes:
        return self.group.packed + self.address.packed

    def join(self, timeout: float) -> float | None:
        t0 = time.monotonic()
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, self._mreq())
        if not select.select([self.sock], [], [], timeout)[0]:
            return None
        return time.monotonic() - t0

    def leave(self, quiet: float, timeout: float) -> float | None:
        """Leave; seconds until the last packet of the group was seen on the LAN."""
        while select.select([self.lan], [], [], 0)[0]:
            self.lan.recv(65535)
        t0 = time.monotonic()
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, self._mreq())
        last = t0
        while time.monotonic() - last < quiet:
            if time.monotonic() - t0 > timeout:
                return None
            if select.select([self.lan], [], [], 0.05)[0]:
                packet = self.lan.recv(65535)
                header = parse_header(packet)
                if header.protocol == socket.IPPROTO_UDP and header.dst == self.group:
                    last = time.monotonic()
        return last - t0

    def close(self) -> None:
        self.sock.close()
        self.lan.close()


def run(k: int, n: int, hosts: int, workdir: Path) -> Result:
    text = topology(k, n, hosts)
    lab = lab_from_text(text, workdir, f"sim{n}")
    t0 = time.monotonic()
    lab.start()
    up_s = time.monotonic() - t0
    daemons: list[Daemon] = []
    sender = None
    receivers: list[Receiver] = []
    try:
        progress(f"N={n}: lab up in {up_s:.1f} s; waiting for PIM adjacencies")
        for j in range(k):
            want = (j > 0) + (j < k - 1)
            deadline = time.monotonic() + 30
            while pim_neighbours(lab, f"c{j}") < want:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"c{j} has no PIM neighbours after 30 s")
                time.sleep(0.2)
        for i in range(n):
            for h in range(hosts):
                host = lab.node(f"e{i}h{h}")
                host.sysctl("net.ipv4.conf.all.force_igmp_version", "3")
                host.sysctl("net.ipv4.conf.eth0.igmpv3_unsolicited_report_interval", "100")
            d = start_mrouter(lab.node(f"e{i}"), workdir, EDGE_CONFIG, tag=f"e{i}")
            daemons.append(d)
        for d in daemons:
            d.wait_ready(30.0)
        sender = start_sender(lab.node("sender"), FIRST_GROUP, count=n, rate=GROUP_RATE * n)
        time.sleep(1.0)
        pids_frr = [p for j in range(k) for p in frr_pids(lab, f"c{j}")]
        cpu0 = ({d.pid: cpu_ticks(d.pid) for d in daemons},
                {p: cpu_ticks(p) for p in pids_frr})
        started = time.monotonic()
        joins: list[float] = []
        for i in range(n):
            rx = Receiver(lab, f"e{i}h0", FIRST_GROUP + i)
            receivers.append(rx)
            took = rx.join(10.0)
            if took is None:
                raise RuntimeError(f"edge e{i}: no packet 10 s after the join")
            joins.append(took)
        mrouter_rss = [rss_kb(d.pid) for d in daemons]
        frr_rss = [sum(rss_kb(p) for p in frr_pids(lab, f"c{j}")) for j in range(k)]
        progress(f"N={n}: all joined; leaving")
        leaves: list[float] = []
        for i, rx in enumerate(receivers):
            took = rx.leave(quiet=0.5, timeout=15.0)
            if took is None:
                raise RuntimeError(f"edge e{i}: the flow had not stopped 15 s after the leave")
            leaves.append(took)
        seconds = time.monotonic() - started
        tick = os.sysconf("SC_CLK_TCK")
        mrouter_cpu = sum(cpu_ticks(p) - t for p, t in cpu0[0].items()) / tick
        frr_cpu = sum(cpu_ticks(p) - t for p, t in cpu0[1].items()) / tick
        return Result(n, k, up_s, joins, leaves, mrouter_rss, frr_rss,
                      100 * mrouter_cpu / seconds, 100 * frr_cpu / seconds, seconds)
    finally:
        for rx in receivers:
            rx.close()
        stop(sender)
        for d in daemons:
            d.stop()
        lab.teardown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--edges", type=int, nargs="+", default=[5, 20],
                        help="numbers of edges to simulate (default: 5 20)")
    parser.add_argument("-k", "--core", type=int, default=3, help="FRR core routers")
    parser.add_argument("--hosts", type=int, default=2, help="hosts per edge LAN (1-5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("sim_domain: needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    if not 1 <= args.hosts <= 5 or not 1 <= args.core <= 16 or \
            not all(1 <= n <= MAX_EDGES for n in args.edges):
        print(f"sim_domain: 1-{MAX_EDGES} edges, 1-16 core routers, 1-5 hosts per LAN",
              file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="sim-domain-") as tmp:
        for n in args.edges:
            workdir = Path(tmp) / f"n{n}"
            workdir.mkdir()
            results.append(run(args.core, n, args.hosts, workdir))

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:6.0f}"

    print(f"\nK = {args.core} FRR core routers (zebra, staticd, pimd), {args.hosts} hosts "
          f"per edge LAN, {GROUP_RATE:g} packets/s per group; times in ms")
    print("    N  lab-up  join-p50  join-p99  leave-p50  leave-p99  mrouter-RSS  FRR-node-RSS"
          "  mrouter-CPU  FRR-CPU")
    for r in results:
        print(f"{r.n:5d}  {r.up_s:5.1f}s  {ms(r.joins, .5)}    {ms(r.joins, .99)}    "
              f"{ms(r.leaves, .5)}     {ms(r.leaves, .99)}     "
              f"{median(r.mrouter_rss_kb) / 1024:6.1f} MB    {median(r.frr_rss_kb) / 1024:6.1f} MB"
              f"     {r.mrouter_cpu:5.1f} %   {r.frr_cpu:5.1f} %")
    print("RSS: median per mrouter daemon, median per FRR node (sum of its daemons); CPU: all "
          "mrouter daemons, all FRR daemons, over the join and leave phases, % of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
