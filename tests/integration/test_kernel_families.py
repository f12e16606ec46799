"""The kernel binding's life cycle, the same for IPv4 and IPv6 (each test runs once per
family): closing empties the tables, no root is explained, another table has its own
owner. What differs per family stays in test_kernel.py and test_kernel6.py.

Lab basic.toml (with :func:`helpers.basic_ipv6`'s addresses for IPv6); the routing
socket is opened inside r1 with VIF/MIF 0 on up0 and 1 on dn0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any, NamedTuple

import pytest
from helpers import basic_ipv6, kernel_socket

from mrouter.errors import KernelError
from mrouter.kernel import KernelBinding, for_family

pytestmark = pytest.mark.netns


class Family(NamedTuple):
    name: str
    source: str
    group: str
    module: str  # where the socket class is imported from, for the not-root run


FAMILIES = [
    Family("ipv4", "198.51.100.2", "239.1.1.1", "mrouter.kernel.mroute"),
    Family("ipv6", "2001:db8:1::2", "ff15::1", "mrouter.kernel.mroute6"),
]


@pytest.fixture(params=FAMILIES, ids=[f.name for f in FAMILIES])
def family(request: pytest.FixtureRequest) -> Family:
    param: Family = request.param
    return param


@pytest.fixture
def binding(family: Family) -> KernelBinding:
    return for_family(family.name)


@pytest.fixture
def lab(lab_factory: Callable[[str], Any], family: Family) -> Any:
    lab = lab_factory("basic.toml")
    return basic_ipv6(lab) if family.name == "ipv6" else lab


def test_closing_empties_the_kernel_tables(lab: Any, family: Family,
                                           binding: KernelBinding) -> None:
    r1 = lab.node("r1")
    with kernel_socket(lab, binding.socket) as mrt:
        mrt.add_mfc(ip_address(family.source), ip_address(family.group), 0, {1: 1})
        with r1.enter():
            assert [v.name for v in binding.read_vif_table()] == ["up0", "dn0"]
            assert len(binding.read_mfc_table()) == 1
    with r1.enter():
        assert binding.read_vif_table() == []
        assert binding.read_mfc_table() == []
    assert r1.sysctl(f"net.{family.name}.conf.all.mc_forwarding") == "0"


def test_not_root_is_explained(lab: Any, family: Family, binding: KernelBinding) -> None:
    name = binding.socket.__name__
    code = f"from {family.module} import {name}; {name}()"
    out = lab.node("r1").run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              sys.executable, "-c", code])
    assert out.returncode != 0
    assert "multicast routing needs root" in out.stderr


def test_another_table_has_its_own_owner(lab: Any, binding: KernelBinding) -> None:
    r1 = lab.node("r1")
    with kernel_socket(lab, binding.socket), r1.enter():
        try:
            other = binding.socket(table=100)
        except KernelError as exc:  # a kernel without CONFIG_IP(V6)_MROUTE_MULTIPLE_TABLES
            pytest.skip(str(exc))
        with other:
            other.add_vif(0, r1.ifindex("dn0"))
            assert [v.name for v in binding.read_vif_table()] == ["up0", "dn0"]  # main table
