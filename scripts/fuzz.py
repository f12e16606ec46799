#!/usr/bin/env python3
"""Fuzz mrouter's parsers: random and mutated inputs, counted by what they raise.

    .venv/bin/python scripts/fuzz.py -n 100000            # every target, 100k inputs in all
    .venv/bin/python scripts/fuzz.py -n 1000000 --only igmp igmp-packet --seed 7

Targets, and the one error type each may raise (anything else is a bug, and so is any
exception at all from the control-request parser, which must answer every line):

    igmp         mrouter.igmp.codec.decode            CodecError
    igmp-packet  mrouter.igmp.codec.decode_packet     CodecError
    mld          mrouter.mld.codec.decode             CodecError
    mld-packet   mrouter.mld.codec.decode_packet      CodecError
    control      ControlServer.answer + json.dumps    nothing: a reply for every line
    config       mrouter.router.config.load_config    ConfigError
    topology     mrouter.lab.topology.load_topology   TopologyError

Inputs start from valid seeds (every IGMP message shape, every control command, the
shipped configs and topologies) and are mutated: bit flips, byte overwrites, truncation,
extension, chunk deletion and duplication, splices of two seeds, length and count fields
(IGMP record/source counts, IHL and total length; numbers in text) set to 0, 1, the
maximum or far beyond it, deep nesting, and plain random bytes. Everything is seeded, so
a run is repeatable (``--seed``). Pure: no sockets, no namespaces; config and topology
inputs go through a temporary file, as the daemon and the lab read them.

Prints one row per target: inputs, inputs/s, mean time, exceptions outside the allowed
type (must be 0; the first of each kind is shown) and the slowest input (the slowest few
re-timed, best of 3, so a time slice lost on a shared machine does not count). Exit
status 1 if any target had such an exception.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mrouter.errors import CodecError, ConfigError, MrouterError, TopologyError  # noqa: E402
from mrouter.igmp.codec import decode, decode_packet, encode, encode_packet  # noqa: E402
from mrouter.igmp.messages import (  # noqa: E402
    ALL_IGMPV3_ROUTERS,
    ALL_SYSTEMS,
    GroupRecord,
    IgmpMessage,
    Query,
    RecordType,
    UnknownMessage,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)
from mrouter.mld import codec as mld_codec  # noqa: E402

IGMP_AT = 24  # encode_packet's IPv4 header with the Router Alert option is 24 bytes
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
INTERESTING_NUMBERS = ("0", "-1", "1", "255", "65535", "4294967296", "-9223372036854775809",
                       "1e309", "-0.0", "nan", "inf", "0x7fffffff", "9" * 5000)


@dataclass(frozen=True, slots=True)
class Seed:
    """A valid input, and where its length and count fields are: (offset, width) spans."""

    data: bytes
    fields: tuple[tuple[int, int], ...] = ()


@dataclass
class Target:
    name: str
    call: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    seeds: list[Seed]
    text: bool  # mutate as text too (numbers, nesting) and not only as bytes
    max_len: int = 1 << 16


@dataclass
class Result:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    unexpected: int = 0
    kinds: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)  # first of each
    slowest: tuple[float, str, int] = (0.0, "", 0)  # seconds, how it was made, size

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds else float("nan")

    @property
    def mean_us(self) -> float:
        return self.seconds / self.inputs * 1e6 if self.inputs else float("nan")


# --- seeds ----------------------------------------------------------------------------

def _igmp_messages() -> list[IgmpMessage]:
    g, s = IPv4Address("239.1.2.3"), IPv4Address("198.51.100.2")
    sources = tuple(IPv4Address(int(s) + i) for i in range(3))
    return [
        Query(1), Query(2, g, 100), Query(3, max_resp_code=100, qrv=2, qqic=125),
        Query(3, g, 10, True, 2, 125, sources),
        V1Report(g), V2Report(g), V2Leave(g),
        V3Report((GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, g),)),
        V3Report((GroupRecord(RecordType.MODE_IS_INCLUDE, g, sources),
                  GroupRecord(RecordType.BLOCK_OLD_SOURCES, IPv4Address("239.9.9.9"),
                              sources[:1], b"\x01\x02\x03\x04"),
                  GroupRecord(RecordType.ALLOW_NEW_SOURCES, g, sources[1:]))),
        UnknownMessage(0x1F, 0, b"\0\0\0\0mtrace-ish"),
    ]


def _igmp_fields(msg: IgmpMessage, at: int) -> list[tuple[int, int]]:
    """The count and length fields of an encoded message starting at byte ``at``."""
    if isinstance(msg, Query) and msg.version == 3:
        return [(at + 10, 2), (at + 1, 1)]
    if isinstance(msg, V3Report):
        spans, offset = [(at + 6, 2)], at + 8
        for rec in msg.records:
            spans += [(offset + 1, 1), (offset + 2, 2)]  # aux data len, number of sources
            offset += 8 + 4 * len(rec.sources) + len(rec.aux_data)
        return spans
    return [(at + 1, 1)]


def igmp_seeds(packet: bool) -> list[Seed]:
    seeds = []
    for msg in _igmp_messages():
        if packet:
            dst = ALL_IGMPV3_ROUTERS if isinstance(msg, V3Report) else ALL_SYSTEMS
            data = encode_packet(msg, IPv4Address("192.0.2.11"), dst)
            # IHL and version, total length, the Router Alert option's length, protocol
            fields = [(0, 1), (2, 2), (21, 1), (9, 1), *_igmp_fields(msg, IGMP_AT)]
        else:
            data, fields = encode(msg), _igmp_fields(msg, 0)
        seeds.append(Seed(data, tuple(fields)))
    return seeds


MLD_SRC = IPv6Address("fe80::11")
MLD_DST = IPv6Address("ff02::16")


def _mld_messages() -> list[Any]:
    from mrouter.mld import messages as m

    group, source = IPv6Address("ff15::1"), IPv6Address("2001:db8:1::2")
    return [
        m.Query(version=1, max_resp_code=10000),
        m.Query(version=2, group=group, max_resp_code=40000, s_flag=True, qrv=2, qqic=125,
                sources=(source,)),
        m.V1Report(group=group), m.V1Done(group=group),
        m.V2Report(records=(m.AddressRecord(RecordType.MODE_IS_EXCLUDE, group),
                            m.AddressRecord(RecordType.ALLOW_NEW_SOURCES, group,
                                            (source, IPv6Address("2001:db8:1::3")),
                                            b"\0\0\0\1"))),
    ]


def mld_seeds(packet: bool) -> list[Seed]:
    """Encoded MLD messages (or whole IPv6 packets with the Hop-by-Hop Router Alert); their
    "fields" are the ICMPv6 header and, in a packet, the IPv6 payload length, next header
    and the Hop-by-Hop header's length byte."""
    seeds = []
    for msg in _mld_messages():
        if packet:
            data = mld_codec.encode_packet(msg, MLD_SRC, MLD_DST)
            fields = [(4, 2), (6, 1), (41, 1), (48, 1), (50, 2)]
        else:
            data = mld_codec.encode(msg, MLD_SRC, MLD_DST)
            fields = [(0, 1), (2, 2), (4, 2), (6, 2)]
        seeds.append(Seed(data, tuple(fields)))
    return seeds


