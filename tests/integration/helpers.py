"""Helpers shared by the integration tests: one place for each (a test file never
defines its own sender, sniffer or member, nor imports from another test file).

- the daemon: :func:`start` (``mrouter -v run`` in a node, once it answers), the
  :class:`Daemon` handle, the BASIC and LAN configs, :func:`groups`, :func:`entry`;
- traffic: :func:`send`, the one datagram sender (any node, TTL, interface, source,
  even a spoofed one), and :func:`sniffer`, the one wire reader: an AF_PACKET socket
  that sees what a router puts on the wire without joining the group (a join would
  itself create membership), decoded with mrouter's own IPv4 codec (parse_header);
- multicast sockets: :func:`open_receiver` (a bound, receive-info socket of either
  family's class), :func:`collect` (what arrives until the sockets go quiet);
- hosts: :func:`member` (a socket that joined a group), :func:`received`,
  :func:`host_igmp` (IGMP version and report pace), :func:`users` (the kernel's table);
- watchers: :func:`spawn_ready` (a program in a node, once its stderr says it is
  ready), :func:`start_watch` (``mrouter igmp|mld watch --json``, once it listens) and
  :func:`watch_rows` (its JSON lines once it exits 0);
- waiting and leftovers: :func:`wait_for`, :func:`netns_list`, :func:`host_links`;
- the kernel binding: :func:`kernel_socket` (a family's routing socket in r1 with
  VIFs/MIFs 0 = up0 and 1 = dn0), :func:`basic_ipv6` (basic.toml's IPv6 addresses);
- IPv6: :func:`ipv6_addresses` (IPv6 on, addresses without DAD), :func:`send6`,
  :func:`member6`, :func:`flow6` (a steady sender while a block runs), :func:`router6`
  (a stand-in IPv6 multicast router holding the MIFs and routes a test chooses).

Import them as ``from helpers import ...`` (pytest puts this folder on the path). Every
packet goes out inside a lab node's namespace: the helpers take the lab and a node name,
and make their sockets inside the node from the test's thread.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest

from mrouter.igmp.ipv4 import IPv4Header, build_header, parse_header
from mrouter.linux.constants import ETH_P_IP, IP_MREQN
from mrouter.router.control import request, wait_answering
from mrouter.sockets import mcast
from mrouter.sockets.mcast import Datagram

SOURCE = "198.51.100.2"
PORT = 5000
IP_BLOCK_SOURCE = 38  # linux/in.h; Python's socket module lacks the source-filter options
IP_ADD_SOURCE_MEMBERSHIP = 39
#: source port, destination port, length, checksum (RFC 768)
UDP_HEADER = struct.Struct("!HHHH")

BASIC = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
[[routes]]
source = "198.51.100.2"
group = "239.1.1.1"
from = "up0"
to = ["dn0"]
[[routes]]
group = "239.3.0.0/16"
from = "up0"
to = ["dn0"]
"""

