"""Helpers for scripts/bench_router.py: paced senders, a wire capture, peers and daemons.

Everything here acts inside lab namespaces (mrouter.lab): senders are subprocesses
spawned in a node, the capture is an AF_PACKET socket opened inside a node, daemons
(mrouter, smcrouted, igmpproxy) run inside the router node and are ended by PID.

Wire times come from the kernel (SO_TIMESTAMPNS on the capture socket), so a reaction
measured as "first forwarded data packet minus the host's report" is the router's
reaction, not Python's scheduling of this script.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mrouter.errors import MrouterError  # noqa: E402
from mrouter.igmp.codec import decode_packet  # noqa: E402
from mrouter.igmp.messages import (  # noqa: E402
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)

if TYPE_CHECKING:
    from mrouter.lab import Lab, Node

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4  # sll_pkttype of a frame this host sends (linux/if_packet.h)
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD on x86_64/arm64; Python's socket lacks it
IP_PROTO_IGMP = 2
IP_PROTO_UDP = 17
DATA_PORT = 5000


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- senders ------------------------------------------------------------------------------

_SENDER = r"""
import socket, sys, time
from ipaddress import IPv4Address
base, count, rate, port, size = (IPv4Address(sys.argv[1]), int(sys.argv[2]),
                                 float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
dests = [(str(base + i), port) for i in range(count)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
"""

SEND_LOOP = r"""
payload = b"\0" * size
send = s.sendto
n = len(dests)
i = 0
if rate <= 0:  # as fast as possible
    while True:
        try:
            send(payload, dests[i])
        except OSError:
            pass
        i += 1
        if i == n:
            i = 0
t0 = time.perf_counter()
sent = 0
while True:  # paced: catch up to rate * elapsed, then sleep a little
    due = int((time.perf_counter() - t0) * rate)
    while sent < due:
        try:  # paced packets carry their send time, for "first fresh packet" figures
            send(time.time_ns().to_bytes(8, "big") + payload[8:], dests[i])
        except OSError:
            pass
        sent += 1
        i += 1
        if i == n:
            i = 0
    time.sleep(0.0001)
"""
"""The sending loop of a sender script (``_SENDER``, bench6's ``_SENDER6``): after a
setup that defines ``s`` (the socket), ``dests``, ``rate`` and ``size``, round robin to
``dests``, as fast as it can (rate 0) or paced, paced packets carrying their send time."""
_SENDER += SEND_LOOP


def start_sender(node: Node, group: IPv4Address, *, count: int = 1, rate: float = 0.0,
                 size: int = 64, port: int = DATA_PORT) -> subprocess.Popen[str]:
    """A UDP sender in ``node`` to ``count`` groups from ``group`` up, round robin, TTL 8,
    at ``rate`` packets/s (0: as fast as it can). End it with :func:`stop`."""
    return node.spawn([sys.executable, "-c", _SENDER, str(group), str(count), str(rate),
                       str(port), str(size)], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 3.0) -> None:
    """End a process we started, by its PID: SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


# --- the wire capture ---------------------------------------------------------------------

@dataclass(slots=True)
class IgmpEvent:
    time_ns: int
    kind: str  # "join" or "leave"
    group: IPv4Address
    outgoing: bool


@dataclass(slots=True)
class GroupData:
    first_ns: int
    last_ns: int
    count: int = 1
    # (wire time, send time from the paced sender's payload) of the first few packets
    early: list[tuple[int, int]] = field(default_factory=list)


EARLY_KEPT = 32  # enough to see past the <= 4 packets a kernel queues for unresolved (S,G)


@dataclass
class Capture:
    """Frames on one interface of a node, both directions, with kernel timestamps.

    Keeps the IGMP membership events (reports that join, leaves and TO_IN({}) records)
    and, per group, the first and last *outgoing* UDP datagram (forwarded data).
    """

    node: Node
    iface: str
    igmp: list[IgmpEvent] = field(default_factory=list)
    data: dict[IPv4Address, GroupData] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _sock: socket.socket | None = None

    def __enter__(self) -> Capture:
        with self.node.enter():
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((self.iface, ETH_P_ALL))
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()

    def _loop(self) -> None:
        assert self._sock is not None
        ancillary = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, cmsgs, _, address = self._sock.recvmsg(2048, ancillary)
            except TimeoutError:
                continue
            except OSError:
                return
            stamp = time.time_ns()
            for level, kind, value in cmsgs:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("@qq", value[:16])
                    stamp = sec * 1_000_000_000 + nsec
            self._frame(frame, stamp, address[2] == PACKET_OUTGOING)

    def _frame(self, frame: bytes, stamp: int, outgoing: bool) -> None:
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            return
        ip = frame[14:]
        proto = ip[9]
        if proto == IP_PROTO_UDP and outgoing:
            group = IPv4Address(ip[16:20])
            payload_at = ((ip[0] & 0x0F) << 2) + 8
            sent = int.from_bytes(ip[payload_at:payload_at + 8], "big")
            with self._lock:
                seen = self.data.get(group)
                if seen is None:
                    seen = self.data[group] = GroupData(stamp, stamp, 0)
                seen.last_ns = stamp
                seen.count += 1
                if len(seen.early) < EARLY_KEPT:
                    seen.early.append((stamp, sent))
        elif proto == IP_PROTO_IGMP:
            total = int.from_bytes(ip[2:4], "big")
            try:
                msg = decode_packet(ip[:total]).igmp
            except MrouterError:
                return
            events = [IgmpEvent(stamp, kind, group, outgoing)
                      for kind, group in membership_events(msg)]
            with self._lock:
                self.igmp.extend(events)

    def first_data(self, group: IPv4Address) -> int | None:
        with self._lock:
            seen = self.data.get(group)
            return seen.first_ns if seen else None

    def first_fresh_data(self, group: IPv4Address, sent_after_ns: int) -> int | None:
        """Wire time of the first forwarded packet that the (paced) sender sent after
        ``sent_after_ns``: not one the kernel had queued for an unresolved (S,G)."""
        with self._lock:
            seen = self.data.get(group)
            early = list(seen.early) if seen else []
        return next((stamp for stamp, sent in early if sent > sent_after_ns), None)

    def last_data(self, group: IPv4Address) -> int | None:
        with self._lock:
            seen = self.data.get(group)
            return seen.last_ns if seen else None

    def first_igmp(self, kind: str, group: IPv4Address, after_ns: int = 0) -> int | None:
        """Kernel time of the first incoming (host) ``kind`` event for ``group``."""
        with self._lock:
            for event in self.igmp:
                if (event.kind == kind and event.group == group and not event.outgoing
                        and event.time_ns >= after_ns):
                    return event.time_ns
        return None


def membership_events(msg: object) -> list[tuple[str, IPv4Address]]:
    """("join"|"leave", group) for each membership change a host's message states."""
    if isinstance(msg, V1Report | V2Report):
        return [("join", msg.group)]
    if isinstance(msg, V2Leave):
        return [("leave", msg.group)]
    if isinstance(msg, V3Report):
        return record_events(msg.records)
    return []


def record_events(records: Sequence[Any]) -> list[tuple[str, Any]]:
    """("join"|"leave", group) for the IGMPv3 or MLDv2 group records (the record types
    are the same) that change a membership: to or is EXCLUDE, or sources allowed or
    included, is a join; to INCLUDE, or INCLUDE with no source, is a leave."""
    events = []
    for rec in records:
        if rec.record_type in (RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE_MODE) \
                or (rec.record_type in (RecordType.MODE_IS_INCLUDE,
                                        RecordType.ALLOW_NEW_SOURCES) and rec.sources):
            events.append(("join", rec.group))
        elif rec.record_type in (RecordType.CHANGE_TO_INCLUDE_MODE,
                                 RecordType.MODE_IS_INCLUDE) and not rec.sources:
            events.append(("leave", rec.group))
    return events


# --- host membership ----------------------------------------------------------------------

class HostMember:
    """A socket in a host node that joins and leaves groups on one interface (ip_mreqn)."""

    def __init__(self, node: Node, iface: str) -> None:
        self.ifindex = node.ifindex(iface)
        with node.enter():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def _mreqn(self, group: IPv4Address) -> bytes:
        return struct.pack("4s4si", group.packed, b"\0\0\0\0", self.ifindex)

    def join(self, group: IPv4Address) -> int:
        """Join; returns the wall-clock time of the call in ns."""
        stamp = time.time_ns()
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, self._mreqn(group))
        return stamp

    def leave(self, group: IPv4Address) -> int:
        stamp = time.time_ns()
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, self._mreqn(group))
        return stamp

    def close(self) -> None:
        self.sock.close()


# --- reading kernel state inside a node ---------------------------------------------------

def read_proc(node: Node, name: str) -> str:
    """/proc/net/NAME as the node's namespace sees it (thread-self follows setns)."""
    with node.enter(), open(f"/proc/thread-self/net/{name}") as f:
        return f.read()


def tx_packets(node: Node, iface: str) -> int:
    """Packets sent by ``iface`` of ``node`` (/proc/net/dev)."""
    for line in read_proc(node, "dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        if name.strip() == iface:
            return int(rest.split()[9])
    raise LookupError(f"{node.name}: no interface {iface}")


def mfc_entries(node: Node) -> list[tuple[IPv4Address, IPv4Address, int, str]]:
    """(group, origin, iif, oifs text) per kernel MFC entry (/proc/net/ip_mr_cache)."""
    entries = []
    for line in read_proc(node, "ip_mr_cache").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 6:
            continue
        group = IPv4Address(bytes.fromhex(parts[0])[::-1])
        origin = IPv4Address(bytes.fromhex(parts[1])[::-1])
        entries.append((group, origin, int(parts[2]), " ".join(parts[6:])))
    return entries


def forwarding_entries(node: Node) -> int:
    """MFC entries that forward somewhere (resolved, with at least one outbound VIF)."""
    return sum(1 for _, _, iif, oifs in mfc_entries(node) if iif >= 0 and oifs)


def vif_count(node: Node) -> int:
    return len(read_proc(node, "ip_mr_vif").splitlines()) - 1


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise LookupError(f"no VmRSS for pid {pid}")


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(pid: int, quiet: float = 0.5, timeout: float = 60.0) -> float:
    """Wait until a process uses no CPU for ``quiet`` seconds; returns the seconds waited."""
    t0 = time.perf_counter()
    last, since = cpu_ticks(pid), t0
    while time.perf_counter() - t0 < timeout:
        time.sleep(0.05)
        now, ticks = time.perf_counter(), cpu_ticks(pid)
        if ticks != last:
            last, since = ticks, now
        elif now - since >= quiet:
            break
    return time.perf_counter() - t0


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.002,
             max_interval: float | None = None) -> bool:
    """Poll until true or timeout; with ``max_interval`` the interval grows 1.5x per poll
    up to it (an expensive check must not starve a slow daemon of CPU)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
        if max_interval is not None:
            interval = min(interval * 1.5, max_interval)
    return predicate()


# --- daemons ------------------------------------------------------------------------------

@dataclass
class Daemon:
    """A multicast routing daemon started in a node; ``ready()`` is true once it answers."""

    name: str
    proc: subprocess.Popen[str]
    ready: Callable[[], bool]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 10.0, interval: float = 0.002) -> float:
        """Seconds until ready (measured from now); raises if the daemon died or hung."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            if self.ready():
                return time.perf_counter() - t0
            time.sleep(interval)
        raise RuntimeError(f"{self.name} not ready after {timeout:g} s; log {self.log}")

    def stop(self) -> None:
        stop(self.proc)


def _spawn(node: Node, name: str, argv: list[str], workdir: Path) -> tuple[
        subprocess.Popen[str], Path]:
    log = workdir / f"{name}.log"
    with open(log, "w") as out:
        proc = node.spawn(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    return proc, log


def mrouter_config(interfaces: dict[str, dict[str, Any]],
                   routes: Sequence[dict[str, Any]] = ()) -> str:
    lines = ['mode = "router"']
    for name, keys in interfaces.items():
        lines.append(f"[interfaces.{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in keys.items()]
    for route in routes:
        lines.append("[[routes]]")
        lines += [f"{k} = {_toml(v)}" for k, v in route.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def start_mrouter(node: Node, workdir: Path, config: str, tag: str = "mrouter") -> Daemon:
    from mrouter.router.control import request

    cfg = workdir / f"{tag}.toml"
    cfg.write_text(config)
    sock = workdir / f"{tag}.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    proc, log = _spawn(node, tag, [sys.executable, "-m", "mrouter", "run", "--config",
                                   str(cfg), "--socket", str(sock)], workdir)

    def ready() -> bool:
        try:
            request(sock, "show", timeout=2.0, what="interfaces")
        except MrouterError:
            return False
        return True

    return Daemon("mrouter", proc, ready, log)


def start_smcroute(node: Node, workdir: Path, config: str, tag: str = "smcroute") -> Daemon:
    cfg = workdir / f"{tag}.conf"
    cfg.write_text(config)
    sock = workdir / f"{tag}.sock"
    proc, log = _spawn(node, tag, ["smcrouted", "-n", "-f", str(cfg), "-u", str(sock),
                                   "-P", str(workdir / f"{tag}.pid"), "-i", tag,
                                   "-l", "notice"], workdir)

    def ready() -> bool:
        done = subprocess.run(["smcroutectl", "-u", str(sock), "show"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              check=False)
        return done.returncode == 0

    return Daemon("smcroute", proc, ready, log)


def start_igmpproxy(node: Node, workdir: Path, config: str, vifs: int,
                    tag: str = "igmpproxy") -> Daemon:
    """igmpproxy has no control socket: ready once its VIFs are in the kernel."""
    cfg = workdir / f"{tag}.conf"
    cfg.write_text(config)
    proc, log = _spawn(node, tag, ["igmpproxy", "-n", "-d", str(cfg)], workdir)
    return Daemon("igmpproxy", proc, lambda: vif_count(node) >= vifs, log)


def igmpproxy_config(upstream: str, downstreams: Sequence[str], *,
                     quickleave: bool = False) -> str:
    lines = ["quickleave"] if quickleave else []
    lines += [f"phyint {upstream} upstream ratelimit 0 threshold 1", "  altnet 0.0.0.0/0"]
    lines += [f"phyint {d} downstream ratelimit 0 threshold 1" for d in downstreams]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        daemon.stop()


def lab_from_text(text: str, workdir: Path, name: str) -> Lab:
    from mrouter.lab import Lab

    path = workdir / f"{name}.toml"
    path.write_text(text)
    return Lab.from_file(path)