def _text_seed(text: str) -> Seed:
    """A text seed whose "fields" are its numbers (and quoted strings' contents)."""
    data = text.encode()
    spans = [(m.start(), m.end() - m.start())
             for m in re.finditer(rb"-?\d+(\.\d+)?|(?<=\")[^\"\n]{1,40}(?=\")", data)]
    return Seed(data, tuple(spans))


CONTROL_REQUESTS: list[dict[str, Any]] = [
    {"command": "ping"},
    {"command": "show", "what": "interfaces"}, {"command": "show", "what": "groups"},
    {"command": "show", "what": "routes"},
    {"command": "route", "action": "add", "source": "198.51.100.2", "group": "239.1.1.1",
     "from": "up0", "to": ["dn0"]},
    {"command": "route", "action": "del", "group": "239.3.0.0/16", "from": "up0"},
    {"command": "join", "iface": "dn0", "group": "239.1.1.1", "source": "198.51.100.2"},
    {"command": "leave", "iface": "dn0", "group": "239.1.1.1"},
    {"command": "events", "since": 0, "limit": 10}, {"command": "events", "since": "now"},
    {"command": "reload"}, {"command": "stop"},
]


def control_seeds() -> list[Seed]:
    return [_text_seed(json.dumps(r)) for r in CONTROL_REQUESTS]


