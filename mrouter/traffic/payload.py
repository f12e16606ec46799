"""The datagrams ``mrouter send`` sends and ``mrouter recv`` measures (pure, no I/O).

Theory of operation
-------------------
Every datagram starts with a fixed 28-byte header, then zero padding up to the size the
user asked for::

    offset size field
         0    4 magic        b"MRTR"
         4    1 version      1
         5    1 flags        0 (reserved)
         6    2 header_len   28 (lets a later version append fields)
         8    4 stream       random id of one ``mrouter send`` run
        12    8 seq          0, 1, 2, ... within the stream
        20    8 sent_ns      send time, nanoseconds since the Unix epoch (CLOCK_REALTIME)

all in network byte order. The stream id tells two senders to one group apart (and a
restarted sender from the one before), so each (source address, stream) has its own
sequence space: loss, duplicates and reordering are counted per stream and summed per
group. The send timestamp is wall-clock time, so a one-way delay is meaningful only
between clocks that agree (the namespaces of one host share one clock).

:class:`GroupStats` is the accumulator ``recv`` keeps per group. It is fed
:class:`Arrival` records (the shell reads the clock and the kernel's ancillary data) and
never looks at a clock itself, so it is tested with made-up arrivals.

Counting rules, per stream:

- ``received`` counts distinct sequence numbers; a number seen again is a ``duplicate``.
- The first number seen is the base: datagrams sent before the receiver joined are not
  "lost". A number below the base moves the base down (it arrived late: ``reordered``).
- A number above the highest seen so far opens a gap; gap numbers are ``lost`` until
  they arrive, and one that arrives later is counted ``reordered`` (and no longer lost).
- Gaps more than :data:`REORDER_WINDOW` numbers below the highest are given up (stay
  lost) so that memory stays bounded; a straggler from beyond the window counts as a
  duplicate.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any, ClassVar

from mrouter.errors import MrouterError

MAGIC = b"MRTR"
VERSION = 1
HEADER = struct.Struct("!4sBBHIQQ")
HEADER_LEN = HEADER.size  # 28
MAX_UDP_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
REORDER_WINDOW = 1 << 16

IPAddress = IPv4Address | IPv6Address


class PayloadError(MrouterError):
    """Bytes that are not an mrouter datagram, or a datagram that cannot be built."""


@dataclass(frozen=True, slots=True)
class Payload:
    """The header of one datagram."""

    stream: int
    seq: int
    sent_ns: int

    def encode(self, size: int = HEADER_LEN) -> bytes:
        """The datagram of ``size`` bytes (header plus zero padding)."""
        if not HEADER_LEN <= size <= MAX_UDP_PAYLOAD:
            raise PayloadError(
                f"datagram size {size} is out of range: use {HEADER_LEN}..{MAX_UDP_PAYLOAD} "
                f"bytes ({HEADER_LEN} is the header with sequence number and timestamp)"
            )
        header = HEADER.pack(MAGIC, VERSION, 0, HEADER_LEN, self.stream, self.seq, self.sent_ns)
        return header + bytes(size - HEADER_LEN)


def decode(data: bytes) -> Payload:
    """Parse a datagram; :class:`PayloadError` says why it is not one of ours."""
    if len(data) < HEADER_LEN:
        raise PayloadError(f"datagram of {len(data)} bytes is shorter than the "
                           f"{HEADER_LEN}-byte mrouter header")
    magic, version, _flags, header_len, stream, seq, sent_ns = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PayloadError(f"datagram does not start with the mrouter magic {MAGIC!r}")
    if version != VERSION:
        raise PayloadError(f"mrouter datagram version {version} is not supported "
                           f"(this mrouter reads version {VERSION})")
    if header_len < HEADER_LEN or header_len > len(data):
        raise PayloadError(f"mrouter datagram header length {header_len} is invalid")
    return Payload(stream=stream, seq=seq, sent_ns=sent_ns)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One datagram as the receiving shell saw it.

    ``arrival_ns`` is wall-clock time (kernel receive timestamp when available);
    ``ttl`` is the IP TTL from IP_RECVTTL (IPv6: the hop limit from IPV6_RECVHOPLIMIT),
    None if the kernel did not report it;
    ``payload`` is None for a datagram that is not mrouter's own (it is counted as
    ``foreign``).
    """

    source: IPAddress
    arrival_ns: int
    ttl: int | None
    payload: Payload | None


