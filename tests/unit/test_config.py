"""The daemon's config file: minimal forms accepted as written, errors that say where."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from mrouter.errors import ConfigError
from mrouter.router.config import Mode, Role, load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

MINIMAL_ROUTER = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
fast_leave = false
[[routes]]
source = "198.51.100.2"
group = "239.1.1.1"
from = "up0"
to = ["dn0"]
"""

MINIMAL_PROXY = """\
mode = "proxy"
[interfaces.up0]
role = "upstream"
[interfaces.dn0]
role = "downstream"
igmp_version = 2
"""


def test_minimal_router_config_as_written() -> None:
    config = parse_config(MINIMAL_ROUTER, "r.toml")
    assert config.mode is Mode.ROUTER
    assert [i.name for i in config.interfaces] == ["up0", "dn0"]
    dn0 = config.interface("dn0")
    assert dn0.igmp_version == 3 and dn0.igmp.fast_leave is False and dn0.querier is True
    assert dn0.igmp.query_interval == 125.0 and dn0.igmp.robustness == 2  # RFC 3376 §8
    (route,) = config.routes
    assert route.source == IPv4Address("198.51.100.2")
    assert route.group == IPv4Network("239.1.1.1/32")
    assert (route.iif, route.oifs) == ("up0", ("dn0",))


BRIEF = """\
mode = "router"                 # or "proxy"
[interfaces.up0]                # table name = Linux interface name
role = "upstream"               # proxy mode only; "downstream" for the others
[interfaces.dn0]
igmp_version = 3                # 2 or 3; timers and querier settings optional, RFC defaults
fast_leave = false
[[routes]]                      # optional static routes
source = "198.51.100.2"         # omit for (*,G)
group = "239.1.1.1"             # or a prefix such as "239.1.0.0/16"
from = "up0"
to = ["dn0"]
"""


@pytest.mark.parametrize("mode", ["router", "proxy"])
def test_the_documented_minimal_form_is_accepted_in_both_modes(mode: str) -> None:
    config = parse_config(BRIEF.replace('"router"', f'"{mode}"', 1))
    assert config.mode is Mode(mode)
    assert config.upstream is not None and config.upstream.name == "up0"
    assert config.routes[0].oifs == ("dn0",)


def test_minimal_proxy_config_as_written() -> None:
    config = parse_config(MINIMAL_PROXY)
    assert config.mode is Mode.PROXY
    assert config.upstream is not None and config.upstream.name == "up0"
    assert config.interface("dn0").role is Role.DOWNSTREAM


def test_star_g_prefix_routes_and_memberships() -> None:
    config = parse_config(MINIMAL_ROUTER + """
[[routes]]
group = "239.1.0.0/16"
from = "up0"
to = ["dn0"]

[[memberships]]
iface = "dn0"
group = "239.2.2.2"

[[memberships]]
iface = "dn0"
group = "239.2.2.3"
source = "198.51.100.2"
""")
    assert config.routes[1].source is None
    assert config.routes[1].group.prefixlen == 16
    assert config.memberships[0].source is None
    assert config.memberships[1].source == IPv4Address("198.51.100.2")


@pytest.mark.parametrize("name", ["router.toml", "proxy.toml"])
def test_shipped_examples_load(name: str) -> None:
    load_config(EXAMPLES / name)


@pytest.mark.parametrize(("text", "expected"), [
    (MINIMAL_ROUTER.replace("igmp_version = 3", "igmp_version = 4"),
     "r.toml:4: interfaces.dn0.igmp_version: must be 2 or 3"),
    (MINIMAL_ROUTER.replace("fast_leave = false", 'fast_leave = "no"'),
     "r.toml:5: interfaces.dn0.fast_leave: must be true or false"),
    (MINIMAL_ROUTER.replace("fast_leave", "fast_leaf"),
     "r.toml:5: interfaces.dn0.fast_leaf: unknown key"),
    (MINIMAL_ROUTER.replace('from = "up0"', 'from = "up9"'),
     "r.toml:9: [[routes]] #1, key 'from': 'up9' is not one of the configured interfaces"),
    (MINIMAL_ROUTER.replace('to = ["dn0"]', 'to = ["up0"]'),
     "r.toml:10: [[routes]] #1, key 'to': up0 is the inbound interface"),
    (MINIMAL_ROUTER.replace('"239.1.1.1"', '"224.0.0.5"'),
     "r.toml:8: [[routes]] #1, key 'group': 224.0.0.5/32 is link-local"),
    (MINIMAL_ROUTER.replace('"239.1.1.1"', '"10.1.1.1"'),
     "r.toml:8: [[routes]] #1, key 'group': 10.1.1.1/32 is not multicast"),
    (MINIMAL_ROUTER.replace('"198.51.100.2"', '"198.51.100.300"'),
     "r.toml:7: [[routes]] #1, key 'source': \"198.51.100.300\" is not an IPv4 address"),
    (MINIMAL_ROUTER.replace('to = ["dn0"]\n', ""),
     "r.toml:6: [[routes]] #1: missing key 'to'"),
    (MINIMAL_ROUTER.replace('mode = "router"', 'mode = "bridge"'),
     'r.toml:1: mode: must be "router" or "proxy"'),
    (MINIMAL_ROUTER.replace("[interfaces.up0]", '[interfaces.up0]\nrole = "up"'),
     'r.toml:3: interfaces.up0.role: must be "upstream" or "downstream"'),
    (MINIMAL_PROXY.replace('role = "upstream"', ""),
     "r.toml: interfaces: proxy mode needs exactly one interface"),
    (MINIMAL_PROXY.replace('role = "upstream"', 'role = "upstream"\noptional = true'),
     "r.toml:4: interfaces.up0.optional: the upstream interface cannot be optional"),
    (MINIMAL_ROUTER.replace("fast_leave = false", "optional = 1"),
     "r.toml:5: interfaces.dn0.optional: must be true or false"),
    ('mode = "router"\n', "r.toml: no interfaces"),
    ("mode = router\n", "r.toml: not valid TOML"),
    (MINIMAL_ROUTER.replace("igmp_version = 3", "query_interval = 5\nquery_response_interval = 10"),
     "r.toml:5: interfaces.dn0.query_response_interval: query_response_interval must be less"),
])
def test_errors_name_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "r.toml")
    assert str(exc.value).startswith(expected), str(exc.value)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.toml"):
        load_config(tmp_path / "missing.toml")


def test_route_expiry_settings() -> None:
    parse = parse_config
    base = '[interfaces.up0]\n[interfaces.dn0]\n'
    cfg = parse("expire_after = 20\npoll_interval = 2\n" + base, "r.toml")
    assert (cfg.expire_after, cfg.poll_interval) == (20.0, 2.0)
    defaults = parse(base, "r.toml")
    assert (defaults.expire_after, defaults.poll_interval) == (300.0, 30.0)
    with pytest.raises(ConfigError, match=r"r.toml:2: poll_interval: 60 s is longer than "
                                          r"expire_after \(20 s\)"):
        parse("expire_after = 20\npoll_interval = 60\n" + base, "r.toml")
    with pytest.raises(ConfigError, match=r"r\.toml:1: expire_after: must be a number"):
        parse('expire_after = "soon"\n' + base, "r.toml")
