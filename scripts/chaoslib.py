"""Faults against a running `mrouter run`, for scripts/chaos.py and tests/integration/test_chaos.py.

Every fault runs in a fresh lab (:class:`Bed`): r1 routes between the sender's link and a
LAN on which h1 is a *staying member* receiving a numbered flow (``mrouter send`` at
``rate`` packets/s; its sequence numbers tell every lost packet), h2 is the host that
floods, h3 (192.0.2.5, below r1's 192.0.2.10) the one that plays a rogue querier. A
fault returns a :class:`Row`: ``ok``, one line of figures a user would look at (time
until the member gets packets again, packets lost, ``show`` latency from a well-behaved
control client, RSS...) and, when the daemon died or stopped answering, that, in words.
Sizes are parameters: the script runs the full versions, the tests short ones.

Everything acts inside the lab's namespaces (the lab API, the daemon starter of
tests/integration/helpers.py, scripts/benchlib.py's kernel-table readers); every
process started here is ended by its PID and every lab torn down in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INTEGRATION = ROOT / "tests" / "integration"
for _path in (ROOT, HERE, INTEGRATION):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import benchlib  # noqa: E402
from helpers import Daemon, start  # noqa: E402

from mrouter.errors import ControlError, MrouterError  # noqa: E402
from mrouter.igmp.codec import encode_packet  # noqa: E402
from mrouter.igmp.messages import (  # noqa: E402
    ALL_IGMPV3_ROUTERS,
    ALL_SYSTEMS,
    GroupRecord,
    Query,
    RecordType,
    V3Report,
    value_to_code,
)
from mrouter.igmp.settings import DEFAULTS  # noqa: E402
from mrouter.lab import Lab  # noqa: E402
from mrouter.router.control import request  # noqa: E402
from mrouter.traffic import payload  # noqa: E402

MROUTER = [sys.executable, "-m", "mrouter"]
GROUP = "239.1.1.1"
PORT = 5000
R1_LAN = "192.0.2.10"
ROGUE = "192.0.2.5"
FLOODER = "192.0.2.12"

TOPOLOGY = f"""\
description = "chaos: sender -- r1 -- LAN lan0 with h1 (member), h2 (flooder), h3 (rogue)"
[nodes.sender]
kind = "host"
default_route = "198.51.100.1"
[nodes.r1]
kind = "router"
[nodes.h1]
kind = "host"
default_route = "{R1_LAN}"
[nodes.h2]
kind = "host"
default_route = "{R1_LAN}"
[nodes.h3]
kind = "host"
default_route = "{R1_LAN}"
[[links]]
endpoints = [
  {{ node = "sender", iface = "eth0", address = "198.51.100.2/24" }},
  {{ node = "r1", iface = "up0", address = "198.51.100.1/24" }},
]
[lans.lan0]
members = [
  {{ node = "r1", iface = "dn0", address = "{R1_LAN}/24" }},
  {{ node = "h1", iface = "eth0", address = "192.0.2.11/24" }},
  {{ node = "h2", iface = "eth0", address = "{FLOODER}/24" }},
  {{ node = "h3", iface = "eth0", address = "{ROGUE}/24" }},
]
"""


def config(*, query_interval: float = 4.0, query_response_interval: float = 2.0,
           max_groups: int = 2000, extra_interfaces: int = 0,
           max_query_interval: float | None = None) -> str:
    """Router mode, up0 and the LAN's dn0 (IGMPv3); a restarted daemon hears the member
    within query_response_interval of its first (startup) query."""
    lines = ['mode = "router"', "[interfaces.up0]", "[interfaces.dn0]", "igmp_version = 3",
             f"query_interval = {query_interval}",
             f"query_response_interval = {query_response_interval}",
             f"max_groups = {max_groups}"]
    if max_query_interval is not None:
        lines.append(f"max_query_interval = {max_query_interval}")
    lines += [f"[interfaces.x{n}]" for n in range(1, extra_interfaces + 1)]
    return "\n".join(lines) + "\n"


def many_interfaces_topology(extra: int) -> str:
    """TOPOLOGY plus ``extra`` links r1 xN -- far yN, each a /30 of 203.0.113.0/24."""
    text = TOPOLOGY.replace("[[links]]", '[nodes.far]\nkind = "host"\n[[links]]', 1)
    for n in range(1, extra + 1):
        base = 4 * (n - 1)
        text += ("[[links]]\nendpoints = [\n"
                 f'  {{ node = "r1", iface = "x{n}", address = "203.0.113.{base + 1}/30" }},\n'
                 f'  {{ node = "far", iface = "y{n}", address = "203.0.113.{base + 2}/30" }},\n'
                 "]\n")
    return text


# --- results --------------------------------------------------------------------------

@dataclass
class Row:
    fault: str
    ok: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.2f} s"


# --- the staying member's numbered flow -------------------------------------------------

class Flow:
    """``mrouter send`` from the sender to GROUP, and h1 joined to it, recording (time,
    sequence number) of every datagram it receives."""

    def __init__(self, lab: Lab, rate: float) -> None:
        self.rate = rate
        self.arrivals: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        h1 = lab.node("h1")
        address = h1.address("eth0")
        with h1.enter():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((GROUP, PORT))
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                             IPv4Address(GROUP).packed + address.packed)
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        self.sender = lab.node("sender").spawn(
            [*MROUTER, "send", f"{GROUP}:{PORT}", "--ttl", "8", "--rate", str(rate),
             "--count", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(payload.PayloadError):
                seq = payload.decode(data).seq
                with self._lock:
                    self.arrivals.append((time.monotonic(), seq))

    def close(self) -> None:
        benchlib.stop(self.sender)
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _copy(self) -> list[tuple[float, int]]:
        with self._lock:
            return list(self.arrivals)

    def first_after(self, t: float) -> float | None:
        return next((at for at, _ in self._copy() if at > t), None)

    def wait_receiving(self, after: float, timeout: float) -> float | None:
        """Seconds from ``after`` until a datagram arrives after it (None: none came)."""
        benchlib.wait_for(lambda: self.first_after(after) is not None, timeout, 0.01)
        first = self.first_after(after)
        return None if first is None else first - after

    def lost(self, t0: float, t1: float) -> int:
        """Sequence numbers missing from the last arrival before ``t0`` to the first
        after ``t1`` (an outage at either edge counts); 0 if nothing arrived after."""
        arrivals = self._copy()
        before = [seq for at, seq in arrivals if at < t0][-1:]
        inside = [seq for at, seq in arrivals if t0 <= at <= t1]
        after = [seq for at, seq in arrivals if at > t1][:1]
        seqs = sorted(set(before + inside + after))
        if len(seqs) < 2:
            return 0
        return seqs[-1] - seqs[0] + 1 - len(seqs)

    def received(self, t0: float, t1: float) -> int:
        return sum(1 for at, _ in self._copy() if t0 <= at <= t1)


# --- a well-behaved control client ------------------------------------------------------

class Prober:
    """Asks ``show interfaces`` every ``interval`` s from a thread; keeps latencies and
    failures (a ControlError: the daemon did not answer within ``timeout`` or is gone)."""

    def __init__(self, sock: Path, what: str = "interfaces", interval: float = 0.05,
                 timeout: float = 5.0) -> None:
        self.sock, self.what, self.interval, self.timeout = sock, what, interval, timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                request(self.sock, "show", timeout=self.timeout, what=self.what)
            except (ControlError, OSError, ValueError) as exc:
                self.failures.append(str(exc).replace(str(self.sock), "SOCKET"))
            else:
                self.latencies.append(time.monotonic() - t0)
            self._stop.wait(self.interval)

    def summary(self) -> str:
        text = (f"show p50 {_ms(benchlib.median(self.latencies))} "
                f"max {_ms(max(self.latencies, default=None))}")
        if self.failures:
            text += f", {len(self.failures)} unanswered ({self.failures[-1][:70]})"
        return text

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))


# --- one lab, one daemon, one flow ------------------------------------------------------

class Bed:
    """A fresh lab with the daemon running and h1 receiving the flow; tear down with
    :meth:`close` (idempotent; ends the daemon, the sender and the lab)."""

    def __init__(self, workdir: Path, *, daemon_config: str | None = None,
                 topology: str = TOPOLOGY, rate: float = 200.0) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.lab = benchlib.lab_from_text(topology, workdir, "chaos")
        self.lab.start()
        self.flow: Flow | None = None
        self.daemons: list[Daemon] = []
        try:
            self.config = daemon_config or config()
            self.daemon = self.start_daemon()
            self.flow = Flow(self.lab, rate)
            self.r1 = self.lab.node("r1")
        except BaseException:
            self.close()
            raise

    def start_daemon(self) -> Daemon:
        daemon = start(self.lab, self.workdir, self.config)
        self.daemons.append(daemon)
        return daemon

    def close(self) -> None:
        try:
            if self.flow is not None:
                self.flow.close()
            for daemon in self.daemons:
                benchlib.stop(daemon.proc)
        finally:
            self.lab.teardown()

    def alive(self) -> bool:
        return self.daemon.proc.poll() is None

    def died(self) -> str | None:
        """What a user would see if the daemon is gone: its exit and last log line."""
        code = self.daemon.proc.poll()
        if code is None:
            return None
        lines = [ln for ln in self.daemon.log.read_text(errors="replace").splitlines()
                 if ln.strip()]
        return f"daemon died (exit {code}): {lines[-1][:100] if lines else 'no log'}"

    def answers(self) -> bool:
        try:
            request(self.daemon.sock, "ping", timeout=5.0)
        except ControlError:
            return False
        return True

    def ready(self, timeout: float = 10.0) -> float | None:
        """Seconds until h1 receives the flow (None if it never did)."""
        assert self.flow is not None
        return self.flow.wait_receiving(time.monotonic(), timeout)

    def recovery(self, since: float, timeout: float = 15.0) -> float | None:
        assert self.flow is not None
        return self.flow.wait_receiving(since, timeout)

    def health(self) -> str | None:
        """None if the daemon runs and answers; else what is wrong, in words."""
        died = self.died()
        if died is not None:
            return died
        return None if self.answers() else "daemon alive but not answering ping"


@contextlib.contextmanager
def bed(workdir: Path, **kwargs: Any) -> Iterator[Bed]:
    b = Bed(workdir, **kwargs)
    try:
        yield b
    finally:
        b.close()


def _ready_or_row(b: Bed, fault: str) -> Row | None:
    if b.ready(10.0) is None:
        return Row(fault, False, "setup: the member never received the flow "
                   f"({b.health() or 'daemon runs'})")
    return None


# --- faults ---------------------------------------------------------------------------

def kill_restart(workdir: Path, rounds: int = 3) -> Row:
    """kill -9, check the kernel's tables are empty, restart: time until h1 gets the
    flow again (from the restart and from the kill), packets lost."""
    fault = f"kill -9 and restart x{rounds}"
    with bed(workdir) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        back, relearn, lost, dirty = [], [], [], []
        for _ in range(rounds):
            killed = time.monotonic()
            b.daemon.proc.send_signal(signal.SIGKILL)
            b.daemon.proc.wait(5)
            vifs, mfc = benchlib.vif_count(b.r1), len(benchlib.mfc_entries(b.r1))
            if vifs or mfc:
                dirty.append(f"{vifs} VIFs, {mfc} MFC entries")
            time.sleep(0.5)  # the member really loses its flow for a while
            restarted = time.monotonic()
            try:
                b.daemon = b.start_daemon()
            except AssertionError as exc:
                return Row(fault, False, f"restart failed: {str(exc)[:120]}")
            got = b.recovery(restarted, 15.0)
            if got is None:
                return Row(fault, False, f"member never got packets after a restart "
                           f"({b.health() or 'daemon runs'})")
            relearn.append(got)
            back.append(got + restarted - killed)
            time.sleep(1.0)
            lost.append(b.flow.lost(killed, time.monotonic()))
        ok = not dirty and b.health() is None
        detail = (f"member back {min(relearn):.2f}-{max(relearn):.2f} s after restart "
                  f"({min(back):.2f}-{max(back):.2f} s after kill), lost "
                  f"{min(lost)}-{max(lost)} pkts/outage at {b.flow.rate:g} pps, kernel tables "
                  + ("empty between" if not dirty else "NOT empty: " + "; ".join(dirty)))
        return Row(fault, ok, detail + _health_suffix(b),
                   {"relearn_s": relearn, "lost": lost, "dirty": dirty})


def _health_suffix(b: Bed) -> str:
    h = b.health()
    return "" if h is None else f"; {h}"


def link_flaps(workdir: Path, flaps: int = 20, seconds: float = 10.0) -> Row:
    """dn0 down and up ``flaps`` times in ``seconds``; then the member must get packets
    again and lose none once it does."""
    fault = f"{flaps} link flaps in {seconds:g} s"
    with bed(workdir) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        period = seconds / flaps
        t0 = time.monotonic()
        for _ in range(flaps):
            b.r1.run(["ip", "link", "set", "dn0", "down"], check=True)
            time.sleep(period / 2)
            b.r1.run(["ip", "link", "set", "dn0", "up"], check=True)
            time.sleep(period / 2)
        last_up = time.monotonic()
        back = b.recovery(last_up, 15.0)
        return _after_disturbance(b, fault, t0, last_up, back)


def _after_disturbance(b: Bed, fault: str, t0: float, t1: float, back: float | None,
                       settle: float = 2.0) -> Row:
    """The common verdict: daemon healthy, member back, then nothing lost for ``settle`` s."""
    assert b.flow is not None
    health = b.health()
    if back is None:
        return Row(fault, False, f"member never got packets again ({health or 'daemon runs'})")
    resumed = t1 + back
    time.sleep(settle)
    lost_after = b.flow.lost(resumed + 0.2, time.monotonic())
    dn0 = _iface_row(b, "dn0")
    active = dn0 is not None and dn0.get("active") is True
    ok = health is None and lost_after == 0 and active
    detail = (f"member back {back:.2f} s after the last change, lost {b.flow.lost(t0, resumed)} "
              f"pkts during, {lost_after} after; dn0 "
              f"{'active' if active else 'NOT active'}"
              + (f", ifindex {dn0['ifindex']}" if dn0 else ""))
    return Row(fault, ok, detail + ("" if health is None else f"; {health}"),
               {"back_s": back, "lost_after": lost_after})


def _iface_row(b: Bed, name: str) -> dict[str, Any] | None:
    try:
        rows = b.daemon("show", what="interfaces")
    except ControlError:
        return None
    return next((r for r in rows if r["name"] == name), None)


def recreate_interface(workdir: Path, times: int = 5) -> Row:
    """Delete r1's dn0 (its bridge port goes with it) and make it again, ``times``
    times: a new ifindex each time; the daemon must follow it."""
    fault = f"delete and re-create dn0 x{times}"
    with bed(workdir) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        assert b.lab.record is not None
        bridge_ns = b.lab.record.namespaces["lan0"]
        indexes = {b.r1.ifindex("dn0")}
        t0 = time.monotonic()
        for _ in range(times):
            b.r1.run(["ip", "link", "del", "dn0"], check=True)
            time.sleep(0.3)
            b.r1.run(["ip", "-n", bridge_ns, "link", "add", "r1-dn0", "type", "veth", "peer",
                      "name", "dn0", "netns", b.r1.netns], check=True)
            b.r1.run(["ip", "-n", bridge_ns, "link", "set", "r1-dn0", "master", "lan0", "up"],
                     check=True)
            b.r1.run(["ip", "addr", "add", f"{R1_LAN}/24", "dev", "dn0"], check=True)
            b.r1.run(["ip", "link", "set", "dn0", "up"], check=True)
            indexes.add(b.r1.ifindex("dn0"))
            time.sleep(0.5)
        last = time.monotonic()
        back = b.recovery(last, 15.0)
        row = _after_disturbance(b, fault, t0, last, back)
        dn0 = _iface_row(b, "dn0")
        follows = dn0 is not None and dn0["ifindex"] == b.r1.ifindex("dn0")
        row.ok = row.ok and follows and len(indexes) == times + 1
        row.detail += f"; {len(indexes)} ifindexes, daemon follows the last: {follows}"
        return row


BROKEN_CONFIGS = (
    "this is not toml [\n",
    'mode = "router"\n[interfaces.up0]\n[interfaces.dn0]\nnot_a_key = 1\n',
    'mode = "router"\n[interfaces.up0]\n[interfaces.dn0]\n[[routes]]\ngroup = "10.0.0.1"\n'
    'from = "up0"\nto = ["dn0"]\n',
)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sighup_storm(workdir: Path, count: int = 50, seconds: float = 10.0,
                 broken_every: int = 5) -> Row:
    """``count`` SIGHUPs in ``seconds``; every ``broken_every``-th with a broken config
    file in place (restored before the next). No gap in the member's sequence allowed."""
    fault = f"{count} SIGHUPs in {seconds:g} s, 1 in {broken_every} broken"
    with bed(workdir) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        good = b.daemon.config.read_text()
        t0 = time.monotonic()
        for n in range(count):
            broken = n % broken_every == broken_every - 1
            if broken:
                _write_atomically(b.daemon.config, BROKEN_CONFIGS[n % len(BROKEN_CONFIGS)])
            b.daemon.proc.send_signal(signal.SIGHUP)
            time.sleep(seconds / count)
            if broken:
                _write_atomically(b.daemon.config, good)
            if not b.alive():
                break
        t1 = time.monotonic()
        time.sleep(1.0)
        health = b.health()
        lost = b.flow.lost(t0, t1)
        log = b.daemon.log.read_text(errors="replace")
        refused = log.count("reload failed")
        reloaded = log.count("reloaded ")
        ok = health is None and lost == 0 and refused > 0
        detail = (f"lost {lost} pkts (sequence gap), {reloaded} reloads done, {refused} "
                  f"refused with the running config kept")
        return Row(fault, ok, detail + ("" if health is None else f"; {health}"),
                   {"lost": lost, "refused": refused, "reloaded": reloaded})


