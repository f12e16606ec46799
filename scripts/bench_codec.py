#!/usr/bin/env python3
"""Benchmark: decode mixed IGMP and MLD packets with mrouter's codecs and with scapy, same run.

Builds a seeded corpus of whole IPv4 packets (header with Router Alert + IGMP) mixed
like a busy LAN: queries of each version, v1/v2 reports and leaves, and IGMPv3
reports of 1-4 group records (0-4 sources each). Hosts, groups and sources come from
pools of realistic size (250 hosts, 500 groups, 200 sources). Each decoder parses
every packet fully (ours: decode_packet with checksum verification; scapy: IP(bytes)
with scapy.layers.igmp loaded). Also measured: IGMPv3 reports with 4 records alone
(the case scapy is slowest at), a cold run where every address is new (no address
cache hits), and the import time of the codec against scapy's.

Then the same for MLD: a seeded corpus of whole IPv6 packets (header, Hop-by-Hop Router
Alert, ICMPv6) mixed the same way (MLDv2 general and group(-and-source) queries, MLDv1
queries, reports and dones, MLDv2 reports of 1-4 address records with 0-4 sources),
from 250 link-local hosts, 500 groups and 200 sources; ours is mrouter.mld.codec's
decode_packet with checksum verification, scapy's is IPv6(bytes) with
scapy.layers.inet6.

    .venv/bin/python scripts/bench_codec.py [--count 100000] [--seed 1]

Not a pass/fail test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrouter.igmp.codec import decode_packet, encode_packet
from mrouter.igmp.messages import (
    ALL_IGMPV3_ROUTERS,
    ALL_ROUTERS,
    ALL_SYSTEMS,
    GroupRecord,
    IgmpMessage,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)
from mrouter.mld import codec as mld_codec
from mrouter.mld import messages as mld

ROUTER = IPv4Address("192.0.2.1")


class Corpus:
    def __init__(self, rng: random.Random, *, cold: bool = False) -> None:
        self.rng = rng
        self.cold = cold
        self.hosts = [IPv4Address(f"192.0.2.{n}") for n in range(2, 252)]
        self.groups = [IPv4Address(0xEF000000 + rng.randrange(1 << 24)) for _ in range(500)]
        self.sources = [IPv4Address(0xC6336400 + n) for n in range(200)]

    def _pick(self, pool: list[IPv4Address]) -> IPv4Address:
        if self.cold:  # every address new: the address cache never hits
            return IPv4Address(self.rng.randrange(1, 1 << 32))
        return self.rng.choice(pool)

    def group(self) -> IPv4Address:
        return self._pick(self.groups)

    def host(self) -> IPv4Address:
        return self._pick(self.hosts)

    def sources_list(self, most: int) -> tuple[IPv4Address, ...]:
        return tuple(self._pick(self.sources) for _ in range(self.rng.randint(0, most)))

    def record(self) -> GroupRecord:
        kind = self.rng.choice([RecordType.MODE_IS_EXCLUDE] * 4
                               + [RecordType.CHANGE_TO_EXCLUDE_MODE] * 2 + list(RecordType))
        return GroupRecord(kind, self.group(), self.sources_list(4))

    def v3_report(self, records: int) -> tuple[str, IgmpMessage, IPv4Address, IPv4Address]:
        msg = V3Report(tuple(self.record() for _ in range(records)))
        return "v3 report", msg, self.host(), ALL_IGMPV3_ROUTERS

    def packet(self) -> tuple[str, bytes]:
        roll = self.rng.random()
        msg: IgmpMessage
        if roll < 0.10:
            kind, msg, src, dst = "v3 general query", Query(3, max_resp_code=100, qrv=2,
                                                            qqic=125), ROUTER, ALL_SYSTEMS
        elif roll < 0.17:
            group = self.group()
            kind, msg, src, dst = "v3 group query", Query(
                3, group, 10, False, 2, 125, self.sources_list(4)), ROUTER, group
        elif roll < 0.22:
            kind, msg, src, dst = "v2 query", Query(2, max_resp_code=100), ROUTER, ALL_SYSTEMS
        elif roll < 0.37:
            group = self.group()
            kind, msg, src, dst = "v2 report", V2Report(group), self.host(), group
        elif roll < 0.42:
            kind, msg, src, dst = "v2 leave", V2Leave(self.group()), self.host(), ALL_ROUTERS
        elif roll < 0.45:
            group = self.group()
            kind, msg, src, dst = "v1 report", V1Report(group), self.host(), group
        else:
            kind, msg, src, dst = self.v3_report(self.rng.randint(1, 4))
        return kind, encode_packet(msg, src, dst)


MLD_ROUTER = IPv6Address("fe80::1")


class MldCorpus:
    """The IGMP corpus's mix for MLD: the same shares, v1/v2 in MLD's numbering."""

    def __init__(self, rng: random.Random, *, cold: bool = False) -> None:
        self.rng = rng
        self.cold = cold
        self.hosts = [IPv6Address(f"fe80::{n:x}") for n in range(2, 252)]
        self.groups = [IPv6Address((0xFF15 << 112) + rng.randrange(1 << 32))
                       for _ in range(500)]
        self.sources = [IPv6Address(f"2001:db8::{n:x}") for n in range(1, 201)]

    def _pick(self, pool: list[IPv6Address]) -> IPv6Address:
        if self.cold:  # every address new: the address cache never hits
            return IPv6Address(self.rng.randrange(1, 1 << 128))
        return self.rng.choice(pool)

    def group(self) -> IPv6Address:
        return self._pick(self.groups)

    def host(self) -> IPv6Address:
        return self._pick(self.hosts)

    def sources_list(self, most: int) -> tuple[IPv6Address, ...]:
        return tuple(self._pick(self.sources) for _ in range(self.rng.randint(0, most)))

    def record(self) -> mld.AddressRecord:
        kind = self.rng.choice([RecordType.MODE_IS_EXCLUDE] * 4
                               + [RecordType.CHANGE_TO_EXCLUDE_MODE] * 2 + list(RecordType))
        return mld.AddressRecord(kind, self.group(), self.sources_list(4))

    def v2_report(self, records: int) -> mld.V2Report:
        return mld.V2Report(tuple(self.record() for _ in range(records)))

    def packet(self) -> tuple[str, bytes]:
        roll = self.rng.random()
        msg: mld.MldMessage
        if roll < 0.10:
            kind, msg, src, dst = "v2 general query", mld.Query(
                2, max_resp_code=10000, qrv=2, qqic=125), MLD_ROUTER, mld.ALL_NODES
        elif roll < 0.17:
            group = self.group()
            kind, msg, src, dst = "v2 group query", mld.Query(
                2, group, 1000, False, 2, 125, self.sources_list(4)), MLD_ROUTER, group
        elif roll < 0.22:
            kind, msg, src, dst = "v1 query", mld.Query(1, max_resp_code=10000), MLD_ROUTER, \
                mld.ALL_NODES
        elif roll < 0.40:
            group = self.group()
            kind, msg, src, dst = "v1 report", mld.V1Report(group), self.host(), group
        elif roll < 0.45:
            kind, msg, src, dst = "v1 done", mld.V1Done(self.group()), self.host(), \
                mld.ALL_ROUTERS
        else:
            kind, msg, src, dst = "v2 report", self.v2_report(self.rng.randint(1, 4)), \
                self.host(), mld.ALL_MLDV2_ROUTERS
        return kind, mld_codec.encode_packet(msg, src, dst)


def rate(decode: Callable[[bytes], object], packets: list[bytes]) -> tuple[float, float]:
    """(seconds, packets per second) to decode every packet once."""
    start = time.perf_counter()
    for data in packets:
        decode(data)
    elapsed = time.perf_counter() - start
    return elapsed, len(packets) / elapsed


def import_ms(module: str) -> float:
    """Milliseconds to import ``module`` in a fresh interpreter (best of 5)."""
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print((time.perf_counter() - t) * 1000)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                 text=True, check=True,
                                 cwd=Path(__file__).resolve().parent.parent).stdout)
            for _ in range(5)]
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="packets (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from scapy.layers import igmp  # noqa: F401  (binds IGMP to IP proto 2)
    from scapy.layers.inet import IP

    corpus = Corpus(random.Random(args.seed))
    mix: Counter[str] = Counter()
    packets = []
    for _ in range(args.count):
        kind, data = corpus.packet()
        mix[kind] += 1
        packets.append(data)
    print(f"corpus: {len(packets)} packets, {len(set(packets))} distinct, mean "
          f"{sum(map(len, packets)) / len(packets):.1f} bytes; mix: "
          + ", ".join(f"{k} {v / len(packets):.0%}" for k, v in mix.most_common()))

    ours_s, ours_rate = rate(decode_packet, packets)
    scapy_s, scapy_rate = rate(IP, packets)
    print(f"ours  decode_packet(): {ours_rate:>10,.0f} packets/s ({ours_s:.2f} s)")
    print(f"scapy IP(bytes):       {scapy_rate:>10,.0f} packets/s ({scapy_s:.2f} s)")
    print(f"ratio ours/scapy, mixed corpus: {ours_rate / scapy_rate:.1f}x")

    four = [encode_packet(corpus.v3_report(4)[1], corpus.host(), ALL_IGMPV3_ROUTERS)
            for _ in range(max(1000, args.count // 10))]
    _, ours4 = rate(decode_packet, four)
    _, scapy4 = rate(IP, four)
    print(f"IGMPv3 reports with 4 records: ours {ours4:,.0f}/s, scapy {scapy4:,.0f}/s, "
          f"ratio {ours4 / scapy4:.1f}x")

    cold = Corpus(random.Random(args.seed), cold=True)
    cold_packets = [cold.packet()[1] for _ in range(max(1000, args.count // 10))]
    _, ours_cold = rate(decode_packet, cold_packets)
    _, scapy_cold = rate(IP, cold_packets)
    print(f"cold (every address new, no cache hits): ours {ours_cold:,.0f}/s, "
          f"scapy {scapy_cold:,.0f}/s, ratio {ours_cold / scapy_cold:.1f}x")

    print(f"import time: mrouter.igmp.codec {import_ms('mrouter.igmp.codec'):.1f} ms, "
          f"scapy.layers.igmp {import_ms('scapy.layers.igmp'):.1f} ms")
    bench_mld(args.count, args.seed)
    return 0


def bench_mld(count: int, seed: int) -> None:
    from scapy.layers.inet6 import IPv6

    corpus = MldCorpus(random.Random(seed))
    mix: Counter[str] = Counter()
    packets = []
    for _ in range(count):
        kind, data = corpus.packet()
        mix[kind] += 1
        packets.append(data)
    print(f"MLD corpus: {len(packets)} packets, {len(set(packets))} distinct, mean "
          f"{sum(map(len, packets)) / len(packets):.1f} bytes; mix: "
          + ", ".join(f"{k} {v / len(packets):.0%}" for k, v in mix.most_common()))
    decode = mld_codec.decode_packet
    ours_s, ours_rate = rate(decode, packets)
    scapy_s, scapy_rate = rate(IPv6, packets)
    print(f"MLD ours  decode_packet(): {ours_rate:>10,.0f} packets/s ({ours_s:.2f} s)")
    print(f"MLD scapy IPv6(bytes):     {scapy_rate:>10,.0f} packets/s ({scapy_s:.2f} s)")
    print(f"MLD ratio ours/scapy, mixed corpus: {ours_rate / scapy_rate:.1f}x")

    four = [mld_codec.encode_packet(corpus.v2_report(4), corpus.host(), mld.ALL_MLDV2_ROUTERS)
            for _ in range(max(1000, count // 10))]
    _, ours4 = rate(decode, four)
    _, scapy4 = rate(IPv6, four)
    print(f"MLDv2 reports with 4 records: ours {ours4:,.0f}/s, scapy {scapy4:,.0f}/s, "
          f"ratio {ours4 / scapy4:.1f}x")

    cold = MldCorpus(random.Random(seed), cold=True)
    cold_packets = [cold.packet()[1] for _ in range(max(1000, count // 10))]
    _, ours_cold = rate(decode, cold_packets)
    _, scapy_cold = rate(IPv6, cold_packets)
    print(f"MLD cold (every address new, no cache hits): ours {ours_cold:,.0f}/s, "
          f"scapy {scapy_cold:,.0f}/s, ratio {ours_cold / scapy_cold:.1f}x")
    print(f"import time: mrouter.mld.codec {import_ms('mrouter.mld.codec'):.1f} ms, "
          f"scapy.layers.inet6 {import_ms('scapy.layers.inet6'):.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
