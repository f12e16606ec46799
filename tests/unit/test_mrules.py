"""The daemon's multicast rules (mrouter.router.mrules) against a fake rtnetlink.

The kernel side is tests/integration/test_daemon_table.py; here the kernel is a list of
rules that may refuse, so the refusals a real kernel rarely gives once MRT_INIT worked
(EPERM, a dump that fails) can be asserted: one line naming the table and the command."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from mrouter.errors import KernelError
from mrouter.linux import netlink
from mrouter.linux.netlink import FR_ACT_TO_TBL, MrouteRule
from mrouter.router import mrules
from mrouter.router.mrules import PRIORITY, PROTOCOL, TableRules


class FakeKernel:
    """The rules of one family; ``refuse``: the errno every request fails with."""

    def __init__(self, rules: list[MrouteRule] | None = None) -> None:
        self.rules = list(rules or [])
        self.refuse: int | None = None
        self.requests = 0

    def _check(self) -> None:
        self.requests += 1
        if self.refuse is not None:
            raise OSError(self.refuse, "refused")

    def dump(self, ipr: Any, family: int) -> list[MrouteRule]:
        self._check()
        return sorted(self.rules, key=lambda r: r.priority)

    def add(self, ipr: Any, family: int, iif: str, table: int, priority: int,
            protocol: int) -> None:
        self._check()
        self.rules.append(MrouteRule(priority, FR_ACT_TO_TBL, table, iif, False, protocol))

    def delete(self, ipr: Any, family: int, rule: MrouteRule) -> None:
        self._check()
        if rule not in self.rules:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        self.rules.remove(rule)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    fake = FakeKernel()

    def query(fn: Callable[[Any], Any]) -> Any:
        return fn(None)

    monkeypatch.setattr(netlink, "query", query)
    monkeypatch.setattr(netlink, "mroute_rules", fake.dump)
    monkeypatch.setattr(netlink, "add_mroute_rule", fake.add)
    monkeypatch.setattr(netlink, "delete_mroute_rule", fake.delete)
    return fake


def rule(iif: str, table: int = 100, priority: int = PRIORITY,
         protocol: int = PROTOCOL) -> MrouteRule:
    return MrouteRule(priority, FR_ACT_TO_TBL, table, iif, False, protocol)


DEFAULT_RULE = MrouteRule(32767, FR_ACT_TO_TBL, 253, None, False, 2)


def test_adds_one_rule_per_interface_and_deletes_exactly_those(kernel: FakeKernel) -> None:
    admins = rule("up0", table=200, priority=100, protocol=0)
    kernel.rules = [DEFAULT_RULE, admins]
    rules = TableRules.open(socket.AF_INET, 100, ["up0", "dn0"])
    rules.add("up0")
    rules.add("dn0")
    rules.add("dn0")  # already there: not twice
    assert sorted(kernel.rules, key=str) == sorted(
        [DEFAULT_RULE, admins, rule("up0"), rule("dn0")], key=str)
    rules.remove("dn0")
    assert rule("dn0") not in kernel.rules
    rules.close()
    rules.close()
    assert kernel.rules == [DEFAULT_RULE, admins]


def test_stale_rules_of_its_interfaces_go_whatever_their_table(kernel: FakeKernel) -> None:
    others = rule("eth9")  # another daemon's interface: left alone
    kernel.rules = [DEFAULT_RULE, rule("up0"), rule("dn0", table=300), others]
    rules = TableRules.open(socket.AF_INET, 100, ["up0", "dn0"])
    assert kernel.rules == [DEFAULT_RULE, others]
    rules.add("up0")
    assert kernel.rules == [DEFAULT_RULE, others, rule("up0")]


def test_the_default_table_needs_no_rule_but_clears_stale_ones(kernel: FakeKernel) -> None:
    kernel.rules = [DEFAULT_RULE, rule("up0")]
    for table in (None, netlink.RT_TABLE_DEFAULT):
        rules = TableRules.open(socket.AF_INET, table, ["up0"])
        rules.add("up0")
        assert kernel.rules == [DEFAULT_RULE]
    # IPv6's default is 254 (RT6_TABLE_DFLT), and 253 is an ordinary table there
    assert not TableRules(socket.AF_INET6, None).needed
    assert not TableRules(socket.AF_INET6, netlink.RT6_TABLE_DEFAULT).needed
    assert TableRules(socket.AF_INET6, netlink.RT_TABLE_DEFAULT).needed


@pytest.mark.parametrize(("family", "ip"), [(socket.AF_INET, "ip"),
                                            (socket.AF_INET6, "ip -6")])
def test_a_refused_rule_is_one_line_with_the_table_and_the_command(
        kernel: FakeKernel, family: int, ip: str) -> None:
    rules = TableRules.open(family, 100, ["up0"])
    kernel.refuse = errno.EPERM
    with pytest.raises(KernelError) as caught:
        rules.add("up0")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("table 100: ")
    assert "up0" in message and "refused" in message
    assert message.endswith(f": {ip} mrule add iif up0 lookup 100 priority {PRIORITY} "
                            f"protocol {PROTOCOL}")


def test_a_refusal_while_running_is_logged_not_raised(
        kernel: FakeKernel, caplog: pytest.LogCaptureFixture) -> None:
    rules = TableRules.open(socket.AF_INET, 100, ["dn0"])
    kernel.refuse = errno.EPERM
    with caplog.at_level(logging.WARNING, logger=mrules.log.name):
        rules.add("dn0", strict=False)
    assert "ip mrule add iif dn0 lookup 100" in caplog.text
    kernel.refuse = None
    rules.close()  # nothing was added: nothing to delete
    assert kernel.requests == 2


def test_a_rule_deleted_by_hand_is_no_error(
        kernel: FakeKernel, caplog: pytest.LogCaptureFixture) -> None:
    rules = TableRules.open(socket.AF_INET, 100, ["up0"])
    rules.add("up0")
    kernel.rules.clear()
    with caplog.at_level(logging.WARNING, logger=mrules.log.name):
        rules.close()
    assert caplog.text == ""


def test_a_failed_dump_stops_a_table_that_needs_rules_only(kernel: FakeKernel) -> None:
    kernel.refuse = errno.EAFNOSUPPORT
    TableRules.open(socket.AF_INET, None, ["up0"])  # the default table: nothing to clear
    with pytest.raises(KernelError, match=r"^table 100: cannot read or delete stale "
                                          r"multicast rules \(`ip mrule show`\)"):
        TableRules.open(socket.AF_INET, 100, ["up0"])
