"""Checks that the IGMP and MLD codec properties share (test_codec_properties.py,
test_mld_codec_properties.py): a decoder is total (it returns, or raises CodecError at an
offset inside the input), valid packets damaged so as to reach the deep checks, and an
error that says what and where."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import strategies as st

from mrouter.errors import CodecError


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
        data[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


def fails_at(call: Callable[[], object], match: str, offset: int) -> CodecError:
    """``call()`` raises CodecError with a message matching ``match`` (a regex) at byte
    ``offset``; the error, for more checks."""
    with pytest.raises(CodecError, match=match) as info:
        call()
    assert info.value.offset == offset
    return info.value
