"""RFC 4605 proxy: merge downstream memberships into the one the proxy joins upstream.

Theory of operation: an IGMP proxy runs the router side of IGMP on its downstream
interfaces and the host side on its single upstream interface (RFC 4605 §1, §4.1). The
upstream membership is the *merge* of all downstream memberships of a group, by the same
rules a host uses to merge the per-socket states of one interface (RFC 3376 §3.2):

- if any state is EXCLUDE, the result is EXCLUDE with the sources that every EXCLUDE
  state excludes (intersection) minus those any INCLUDE state includes;
- otherwise the result is INCLUDE with every included source (union).

An INCLUDE with no sources means "no member" and contributes nothing. :func:`merge` is
that rule; :func:`upstream_changes` compares two merged databases so the daemon knows
which groups to join, change or leave upstream (the kernel then sends the reports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mrouter.igmp.family import Address
from mrouter.router.routes import FilterMode, Membership


def merge(states: Iterable[Membership | None]) -> Membership | None:
    """RFC 3376 §3.2 merge of several memberships of one group; None if no member."""
    present = [s for s in states if s is not None and not s.empty]
    if not present:
        return None
    included: set[Address] = set()
    excluded: set[Address] | None = None
    for state in present:
        if state.filter_mode is FilterMode.INCLUDE:
            included |= state.sources
        else:
            excluded = set(state.sources) if excluded is None else excluded & state.sources
    if excluded is None:
        return Membership(FilterMode.INCLUDE, frozenset(included))
    return Membership(FilterMode.EXCLUDE, frozenset(excluded - included))


def merged_database(per_interface: Mapping[str, Mapping[Address, Membership]],
                    ) -> dict[Address, Membership]:
    """Merge every downstream interface's memberships, group by group."""
    groups = {g for memberships in per_interface.values() for g in memberships}
    result = {}
    for group in groups:
        merged = merge(m.get(group) for m in per_interface.values())
        if merged is not None:
            result[group] = merged
    return result


def upstream_changes(old: Mapping[Address, Membership],
                     new: Mapping[Address, Membership],
                     ) -> dict[Address, Membership | None]:
    """Groups whose upstream membership changed, with the new state (None: leave)."""
    changes: dict[Address, Membership | None] = {}
    for group in old.keys() | new.keys():
        if old.get(group) != new.get(group):
            changes[group] = new.get(group)
    return changes