HOSTILE_CONFIGS = (
    "x = " + "[" * 600 + "]" * 600 + "\n",  # tomllib: RecursionError
    'mode = "router"\ntable = ' + "9" * 5000 + "\n",  # int(): ValueError, 4300-digit limit
)


def sighup_hostile_config(workdir: Path) -> Row:
    """SIGHUP with a config file that is broken in a way scripts/fuzz.py found: nested
    600 deep, or a 5000-digit number. The reload must be refused like any other broken
    config, the running one kept."""
    fault = "SIGHUP with a deeply nested / 5000-digit config"
    with bed(workdir) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        good = b.daemon.config.read_text()
        t0 = time.monotonic()
        survived = 0
        for text in HOSTILE_CONFIGS:
            _write_atomically(b.daemon.config, text)
            b.daemon.proc.send_signal(signal.SIGHUP)
            time.sleep(1.0)
            _write_atomically(b.daemon.config, good)
            if not b.alive():
                break
            survived += 1
        t1 = time.monotonic()
        health = b.health()
        lost = b.flow.lost(t0, t1) if health is None else None
        ok = health is None and lost == 0
        detail = f"survived {survived} of {len(HOSTILE_CONFIGS)} reloads, lost {lost} pkts"
        return Row(fault, ok, detail + ("" if health is None else f"; {health}"),
                   {"lost": lost, "survived": survived})