@dataclass(slots=True)
class StreamStats:
    """Sequence accounting for one (source, stream); see the module docstring."""

    base: int = -1
    highest: int = -1
    received: int = 0
    duplicates: int = 0
    reordered: int = 0
    missing: set[int] = field(default_factory=set)
    expired: int = 0

    WINDOW: ClassVar[int] = REORDER_WINDOW

    def add(self, seq: int) -> None:
        if self.received == 0:
            self.base = self.highest = seq
            self.received = 1
            return
        if seq > self.highest:
            self.missing.update(range(self.highest + 1, seq))
            self.highest = seq
            self.received += 1
            self._expire()
        elif seq in self.missing:
            self.missing.discard(seq)
            self.received += 1
            self.reordered += 1
        elif seq < self.base and seq > self.highest - self.WINDOW:
            self.missing.update(range(seq + 1, self.base))
            self.base = seq
            self.received += 1
            self.reordered += 1
            self._expire()
        else:
            self.duplicates += 1

    def _expire(self) -> None:
        if len(self.missing) <= self.WINDOW:
            return
        floor = self.highest - self.WINDOW
        gone = {s for s in self.missing if s < floor}
        self.missing -= gone
        self.expired += len(gone)

    @property
    def lost(self) -> int:
        return len(self.missing) + self.expired


@dataclass(slots=True)
class GroupStats:
    """Everything ``recv`` reports for one group and port."""

    group: IPAddress
    port: int
    streams: dict[tuple[IPAddress, int], StreamStats] = field(default_factory=dict)
    foreign: int = 0
    bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    delay_min_ns: int | None = None
    delay_max_ns: int | None = None
    delay_sum_ns: int = 0
    delay_count: int = 0
    ttl_min: int | None = None
    ttl_max: int | None = None
    sources: set[IPAddress] = field(default_factory=set)

    def add(self, arrival: Arrival, size: int = 0) -> None:
        self.bytes += size
        self.sources.add(arrival.source)
        if arrival.ttl is not None:
            self.ttl_min = arrival.ttl if self.ttl_min is None else min(self.ttl_min, arrival.ttl)
            self.ttl_max = arrival.ttl if self.ttl_max is None else max(self.ttl_max, arrival.ttl)
        payload = arrival.payload
        if payload is None:
            self.foreign += 1
            return
        key = (arrival.source, payload.stream)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = StreamStats()
        before = stream.received
        stream.add(payload.seq)
        if stream.received == before:  # a duplicate: no new arrival time or delay sample
            return
        if self.first_ns is None:
            self.first_ns = arrival.arrival_ns
        self.last_ns = arrival.arrival_ns
        delay = arrival.arrival_ns - payload.sent_ns
        self.delay_min_ns = delay if self.delay_min_ns is None else min(self.delay_min_ns, delay)
        self.delay_max_ns = delay if self.delay_max_ns is None else max(self.delay_max_ns, delay)
        self.delay_sum_ns += delay
        self.delay_count += 1

    @property
    def received(self) -> int:
        return sum(s.received for s in self.streams.values())

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.streams.values())

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.streams.values())

    @property
    def reordered(self) -> int:
        return sum(s.reordered for s in self.streams.values())

    @property
    def rate(self) -> float | None:
        """Datagrams per second between the first and the last arrival."""
        if self.first_ns is None or self.last_ns is None or self.last_ns <= self.first_ns:
            return None
        return (self.received - 1) * 1e9 / (self.last_ns - self.first_ns)

    @property
    def delay_avg_ns(self) -> float | None:
        return self.delay_sum_ns / self.delay_count if self.delay_count else None

    def summary(self) -> dict[str, Any]:
        """The JSON-able summary ``recv --json`` prints (times in seconds / milliseconds;
        for IPv6, ``ttl_min``/``ttl_max`` are the hop limits seen)."""

        def ms(ns: float | None) -> float | None:
            return None if ns is None else round(ns / 1e6, 3)

        def s(ns: int | None) -> float | None:
            return None if ns is None else ns / 1e9

        rate = self.rate
        return {
            "family": "ipv6" if self.group.version == 6 else "ipv4",
            "group": str(self.group),
            "port": self.port,
            "received": self.received,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "foreign": self.foreign,
            "bytes": self.bytes,
            "first_arrival": s(self.first_ns),
            "last_arrival": s(self.last_ns),
            "rate": None if rate is None else round(rate, 3),
            "delay_min_ms": ms(self.delay_min_ns),
            "delay_avg_ms": ms(self.delay_avg_ns),
            "delay_max_ms": ms(self.delay_max_ns),
            "ttl_min": self.ttl_min,
            "ttl_max": self.ttl_max,
            "sources": [str(a) for a in sorted(self.sources, key=lambda a: (a.version, int(a)))],
            "streams": len(self.streams),
        }
