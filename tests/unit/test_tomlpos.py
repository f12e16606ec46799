"""mrouter.tomlpos: the line of a key or value in TOML text, by structure and by text."""

from __future__ import annotations

import re

import pytest

from mrouter.tomlpos import TomlLines, key_line, toml_string

CONFIG = """\
mode = "router"          # line 1
[interfaces.up0]
[interfaces."dn0"]
igmp_version = 2
[[routes]]
group = "239.1.1.1"
[[routes]]
from = "up0"
group = "239.2.2.2"
"""


@pytest.mark.parametrize(("table", "key", "line"), [
    ("", "mode", 1),
    ("interfaces.dn0", "igmp_version", 4),  # a quoted table name is the same name
    ("interfaces.up0", "igmp_version", 2),  # not written: the table's header
    ("interfaces.up0", None, 2),
    ("routes#1", "group", 6),
    ("routes#2", "group", 9),  # the second [[routes]], not the first group key
    ("routes#3", "group", None),
    ("interfaces.eth9", "igmp_version", None),
])
def test_key_line_follows_headers_and_arrays_of_tables(table: str, key: str | None,
                                                       line: int | None) -> None:
    assert key_line(CONFIG, table, key) == line


TOPOLOGY = """\
[nodes.r1]
kind = "router"
[nodes.h1]   # kind = "router" in a comment is not a match
kind = "host"
[lans.lan0]
igmp_snooping = false
members = [{ node = "r1", iface = "dn0", address = "192.0.2.1/24" },
           { node = "h1", iface = "eth0", address = "192.0.2.10/24" }]
"""


def test_a_string_value_is_found_as_a_quoted_string_outside_comments() -> None:
    lines = TomlLines(TOPOLOGY)
    assert lines.value_line("nodes.r1.kind", "router") == 2
    assert lines.value_line("lans.lan0.members[1].address", "192.0.2.10/24") == 8
    assert lines.value_line("nodes.x.kind", "switch") is None
    assert lines.value_line("nodes.x.kind", "") is None  # nothing to search for


def test_a_boolean_or_integer_is_found_as_its_key_and_value() -> None:
    lines = TomlLines(TOPOLOGY)
    assert lines.value_line("lans.lan0.igmp_snooping", False) == 6
    assert lines.value_line("lans.lan0.igmp_snooping", True) is None
    assert lines.value_line("lans.lan0.members", ["not", "searchable"]) is None


def test_a_name_is_found_as_a_key_or_the_end_of_a_table_name() -> None:
    lines = TomlLines(TOPOLOGY)
    assert lines.name_line("h1") == 3  # [nodes.h1]
    assert lines.name_line("members") == 7  # members = [...]
    assert lines.name_line("r2") is None
    assert lines.matching(re.compile(r'node = "r1"')) == [7]


def test_toml_string_escapes_quotes_and_backslashes() -> None:
    assert toml_string('a"b\\c') == '"a\\"b\\\\c"'