# --- control abuse ----------------------------------------------------------------------

def _raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need, soft), hard), hard))


def _connect(path: Path, timeout: float = 5.0) -> socket.socket:
    """A connection to the control socket, retried while its listen backlog is full (a
    Unix socket says EAGAIN then, where TCP would wait) for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
            continue
        except OSError:
            sock.close()
            raise
        return sock


def _ask_raw(path: Path, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection (from a thread, so a daemon that stops reading
    cannot block us) and return whatever reply line comes back (b"" if none)."""
    sock = _connect(path, timeout)

    def push() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(data)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    reply = bytearray()  # appends in place: a reply of many MB is read in linear time
    with contextlib.suppress(OSError):
        while not reply.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            reply += chunk
    sock.close()
    pusher.join(timeout)
    return bytes(reply)


def _abuse_row(b: Bed, fault: str, prober: Prober, ok: bool, detail: str,
               worst_allowed: float = 0.5) -> Row:
    health = b.health()
    good = ok and health is None and not prober.failures and prober.worst <= worst_allowed
    text = f"{detail}; {prober.summary()}" + ("" if health is None else f"; {health}")
    return Row(fault, good, text, {"show_p50_s": benchlib.median(prober.latencies),
                                   "show_max_s": prober.worst})


def idle_clients(workdir: Path, clients: int = 500, hold: float = 3.0) -> Row:
    """``clients`` connections that say nothing, held for ``hold`` s while the
    well-behaved client asks (from when they are all connected: the burst of connects
    itself is the churn fault's matter)."""
    fault = f"control: {clients} idle clients"
    _raise_nofile(clients + 256)
    with bed(workdir) as b:
        socks: list[socket.socket] = []
        try:
            refused = 0
            for _ in range(clients):
                try:
                    socks.append(_connect(b.daemon.sock, 2.0))
                except OSError:
                    refused += 1
            with Prober(b.daemon.sock) as prober:
                time.sleep(hold)
            return _abuse_row(b, fault, prober, refused == 0,
                              f"{len(socks)} held, {refused} refused")
        finally:
            for s in socks:
                s.close()


