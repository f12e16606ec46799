"""``mrouter igmp``: watch, decode and craft IGMP messages.

Three subcommands, all reading and writing IGMP with mrouter's own codec
(:mod:`mrouter.igmp.codec`) and describing it with :mod:`mrouter.igmp.describe`:

- ``watch`` listens on an interface with an ``AF_PACKET`` socket (both directions,
  our own queries included, with a kernel BPF filter for IPv4 protocol 2 and
  all-multicast on, so reports to 224.0.0.22 are seen without joining anything);
- ``decode`` reads a pcap/pcapng capture;
- ``send`` builds a message and sends it through a raw IGMP socket (``IP_HDRINCL``).

The machinery (output, the watch socket and loop, the capture reader, the send loop)
is protocol-neutral: a :class:`Tool` says what is the protocol's (its BPF filter and
ethertype, which packets are its own, how to describe them, how to build and send one),
and ``mrouter mld`` (:mod:`mrouter.cli.mld`) runs the same functions with MLD's tool.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import IO, Any

from mrouter.cli.sockets import ipv4_address
from mrouter.errors import CodecError, McastError, MrouterError
from mrouter.igmp.codec import decode_packet, encode_packet
from mrouter.igmp.describe import (
    COLUMNS,
    Fields,
    error_fields,
    header_line,
    line,
    packet_fields,
)
from mrouter.igmp.ipv4 import (
    MIN_HEADER_LEN,
    ROUTER_ALERT_OPTION,
    IPv4Header,
    build_header,
    parse_header,
)
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
    value_to_code,
)
from mrouter.linux import bpf
from mrouter.linux.constants import (
    ETH_P_ALL,
    ETH_P_IP,
    IPPROTO_IGMP,
    IPV4_PROTOCOL_OFFSET,
    SO_TIMESTAMPNS,
    SOL_PACKET,
    TIMESPEC,
)
from mrouter.traffic import pcap

log = logging.getLogger(__name__)


class UsageError(MrouterError):
    """Options that do not describe a message (exit status 2, like argparse errors)."""

# Linux constants Python's socket module lacks (include/uapi/linux/*.h).
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_ALLMULTI = 2
#: struct packet_mreq { int mr_ifindex; u16 mr_type; u16 mr_alen; u8 mr_address[8]; }
PACKET_MREQ = struct.Struct("=iHH8s")

#: Classic BPF run on each frame: IPv4 of protocol 2 (IGMP), up to 256 KiB of it. The
#: socket is bound to ETH_P_ALL because only those taps see outgoing packets.
IGMP_FILTER = bpf.ipv4_protocol(IPPROTO_IGMP, 0x40000)


# --- output -------------------------------------------------------------------------


class Output:
    """Prints described packets as JSON lines or aligned text, flushed per line so a
    pipe (or a test) sees each message as it arrives."""

    def __init__(self, as_json: bool, stream: IO[str] | None = None,
                 columns: tuple[tuple[str, int], ...] = COLUMNS) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.header_done = False
        self.columns = columns

    def show(self, fields: Fields) -> None:
        if self.as_json:
            text = json.dumps(fields)
        else:
            if not self.header_done:
                print(header_line(self.columns), file=self.stream)
                self.header_done = True
            text = line(fields, self.columns)
        print(text, file=self.stream, flush=True)


def describe(
    data: bytes, *, time: float | None, iface: str | None, direction: str | None = None,
) -> Fields:
    """Decode a whole IPv4 packet for display: checksums reported, not enforced; a
    malformed packet becomes an error entry."""
    try:
        packet = decode_packet(data, verify_checksum=False)
    except CodecError as exc:
        ip: IPv4Header | None
        try:
            ip = parse_header(data)
        except CodecError:
            ip = None
        return error_fields(exc, data, time=time, iface=iface, direction=direction, ip=ip)
    return packet_fields(packet, time=time, iface=iface, direction=direction)


# --- watch --------------------------------------------------------------------------


def open_watch_socket(iface: str, program: bpf.Program = IGMP_FILTER) -> socket.socket:
    """An AF_PACKET socket on ``iface`` that receives IPv4 packets of protocol 2 (or
    what ``program`` keeps), in and out (only ETH_P_ALL taps see outgoing packets, so a
    BPF filter does the choosing), with kernel timestamps and all-multicast on while it
    is open."""
    try:
        ifindex = socket.if_nametoindex(iface)
    except OSError:
        raise McastError(
            f"no interface named {iface!r} in this network namespace; see `mrouter ifaces`"
        ) from None
    try:
        # Protocol 0 receives nothing until bind(), so the filter is in place first.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    except PermissionError:
        raise McastError("watching needs a packet socket: run as root or with CAP_NET_RAW") \
            from None
    try:
        bpf.attach_filter(sock, program)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((iface, ETH_P_ALL))
        # Real NICs drop multicast nobody joined (224.0.0.22!): take all of it while we
        # listen; the kernel undoes this when the socket closes.
        mreq = PACKET_MREQ.pack(ifindex, PACKET_MR_ALLMULTI, 0, bytes(8))
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    except OSError as exc:
        sock.close()
        raise McastError(f"cannot listen on {iface}: {exc.strerror}") from exc
    return sock


def receive(sock: socket.socket) -> tuple[bytes, float, int, int]:
    """One packet: the bytes, its kernel timestamp, its protocol and Linux packet type."""
    data, ancdata, _flags, address = sock.recvmsg(65535, socket.CMSG_SPACE(TIMESPEC.size))
    stamp = time.time()
    for level, kind, payload in ancdata:
        if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS) and len(payload) >= 16:
            seconds, nanos = TIMESPEC.unpack_from(payload)
            stamp = seconds + nanos / 1e9
    return data, stamp, address[1], address[2]


def packets(sock: socket.socket,
            timeout: float | None) -> Iterator[tuple[bytes, float, int, int]]:
    """Packets from ``sock`` until ``timeout`` seconds have passed (forever if None)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        wait_ms = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            wait_ms = max(1, int(left * 1000))
        if not poller.poll(wait_ms):
            continue
        yield receive(sock)