LAN = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
last_member_query_interval = 0.2
"""


class Daemon:
    def __init__(self, proc: subprocess.Popen[str], sock: Path, log: Path,
                 config: Path) -> None:
        self.proc, self.sock, self.log, self.config = proc, sock, log, config

    def __call__(self, command: str, **args: Any) -> Any:
        return request(self.sock, command, **args)

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrouter", *argv, "--socket",
                               str(self.sock)], capture_output=True, text=True, timeout=30)


def start(lab: Any, tmp_path: Path, config: str, *extra: str, node: str = "r1",
          env: dict[str, str] | None = None, verbose: bool = True) -> Daemon:
    """`mrouter -v run` in ``node`` with this config (and ``extra`` run options), once it
    answers; its config, control socket and log are tmp_path/NODE.toml, .sock and .log.
    ``env``: the daemon's environment (default: the test's); ``verbose=False`` runs it
    at its default log level."""
    path = tmp_path / f"{node}.toml"
    path.write_text(config)
    sock, log = tmp_path / f"{node}.sock", tmp_path / f"{node}.log"
    with log.open("w") as err:
        proc = lab.node(node).spawn([sys.executable, "-m", "mrouter",
                                     *(["-v"] if verbose else []), "run", "--config",
                                     str(path), "--socket", str(sock), *extra], stderr=err,
                                    env=env)
    if not wait_answering(sock, lambda: proc.poll() is None):
        raise AssertionError(f"{node}'s daemon did not start:\n{log.read_text()}")
    return Daemon(proc, sock, log, path)


def send(lab: Any, group: str, tag: str, count: int = 5, *, node: str = "sender",
         iface: str | None = "eth0", source: str | None = None, spoof: bool = False,
         ttl: int = 8, port: int = PORT, gap: float = 0.01) -> list[bytes]:
    """``count`` UDP datagrams ``b"TAG 0"``, ``b"TAG 1"``... from ``node`` to ``group``
    (a multicast group, or a unicast address), ``gap`` s apart; returns the payloads.

    They leave by ``iface`` (IP_MULTICAST_IF; None: the node's routes choose) with this
    TTL. ``source`` is the IP source: one of the node's addresses (the socket binds it),
    or with ``spoof`` any address: the header is then mrouter's own (build_header)
    through a raw socket, for packets that claim to come from elsewhere.
    """
    forged_from = None
    if spoof:
        if source is None:
            raise ValueError("spoof=True needs the source to write into the header")
        forged_from = IPv4Address(source)
    where = lab.node(node)
    ifindex = None if iface is None else where.ifindex(iface)
    with where.enter():
        if forged_from is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payloads = [f"{tag} {n}".encode() for n in range(count)]
    with sock:
        if forged_from is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        elif source is not None:
            sock.bind((source, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if ifindex is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                            IP_MREQN.pack(bytes(4), bytes(4), ifindex))
        for payload in payloads:
            if forged_from is None:
                sock.sendto(payload, (group, port))
            else:
                packet = udp_packet(forged_from, IPv4Address(group), port, ttl, payload)
                sock.sendto(packet, (group, 0))
            if gap:
                time.sleep(gap)
    return payloads


def udp_packet(source: IPv4Address, group: IPv4Address, port: int, ttl: int,
               payload: bytes) -> bytes:
    """A whole IPv4 + UDP packet: the header from mrouter's build_header, no options,
    the UDP checksum 0 (none: RFC 768 allows it over IPv4)."""
    udp = UDP_HEADER.pack(port, port, UDP_HEADER.size + len(payload), 0) + payload
    return build_header(source, group, len(udp), ttl=ttl, tos=0,
                        protocol=socket.IPPROTO_UDP, options=b"") + udp


class Sniffed(NamedTuple):
    """One UDP datagram as a sniffer saw it: its IPv4 header (mrouter's parse_header)
    and the UDP payload."""

    header: IPv4Header
    payload: bytes


class Sniffer:
    """UDP datagrams seen on one interface of a node, read with an AF_PACKET socket (it
    joins nothing, so it creates no membership) and decoded with mrouter's IPv4 codec."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def packets(self, group: str, wait: float = 1.0) -> list[Sniffed]:
        """The UDP datagrams to ``group`` that arrive until none has come for a while:
        ``wait`` s for the first, then 0.3 s."""
        out = []
        while select.select([self.sock], [], [], wait)[0]:
            packet = self.sock.recv(65535)
            wait = 0.3
            header = parse_header(packet)
            if header.protocol == socket.IPPROTO_UDP and header.dst == IPv4Address(group):
                udp = packet[header.header_len:header.total_len]
                out.append(Sniffed(header, udp[UDP_HEADER.size:]))
        return out

    def __call__(self, group: str, wait: float = 1.0) -> list[bytes]:
        """The payloads of :meth:`packets`, in the order they were seen."""
        return [p.payload for p in self.packets(group, wait)]


@contextmanager
def sniffer(lab: Any, node: str, iface: str = "eth0") -> Iterator[Sniffer]:
    """A :class:`Sniffer` on ``node``'s ``iface`` while the block runs."""
    with lab.node(node).enter():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    with sock:
        sock.bind((iface, ETH_P_IP))
        yield Sniffer(sock)


@contextmanager
def member(lab: Any, node: str, group: str, source: str | None = None
           ) -> Iterator[socket.socket]:
    """A receiver that joined ``group`` on eth0 (the host's kernel sends the reports),
    or with ``source`` only (source, group): an IGMPv3 INCLUDE {source} report."""
    address = lab.node(node).address("eth0")
    with lab.node(node).enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((group, PORT))
        if source is None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                            IPv4Address(group).packed + address.packed)
        else:  # struct ip_mreq_source: imr_multiaddr, imr_interface, imr_sourceaddr
            sock.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP,
                            IPv4Address(group).packed + address.packed
                            + IPv4Address(source).packed)
        yield sock


def host_igmp(lab: Any, node: str, version: int, iface: str = "eth0") -> None:
    """Make ``node``'s kernel speak IGMP ``version`` and repeat its unsolicited reports
    100 ms apart (instead of 1 s or 10 s), so a test sees a join's reports quickly."""
    host = lab.node(node)
    host.sysctl("net.ipv4.conf.all.force_igmp_version", str(version))
    host.sysctl(f"net.ipv4.conf.{iface}.igmpv2_unsolicited_report_interval", "100")  # ms
    host.sysctl(f"net.ipv4.conf.{iface}.igmpv3_unsolicited_report_interval", "100")


