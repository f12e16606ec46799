"""The daemon's statistics as Prometheus metrics: the text format, and a /metrics server.

Theory of operation: :func:`exposition` renders a statistics snapshot
(:meth:`mrouter.router.stats.Statistics.snapshot`) in the Prometheus text exposition
format (version 0.0.4: ``# HELP``, ``# TYPE``, then ``name{label="value"} number``
lines), the same text ``mrouter metrics`` prints. No client library is needed for that.

:class:`MetricsServer` serves it at ``/metrics`` over HTTP/1.0 from the daemon's own
selector loop, the way :class:`~mrouter.router.control.ControlServer` serves the control
socket: non-blocking sockets, a request read up to :data:`MAX_REQUEST` bytes, one reply,
the connection closed; a client that sends nothing or does not read for
:data:`TIMEOUT` seconds is dropped. A scrape costs the loop one render, and nothing can
make it wait. It listens in the daemon's network namespace (``--metrics ADDR:PORT``).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from ipaddress import ip_address
from typing import Any

from mrouter.errors import ConfigError

MAX_REQUEST = 8192
MAX_CLIENTS = 16
TIMEOUT = 10.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: name -> (type, help) of every metric, in the order they are written
METRICS: dict[str, tuple[str, str]] = {
    "mrouter_up": ("gauge", "1 while the daemon runs"),
    "mrouter_uptime_seconds": ("gauge", "seconds since the daemon started"),
    "mrouter_igmp_messages_received_total": (
        "counter", "IGMP messages received and decoded, by interface, type and version"),
    "mrouter_igmp_messages_sent_total": (
        "counter", "IGMP messages sent, by interface, type and version"),
    "mrouter_igmp_messages_dropped_total": (
        "counter", "IGMP messages (or records) dropped, by interface and reason"),
    "mrouter_upcalls_total": ("counter", "kernel upcalls, by interface and type"),
    "mrouter_route_changes_total": (
        "counter", "kernel (S,G) route changes: installs, updates and removals"),
    "mrouter_kernel_routes": ("gauge", "(S,G) entries in the kernel now"),
    "mrouter_control_requests_total": ("counter", "control requests, by command"),
    "mrouter_control_errors_total": ("counter", "control requests answered with an error"),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: Mapping[str, Any], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    number = repr(float(value)) if isinstance(value, float) else str(value)
    return f"{name}{{{inner}}} {number}" if inner else f"{name} {number}"


def _samples(stats: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], float]]:
    yield "mrouter_up", {}, 1
    yield "mrouter_uptime_seconds", {}, float(stats["uptime_seconds"])
    for row in stats["interfaces"]:
        iface = row["name"]
        for key, metric in (("received", "mrouter_igmp_messages_received_total"),
                            ("sent", "mrouter_igmp_messages_sent_total")):
            for m in row[key]:
                version = "" if m["version"] is None else str(m["version"])
                yield metric, {"interface": iface, "type": m["type"],
                               "version": version}, m["count"]
        for reason, n in row["dropped"].items():
            yield "mrouter_igmp_messages_dropped_total", {"interface": iface,
                                                          "reason": reason}, n
        for kind, n in row["upcalls"].items():
            yield "mrouter_upcalls_total", {"interface": iface, "type": kind}, n
    for change, n in stats["routes"].items():
        yield "mrouter_route_changes_total", {"change": change}, n
    yield "mrouter_kernel_routes", {}, stats["kernel_routes"]
    for key, metric in (("requests", "mrouter_control_requests_total"),
                        ("errors", "mrouter_control_errors_total")):
        for command, n in stats["control"][key].items():
            yield metric, {"command": command}, n


def exposition(stats: Mapping[str, Any]) -> str:
    """``stats`` (a statistics snapshot) in the Prometheus text format."""
    by_name: dict[str, list[str]] = {name: [] for name in METRICS}
    for name, labels, value in _samples(stats):
        by_name[name].append(_sample(name, labels, value))
    lines = []
    for name, (kind, text) in METRICS.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *by_name[name]]
    return "\n".join(lines) + "\n"


def parse_listen(value: str) -> tuple[str, int]:
    """``ADDR:PORT`` (``[V6ADDR]:PORT`` for IPv6) as (address, port), or a ConfigError."""
    host, sep, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
        ip_address(host)
    except ValueError:
        port = -1
    if not sep or not 0 < port < 65536:
        raise ConfigError(f"--metrics {value!r}: write ADDRESS:PORT, e.g. "
                          "127.0.0.1:9641 or [::1]:9641")
    return host, port


class _Client:
    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.since = now


class MetricsServer:
    """``GET /metrics`` answered with ``render()`` (the exposition text), in the loop."""

    def __init__(self, address: str, port: int, render: Callable[[], str], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((address, port))
        except OSError as exc:
            self.listener.close()
            raise ConfigError(f"--metrics {address}:{port}: cannot listen: {exc.strerror}; "
                              "choose another address or port") from None
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()[:2]
        self.render = render
        self.clock = clock
        self.clients: dict[int, _Client] = {}

    def interest(self) -> dict[socket.socket, int]:
        wanted = {self.listener: selectors.EVENT_READ}
        for c in self.clients.values():
            wanted[c.sock] = selectors.EVENT_WRITE if c.outbuf else selectors.EVENT_READ
        return wanted

    def ready(self, sock: socket.socket, events: int) -> None:
        if sock is self.listener:
            self._accept()
            return
        client = self.clients.get(sock.fileno())
        if client is None:
            return
        if events & selectors.EVENT_WRITE:
            self._flush(client)
        elif events & selectors.EVENT_READ:
            self._read(client)

    def service(self) -> None:
        """Drop the clients that made no progress for :data:`TIMEOUT` seconds."""
        now = self.clock()
        for c in list(self.clients.values()):
            if now - c.since > TIMEOUT:
                self._drop(c)

    def timeout(self) -> float:
        if not self.clients:
            return TIMEOUT
        return max(0.0, min(c.since for c in self.clients.values()) + TIMEOUT - self.clock())

    def _accept(self) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                sock, _ = self.listener.accept()
            except OSError:  # nothing waiting (or no descriptor now: the backlog keeps it)
                return
            if len(self.clients) >= MAX_CLIENTS:
                sock.close()
                continue
            sock.setblocking(False)
            self.clients[sock.fileno()] = _Client(sock, self.clock())

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.inbuf += data
        client.since = self.clock()
        if b"\r\n\r\n" in client.inbuf or b"\n\n" in client.inbuf:
            client.outbuf += self._response(bytes(client.inbuf))
            self._flush(client)
        elif len(client.inbuf) > MAX_REQUEST:
            client.outbuf += _http(431, "text/plain", b"request too large\n")
            self._flush(client)

    def _response(self, request: bytes) -> bytes:
        words = request.split(b"\r\n", 1)[0].split()
        if len(words) < 2 or words[0] not in (b"GET", b"HEAD"):
            return _http(405, "text/plain", b"only GET /metrics\n")
        if words[1].split(b"?", 1)[0] != b"/metrics":
            return _http(404, "text/plain", b"mrouter serves /metrics only\n")
        body = self.render().encode()
        return _http(200, CONTENT_TYPE, body, head=words[0] == b"HEAD")

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        del client.outbuf[:sent]
        client.since = self.clock()
        if not client.outbuf:
            self._drop(client)  # HTTP/1.0: one reply, then close

    def _drop(self, client: _Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def close(self) -> None:
        for c in list(self.clients.values()):
            self._drop(c)
        with contextlib.suppress(OSError):
            self.listener.close()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large"}


def _http(status: int, content_type: str, body: bytes, *, head: bool = False) -> bytes:
    header = (f"HTTP/1.0 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return header + (b"" if head else body)