@dataclass(frozen=True)
class Tool:
    """What ``watch``, ``decode`` and ``send`` need of one protocol (see the module
    docstring): IGMP's is :data:`IGMP_TOOL`, MLD's is in :mod:`mrouter.cli.mld`."""

    command: str  # "igmp", "mld": the subcommand, for messages
    protocol: str  # "IGMP", "MLD"
    watch_filter: bpf.Program  # for an ETH_P_ALL SOCK_DGRAM packet socket
    ethertype: int
    ours: Callable[[bytes], bool]  # an IP packet of the protocol (as the filter keeps)
    from_frame: Callable[[pcap.Frame], bytes | None]  # the IP packet of a capture frame
    describe: Callable[..., Fields]  # (data, time=, iface=, direction=) -> fields
    columns: tuple[tuple[str, int], ...]
    build_packet: Callable[[argparse.Namespace], bytes]
    open_sender: Callable[[], Any]  # an object with send(packet, ifindex) and close()


def _is_igmp(data: bytes) -> bool:
    return len(data) >= MIN_HEADER_LEN and data[IPV4_PROTOCOL_OFFSET] == IPPROTO_IGMP


def run_watch(args: argparse.Namespace) -> int:
    return watch(args, IGMP_TOOL)


def watch(args: argparse.Namespace, tool: Tool) -> int:
    output = Output(args.json, columns=tool.columns)
    sock = open_watch_socket(args.iface, tool.watch_filter)
    writer: pcap.Writer | None = None
    seen = 0
    with contextlib.ExitStack() as stack:
        stack.callback(sock.close)
        if args.pcap:
            try:
                stream = stack.enter_context(open(args.pcap, "wb"))
            except OSError as exc:
                raise McastError(f"cannot write {args.pcap}: {exc.strerror}") from exc
            writer = pcap.Writer(stream, pcap.LinkType.RAW)
        print(f"mrouter {tool.command} watch: listening on {args.iface} ({tool.protocol} in "
              "and out); Ctrl-C to stop", file=sys.stderr, flush=True)
        for data, stamp, protocol, pkttype in packets(sock, args.timeout):
            if protocol != tool.ethertype or not tool.ours(data):  # as the filter does
                continue
            direction = "out" if pkttype == pcap.Direction.OUTGOING else "in"
            output.show(tool.describe(data, time=stamp, iface=args.iface,
                                      direction=direction))
            if writer is not None:
                writer.write(data, stamp)
                writer.flush()
            seen += 1
            if args.count is not None and seen >= args.count:
                return 0
    if args.count is not None:
        print(f"mrouter {tool.command} watch: timed out after {args.timeout:g} s with {seen} "
              f"of {args.count} messages", file=sys.stderr)
        return 1
    return 0


