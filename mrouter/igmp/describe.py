"""IGMP messages and packets as JSON-able dicts and one-line text (pure).

Theory of operation: every tool that shows IGMP (``mrouter igmp watch`` and
``decode``, the querier, the daemon's logs) describes a message the same way, in two
steps: :func:`packet_fields` / :func:`message_fields` turn it into a flat dict of
JSON types (addresses as strings, times in seconds), and :func:`line` renders such a
dict as one line of aligned columns (:data:`COLUMNS`, :func:`header_line`). ``--json``
prints the dict; human output prints the line; both show the same facts.

Every message dict has the same keys: ``version`` (1, 2, 3 or None for an unknown
type), ``type`` (query, v1_report, v2_report, v2_leave, v3_report or unknown),
``type_code``, ``group`` (None for a v3 report), ``max_resp`` (seconds, None except in
queries) and ``records`` (v3 report group records, else empty); plus per-type extras
(a query's ``query`` kind, ``max_resp_code``, and in v3 ``s_flag``, ``qrv``, ``qqic``,
``qqi``, ``sources``; an unknown message's ``name``, ``code`` and ``body``).

:func:`line` and :func:`header_line` render MLD's dicts too (:mod:`mrouter.mld.describe`,
same keys plus ``"family": "ipv6"``), with wider address columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mrouter.errors import CodecError
from mrouter.igmp.codec import Packet
from mrouter.igmp.ipv4 import IPv4Header
from mrouter.igmp.messages import (
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
from mrouter.mld.messages import AddressRecord
from mrouter.mld.messages import Query as MldQuery

Fields = dict[str, Any]

#: Names of IGMP types this codec does not decode but a watcher may well see.
KNOWN_OTHER_TYPES = {
    0x13: "dvmrp",
    0x14: "pim-v1",
    0x15: "cisco-trace",
    0x1E: "mtrace-response",
    0x1F: "mtrace",
    0x30: "mrd-advertisement",  # RFC 4286
    0x31: "mrd-solicitation",
    0x32: "mrd-termination",
}


def _record_type_name(record_type: RecordType | int) -> str:
    if isinstance(record_type, RecordType):
        return record_type.short
    return f"type-{record_type}"


def record_fields(record: GroupRecord | AddressRecord) -> Fields:
    """An IGMPv3 group record or an MLDv2 address record (the same fields)."""
    fields: Fields = {
        "type": _record_type_name(record.record_type),
        "record_type": int(record.record_type),
        "group": str(record.group),
        "sources": [str(s) for s in record.sources],
    }
    if record.aux_data:
        fields["aux_data"] = record.aux_data.hex()
    return fields


def base_fields(version: int | None, kind: str, type_code: int, group: str | None) -> Fields:
    """The keys every message dict has, IGMP's and MLD's, in their order."""
    return {"version": version, "type": kind, "type_code": type_code, "group": group,
            "max_resp": None, "records": []}


def query_fields(msg: Query | MldQuery, max_resp: float, *, newest: bool) -> Fields:
    """An IGMP or MLD query: ``max_resp`` in seconds; ``newest`` (IGMPv3, MLDv2) adds
    the S flag, QRV, QQIC, QQI and the sources."""
    fields = base_fields(msg.version, "query", msg.type, str(msg.group))
    if msg.is_general:
        fields["query"] = "general"
    else:
        fields["query"] = "group-and-source" if msg.sources else "group"
    fields["max_resp"] = max_resp
    fields["max_resp_code"] = msg.max_resp_code
    if newest:
        fields.update(s_flag=msg.s_flag, qrv=msg.qrv, qqic=msg.qqic, qqi=msg.qqi,
                      sources=[str(s) for s in msg.sources])
    return fields


def _query(msg: Query) -> Fields:
    return query_fields(msg, msg.max_resp_tenths / 10, newest=msg.version == 3)


def _v1_report(msg: V1Report) -> Fields:
    return base_fields(1, "v1_report", msg.type, str(msg.group))


def _v2_report(msg: V2Report) -> Fields:
    return base_fields(2, "v2_report", msg.type, str(msg.group))


def _v2_leave(msg: V2Leave) -> Fields:
    return base_fields(2, "v2_leave", msg.type, str(msg.group))


def _v3_report(msg: V3Report) -> Fields:
    fields = base_fields(3, "v3_report", msg.type, None)
    fields["records"] = [record_fields(r) for r in msg.records]
    return fields


def _unknown(msg: UnknownMessage) -> Fields:
    fields = base_fields(None, "unknown", msg.type, None)
    fields.update(name=KNOWN_OTHER_TYPES.get(msg.type, f"type-0x{msg.type:02x}"),
                  code=msg.code, body=msg.body.hex())
    return fields


_DESCRIBERS: dict[type, Callable[[Any], Fields]] = {
    Query: _query,
    V1Report: _v1_report,
    V2Report: _v2_report,
    V2Leave: _v2_leave,
    V3Report: _v3_report,
    UnknownMessage: _unknown,
}


def message_fields(msg: IgmpMessage) -> Fields:
    """The message as a JSON-able dict (see the module docstring for the keys)."""
    return _DESCRIBERS[type(msg)](msg)


def ip_fields(ip: IPv4Header) -> Fields:
    return {"family": "ipv4", "src": str(ip.src), "dst": str(ip.dst), "ttl": ip.ttl,
            "router_alert": ip.router_alert, "ip_checksum_ok": ip.checksum_ok}


def where_fields(time: float | None, iface: str | None, direction: str | None) -> Fields:
    """When and where a packet was seen: the first keys of every packet dict (IGMP's and
    MLD's); ``direction`` only when the tool knows it."""
    fields: Fields = {"time": time, "iface": iface}
    if direction is not None:
        fields["direction"] = direction
    return fields


def packet_fields(
    packet: Packet,
    *,
    time: float | None = None,
    iface: str | None = None,
    direction: str | None = None,
) -> Fields:
    """A decoded packet as one flat JSON-able dict: where and when it was seen, its IP
    header (src, dst, ttl, router_alert, ip_checksum_ok), the IGMP checksum verdict
    (checksum_ok) and the message's fields."""
    fields = where_fields(time, iface, direction)
    fields.update(ip_fields(packet.ip))
    fields["checksum_ok"] = packet.checksum_ok
    fields.update(message_fields(packet.igmp))
    return fields


def error_fields(
    error: CodecError,
    data: bytes,
    *,
    time: float | None = None,
    iface: str | None = None,
    direction: str | None = None,
    ip: IPv4Header | None = None,
) -> Fields:
    """A packet that failed to decode: the error, its byte offset and the bytes."""
    fields = where_fields(time, iface, direction)
    if ip is not None:
        fields.update(ip_fields(ip))
    fields.update(error=error.reason, offset=error.offset, hex=data.hex())
    return fields


# --- one line of text ---------------------------------------------------------------

#: (title, width) of the fixed columns of :func:`line`; details follow, unaligned.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("TIME", 15), ("IFACE", 8), ("SOURCE", 15), ("DESTINATION", 15), ("VER", 3),
    ("TYPE", 9), ("GROUP", 15), ("MAXRESP", 7), ("RA", 2), ("CKSUM", 5),
)

