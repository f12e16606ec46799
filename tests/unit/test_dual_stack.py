"""Dual stack without a kernel (issue 14): the config's families, MLD and IPv6 keys, one
route table per family over the family object, and the daemon's planes."""

from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from mrouter.errors import ConfigError
from mrouter.igmp.family import IPV4, IPV6
from mrouter.router.config import parse_config, parse_membership, parse_route
from mrouter.router.planes import Planes
from mrouter.router.routes import FilterMode, RouteTable, StaticRoute

ISSUE_FORM = """\
mode = "router"                  # or "proxy"
families = ["ipv4", "ipv6"]      # default ["ipv4"]: existing configs keep working unchanged
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
mld_version = 2                  # 1 or 2; MLD timers and querier settings like IGMP's
[[routes]]
source = "2001:db8:1::2"         # IPv6 static (S,G), (*,G) and prefix routes, like IPv4
group = "ff15::1"
from = "up0"
to = ["dn0"]
"""


def test_the_issue_form_parses() -> None:
    config = parse_config(ISSUE_FORM, "r.toml")
    assert config.families == ("ipv4", "ipv6")
    (route,) = config.routes
    assert (route.source, route.group) == (IPv6Address("2001:db8:1::2"),
                                           IPv6Network("ff15::1/128"))
    dn0 = config.interface("dn0")
    assert (dn0.igmp.protocol, dn0.igmp.version) == ("IGMP", 3)
    assert (dn0.mld.protocol, dn0.mld.version) == ("MLD", 2)


def test_without_families_a_config_is_ipv4_only_as_before() -> None:
    config = parse_config("[interfaces.up0]\n[interfaces.dn0]\n", "r.toml")
    assert config.families == ("ipv4",)


def test_shared_timers_serve_both_protocols_and_mld_keys_override() -> None:
    config = parse_config('families = ["ipv4", "ipv6"]\n[interfaces.dn0]\n'
                          "query_interval = 60\nlast_member_query_interval = 0.5\n"
                          "mld_query_interval = 30\nmld_version = 1\n", "r.toml")
    dn0 = config.interface("dn0")
    assert (dn0.igmp.query_interval, dn0.igmp.last_member_query_interval) == (60.0, 0.5)
    assert (dn0.mld.query_interval, dn0.mld.last_member_query_interval) == (30.0, 0.5)
    assert dn0.mld.version == 1


@pytest.mark.parametrize(("text", "expected"), [
    ('families = ["ipv5"]\n[interfaces.a]\n',
     'r.toml:1: families: must be a list of address families'),
    ('families = ["ipv6", "ipv6"]\n[interfaces.a]\n', "r.toml:1: families: names a family twice"),
    ('[interfaces.a]\nmld_version = 3\n', "r.toml:2: interfaces.a.mld_version: must be 1 or 2"),
    ('[interfaces.a]\n[interfaces.b]\n[[routes]]\ngroup = "ff15::1"\nfrom = "a"\nto = ["b"]\n',
     "r.toml:4: [[routes]] #1, key 'group': ff15::1/128 is ipv6, which families does not "
     "list (ipv4); add it to families"),
    ('families = ["ipv6"]\n[interfaces.a]\n[interfaces.b]\n[[routes]]\ngroup = "ff02::1"\n'
     'from = "a"\nto = ["b"]\n',
     "[[routes]] #1, key 'group': ff02::1/128 is link-local (ff02::/16) and is never "
     "forwarded"),
    ('families = ["ipv4", "ipv6"]\n[interfaces.a]\n[interfaces.b]\n[[routes]]\n'
     'source = "198.51.100.2"\ngroup = "ff15::1"\nfrom = "a"\nto = ["b"]\n',
     "[[routes]] #1, key 'source': 198.51.100.2 and the group ff15::1/128 are of different "
     "address families"),
    ('families = ["ipv6"]\n[interfaces.a]\n[interfaces.b]\n[[routes]]\n'
     'source = "2001:db8::zz"\ngroup = "ff15::1"\nfrom = "a"\nto = ["b"]\n',
     "\"2001:db8::zz\" is not an IPv6 address"),
    ('families = ["ipv6"]\n[interfaces.a]\n[[memberships]]\niface = "a"\n'
     'group = "ff15::/16"\n', "ff15::/16 is a prefix; a membership needs one group address"),
])
def test_errors_name_the_key_and_what_to_write(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "r.toml")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_control_requests_take_ipv6() -> None:
    route = parse_route({"group": "ff15::300/120", "from": "up0", "to": ["dn0"]},
                        ("up0", "dn0"))
    assert (route.source, route.group) == (None, IPv6Network("ff15::300/120"))
    route = parse_route({"source": "2001:db8:1::2", "group": "ff15::1", "from": "up0",
                         "to": ["dn0"]}, ("up0", "dn0"))
    assert route.source == IPv6Address("2001:db8:1::2")
    with pytest.raises(ConfigError, match="is a prefix"):  # an (S,G) needs one group
        parse_route({"source": "2001:db8:1::2", "group": "ff15::/16", "from": "up0",
                     "to": ["dn0"]}, ("up0", "dn0"))
    m = parse_membership({"iface": "dn0", "group": "ff15::8"}, ("up0", "dn0"))
    assert m.group == IPv6Address("ff15::8")


S = IPv6Address("2001:db8:1::2")


def test_ipv6_table_never_forwards_link_scope_and_honours_mldv2_filters() -> None:
    table = RouteTable(("up0", "dn0", "dn1"), family=IPV6)
    table.add_route(StaticRoute(IPv6Network("ff00::/8"), "up0", frozenset({"dn1"})))
    assert table.oifs(S, IPv6Address("ff02::1:5"), "up0") == frozenset()  # link scope
    assert table.oifs(S, IPv6Address("ff15::5"), "up0") == {"dn1"}
    g = IPv6Address("ff15::6")
    table.set_membership("dn0", g, FilterMode.INCLUDE, [IPv6Address("2001:db8:1::99")])
    assert table.oifs(S, g, "up0") == {"dn1"}  # INCLUDE of another source only
    table.set_membership("dn0", g, FilterMode.EXCLUDE, [S])
    assert table.oifs(S, g, "up0") == {"dn1"}  # EXCLUDE of this source
    table.set_membership("dn0", g, FilterMode.EXCLUDE, [])
    assert table.oifs(S, g, "up0") == {"dn0", "dn1"}
    assert table.oifs(S, g, "dn0") == frozenset()  # never back out of the iif


def test_planes_one_per_family_in_config_order() -> None:
    planes = Planes(("ipv4", "ipv6"), random.Random(1), upstream=None, expiry=300.0)
    four, six = list(planes)
    assert (four.family, six.family) == (IPV4, IPV6)
    assert planes.primary is four
    assert planes.of(IPv6Address("ff15::1")) is six
    assert planes.of(IPv4Address("239.1.1.1")) is four
    assert six.table.family is IPV6 and six.engine.family is IPV6
    assert (four.binding.family.name, six.binding.family.name) != ("", "")
    only6 = Planes(("ipv6",), random.Random(1), upstream=None, expiry=300.0)
    assert only6.of(IPv4Address("239.1.1.1")) is None