def received(sock: socket.socket, wait: float = 1.0) -> list[bytes]:
    """What arrives on ``sock`` until nothing has come for a while: ``wait`` s for the
    first datagram, then 0.3 s."""
    out = []
    while select.select([sock], [], [], wait)[0]:
        out.append(sock.recv(65535))
        wait = 0.3
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` every 50 ms; fail the test if it is not true within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def users(node: Any, group: str, iface: str | None = None) -> int:
    """How many sockets in ``node`` hold ``group`` (on ``iface``, or on any interface),
    as the kernel's membership table says."""
    with node.enter():
        table = mcast.memberships()
    return sum(g.users for ifm, g in mcast.iter_memberships(table)
               if g.group == IPv4Address(group) and iface in (None, ifm.name))


def groups(daemon: Daemon) -> set[tuple[str, str]]:
    return {(g["iface"], g["group"]) for g in daemon("show", what="groups")}


def entry(daemon: Daemon, group: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in daemon("show", what="routes")["entries"]
                                   if e["group"] == group]
    assert len(found) == 1, found
    return found[0]


def netns_list() -> set[str]:
    """The host's named network namespaces (`ip netns list`)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def host_links() -> set[str]:
    """The host namespace's interface names: a lab must leave them as it found them."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


# --- IPv6 (until lab topologies take IPv6 addresses) ---------------------------------------

#: struct ipv6_mreq { struct in6_addr ipv6mr_multiaddr; unsigned int ipv6mr_interface; }
IPV6_MREQ = struct.Struct("@16sI")


def ipv6_addresses(lab: Any, addresses: dict[tuple[str, str], str]) -> None:
    """Turn IPv6 on (labs start with it off) on each (node, interface) and give it the
    address (``2001:db8:...::N/64``), without duplicate address detection, so that it
    is usable at once; link-local addresses come with it, also without DAD."""
    for (node, iface), address in addresses.items():
        where = lab.node(node)
        where.sysctl(f"net.ipv6.conf.{iface}.accept_dad", 0)
        where.sysctl(f"net.ipv6.conf.{iface}.disable_ipv6", 0)
        where.run(["ip", "-6", "addr", "add", address, "dev", iface, "nodad"], check=True)


def send6(lab: Any, group: str, tag: str, count: int = 5, *, node: str = "sender",
          iface: str = "eth0", hops: int = 8, gap: float = 0.01) -> list[bytes]:
    """``count`` UDP datagrams ``b"TAG 0"``... from ``node`` to the IPv6 ``group``, out of
    ``iface`` with this hop limit, from the interface's global address; the payloads."""
    where = lab.node(node)
    ifindex = where.ifindex(iface)
    with where.enter():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    payloads = [f"{tag} {n}".encode() for n in range(count)]
    with sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
        for payload in payloads:
            sock.sendto(payload, (group, PORT))
            if gap:
                time.sleep(gap)
    return payloads


@contextmanager
def member6(lab: Any, node: str, group: str, iface: str = "eth0") -> Iterator[socket.socket]:
    """A receiver that joined the IPv6 ``group`` on ``iface`` (its kernel sends the MLD)."""
    where = lab.node(node)
    ifindex = where.ifindex(iface)
    with where.enter():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", PORT))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                        IPV6_MREQ.pack(IPv6Address(group).packed, ifindex))
        yield sock


ROUTER6_STANDIN = Path(__file__).with_name("router6_standin.py")


@contextmanager
def router6(lab: Any, node: str = "r1", mifs: tuple[str, ...] = ("up0", "dn0"),
            routes: tuple[str, ...] = (), table: int | None = None,
            sock: Path | None = None, members: tuple[str, ...] = (),
            ) -> Iterator[subprocess.Popen[str]]:
    """A stand-in IPv6 multicast router in ``node`` while the block runs: a process
    holding an IPv6 table with these MIFs (``"dn0:8"``: threshold 8) and routes
    (``"S,G,IIF,OIF+OIF"``), answering no upcall (see router6_standin.py); with
    ``sock``, it answers ``show`` there as a dual-stack daemon would, with these
    listeners (``"IFACE,GROUP"``)."""
    argv = [sys.executable, str(ROUTER6_STANDIN)]
    argv += [f"--mif={m}" for m in mifs] + [f"--route={r}" for r in routes]
    if table is not None:
        argv.append(f"--table={table}")
    if sock is not None:
        argv += [f"--socket={sock}", *(f"--member={m}" for m in members)]
    proc = lab.node(node).spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.wait(timeout=10)
            raise AssertionError(f"the IPv6 stand-in router did not start: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def flow6(lab: Any, group: str, *, node: str = "sender", iface: str = "eth0",
          hops: int = 8, interval: float = 0.02) -> Iterator[None]:
    """``node`` sends a datagram to the IPv6 ``group`` every ``interval`` s, out of
    ``iface`` with this hop limit, while the block runs."""
    import threading

    where = lab.node(node)
    ifindex = where.ifindex(iface)
    with where.enter():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    stop = threading.Event()
    with sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)

        def loop() -> None:
            while not stop.wait(interval):
                sock.sendto(b"explain me, IPv6", (group, PORT))

        thread = threading.Thread(target=loop, name=f"flow6 {group}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


BASIC_IPV6 = {
    ("sender", "eth0"): "2001:db8:1::2/64",
    ("r1", "up0"): "2001:db8:1::1/64",
    ("r1", "dn0"): "2001:db8:2::1/64",
    ("receiver", "eth0"): "2001:db8:2::2/64",
}
"""basic.toml's IPv6 plan: sender 2001:db8:1::2 -- up0 r1 dn0 -- receiver 2001:db8:2::2."""


def basic_ipv6(lab: Any) -> Any:
    """Give the basic.toml lab its IPv6 addresses (:data:`BASIC_IPV6`) and turn on IPv6
    forwarding in r1; the lab."""
    ipv6_addresses(lab, BASIC_IPV6)
    lab.node("r1").sysctl("net.ipv6.conf.all.forwarding", 1)
    return lab


@contextmanager
def kernel_socket(lab: Any, socket_class: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    """A kernel multicast routing socket of ``socket_class`` (MrouteSocket or
    Mroute6Socket, made with ``kwargs``) opened inside r1, with VIF/MIF 0 on up0 and 1 on
    dn0; closed after the block."""
    r1 = lab.node("r1")
    with r1.enter():
        mrt = socket_class(**kwargs)
    try:
        mrt.add_vif(0, r1.ifindex("up0"))
        mrt.add_vif(1, r1.ifindex("dn0"))
        yield mrt
    finally:
        mrt.close()


S = TypeVar("S", bound=Any)


def open_receiver(node: Any, closing: ExitStack, socket_class: Callable[[], S], port: int
                  ) -> S:
    """A receiving socket of ``socket_class`` (McastSocket or Mcast6Socket) in ``node``,
    bound to ``port``: only the groups it joins (multicast_all off), with TTL/hop limit
    and pktinfo, non-blocking; ``closing`` closes it."""
    with node.enter():
        sock: S = closing.enter_context(socket_class())
        sock.multicast_all = False
        sock.enable_receive_info()
        sock.bind(port)
    sock.sock.setblocking(False)
    return sock


def collect(*socks: S, quiet: float = 0.3, limit: float = 3.0) -> dict[S, list[Datagram]]:
    """Everything that arrives on ``socks`` until nothing more comes for ``quiet`` s (at
    most ``limit`` s)."""
    got: dict[S, list[Datagram]] = {s: [] for s in socks}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(socks), [], [], quiet)
        if not ready:
            break
        for s in ready:
            while (dg := s.recv()) is not None:
                got[s].append(dg)
    return got


def spawn_ready(node: Any, argv: list[str], ready: str, what: str, *, cwd: Path | None = None,
                stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """``argv`` started in ``node``, once a line of its stderr says ``ready`` (within
    30 s); else it is killed and the test fails: "WHAT did not start" and its stderr."""
    proc: subprocess.Popen[str] = node.spawn(argv, stdout=stdout, stderr=subprocess.PIPE,
                                             cwd=cwd)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not select.select([proc.stderr], [], [], deadline - time.monotonic())[0]:
            break
        text = proc.stderr.readline()
        if ready in text:
            return proc
        if not text:
            break
    proc.kill()
    pytest.fail(f"{what} did not start: {proc.communicate(timeout=10)[1]}")


def start_watch(node: Any, args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """``python -m mrouter ARGS`` (a watch) in ``node``, run from ``cwd``, once its stderr
    says it is listening (:func:`spawn_ready`)."""
    return spawn_ready(node, [sys.executable, "-m", "mrouter", *args], "listening on",
                       "watch", cwd=cwd)


def watch_rows(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """The JSON lines a watch printed, once it exits (within 40 s) with status 0."""
    out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, f"watch exited {proc.returncode}: {err}"
    return [json.loads(text) for text in out.splitlines()]
