"""Family-neutral wire helpers shared by the IGMP and MLD codecs (pure).

Both codecs build their frozen message dataclasses through :func:`fast_constructor`:
decoding a small message is dominated by object construction, so this one helper is what
keeps either codec well ahead of scapy (``scripts/bench_codec.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T", bound="DataclassInstance")


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