def fd_exhaustion(workdir: Path, limit: int = 64, clients: int = 120) -> Row:
    """The daemon's descriptor limit lowered to ``limit`` (prlimit), then ``clients``
    connections: accept() meets EMFILE; the daemon must live and answer once they go."""
    fault = f"control: EMFILE ({clients} clients, daemon nofile {limit})"
    _raise_nofile(clients + 256)
    with bed(workdir) as b:
        resource.prlimit(b.daemon.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
        socks: list[socket.socket] = []
        try:
            with Prober(b.daemon.sock, timeout=2.0) as prober:
                misses = 0
                while len(socks) < clients and misses < 3:  # the daemon may stop accepting
                    try:
                        socks.append(_connect(b.daemon.sock, 0.5))
                    except OSError:
                        misses += 1
                held = len(socks)
                time.sleep(1.0)
                for s in socks:
                    s.close()
                socks.clear()
                time.sleep(1.0)
                prober.failures.clear()  # unanswered while full is fine; after is not
                prober.latencies.clear()
                time.sleep(1.0)
            return _abuse_row(b, fault, prober, True, f"{held} connected; once they "
                              "closed, the daemon was asked again", worst_allowed=1.0)
        finally:
            for s in socks:
                s.close()


def non_reading_clients(workdir: Path, clients: int = 5, requests: int = 3000) -> Row:
    """Clients that send many requests and never read a reply (their socket buffers
    fill): the well-behaved client must still be answered promptly."""
    fault = f"control: {clients} non-reading clients"
    with bed(workdir) as b:
        socks: list[socket.socket] = []
        try:
            with Prober(b.daemon.sock) as prober:
                line = json.dumps({"command": "show", "what": "interfaces"}).encode() + b"\n"
                for _ in range(clients):
                    s = _connect(b.daemon.sock)
                    s.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        s.send(line * requests)
                    socks.append(s)
                time.sleep(4.0)
            return _abuse_row(b, fault, prober, True, f"{clients} x {requests} requests unread")
        finally:
            for s in socks:
                s.close()


def _one_request(workdir: Path, fault: str, body: bytes) -> Row:
    """The daemon gets one abusive request ``body`` while the well-behaved client asks:
    the row says whether it answered (a JSON object) and how."""
    with bed(workdir) as b:
        with Prober(b.daemon.sock) as prober:
            reply = _ask_raw(b.daemon.sock, body)
            time.sleep(0.5)
        answered = reply.startswith(b"{")
        return _abuse_row(b, fault, prober, answered,
                          f"answered: {reply[:70].decode(errors='replace').strip() or 'nothing'}")


def huge_request(workdir: Path, megabytes: int = 20) -> Row:
    body = b'{"command": "show", "what": "' + b"a" * (megabytes << 20) + b'"}\n'
    return _one_request(workdir, f"control: {megabytes} MB request", body)


def deep_request(workdir: Path, depth: int = 20000) -> Row:
    body = b'{"command": "show", "what": ' + b"[" * depth + b"]" * depth + b"}\n"
    return _one_request(workdir, f"control: request nested {depth} deep", body)


def huge_number_request(workdir: Path, digits: int = 5000) -> Row:
    """A JSON number beyond Python's int-conversion limit (4300 digits): a ValueError
    that is not a JSONDecodeError, found by scripts/fuzz.py."""
    body = b'{"command": "events", "since": ' + b"9" * digits + b"}\n"
    return _one_request(workdir, f"control: a {digits}-digit number", body)


def bad_requests(workdir: Path) -> Row:
    """Invalid JSON, invalid UTF-8, a bare string, an unknown command: each answered."""
    fault = "control: invalid JSON and UTF-8"
    bad = [b"{not json\n", b'{"command": "show", "what": "\xff\xfe"}\n', b'"hello"\n',
           b'{"command": "nope"}\n', b"\x00\x01\x02\n", b"[]\n"]
    with bed(workdir) as b:
        with Prober(b.daemon.sock) as prober:
            replies = [_ask_raw(b.daemon.sock, line, 5.0) for line in bad]
        errors = sum(1 for r in replies if r.startswith(b'{"ok": false'))
        return _abuse_row(b, fault, prober, errors == len(bad),
                          f"{errors} of {len(bad)} answered with an error")


def churn(workdir: Path, connections: int = 3000, workers: int = 4,
          probe_every: float = 0.005) -> Row:
    """``workers`` threads connect and close as fast as they can, ``connections`` in all,
    some after half a request, while the well-behaved client asks every ``probe_every``
    s. The daemon accepts one connection per loop turn from a listen backlog of 8: when
    it is full a Unix socket's connect() fails with EAGAIN at once, and `mrouter show`
    (the control client) does not retry."""
    fault = f"control: {connections} connect/close, {workers} at a time"
    failed = [0] * workers

    def work(index: int, sock: Path) -> None:
        for n in range(connections // workers):
            try:
                s = _connect(sock, 2.0)
                if n % 3 == 0:
                    s.send(b'{"command": "sh')
                s.close()
            except OSError:
                failed[index] += 1

    with bed(workdir) as b:
        with Prober(b.daemon.sock, interval=probe_every) as prober:
            threads = [threading.Thread(target=work, args=(i, b.daemon.sock), daemon=True)
                       for i in range(workers)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rate = connections / (time.monotonic() - t0)
            time.sleep(0.5)
        return _abuse_row(b, fault, prober, sum(failed) == 0,
                          f"{rate:.0f} connections/s, {sum(failed)} refused")


# --- IGMP floods ------------------------------------------------------------------------

def igmp_flood(workdir: Path, rate: int = 20000, seconds: float = 10.0,
               max_groups: int = 2000) -> Row:
    """igmp_flood.py from h2: reports for random groups at ``rate``/s. The member loses
    nothing, the groups stay capped at max_groups, show stays fast."""
    fault = f"IGMP flood {rate // 1000}k reports/s x {seconds:g} s"
    with bed(workdir, daemon_config=config(max_groups=max_groups)) as b:
        return _flood(b, fault, [str(INTEGRATION / "igmp_flood.py"), FLOODER, str(rate),
                                 str(seconds)], seconds, max_groups,
                      lambda sent, elapsed: f"{sent / elapsed:.0f} reports/s sent")


def _flood(b: Bed, fault: str, argv: list[str], seconds: float, cap: int,
           sent_text: Callable[[int, float], str], **verdict: Any) -> Row:
    """Run the flooder ``argv`` (python arguments) in h2 for ``seconds`` while the
    well-behaved client asks, then :func:`_flood_verdict` (``cap`` groups, ``verdict``'s
    bounds); ``sent_text`` says what was sent from the count it printed and the time."""
    assert b.flow is not None
    if (row := _ready_or_row(b, fault)) is not None:
        return row
    rss0 = benchlib.rss_kb(b.daemon.proc.pid)
    t0 = time.monotonic()
    with Prober(b.daemon.sock) as prober:
        flood = b.lab.node("h2").spawn([sys.executable, *argv], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
        try:
            out, _ = flood.communicate(timeout=seconds + 30)
        finally:
            benchlib.stop(flood)
    t1 = time.monotonic()
    sent = int(out.strip() or 0)
    return _flood_verdict(b, fault, prober, t0, t1, rss0, cap, sent_text(sent, t1 - t0),
                          **verdict)


def _flood_verdict(b: Bed, fault: str, prober: Prober, t0: float, t1: float, rss0: int,
                   cap: int, sent: str, *, sources_cap: int | None = None,
                   show_limit: float = 0.1) -> Row:
    """The verdict on a flood: the member lost nothing, the tables stayed within their
    bounds, RSS grew by less than 50 MB and `show` answered within ``show_limit`` s."""
    assert b.flow is not None
    health = b.health()
    if health is not None:
        return Row(fault, False, f"{sent}; {health}")
    rss1 = benchlib.rss_kb(b.daemon.proc.pid)
    try:
        rows = b.daemon("show", what="groups")
    except ControlError as exc:
        return Row(fault, False, f"{sent}; show groups failed: {exc}")
    groups = sum(1 for r in rows if r["iface"] == "dn0")
    sources = max((len(r["sources"]) for r in rows), default=0)
    lost = b.flow.lost(t0, t1)
    ok = (lost == 0 and groups <= cap + 1 and (rss1 - rss0) < 50 * 1024
          and prober.worst < show_limit and not prober.failures
          and (sources_cap is None or sources <= sources_cap))
    detail = (f"{sent}; member lost {lost}; {groups} groups on dn0 (cap {cap}), most sources "
              f"in one {sources}; RSS {rss0 // 1024}->{rss1 // 1024} MB; {prober.summary()}")
    return Row(fault, ok, detail, {"lost": lost, "groups": groups, "sources": sources,
                                   "rss_kb": (rss0, rss1), "show_max_s": prober.worst})


_SOURCE_FLOOD = r"""
import random, socket, sys, time
from ipaddress import IPv4Address
from mrouter.igmp.codec import encode_packet
from mrouter.igmp.messages import ALL_IGMPV3_ROUTERS, GroupRecord, RecordType, V3Report
src, rate, seconds, per = IPv4Address(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), \
    int(sys.argv[4])
rng = random.Random(11)
group = IPv4Address("239.7.7.7")
packets = []
for n in range(2048):
    sources = tuple(IPv4Address((10 << 24) | rng.randrange(1 << 24)) for _ in range(per))
    packets.append(encode_packet(V3Report((GroupRecord(RecordType.ALLOW_NEW_SOURCES, group,
                                                       sources),)), src, ALL_IGMPV3_ROUTERS))
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
dst = (str(ALL_IGMPV3_ROUTERS), 0)
sent, start, burst = 0, time.monotonic(), max(1, int(rate / 100))
while (now := time.monotonic()) < start + seconds:
    for _ in range(burst):
        sock.sendto(packets[sent % len(packets)], dst)
        sent += 1
    ahead = start + sent / rate - now
    if ahead > 0:
        time.sleep(ahead)
print(sent)
"""

#: what the engine may keep for one group by default (the interface bound is larger)
SOURCES_CAP = DEFAULTS.max_group_sources


def source_flood(workdir: Path, rate: int = 2000, seconds: float = 10.0,
                 per_report: int = 64) -> Row:
    """IGMPv3 ALLOW(random sources) for one group from h2, ``per_report`` sources each
    (sources in 10/8 are never routed: they only fill the daemon's tables)."""
    fault = f"source flood {rate}/s x {per_report} sources x {seconds:g} s"
    with bed(workdir) as b:
        return _flood(b, fault, ["-c", _SOURCE_FLOOD, FLOODER, str(rate), str(seconds),
                                 str(per_report)], seconds, 2000,
                      lambda sent, _: f"{sent * per_report} sources offered",
                      sources_cap=SOURCES_CAP,
                      # every report names 64 sources on a full group: the loop
                      # is busy, `show` waits its turn, but must still answer
                      show_limit=0.5)


# --- a rogue querier ------------------------------------------------------------------

def rogue_querier(workdir: Path, seconds: float = 6.0, interval: float = 1.0,
                  qqic: int | None = None) -> Row:
    """h3 (192.0.2.5, below r1) sends general queries every ``interval`` s for
    ``seconds``: r1 must yield at once and take the role back an Other Querier Present
    Interval after the last one (RFC 3376 §8.5: QRV x QQI + QRI/2, the rogue's QRV and
    QQI adopted). ``qqic`` forges the rogue's Querier's Query Interval Code."""
    forged = qqic is not None
    fault = "rogue querier" + (f", forged QQIC {qqic}" if forged else "")
    qrv, qi, qri = 2, 4.0, 2.0  # the rogue's QRV; r1's query and response intervals
    own_oqpi = 2 * qi + qri / 2  # r1's own Other Querier Present Interval (robustness 2)
    code = value_to_code(round(interval)) if qqic is None else qqic
    with bed(workdir, daemon_config=config(
            query_interval=qi, query_response_interval=qri,
            max_query_interval=qi if forged else None)) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        h3 = b.lab.node("h3")
        with h3.enter():
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        query = encode_packet(Query(3, max_resp_code=10, qrv=qrv, qqic=code),
                              IPv4Address(ROGUE), ALL_SYSTEMS)
        t0 = time.monotonic()
        yielded_at = None
        last_query = t0
        with sock:
            while time.monotonic() - t0 < seconds:
                sock.sendto(query, (str(ALL_SYSTEMS), 0))
                last_query = time.monotonic()
                deadline = last_query + interval
                while time.monotonic() < deadline:
                    if yielded_at is None and _is_querier(b) is False:
                        yielded_at = time.monotonic()
                    time.sleep(0.02)
        # a forged QQIC is adopted only up to max_query_interval (= qi here)
        expected = own_oqpi if forged else qrv * interval + qri / 2
        back = None
        wait_until = last_query + expected + 3.0
        while time.monotonic() < wait_until:
            if _is_querier(b):
                back = time.monotonic() - last_query
                break
            time.sleep(0.02)
        t1 = time.monotonic()
        lost = b.flow.lost(t0, t1)
        health = b.health()
        took = None if yielded_at is None else yielded_at - t0
        on_time = back is not None and (forged or expected - 0.3 <= back) \
            and back <= expected + 1.0
        ok = health is None and took is not None and took < 1.0 and on_time and lost == 0
        detail = (f"yielded after {_s(took)}, took back {_s(back)} after the last query "
                  f"(expected {'at most ' if forged else ''}{expected:.2f} s), member "
                  f"lost {lost}")
        return Row(fault, ok, detail + ("" if health is None else f"; {health}"),
                   {"took_s": took, "back_s": back, "expected_s": expected, "lost": lost})


def _is_querier(b: Bed) -> bool | None:
    row = _iface_row(b, "dn0")
    return None if row is None else bool(row.get("is_querier"))


# --- scale ----------------------------------------------------------------------------

def many_interfaces(workdir: Path, total: int = 32) -> Row:
    """r1 with ``total`` interfaces (the kernel's MAXVIFS is 32), all configured: the
    daemon starts, shows them all active, and the member still gets its flow."""
    fault = f"{total} interfaces"
    extra = total - 2
    try:
        b = Bed(workdir, daemon_config=config(extra_interfaces=extra),
                topology=many_interfaces_topology(extra))
    except (AssertionError, MrouterError) as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        return Row(fault, False, f"daemon did not start: {(lines[-1] if lines else '')[:120]}")
    try:
        got = b.ready(10.0)
        rows = b.daemon("show", what="interfaces") if b.alive() else []
        active = sum(1 for r in rows if r["active"])
        vifs = benchlib.vif_count(b.r1)
        ok = got is not None and active == total and vifs == total and b.health() is None
        return Row(fault, ok, f"{active} active, {vifs} VIFs in the kernel, member "
                   f"{'receives' if got is not None else 'gets NOTHING'}"
                   + _health_suffix(b))
    finally:
        b.close()


def many_groups(workdir: Path, groups: int = 50000, per_report: int = 150,
                rounds: int = 4, pace: float = 0.004) -> Row:
    """``groups`` memberships on dn0 from h2 (IGMPv3 TO_EX({}) records, ``per_report``
    per report): RSS, show latency, and the longest the loop stalls (a ping client)."""
    fault = f"{groups // 1000}k groups" if groups >= 1000 else f"{groups} groups"
    with bed(workdir, daemon_config=config(max_groups=groups + 100,
                                           query_interval=125.0,
                                           query_response_interval=10.0)) as b:
        assert b.flow is not None
        if (row := _ready_or_row(b, fault)) is not None:
            return row
        h2 = b.lab.node("h2")
        with h2.enter():
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        base = int(IPv4Address("239.64.0.0"))
        packets = []
        for first in range(0, groups, per_report):
            records = tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, IPv4Address(base + n))
                            for n in range(first, min(first + per_report, groups)))
            packets.append(encode_packet(V3Report(records), IPv4Address(FLOODER),
                                         ALL_IGMPV3_ROUTERS))
        rss0 = benchlib.rss_kb(b.daemon.proc.pid)
        t0 = time.monotonic()
        # Rounds of reports, as hosts answering queries repeat theirs (a burst may overflow
        # the daemon's socket buffer), each in another order; while a round is sent and
        # processed the stall prober asks nothing heavier than `show interfaces`; the
        # learned groups are counted (a heavy `show groups`) between rounds.
        stall_worst, count, done = 0.0, 0, 0
        with sock:
            for done in range(1, rounds + 1):
                with Prober(b.daemon.sock, interval=0.02) as stall:
                    shift = (done - 1) * len(packets) // rounds
                    for p in packets[shift:] + packets[:shift]:
                        sock.sendto(p, (str(ALL_IGMPV3_ROUTERS), 0))
                        time.sleep(pace)
                    benchlib.wait_idle(b.daemon.proc.pid, quiet=0.5, timeout=60.0)
                stall_worst = max(stall_worst, stall.worst)
                if b.health() is not None:
                    break
                count = _groups_count(b)
                if count >= groups:
                    break
        t1 = time.monotonic()
        health = b.health()
        if health is not None:
            return Row(fault, False, health)
        rss1 = benchlib.rss_kb(b.daemon.proc.pid)
        learned = count >= groups
        show_times, show_failed = [], []
        for _ in range(3):  # `mrouter show groups`: the CLI's client, as a user runs it
            s0 = time.monotonic()
            try:
                request(b.daemon.sock, "show", timeout=30.0, what="groups")
            except (ControlError, ValueError) as exc:
                show_failed.append(f"{type(exc).__name__}: {str(exc)[:50]}")
            else:
                show_times.append(time.monotonic() - s0)
        lost = b.flow.lost(t0, t1)
        ok = learned and lost == 0 and health is None and not show_failed
        shown = f"{statistics.median(show_times):.2f} s" if show_times else "-"
        if show_failed:
            shown += f", {len(show_failed)} of 3 FAILED ({show_failed[0]})"
        detail = (f"{count} of {groups} learned after {done} round(s) of "
                  f"{len(packets)} reports ({t1 - t0:.1f} s); RSS "
                  f"{rss0 // 1024}->{rss1 // 1024} MB; show groups {shown}; "
                  f"loop stall (show interfaces) "
                  f"max {_ms(stall_worst)}; member lost {lost}")
        return Row(fault, ok, detail, {"rss_kb": (rss0, rss1), "show_groups_s": show_times,
                                       "stall_s": stall_worst, "lost": lost})


def _groups_count(b: Bed) -> int:
    """The groups the daemon learnt on dn0 from the flooder, read with a client that
    takes a reply of many MB in linear time (0 if the reply was cut or missing)."""
    line = json.dumps({"command": "show", "what": "groups"}).encode() + b"\n"
    try:
        reply = json.loads(_ask_raw(b.daemon.sock, line, 30.0))
    except (OSError, ValueError):
        return 0
    rows = reply.get("result") or [] if isinstance(reply, dict) else []
    return sum(1 for r in rows if r["iface"] == "dn0" and r["group"] != GROUP)