def file_seeds(*globs: str) -> list[Seed]:
    paths = sorted(p for g in globs for p in ROOT.glob(g))
    return [_text_seed(p.read_text()) for p in paths]


# --- the control-request parser, without a daemon -------------------------------------

def control_adapter(workdir: Path, stack: contextlib.ExitStack) -> Callable[[bytes], object]:
    """``ControlServer.answer`` as the daemon runs it, then the ``json.dumps`` its reply
    goes through. The handlers are the daemon's command table with their pure parts (the
    route and membership parsers, the event ring, the ``show`` argument check) and no
    kernel. The server listens on a Unix socket in ``workdir`` that nothing connects to:
    answer() is called directly, as the server calls it for each request line."""
    from mrouter.diag.events import EventLog
    from mrouter.router.config import parse_membership, parse_route
    from mrouter.router.control import ControlServer

    names = ("up0", "dn0")
    events = EventLog()

    def show(request: Mapping[str, Any]) -> Any:
        if request.get("what") not in ("interfaces", "groups", "routes"):
            raise ConfigError(f"show what? {request.get('what')!r}")
        return []

    def route(request: Mapping[str, Any]) -> Any:
        fields = {k: request[k] for k in ("source", "group", "from", "to") if k in request}
        if request.get("action") == "del" and not fields.get("to"):
            fields["to"] = [n for n in names if n != fields.get("from")][:1]
        parse_route(fields, names)
        if request.get("action") not in ("add", "del"):
            raise ConfigError("route action must be add or del")
        return {"route": "ok"}

    def member(request: Mapping[str, Any]) -> Any:
        fields = {k: request[k] for k in ("iface", "group", "source") if k in request}
        m = parse_membership(fields, names)
        return {"iface": m.iface, "group": str(m.group)}

    handlers: dict[str, Callable[[Mapping[str, Any]], Any]] = {
        "ping": lambda r: {"pid": 1}, "show": show, "route": route, "join": member,
        "leave": member, "reload": lambda r: {}, "stop": lambda r: {"stopping": True},
        "events": events.serve,
    }
    server = ControlServer(workdir / "fuzz-control.sock", handlers)
    stack.callback(server.close)

    def call(line: bytes) -> object:
        reply = server.answer(line)
        return json.dumps(reply)  # what _reply does with it; must not raise either

    return call


def _via_file(load: Callable[[Path], object], directory: Path, name: str
              ) -> Callable[[bytes], object]:
    path = directory / name

    def call(data: bytes) -> object:
        path.write_bytes(data)
        return load(path)

    return call


@contextlib.contextmanager
def open_targets(workdir: Path) -> Iterator[list[Target]]:
    """Every target, with files and the control server's socket in ``workdir``; the
    server is closed when the block ends."""
    with contextlib.ExitStack() as stack:
        yield targets(workdir, stack)


def targets(workdir: Path, stack: contextlib.ExitStack) -> list[Target]:
    from mrouter.lab.topology import load_topology
    from mrouter.router.config import load_config

    found = [
        Target("igmp", lambda b: decode(b, verify_checksum=len(b) % 2 == 0), (CodecError,),
               igmp_seeds(packet=False), text=False, max_len=2048),
        Target("igmp-packet", lambda b: decode_packet(b, verify_checksum=len(b) % 2 == 0),
               (CodecError,), igmp_seeds(packet=True), text=False, max_len=2048),
    ]
    found += [
        Target("mld", lambda b: mld_codec.decode(b, MLD_SRC, MLD_DST,
                                                 verify_checksum=len(b) % 2 == 0),
               (CodecError,), mld_seeds(packet=False), text=False, max_len=2048),
        Target("mld-packet", lambda b: mld_codec.decode_packet(
            b, verify_checksum=len(b) % 2 == 0), (CodecError,), mld_seeds(packet=True),
            text=False, max_len=2048),
    ]
    found += [
        Target("control", control_adapter(workdir, stack), (), control_seeds(), text=True),
        Target("config", _via_file(load_config, workdir, "fuzz.toml"), (ConfigError,),
               file_seeds("examples/*.toml"), text=True),
        Target("topology", _via_file(load_topology, workdir, "fuzz-topology.toml"),
               (TopologyError,), file_seeds("netns/*.toml"), text=True),
    ]
    return found