_TYPE_TEXT = {"query": "query", "v1_report": "report", "v2_report": "report",
              "v2_leave": "leave", "v3_report": "report", "unknown": "unknown",
              "v1_done": "done"}  # MLDv1's leave


def format_time(time: float | None) -> str:
    if time is None:
        return "-"
    return datetime.fromtimestamp(time).strftime("%H:%M:%S.%f")


def _sources_text(sources: list[str]) -> str:
    return "{" + ", ".join(sources) + "}"


def _details(fields: Fields) -> str:
    if "error" in fields:
        return f"error: {fields['error']} (at byte offset {fields['offset']})"
    kind = fields["type"]
    # IGMPv3 reports and MLDv2 reports (MLD's "v2_report") carry records
    if kind == "v3_report" or (kind == "v2_report" and fields.get("family") == "ipv6"):
        return "; ".join(
            f"{r['type']} {r['group']} {_sources_text(r['sources'])}"
            + (f" aux {r['aux_data']}" if "aux_data" in r else "")
            for r in fields["records"]
        ) or "no records"
    if kind == "query":
        text = str(fields["query"])
        if "s_flag" in fields:  # IGMPv3 and MLDv2 queries
            text += (f" S={int(fields['s_flag'])} QRV={fields['qrv']} QQI={fields['qqi']}s")
            if fields["sources"]:
                text += f" sources {_sources_text(fields['sources'])}"
        return text
    if kind == "unknown":
        return f"{fields['name']} code {fields['code']} body {fields['body']}"
    return ""


def _yes_no(value: object, yes: str, no: str) -> str:
    if value is None:
        return "-"
    return yes if value else no


def line(fields: Fields, columns: tuple[tuple[str, int], ...] = COLUMNS) -> str:
    """One line of aligned columns (:data:`COLUMNS`, or MLD's wider ones) for a dict from
    :func:`packet_fields` or :func:`error_fields` (or their MLD twins)."""
    version = fields.get("version")
    max_resp = fields.get("max_resp")
    # IPv6 has no header checksum: an MLD dict has no ip_checksum_ok
    checks = (fields.get("checksum_ok"), fields.get("ip_checksum_ok", True))
    if "error" in fields:
        cksum = "-"
    else:
        cksum = "ok" if all(checks) else ("bad" if checks[0] is False else "badip")
    values = (
        format_time(fields.get("time")),
        fields.get("iface") or "-",
        fields.get("src", "-"),
        fields.get("dst", "-"),
        f"v{version}" if version else "-",
        "error" if "error" in fields else _TYPE_TEXT[fields["type"]],
        fields.get("group") or "-",
        f"{max_resp:g}s" if max_resp is not None else "-",
        _yes_no(fields.get("router_alert"), "RA", "-"),
        cksum,
    )
    cells = [f"{value:<{width}}" for value, (_, width) in zip(values, columns, strict=True)]
    return (" ".join(cells) + " " + _details(fields)).rstrip()


def header_line(columns: tuple[tuple[str, int], ...] = COLUMNS) -> str:
    """The column titles, aligned like :func:`line`."""
    return " ".join(f"{title:<{width}}" for title, width in columns) + " DETAILS"