# --- decode -------------------------------------------------------------------------


def run_decode(args: argparse.Namespace) -> int:
    return decode_capture(args, IGMP_TOOL)


def decode_capture(args: argparse.Namespace, tool: Tool) -> int:
    output = Output(args.json, columns=tool.columns)
    try:
        stream = open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise CodecError(f"cannot read {args.file}: {exc.strerror}", 0) from exc
    shown = skipped = 0
    with stream:
        for record in pcap.read(stream):
            try:
                frame = pcap.frame(record.linktype, record.data)
            except CodecError as exc:
                fields = error_fields(exc, record.data, time=record.time,
                                      iface=record.interface)
                output.show({"frame": record.number, **fields})
                continue
            ip = tool.from_frame(frame)
            if ip is None or not tool.ours(ip):
                skipped += 1
                continue
            direction = frame.direction.text if frame.direction is not None else None
            fields = tool.describe(ip, time=record.time, iface=record.interface,
                                   direction=direction)
            output.show({"frame": record.number, **fields})
            shown += 1
    log.info("%d %s packets shown, %d other frames skipped", shown, tool.protocol, skipped)
    return 0


# --- send ---------------------------------------------------------------------------

KINDS = ("query", "v1-report", "v2-report", "leave", "v3-report")
_RECORD_NAMES = {t.short: t for t in RecordType}


def parse_record_type(name: str) -> RecordType | int:
    """A record's TYPE (IGMPv3's and MLDv2's are the same): an RFC short name (any case)
    or a number 0-255, kept as an int when no type has it."""
    upper = name.upper()
    if upper in _RECORD_NAMES:
        return _RECORD_NAMES[upper]
    if name.isascii() and name.isdigit() and 0 <= int(name) <= 255:
        number = int(name)
        return RecordType(number) if number in RecordType._value2member_map_ else number
    raise argparse.ArgumentTypeError(
        f"record type {name!r}: use {', '.join(_RECORD_NAMES)} or a number 0-255"
    )


