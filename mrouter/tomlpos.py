"""Where a key or a value stands in TOML text, for error messages that name a line (pure).

Theory of operation: :mod:`tomllib` returns values and never says on which line it found
them, so a checker that rejects a value finds the line again in the text. There are two
ways, one per shape of file, and both live here:

- **By structure** (:func:`key_line`): follow the ``[table]`` and ``[[array]]`` headers and
  return the line of ``key`` inside ``table``, or of the table's header when the key is
  not written (a default was used). The n-th ``[[routes]]`` table is named ``routes#n``.
  For files whose keys stand under headers: the daemon's config (:mod:`mrouter.router.config`).
- **By text** (:class:`TomlLines`): search the lines, comments cut off, for the offending
  value, for ``key = value``, or for a name as a key or table name. For files that keep
  their data in inline tables and arrays, where a key path (``links[0].endpoints[1].node``)
  has no header to follow: lab topologies (:mod:`mrouter.lab.topology`).

Either way the answer is a 1-based line number, or ``None`` when nothing fits.

Reading the text is here too (:func:`loads`): tomllib raises ``TOMLDecodeError`` for bad
syntax, but a value nested a few hundred levels deep reaches Python's recursion limit and
a number of more than 4,300 digits Python's integer-conversion limit, and those arrive as
``RecursionError`` and ``ValueError``. Both file formats want one error for all three.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")


def _unquote(name: str) -> str:
    return name.strip().strip("\"'")


def key_line(text: str, table: str, key: str | None) -> int | None:
    """1-based line of ``key`` in ``table`` ("interfaces.dn0", "routes#2", "" for the top
    level), or of the table header when ``key`` is None or not written in the file."""
    counts: dict[str, int] = {}
    current = ""
    header_line: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            name = ".".join(_unquote(p) for p in m.group(2).split("."))
            if m.group(1) == "[[":
                counts[name] = counts.get(name, 0) + 1
                name = f"{name}#{counts[name]}"
            current = name
            if current == table:
                header_line = number
            continue
        k = _KEY.match(line)
        if k and current == table and key is not None and _unquote(k.group(1)) == key:
            return number
    return header_line


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, the way a file most likely spells it."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TomlLines:
    """The lines of a TOML text, searched with comments (from ``#`` on) cut off."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def matching(self, pattern: re.Pattern[str]) -> list[int]:
        """Every line that ``pattern`` matches somewhere in, in order."""
        return [
            number for number, line in enumerate(self.lines, start=1)
            if pattern.search(line.split("#", 1)[0])
        ]

    def first(self, pattern: re.Pattern[str]) -> int | None:
        found = self.matching(pattern)
        return found[0] if found else None

    def value_line(self, key: str, value: object) -> int | None:
        """The first line holding ``value``: a non-empty string as a quoted string, a
        boolean or integer as ``last = value`` where ``last`` is the key path's last part;
        None for other values."""
        if isinstance(value, str) and value:
            return self.first(re.compile(re.escape(toml_string(value))))
        if isinstance(value, bool | int):
            last = key.rsplit(".", 1)[-1]
            shown = str(value).lower()
            return self.first(re.compile(rf"\b{re.escape(last)}\s*=\s*{shown}\b"))
        return None

    def name_line(self, name: str) -> int | None:
        """The first line where ``name`` (maybe quoted) is a key (``name =``) or ends a
        table name (``[nodes.name]``)."""
        return self.first(re.compile(rf'(^|[\s{{,.\[])"?{re.escape(name)}"?\s*(=|\])'))


class TomlError(ValueError):
    """TOML text that cannot be read; the message says why (and where, when tomllib knows)."""


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads`` with one error type for every way the text can be unreadable."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(str(exc)) from None
    except RecursionError:
        raise TomlError("a value is nested too deeply (arrays or tables inside each other "
                        "hundreds of levels deep)") from None
    except ValueError as exc:  # int_max_str_digits: "Exceeds the limit (4300 digits) ..."
        raise TomlError(f"a value cannot be read: {exc}") from None
    _check_integers(data)
    return data


_INT64 = range(-(2**63), 2**63)


def _check_integers(data: dict[str, Any]) -> None:
    """TOML integers are 64-bit (TOML 1.0, "Integer"); tomllib takes any size. A larger one
    is refused here, before a message that quotes it fails to print it (Python will not
    turn an integer of more than 4,300 digits into text). Iterative: the nesting is
    deep enough to have been parsed, not necessarily to be recursed over."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and item not in _INT64:
            raise TomlError("an integer is outside TOML's 64-bit range "
                            "(-9223372036854775808 to 9223372036854775807)")
