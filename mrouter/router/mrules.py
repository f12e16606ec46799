"""The multicast rules that send a daemon's traffic to its own table (`ip mrule`).

Theory of operation: with ``table = N`` (not the family's default, 253 for IPv4, 254 for
IPv6) the daemon's VIFs and routes live in table N, but the kernel looks every arriving
multicast packet up in the table its multicast FIB rules choose, and by default one rule
(priority 32767) chooses the default table: table N would see no packet. So for each VIF
interface :class:`TableRules` adds the rule ``iif IF lookup N`` (:meth:`TableRules.add`,
when the VIF is set up) and deletes exactly the rules it added (:meth:`TableRules.remove`
when the interface goes away, :meth:`TableRules.close` when the daemon stops). A reload
keeps them: the table and interfaces cannot change without a restart.

The rules are marked as mrouter's: priority :data:`PRIORITY` (32700, just before the
default rule, so an administrator's own rules, usually lower, still come first) and
protocol :data:`PROTOCOL` (109, an RTPROT_* value no routing daemon uses; ``ip mrule``
shows ``proto 109``). A daemon killed with SIGKILL leaves its rules; the next start
deletes every rule with both marks on one of its interfaces, whatever its table
(:meth:`TableRules.open`) before adding its own, so stale rules are replaced rather
than duplicated, and a daemon on the default table clears them too. Rules of other
interfaces (another daemon's, on another table) are left alone.

``family`` is ``socket.AF_INET`` or ``socket.AF_INET6``; the rules of one family never
steer the other's packets.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable

from mrouter.errors import KernelError
from mrouter.linux import netlink

log = logging.getLogger("mrouter.router.daemon")  # the daemon's log

PRIORITY = 32700
PROTOCOL = 109

#: address family -> (rtnetlink family of its rules, its default table, its `ip` command)
_FAMILIES: dict[int, tuple[int, int, str]] = {
    socket.AF_INET: (netlink.RTNL_FAMILY_IPMR, netlink.RT_TABLE_DEFAULT, "ip"),
    socket.AF_INET6: (netlink.RTNL_FAMILY_IP6MR, netlink.RT6_TABLE_DEFAULT, "ip -6"),
}


def is_ours(rule: netlink.MrouteRule) -> bool:
    """A rule with mrouter's marks (priority and protocol)."""
    return rule.priority == PRIORITY and rule.protocol == PROTOCOL


class TableRules:
    """The multicast rules one daemon holds for one family and table.

    ``table`` None or the family's default: no rule is needed and :meth:`add` adds none
    (:meth:`open` still clears stale ones)."""

    def __init__(self, family: int, table: int | None) -> None:
        self.rtnl_family, default, self.ip = _FAMILIES[family]
        self.table = default if table is None else table
        self.needed = self.table != default
        self.added: dict[str, netlink.MrouteRule] = {}  # iif -> the rule added for it

    def command(self, iface: str) -> str:
        """The command that adds the rule for ``iface`` by hand."""
        return (f"{self.ip} mrule add iif {iface} lookup {self.table} priority {PRIORITY} "
                f"protocol {PROTOCOL}")

    @classmethod
    def open(cls, family: int, table: int | None, interfaces: Iterable[str]) -> TableRules:
        """The rules of a daemon starting on ``table`` with these interfaces, once the
        stale ones with mrouter's marks on them (left by a daemon that could not stop)
        are deleted; KernelError if the kernel refuses and this table needs rules (with
        the default table, only logged: the kernel may have no rules to read)."""
        rules = cls(family, table)
        rules.clear_stale(interfaces)
        return rules

    def clear_stale(self, interfaces: Iterable[str]) -> None:
        """Delete every rule with mrouter's marks on one of these interfaces."""
        names = set(interfaces)

        def clear(ipr: object) -> int:
            stale = [r for r in netlink.mroute_rules(ipr, self.rtnl_family)
                     if is_ours(r) and r.iif in names]
            for rule in stale:
                netlink.delete_mroute_rule(ipr, self.rtnl_family, rule)
            return len(stale)

        try:
            count = netlink.query(clear)
        except OSError as exc:
            message = (f"cannot read or delete stale multicast rules "
                       f"(`{self.ip} mrule show`): {exc.strerror or exc}")
            if self.needed:
                raise KernelError(f"table {self.table}: {message}; check that this kernel "
                                  "has CONFIG_IP_MROUTE_MULTIPLE_TABLES and that mrouter "
                                  "runs as root") from None
            log.debug("%s", message)
            return
        if count:
            log.info("deleted %d stale multicast rule%s of an earlier run", count,
                     "" if count == 1 else "s")

    def add(self, iface: str, *, strict: bool = True) -> None:
        """Send the packets arriving on ``iface`` to the table (nothing if the table is
        the default). A refusal raises KernelError, or with ``strict`` False is logged."""
        if not self.needed or iface in self.added:
            return
        rule = netlink.MrouteRule(PRIORITY, netlink.FR_ACT_TO_TBL, self.table, iface,
                                  False, PROTOCOL)
        try:
            netlink.query(lambda ipr: netlink.add_mroute_rule(
                ipr, self.rtnl_family, iface, self.table, PRIORITY, PROTOCOL))
        except OSError as exc:
            error = KernelError(
                f"table {self.table}: the kernel refused the multicast rule that sends "
                f"packets arriving on {iface} to it ({exc.strerror or exc}); without it "
                f"table {self.table} sees none of them: {self.command(iface)}")
            if strict:
                raise error from None
            log.warning("%s", error)
            return
        self.added[iface] = rule
        log.debug("multicast rule: iif %s lookup %d (priority %d)", iface, self.table,
                  PRIORITY)

    def remove(self, iface: str) -> None:
        """Delete the rule :meth:`add` added for ``iface``, if any; a rule already gone
        (deleted by hand) is no error, another refusal is logged."""
        rule = self.added.pop(iface, None)
        if rule is None:
            return
        try:
            netlink.query(lambda ipr: netlink.delete_mroute_rule(ipr, self.rtnl_family,
                                                                  rule))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("%s: cannot delete the multicast rule to table %d: %s", iface,
                        self.table, exc.strerror or exc)

    def close(self) -> None:
        """Delete every rule added (idempotent)."""
        for iface in list(self.added):
            self.remove(iface)