def parse_record(text: str) -> GroupRecord:
    """``TYPE:GROUP[:SOURCE,SOURCE...]``, TYPE an RFC short name or a number."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(
            f"record {text!r}: expected TYPE:GROUP[:SOURCE,...], e.g. ALLOW:239.1.1.1:10.0.0.1"
        )
    record_type = parse_record_type(parts[0])
    try:
        group = IPv4Address(parts[1])
        sources = tuple(IPv4Address(s) for s in parts[2].split(",") if s) if len(parts) == 3 \
            else ()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"record {text!r}: {exc}") from None
    return GroupRecord(record_type, group, sources)


def parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "")
    cleaned = cleaned.removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex bytes") from None


def _tenths(seconds: float) -> int:
    return round(seconds * 10)


def build_message(args: argparse.Namespace) -> IgmpMessage:
    """The message the send options describe; argument errors become McastError."""
    kind: str = args.kind
    if kind in ("v1-report", "v2-report", "leave") and args.group is None:
        raise UsageError(f"{kind} needs --group")
    if args.record and kind != "v3-report":
        raise UsageError("--record is for v3-report")
    if args.source and not (kind == "query" and args.version == 3):
        raise UsageError("--source is for v3 queries (--version 3)")
    if kind == "v1-report":
        return V1Report(args.group)
    if kind == "v2-report":
        return V2Report(args.group)
    if kind == "leave":
        return V2Leave(args.group)
    if kind == "v3-report":
        return V3Report(tuple(args.record))
    group = args.group or IPv4Address("0.0.0.0")
    if args.version == 1:
        return Query(1, group)
    max_resp_code = args.max_resp_code
    if args.version == 2:
        if max_resp_code is None:
            max_resp_code = _tenths(args.max_resp)
        if not 1 <= max_resp_code <= 255:
            raise UsageError(f"a v2 Max Resp Code is 1-255 tenths of a second, "
                             f"got {max_resp_code}")
        return Query(2, group, max_resp_code)
    if max_resp_code is None:
        max_resp_code = value_to_code(_tenths(args.max_resp))
    qqic = args.qqic if args.qqic is not None else value_to_code(args.qqi)
    return Query(3, group, max_resp_code, args.suppress, args.qrv, qqic, tuple(args.source))


def default_destination(msg: IgmpMessage) -> IPv4Address:
    """Where RFC 2236/3376 send each message."""
    if isinstance(msg, Query):
        return ALL_SYSTEMS if msg.is_general else msg.group
    if isinstance(msg, V2Leave):
        return ALL_ROUTERS
    if isinstance(msg, V1Report | V2Report):
        return msg.group
    return ALL_IGMPV3_ROUTERS


def _source_address(iface: str) -> IPv4Address:
    from mrouter.sockets import mcast  # pyroute2: only when a source address must be looked up

    address = mcast.interface(iface).address
    if address is None:
        raise McastError(f"{iface} has no IPv4 address; give one with --src")
    return address


def build_packet(args: argparse.Namespace) -> bytes:
    if args.hex is not None:
        if args.kind is not None:
            raise UsageError("give either KIND or --hex, not both")
        if args.whole_packet:
            return bytes(args.hex)
        igmp = bytes(args.hex)  # sent as given, checksum and all
        options = b"" if args.no_router_alert else ROUTER_ALERT_OPTION
        src = args.src or _source_address(args.iface)
        return build_header(src, args.dst or ALL_SYSTEMS, len(igmp), ttl=args.ttl,
                            options=options) + igmp
    if args.kind is None:
        raise UsageError(f"say what to send: one of {', '.join(KINDS)}, or --hex BYTES")
    msg = build_message(args)
    src = args.src or _source_address(args.iface)
    dst = args.dst or default_destination(msg)
    return encode_packet(msg, src, dst, ttl=args.ttl, router_alert=not args.no_router_alert)


def _open_igmp_socket() -> Any:
    from mrouter.sockets.igmp_socket import IgmpSocket

    return IgmpSocket()


def run_send(args: argparse.Namespace) -> int:
    return send(args, IGMP_TOOL)


def send(args: argparse.Namespace, tool: Tool) -> int:
    packet = tool.build_packet(args)
    output = Output(args.json, columns=tool.columns)
    sender: Any = None
    ifindex = 0
    if not args.dry_run:
        try:
            ifindex = socket.if_nametoindex(args.iface)
        except OSError:
            raise McastError(f"no interface named {args.iface!r}; see `mrouter ifaces`") \
                from None
        sender = tool.open_sender()
    try:
        for number in range(args.count):
            if number:
                time.sleep(args.interval)
            if sender is not None:
                sender.send(packet, ifindex)
            fields = tool.describe(packet, time=time.time(), iface=args.iface,
                                   direction="out")
            if args.dry_run:
                fields["hex"] = packet.hex()
            output.show(fields)
    finally:
        if sender is not None:
            sender.close()
    return 0


IGMP_TOOL = Tool(
    command="igmp", protocol="IGMP", watch_filter=IGMP_FILTER, ethertype=ETH_P_IP,
    ours=_is_igmp, from_frame=lambda frame: frame.ipv4, describe=describe, columns=COLUMNS,
    build_packet=build_packet, open_sender=_open_igmp_socket,
)


# --- parsers ------------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive count")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a duration in seconds")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="igmp_command", metavar="SUBCOMMAND", required=True)

    watch_parser(sub, IGMP_TOOL, run_watch, (
        "Show every IGMP message sent or received on an interface, one per line:\n"
        "time, interface, source, destination, version, type, group, max response\n"
        "time, Router Alert (RA), checksum, then v3 group records with their sources\n"
        "or v3 query fields. Listens with an AF_PACKET socket (needs root), so it\n"
        "sees reports to 224.0.0.22 without joining, and this host's own queries.\n"
    ))
    decode_parser(
        sub, IGMP_TOOL, run_decode, "decoding goes on; frames that are not IGMP are skipped.",
        epilog="examples:\n  mrouter igmp decode igmp.pcap\n  tcpdump -i any -w x.pcap igmp; "
               "mrouter igmp decode x.pcap --json",
    )

    send = sub.add_parser(
        "send", help="craft and send one IGMP message (query, report, leave, raw bytes)",
        formatter_class=_FORMATTER,
        description=(
            "Build an IGMP message with mrouter's own codec (mrouter.igmp.codec, not\n"
            "scapy), wrap it in an IPv4 header with TTL 1 and Router Alert, and send it\n"
            "out of --iface through a raw IGMP socket (IP_HDRINCL; needs root).\n"
            "KIND is one of:\n"
            "  query      general (no --group), group-specific (--group) or, in v3,\n"
            "             group-and-source-specific (--group and --source ...);\n"
            "             --version, --max-resp, -s, --qrv, --qqi apply\n"
            "  v1-report, v2-report, leave   for --group\n"
            "  v3-report  with one --record TYPE:GROUP[:SOURCE,...] per group record\n"
            "or give --hex BYTES instead of KIND to send arbitrary IGMP bytes (the\n"
            "checksum is not fixed), or a whole IPv4 packet with --whole-packet.\n"
            "Destination defaults as the RFCs say: 224.0.0.1 for general queries, the\n"
            "group for group queries and v1/v2 reports, 224.0.0.2 for leaves,\n"
            "224.0.0.22 for v3 reports. Each sent message is printed like watch does."
        ),
        epilog=(
            "examples:\n"
            "  mrouter igmp send --iface dn0 query --version 2 --max-resp 10\n"
            "  mrouter igmp send --iface dn0 query --group 239.1.1.1 --source 198.51.100.2\n"
            "  mrouter igmp send --iface eth0 v3-report --record TO_EX:239.1.1.1 \\\n"
            "      --record ALLOW:239.2.2.2:198.51.100.2,198.51.100.3\n"
            "  mrouter igmp send --iface eth0 leave --group 239.1.1.1\n"
            "  mrouter igmp send --iface dn0 --hex 1164ee9b00000000 --dry-run"
        ),
    )
    send_arguments(send, KINDS, IGMP_SEND_TEXT)
    send_options(send)
    send.set_defaults(func=run_send)


@dataclass(frozen=True, slots=True)
class SendText:
    """What differs between ``igmp send``'s and ``mld send``'s own options: the address
    and record parsers, the newest version, and the words of the help texts. The options
    themselves, their order and defaults are :func:`send_arguments`'."""

    address: Callable[[str], Any]
    record: Callable[[str], Any]
    newest: int  # the newest version: the default of --version, the one --qrv etc. are for
    payload: str  # what --hex bytes are: IGMP, ICMPv6
    ip: str  # the IP version: IPv4, IPv6
    group_help: str
    max_resp_help: str
    max_resp_code_help: str
    record_metavar: str
    record_help: str
    src_help: str
    dst_help: str
    ttl_flags: tuple[str, ...]
    ttl_help: str


