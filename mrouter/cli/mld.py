"""``mrouter mld``: watch, decode and craft MLD messages (IPv6's IGMP).

The same three subcommands as ``mrouter igmp``, with the same options and output
shapes, run by the same functions (:func:`mrouter.cli.igmp.watch`, ``decode_capture``,
``send``) over MLD's :class:`~mrouter.cli.igmp.Tool`: mrouter's own MLD codec
(:mod:`mrouter.mld.codec`) and its descriptions (:mod:`mrouter.mld.describe`).

- ``watch`` listens on an interface with an ``AF_PACKET`` socket whose BPF filter keeps
  IPv6 carrying MLD (after the IPv6 header or a Hop-by-Hop header), both directions;
- ``decode`` reads a pcap/pcapng capture and shows its MLD packets only (IGMP in the
  same capture is ``mrouter igmp decode``'s);
- ``send`` builds a whole IPv6 packet (hop limit 1, Hop-by-Hop Router Alert 0) and sends
  it as built through a raw IPv6 socket; the source defaults to the interface's
  link-local address.
"""

from __future__ import annotations

import argparse
from ipaddress import IPv6Address

from mrouter.cli.igmp import (
    SendText,
    Tool,
    UsageError,
    decode_capture,
    decode_parser,
    parse_record_type,
    send,
    send_arguments,
    send_options,
    watch,
    watch_parser,
)
from mrouter.errors import CodecError
from mrouter.igmp.describe import Fields
from mrouter.igmp.messages import value_to_code
from mrouter.linux import bpf
from mrouter.linux.constants import ETH_P_IPV6
from mrouter.mld import describe as mld_describe
from mrouter.mld.codec import decode_packet, encode_packet
from mrouter.mld.ipv6 import ROUTER_ALERT_OPTIONS, build_header, parse_header
from mrouter.mld.messages import (
    ALL_MLDV2_ROUTERS,
    ALL_NODES,
    ALL_ROUTERS,
    UNSPECIFIED,
    AddressRecord,
    MldMessage,
    MldType,
    Query,
    V1Done,
    V1Report,
    V2Report,
    delay_ms_to_code,
)

#: ``mld watch``'s filter: IPv6 carrying MLD, up to 256 KiB, on an ETH_P_ALL socket.
MLD_FILTER = bpf.ipv6_icmp_types(tuple(int(t) for t in MldType), 0x40000, any_ethertype=True)

KINDS = ("query", "v1-report", "done", "v2-report")
MAX_V1_DELAY_MS = 0xFFFF


def describe(data: bytes, *, time: float | None, iface: str | None,
             direction: str | None = None) -> Fields:
    """Decode a whole IPv6 packet for display: the checksum reported, not enforced; a
    malformed packet becomes an error entry."""
    try:
        packet = decode_packet(data, verify_checksum=False)
    except CodecError as exc:
        try:
            ip = parse_header(data)
        except CodecError:
            ip = None
        return mld_describe.error_fields(exc, data, time=time, iface=iface,
                                         direction=direction, ip=ip)
    return mld_describe.packet_fields(packet, time=time, iface=iface, direction=direction)


def ipv6_address(text: str) -> IPv6Address:
    """argparse type for an IPv6 address."""
    try:
        return IPv6Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv6 address") from None


def parse_record(text: str) -> AddressRecord:
    """``TYPE:GROUP`` or ``TYPE:[GROUP]:SOURCE,SOURCE...`` (brackets around the group when
    sources follow, since IPv6 addresses hold colons); TYPE an RFC short name or a
    number."""
    name, sep, rest = text.partition(":")
    example = "e.g. ALLOW:[ff15::1]:2001:db8::2,2001:db8::3 or TO_EX:ff15::1"
    if not sep or not rest:
        raise argparse.ArgumentTypeError(
            f"record {text!r}: expected TYPE:GROUP or TYPE:[GROUP]:SOURCE,..., {example}")
    record_type = parse_record_type(name)
    sources_text = ""
    if rest.startswith("["):
        group_text, bracket, after = rest[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise argparse.ArgumentTypeError(f"record {text!r}: {example}")
        sources_text = after[1:]
    else:
        group_text = rest
    try:
        group = IPv6Address(group_text)
        sources = tuple(IPv6Address(s) for s in sources_text.split(",") if s)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"record {text!r}: {exc}; {example}") from None
    return AddressRecord(record_type, group, sources)


