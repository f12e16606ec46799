"""The IGMPv3 and MLDv2 codecs on group/address records, the same test for each family:
all six record types, an unknown type kept as its int, and aux data skipped by its
length so that the next record is found (RFC 3376 §4.2, RFC 3810 §5.2)."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NamedTuple

import pytest

from mrouter.igmp import codec as igmp_codec
from mrouter.igmp.messages import GroupRecord, RecordType, V3Report
from mrouter.mld import codec as mld_codec
from mrouter.mld.messages import ALL_MLDV2_ROUTERS, AddressRecord, V2Report

MLD_HOST = IPv6Address("fe80::2")


class Family(NamedTuple):
    record: type[Any]
    report: type[Any]
    group: Callable[[int], Any]  # the group for record type n
    other: Any  # the unknown record's group
    last: Any  # the group of the record after it
    sources: tuple[Any, Any]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


FAMILIES = [
    pytest.param(Family(GroupRecord, V3Report, lambda n: IPv4Address(f"239.0.0.{n}"),
                        IPv4Address("239.1.2.3"), IPv4Address("239.9.9.9"),
                        (IPv4Address("198.51.100.2"), IPv4Address("198.51.100.3")),
                        igmp_codec.encode, igmp_codec.decode), id="igmpv3"),
    pytest.param(Family(AddressRecord, V2Report, lambda n: IPv6Address(f"ff15::{n}"),
                        IPv6Address("ff15::77"), IPv6Address("ff15::99"),
                        (IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")),
                        lambda m: mld_codec.encode(m, MLD_HOST, ALL_MLDV2_ROUTERS),
                        lambda d: mld_codec.decode(d, MLD_HOST, ALL_MLDV2_ROUTERS)),
                 id="mldv2"),
]


@pytest.mark.parametrize("family", FAMILIES)
def test_all_six_record_types_unknown_type_and_aux_data(family: Family) -> None:
    s1, s2 = family.sources
    records = (
        *(family.record(t, family.group(t.value), (s1,) * (t.value % 3)) for t in RecordType),
        family.record(9, family.other, (s2,), b"AUX!" * 2),  # unknown type, kept as int
        family.record(RecordType.ALLOW_NEW_SOURCES, family.last, (s1, s2)),
    )
    decoded = family.decode(family.encode(family.report(records)))
    assert decoded == family.report(records)
    assert isinstance(decoded, family.report)
    assert [r.record_type for r in decoded.records][:6] == list(RecordType)
    # the record after the one with aux data is found where Aux Data Len says
    assert decoded.records[-1].group == family.last
    assert decoded.records[-2].aux_data == b"AUX!AUX!"