IGMP_SEND_TEXT = SendText(
    address=ipv4_address, record=parse_record, newest=3, payload="IGMP", ip="IPv4",
    group_help="group address (default for queries: 0.0.0.0, a general query)",
    max_resp_help="max response time of a query (default 10; v3 encodes it in the 8-bit "
                  "float form, rounding down; v1 queries carry 0)",
    max_resp_code_help="raw Max Resp Code byte, overriding --max-resp",
    record_metavar="TYPE:GROUP[:SRC,...]",
    record_help="a v3 group record; TYPE is IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK or a "
                "number (repeat for more records)",
    src_help="IP source (default: the interface's first address)",
    dst_help="IP destination (default: per KIND)",
    ttl_flags=("--ttl",), ttl_help="IP TTL (default 1)",
)


def send_arguments(send: argparse.ArgumentParser, kinds: tuple[str, ...],
                   text: SendText) -> None:
    """The options of ``igmp send`` (and ``mld send``) before :func:`send_options`."""
    v = text.newest
    send.add_argument("kind", nargs="?", choices=kinds, metavar="KIND",
                      help="what to send: " + ", ".join(kinds))
    send.add_argument("--iface", required=True, help="interface to send on")
    send.add_argument("--group", type=text.address, help=text.group_help)
    send.add_argument("--source", type=text.address, action="append", default=[],
                      metavar="ADDR", help=f"a source of a v{v} query (repeat for more)")
    send.add_argument("--version", type=int, choices=tuple(range(1, v + 1)), default=v,
                      help=f"query version (default {v})")
    send.add_argument("--max-resp", type=_seconds, default=10.0, metavar="SECONDS",
                      help=text.max_resp_help)
    send.add_argument("--max-resp-code", type=int, metavar="N", help=text.max_resp_code_help)
    send.add_argument("-s", "--suppress", action="store_true",
                      help=f"set the v{v} S flag (suppress router-side processing)")
    send.add_argument("--qrv", type=int, default=2,
                      help=f"v{v} querier's robustness (default 2)")
    send.add_argument("--qqi", type=int, default=125, metavar="SECONDS",
                      help=f"v{v} querier's query interval (default 125)")
    send.add_argument("--qqic", type=int, metavar="N", help="raw QQIC byte, overriding --qqi")
    send.add_argument("--record", type=text.record, action="append", default=[],
                      metavar=text.record_metavar, help=text.record_help)
    send.add_argument("--hex", type=parse_hex, metavar="BYTES",
                      help=f"send these {text.payload} bytes as they are, instead of a KIND")
    send.add_argument("--whole-packet", action="store_true",
                      help=f"with --hex: the bytes are a whole {text.ip} packet, header "
                           "included")
    send.add_argument("--src", type=text.address, help=text.src_help)
    send.add_argument("--dst", type=text.address, help=text.dst_help)
    send.add_argument(*text.ttl_flags, dest="ttl", type=int, default=1, help=text.ttl_help)


