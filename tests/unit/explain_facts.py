"""The starting point of the `mrouter explain` chain tests (test_explain.py for IPv4,
test_explain6.py for IPv6): a router that forwards (S,G) from up0 to dn0, which each
test breaks in one way, and the verdicts diagnose gives for it."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from mrouter.diag.explain import Facts, Flow, Interface, Owner, Reason, Route, Verdict, diagnose


def healthy(source: IPv4Address | IPv6Address, group: IPv4Address | IPv6Address,
            /, **changes: Any) -> Facts:
    """Facts of a router forwarding (source, group) from up0 (VIF 0) to dn0 (VIF 1), a
    flow of 10 packets with TTL/hop limit 8 arriving on up0, with ``changes`` made."""
    facts = Facts(
        group=group, source=source,
        interfaces=[Interface("up0", 2, vif=0), Interface("dn0", 3, vif=1)],
        mc_forwarding=True, owner=Owner.DAEMON,
        routes=[Route(source, group, "up0", {"dn0": 1}, packets=10)],
        route_back="up0", route_back_known=True,
        flows=[Flow("up0", source, 8, 10)])
    return dataclasses.replace(facts, **changes)


def iface(facts: Facts, name: str, **changes: Any) -> list[Interface]:
    """The facts' interfaces with ``changes`` made to the one called ``name``."""
    return [dataclasses.replace(i, **changes) if i.name == name else i
            for i in facts.interfaces]


def verdicts(facts: Facts) -> dict[str, Verdict]:
    """diagnose's verdicts by interface, once up0's is checked to be the input."""
    by_iface = {v.iface: v for v in diagnose(facts)}
    assert by_iface["up0"].reason is Reason.INPUT
    return by_iface