def build_message(args: argparse.Namespace) -> MldMessage:
    """The message the send options describe."""
    kind: str = args.kind
    if kind in ("v1-report", "done") and args.group is None:
        raise UsageError(f"{kind} needs --group")
    if args.record and kind != "v2-report":
        raise UsageError("--record is for v2-report")
    if args.source and not (kind == "query" and args.version == 2):
        raise UsageError("--source is for MLDv2 queries (--version 2)")
    if kind == "v1-report":
        return V1Report(args.group)
    if kind == "done":
        return V1Done(args.group)
    if kind == "v2-report":
        return V2Report(tuple(args.record))
    group = args.group or UNSPECIFIED
    delay_ms = round(args.max_resp * 1000)
    max_resp_code = args.max_resp_code
    if args.version == 1:
        if max_resp_code is None:
            if delay_ms > MAX_V1_DELAY_MS:
                raise UsageError(f"an MLDv1 Maximum Response Delay is at most "
                                 f"{MAX_V1_DELAY_MS} ms, got {delay_ms}")
            max_resp_code = delay_ms
        return Query(1, group, max_resp_code)
    if max_resp_code is None:
        max_resp_code = delay_ms_to_code(delay_ms)
    qqic = args.qqic if args.qqic is not None else value_to_code(args.qqi)
    return Query(2, group, max_resp_code, args.suppress, args.qrv, qqic, tuple(args.source))


def default_destination(msg: MldMessage) -> IPv6Address:
    """Where RFC 2710 and RFC 3810 send each message."""
    if isinstance(msg, Query):
        return ALL_NODES if msg.is_general else msg.group
    if isinstance(msg, V1Done):
        return ALL_ROUTERS
    if isinstance(msg, V1Report):
        return msg.group
    return ALL_MLDV2_ROUTERS


def _source_address(iface: str) -> IPv6Address:
    from mrouter.sockets.mld_socket import link_local

    return link_local(iface).address


def build_packet(args: argparse.Namespace) -> bytes:
    if args.hex is not None:
        if args.kind is not None:
            raise UsageError("give either KIND or --hex, not both")
        if args.whole_packet:
            return bytes(args.hex)
        icmp = bytes(args.hex)  # sent as given, checksum and all
        src = args.src or _source_address(args.iface)
        options = None if args.no_router_alert else ROUTER_ALERT_OPTIONS
        return build_header(src, args.dst or ALL_NODES, len(icmp), hop_limit=args.ttl,
                            hop_by_hop=options) + icmp
    if args.kind is None:
        raise UsageError(f"say what to send: one of {', '.join(KINDS)}, or --hex BYTES")
    msg = build_message(args)
    src = args.src or _source_address(args.iface)
    dst = args.dst or default_destination(msg)
    return encode_packet(msg, src, dst, hop_limit=args.ttl,
                         router_alert=not args.no_router_alert)


def _open_sender() -> object:
    from mrouter.sockets.mld_socket import RawIpv6Sender

    return RawIpv6Sender()


def _is_mld(data: bytes) -> bool:
    return mld_describe.mld_type(data) is not None


MLD_TOOL = Tool(
    command="mld", protocol="MLD", watch_filter=MLD_FILTER, ethertype=ETH_P_IPV6,
    ours=_is_mld, from_frame=lambda frame: frame.ipv6, describe=describe,
    columns=mld_describe.COLUMNS, build_packet=build_packet, open_sender=_open_sender,
)


def run_watch(args: argparse.Namespace) -> int:
    return watch(args, MLD_TOOL)


def run_decode(args: argparse.Namespace) -> int:
    return decode_capture(args, MLD_TOOL)


def run_send(args: argparse.Namespace) -> int:
    return send(args, MLD_TOOL)


