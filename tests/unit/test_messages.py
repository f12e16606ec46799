"""Max Resp Code / QQIC float form (RFC 3376 §4.1.1, §4.1.7) and message properties."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrouter.igmp.messages import (
    MAX_CODE_VALUE,
    Query,
    RecordType,
    code_to_value,
    value_to_code,
)

REPRESENTABLE = sorted({code_to_value(c) for c in range(256)})


def test_every_code_round_trips() -> None:
    for code in range(256):
        assert value_to_code(code_to_value(code)) == code


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0, 0), (127, 127),            # literal below 128
        (0x80, 128),                   # exp 0, mant 0: 16 << 3
        (0x8F, 248),                   # exp 0, mant 15: 31 << 3
        (0x90, 256),                   # exp 1, mant 0
        (0xFF, 31744),                 # exp 7, mant 15: 31 << 10, the largest
    ],
)
def test_rfc_boundaries(code: int, value: int) -> None:
    assert code_to_value(code) == value
    assert value_to_code(value) == code


@given(st.integers(min_value=0, max_value=100_000))
def test_encoding_rounds_down_to_largest_representable(value: int) -> None:
    got = code_to_value(value_to_code(value))
    expected = max(v for v in REPRESENTABLE if v <= min(value, MAX_CODE_VALUE))
    assert got == expected


def test_code_outside_a_byte_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a byte"):
        code_to_value(256)


def test_query_times_by_version() -> None:
    assert Query(version=1).max_resp_tenths == 100  # RFC 2236 §4: v1 query means 10 s
    assert Query(version=2, max_resp_code=100).max_resp_tenths == 100
    v3 = Query(version=3, max_resp_code=0x8F, qqic=0x90)
    assert v3.max_resp_tenths == 248
    assert v3.qqi == 256
    assert Query(version=2).is_general
    assert not Query(version=2, group=IPv4Address("239.1.1.1")).is_general


def test_record_type_short_names() -> None:
    assert [t.short for t in RecordType] == ["IS_IN", "IS_EX", "TO_IN", "TO_EX", "ALLOW", "BLOCK"]