# --- mutations ------------------------------------------------------------------------

def _set_field(rng: random.Random, data: bytearray, offset: int, width: int) -> str:
    top = (1 << (8 * width)) - 1
    value = rng.choice([0, 1, 2, top, top - 1, rng.randrange(top + 1),
                        int.from_bytes(data[offset:offset + width], "big") + rng.choice((-1, 1))])
    data[offset:offset + width] = (value & top).to_bytes(width, "big")
    return f"field@{offset}={value & top}"


def _number(rng: random.Random, data: bytes, offset: int, width: int) -> tuple[bytes, str]:
    value = rng.choice(INTERESTING_NUMBERS).encode()
    return data[:offset] + value + data[offset + width:], f"number@{offset}={value[:12]!r}"


def _nest(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Deep nesting where a value goes: arrays or tables (TOML) / objects (JSON)."""
    depth = rng.choice((50, 500, 1200, 5000, 30000))
    if rng.random() < 0.5:
        inner = b"[" * depth + b"1" + b"]" * depth
    elif data.lstrip().startswith(b"{"):
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        inner = b"{a=" * depth + b"1" + b"}" * depth
    match = re.search(rb"(=\s*|:\s*)", data)
    if match is None or rng.random() < 0.2:
        return (b'{"command": "show", "what": ' + inner + b"}"
                if data.lstrip().startswith(b"{") else b"x = " + inner + b"\n",
                f"nest-{depth}")
    at = match.end()
    rest = re.match(rb'("[^"]*"|[^,\n}\]]*)', data[at:])
    end = at + (rest.end() if rest else 0)
    return data[:at] + inner + data[end:], f"nest-{depth}@{at}"


def mutate(rng: random.Random, target: Target) -> tuple[bytes, str]:
    """One input for ``target``: a mutated seed, a splice, or random bytes."""
    seed = rng.choice(target.seeds)
    roll = rng.random()
    if roll < 0.03:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(64))), "random"
    if target.text and roll < 0.10:
        return _nest(rng, seed.data)
    if target.text and roll < 0.25 and seed.fields:
        return _number(rng, seed.data, *rng.choice(seed.fields))
    data = bytearray(seed.data)
    steps = []
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        op = rng.randrange(9)
        if op == 0 and data:  # bit flips
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(data))
                data[i] ^= 1 << rng.randrange(8)
            steps.append("flip")
        elif op == 1 and data:
            i = rng.randrange(len(data))
            data[i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)
            steps.append(f"byte@{i}")
        elif op == 2 and data:
            cut = rng.randrange(len(data))
            del data[cut:]
            steps.append(f"truncate@{cut}")
        elif op == 3:
            data += bytes(rng.randrange(256) for _ in range(rng.choice((1, 3, 4, 8, 60))))
            steps.append("extend")
        elif op in (4, 5) and seed.fields:
            offset, width = rng.choice(seed.fields)
            if offset + width <= len(data):
                steps.append(_set_field(rng, data, offset, width))
        elif op == 6 and len(data) > 2:
            i = rng.randrange(len(data) - 1)
            del data[i:i + rng.randint(1, min(16, len(data) - i))]
            steps.append(f"delete@{i}")
        elif op == 7 and data:
            i = rng.randrange(len(data))
            chunk = data[i:i + rng.randint(1, 32)]
            data[i:i] = chunk * rng.choice((1, 2, 8, 64))
            steps.append(f"dup@{i}")
        elif op == 8:
            other = rng.choice(target.seeds).data
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + other[rng.randrange(len(other) + 1):]
            steps.append(f"splice@{cut}")
    if target.text and rng.random() < 0.05:  # invalid UTF-8 somewhere
        i = rng.randrange(len(data) + 1)
        data[i:i] = rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"))
        steps.append("bad-utf8")
    return bytes(data[:target.max_len]), "+".join(steps) or "seed"


# --- running --------------------------------------------------------------------------

def fuzz(target: Target, count: int, seed: int) -> Result:
    """Feed ``count`` inputs to ``target``; count exceptions outside its allowed type."""
    rng = random.Random(f"{seed}:{target.name}")
    result = Result(target.name)
    clock = time.perf_counter
    allowed = target.allowed
    call = target.call
    inputs = [seed_.data for seed_ in target.seeds]  # every seed once, as is
    candidates: list[tuple[float, int, str, bytes]] = [(0.0, -i, "", b"") for i in range(64)]
    for n in range(count):
        data, how = (inputs[n], "seed") if n < len(inputs) else mutate(rng, target)
        t0 = clock()
        try:
            call(data)
        except allowed:
            pass
        except Exception as exc:  # the bug this tool looks for: count it, keep the first
            kind = type(exc).__name__
            if isinstance(exc, MrouterError):
                kind += " (an MrouterError, but not the allowed one)"
            result.unexpected += 1
            if kind not in result.kinds:
                result.kinds[kind] = (1, f"{how}: {str(exc)[:160]}", data)
            else:
                first = result.kinds[kind]
                result.kinds[kind] = (first[0] + 1, first[1], first[2])
        spent = clock() - t0
        result.seconds += spent
        if spent > candidates[0][0]:
            heapq.heapreplace(candidates, (spent, n, how, data))
        result.inputs += 1
    result.slowest = _slowest(call, candidates)
    return result


def _slowest(call: Callable[[bytes], object],
             candidates: list[tuple[float, int, str, bytes]]) -> tuple[float, str, int]:
    """The slowest input, re-timed: the best of 3 runs of each of the slowest few, so a
    time slice lost to another process (this machine is shared) does not win."""
    worst: tuple[float, str, int] = (0.0, "", 0)
    for _, _, how, data in candidates:
        if not how:
            continue
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            with contextlib.suppress(Exception):
                call(data)
            best = min(best, time.perf_counter() - t0)
        if best > worst[0]:
            worst = (best, how, len(data))
    return worst


def share(total: int, names: Sequence[str]) -> dict[str, int]:
    """Split ``total`` inputs: the cheap binary decoders get the most."""
    weights = {"igmp": 4.0, "igmp-packet": 4.0, "mld": 4.0, "mld-packet": 4.0, "control": 2.0}
    sizes = {n: weights.get(n, 1.0) for n in names}
    scale = total / sum(sizes.values())
    counts = {n: int(w * scale) for n, w in sizes.items()}
    counts[names[0]] += total - sum(counts.values())
    return counts


def render(results: Sequence[Result], skipped: Sequence[str]) -> str:
    head = (f"{'target':<12} {'inputs':>9} {'inputs/s':>10} {'mean':>9}  "
            f"{'unexpected':>10}  slowest input")
    lines = [head, "-" * len(head)]
    for r in results:
        slow_s, slow_how, slow_len = r.slowest
        lines.append(f"{r.target:<12} {r.inputs:>9} {r.rate:>10.0f} {r.mean_us:>7.1f}µs  "
                     f"{r.unexpected:>10}  {slow_s * 1e3:.2f} ms ({slow_len} B, {slow_how[:40]})")
    for name in skipped:
        lines.append(f"{name:<12} {'-':>9}  skipped: {SKIP_REASONS[name]}")
    for r in results:
        for kind, (n, text, data) in r.kinds.items():
            lines.append(f"  {r.target}: {n} x {kind}; first: {text}")
            lines.append(f"    input ({len(data)} B): {data[:80]!r}")
    return "\n".join(lines)


SKIP_REASONS: dict[str, str] = {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, metavar="N",
                        help="inputs in all, shared among the targets (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--only", nargs="+", metavar="TARGET",
                        help="only these targets (igmp igmp-packet mld control config "
                             "topology)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mrouter-fuzz-") as tmp, \
            open_targets(Path(tmp)) as chosen:
        skipped = [n for n in SKIP_REASONS if n not in {t.name for t in chosen}]
        if args.only:
            unknown = set(args.only) - {t.name for t in chosen} - set(skipped)
            if unknown:
                parser.error(f"unknown target {', '.join(sorted(unknown))}")
            chosen = [t for t in chosen if t.name in args.only]
            skipped = [n for n in skipped if n in args.only]
        counts = share(args.n, [t.name for t in chosen])
        results = []
        for target in chosen:
            print(f"fuzzing {target.name}: {counts[target.name]} inputs", file=sys.stderr,
                  flush=True)
            results.append(fuzz(target, counts[target.name], args.seed))
    print(f"scripts/fuzz.py -n {args.n} --seed {args.seed}")
    print(render(results, skipped))
    return 1 if any(r.unexpected for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
