"""Checks that the IGMP and MLD codec tests share (test_codec*.py, test_mld_codec*.py):
strategies for record fields, a decoder is total (it returns, or raises CodecError at an
offset inside the input), valid packets damaged so as to reach the deep checks, and an
error that says what and where."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import strategies as st

from mrouter.errors import CodecError
from mrouter.igmp.messages import RecordType

#: any byte value
bytes_ = st.integers(0, 255)
#: a group/address record's type: the six of RFC 3376/3810 (the same numbers for IGMPv3
#: and MLDv2) or any other byte, kept as its int
record_types = bytes_.map(lambda n: RecordType(n) if 1 <= n <= 6 else n)
#: a record's aux data: whole 32-bit words, up to 6
aux_data = st.integers(0, 6).flatmap(lambda words: st.binary(min_size=4 * words,
                                                              max_size=4 * words))


def assert_total(decode: Callable[[bytes], object], data: bytes, *,
                 reason: bool = False) -> None:
    """``decode(data)`` returns or raises CodecError whose offset lies within ``data``
    (and, with ``reason``, that says why)."""
    try:
        decode(data)
    except CodecError as exc:
        assert 0 <= exc.offset <= len(data)
        if reason:
            assert exc.reason


def damaged(draw: st.DrawFn, packet: bytes) -> bytes:
    """``packet`` with up to 4 bytes overwritten and/or cut short: it gets past the first
    checks and reaches the deep ones (option walk, record loop) that random bytes miss."""
    data = bytearray(packet)
    for _ in range(draw(st.integers(0, 4))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(bytes_)
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


def fails_at(call: Callable[[], object], match: str, offset: int) -> CodecError:
    """``call()`` raises CodecError with a message matching ``match`` (a regex) at byte
    ``offset``; the error, for more checks."""
    with pytest.raises(CodecError, match=match) as info:
        call()
    assert info.value.offset == offset
    return info.value