MLD_SEND_TEXT = SendText(
    address=ipv6_address, record=parse_record, newest=2, payload="ICMPv6", ip="IPv6",
    group_help="multicast address (default for queries: ::, a general query)",
    max_resp_help="Maximum Response Delay of a query (default 10; sent in ms, in v2 in the "
                  "16-bit float form above 32.767 s, rounding down)",
    max_resp_code_help="raw 16-bit Maximum Response Code, overriding --max-resp",
    record_metavar="TYPE:[GROUP]:SRC,...",
    record_help="an MLDv2 address record; TYPE is IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK "
                "or a number (repeat for more records)",
    src_help="IPv6 source (default: the interface's link-local address)",
    dst_help="IPv6 destination (default: per KIND)",
    ttl_flags=("--ttl", "--hop-limit"), ttl_help="IPv6 hop limit (default 1)",
)


# --- parsers ------------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mld_command", metavar="SUBCOMMAND", required=True)

    watch_parser(sub, MLD_TOOL, run_watch, (
        "Show every MLD message sent or received on an interface, one per line, as\n"
        "`mrouter igmp watch` shows IGMP: time, interface, source, destination,\n"
        "version, type, group, max response time, Router Alert (RA), checksum, then\n"
        "MLDv2 address records with their sources or MLDv2 query fields. Listens with\n"
        "an AF_PACKET socket (needs root), so it sees reports to ff02::16 without\n"
        "joining, and this host's own messages.\n"
    ))
    decode_parser(
        sub, MLD_TOOL, run_decode,
        "decoding goes on; frames that are not MLD (IGMP included: see `mrouter igmp\n"
        "decode`) are skipped.",
        epilog="examples:\n  mrouter mld decode mld.pcap\n  tcpdump -i any -w x.pcap "
               "'ip6 or igmp'; mrouter mld decode x.pcap --json\n"
               "(libpcap's 'icmp6' misses MLD: it does not look past the Hop-by-Hop "
               "header)",
    )

    s = sub.add_parser(
        "send", help="craft and send one MLD message (query, report, done, raw bytes)",
        formatter_class=_FORMATTER,
        description=(
            "Build an MLD message with mrouter's own codec (mrouter.mld.codec), wrap it in\n"
            "an IPv6 header with hop limit 1 and a Hop-by-Hop Router Alert, and send it\n"
            "out of --iface as built, through a raw IPv6 socket (needs root).\n"
            "KIND is one of:\n"
            "  query      general (no --group), group-specific (--group) or, in v2,\n"
            "             group-and-source-specific (--group and --source ...);\n"
            "             --version, --max-resp, -s, --qrv, --qqi apply\n"
            "  v1-report, done   MLDv1, for --group\n"
            "  v2-report  with one --record TYPE:GROUP or TYPE:[GROUP]:SOURCE,... per\n"
            "             address record\n"
            "or give --hex BYTES instead of KIND to send arbitrary ICMPv6 bytes (the\n"
            "checksum is not fixed), or a whole IPv6 packet with --whole-packet.\n"
            "The source is the interface's link-local address unless --src says\n"
            "otherwise. Destination defaults as the RFCs say: ff02::1 for general\n"
            "queries, the group for group queries and v1 reports, ff02::2 for dones,\n"
            "ff02::16 for v2 reports. Each sent message is printed like watch does."
        ),
        epilog=(
            "examples:\n"
            "  mrouter mld send --iface dn0 query --max-resp 10\n"
            "  mrouter mld send --iface dn0 query --group ff15::1 --source 2001:db8:1::2\n"
            "  mrouter mld send --iface eth0 v2-report --record TO_EX:ff15::1 \\\n"
            "      --record ALLOW:[ff15::2]:2001:db8:1::2,2001:db8:1::3\n"
            "  mrouter mld send --iface eth0 done --group ff15::1\n"
            "  mrouter mld send --iface dn0 --src fe80::1 --hex 8200000027100000"
            "00000000000000000000000000000000 --dry-run"
        ),
    )
    send_arguments(s, KINDS, MLD_SEND_TEXT)
    send_options(s)
    s.set_defaults(func=run_send)


