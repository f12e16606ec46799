"""Family-neutral wire helpers shared by the IGMP and MLD codecs (pure).

Both codecs build their frozen message dataclasses through :func:`fast_constructor`:
decoding a small message is dominated by object construction, so this one helper is what
keeps either codec well ahead of scapy (``scripts/bench_codec.py``). Both read a list of
sources with one precompiled struct per count, from :class:`AddressListReaders` given the
family's struct format for ``count`` packed addresses.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")
_E = TypeVar("_E")


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen, slotted dataclass without ``__post_init__``.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    which costs half of decoding a small message. This writes the slots through their
    descriptors instead, the same values in the same order, so the object is equal to
    ``cls(*args)`` and just as immutable afterwards (``tests/unit/test_codec.py`` checks
    that for every message class). Generated like dataclasses generates ``__init__``.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} validates in __post_init__; use its constructor")
    names = [field.name for field in fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    body = []
    for name in names:
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        body.append(f"    _set_{name}(obj, {name})\n")
    source = f"def make({', '.join(names)}):\n    obj = _new(_cls)\n{''.join(body)}    return obj\n"
    exec(source, namespace)
    make: Callable[..., _T] = namespace["make"]
    return make


class AddressListReaders(dict[int, Callable[[bytes, int], tuple[_E, ...]]], Generic[_E]):
    """``unpack_from`` of a precompiled struct of ``count`` packed addresses, by count.

    ``layout(count)`` is the family's struct format (IPv4: ``!{count}I``, addresses as
    ints; IPv6: ``16s`` repeated, addresses as bytes). Only a miss runs Python code here;
    a hit is the dict's own lookup, as fast as a plain dict's.
    """

    __slots__ = ("_layout",)

    def __init__(self, layout: Callable[[int], str]) -> None:
        super().__init__()
        self._layout = layout

    def __missing__(self, count: int) -> Callable[[bytes, int], tuple[_E, ...]]:
        reader: Callable[[bytes, int], tuple[_E, ...]] = struct.Struct(
            self._layout(count)).unpack_from
        if len(self) < 256:  # counts above that are rare: do not keep them
            self[count] = reader
        return reader