def watch_parser(sub: Any, tool: Tool, func: Callable[[argparse.Namespace], int],
                 description: str) -> None:
    """``igmp watch`` (``mld watch``): ``description`` is the family's, before the exit
    status line all watches end with."""
    watch = sub.add_parser(
        "watch", help=f"show {tool.protocol} seen on an interface, in both directions",
        formatter_class=_FORMATTER,
        description=description + "Exit status: 0; 1 if --count messages did not arrive "
                                  "within --timeout.",
        epilog=(
            "examples:\n"
            f"  mrouter {tool.command} watch --iface dn0\n"
            f"  mrouter {tool.command} watch --iface dn0 --json --count 4 --timeout 30 "
            f"--pcap {tool.command}.pcap"
        ),
    )
    watch_options(watch, tool.protocol)
    watch.set_defaults(func=func)


def decode_parser(sub: Any, tool: Tool, func: Callable[[argparse.Namespace], int],
                  last_line: str, *, epilog: str) -> None:
    """``igmp decode`` (``mld decode``): ``last_line`` ends the description (which
    frames are skipped)."""
    decode = sub.add_parser(
        "decode", help=f"show the {tool.protocol} messages in a pcap or pcapng file",
        formatter_class=_FORMATTER,
        description=(
            f"Show the {tool.protocol} messages of a capture (pcap or pcapng; Ethernet, "
            "Linux cooked\nSLL/SLL2 or raw IP frames), in the same format as watch, with "
            "the frame\nnumber. A malformed packet is shown with its error and byte offset, "
            "and\n" + last_line
        ),
        epilog=epilog,
    )
    decode_options(decode)
    decode.set_defaults(func=func)


def watch_options(watch: argparse.ArgumentParser, protocol: str) -> None:
    """The options of ``igmp watch`` (and ``mld watch``)."""
    watch.add_argument("--iface", required=True, help="interface to listen on")
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    watch.add_argument("--pcap", metavar="FILE", help="also write the packets to a pcap file")
    watch.add_argument("--count", type=_positive_int, metavar="N",
                       help=f"stop after N {protocol} messages")
    watch.add_argument("--timeout", type=_seconds, metavar="S",
                       help="stop after S seconds")


def decode_options(decode: argparse.ArgumentParser) -> None:
    """The options of ``igmp decode`` (and ``mld decode``)."""
    decode.add_argument("file", metavar="FILE.pcap", help="capture file")
    decode.add_argument("--json", action="store_true", help="one JSON object per line")


def send_options(send: argparse.ArgumentParser) -> None:
    """The options ``igmp send`` and ``mld send`` share after their own."""
    send.add_argument("--no-router-alert", action="store_true",
                      help="leave out the Router Alert option")
    send.add_argument("--count", type=_positive_int, default=1, help="send N times")
    send.add_argument("--interval", type=_seconds, default=1.0, metavar="S",
                      help="seconds between sends (default 1)")
    send.add_argument("--dry-run", action="store_true",
                      help="print what would be sent, with its bytes, and send nothing")
    send.add_argument("--json", action="store_true", help="one JSON object per line")

