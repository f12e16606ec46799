"""RFC 3376 §6.4.1 and §6.4.2 router state transitions, as data, for both families: RFC
3810 §7.4.1 and §7.4.2 (MLDv2) are the same rows, so IGMP and MLD use this one table.

Theory of operation: a router keeps, per group and interface, a filter mode and source
lists. In INCLUDE mode the state is ``INCLUDE (A)``: the sources in A are wanted. In
EXCLUDE mode it is ``EXCLUDE (X,Y)``: X are sources whose timers still run ("requested"),
Y those whose timers are 0 ("excluded"); every source not in Y is forwarded.

When a group record arrives the router looks up (current filter mode, record type) in
the table below and gets the new filter mode and source lists, the timers to set and
the queries to send. Each row is the RFC's row, with the RFC's own letters: in rows that
start from INCLUDE the router state is A and the record's sources are B; in rows that
start from EXCLUDE the router state is (X,Y) and the record's sources are A. The set
expressions are Python lambdas over those letters: ``+`` in the RFC is ``|`` here,
``*`` is ``&`` and ``-`` is ``-``.

"Delete (...)" actions of the RFC need no code: a source that is in neither new list is
deleted. The engine (:mod:`mrouter.igmp.engine`) evaluates every expression on the
*old* state first, then sets the source timers in row order, then the group timer, so
that ``(A-X-Y)=Group Timer`` sees the group timer from before ``Group Timer=GMI``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address

from mrouter.igmp.messages import RecordType

Sources = frozenset[IPv4Address | IPv6Address]
SetExpr = Callable[..., Sources]
"""A set expression over the row's letters (A, B or X, Y, A), called with keywords."""


class FilterMode(IntEnum):
    """Router filter mode of a group (RFC 3376 §6.2.1); values as the record types."""

    INCLUDE = 1
    EXCLUDE = 2


class TimerValue(IntEnum):
    """What a source timer is set to by a table row."""

    GMI = 1  # Group Membership Interval (§8.4)
    ZERO = 2  # 0: the source is excluded (EXCLUDE mode Y list)
    GROUP_TIMER = 3  # the current group timer (before this row sets it)


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of RFC 3376 §6.4.1 / §6.4.2."""

    state: FilterMode
    record: RecordType
    rfc: str  # the RFC row, verbatim in meaning, for readers and test ids
    new_mode: FilterMode
    new_requested: SetExpr  # INCLUDE: the new A; EXCLUDE: the new X
    new_excluded: SetExpr  # EXCLUDE: the new Y; always empty for INCLUDE
    timers: tuple[tuple[SetExpr, TimerValue], ...] = ()
    group_timer_gmi: bool = False  # "Group Timer=GMI"
    query_sources: tuple[SetExpr, ...] = ()  # "Send Q(G,...)"
    query_group: bool = False  # "Send Q(G)"


INC, EXC = FilterMode.INCLUDE, FilterMode.EXCLUDE
R = RecordType


def _none(**_: Sources) -> Sources:
    return frozenset()


TRANSITIONS: tuple[Transition, ...] = (
    # --- RFC 3376 §6.4.1: Reception of Current-State Records -------------------------
    Transition(
        INC, R.MODE_IS_INCLUDE, "INCLUDE (A)  IS_IN (B)  -> INCLUDE (A+B)       (B)=GMI",
        INC, lambda A, B: A | B, _none,
        timers=((lambda A, B: B, TimerValue.GMI),),
    ),
    Transition(
        INC, R.MODE_IS_EXCLUDE,
        "INCLUDE (A)  IS_EX (B)  -> EXCLUDE (A*B,B-A)   (B-A)=0, Delete (A-B), Group Timer=GMI",
        EXC, lambda A, B: A & B, lambda A, B: B - A,
        timers=((lambda A, B: B - A, TimerValue.ZERO),),
        group_timer_gmi=True,
    ),
    Transition(
        EXC, R.MODE_IS_INCLUDE, "EXCLUDE (X,Y) IS_IN (A) -> EXCLUDE (X+A,Y-A)   (A)=GMI",
        EXC, lambda X, Y, A: X | A, lambda X, Y, A: Y - A,
        timers=((lambda X, Y, A: A, TimerValue.GMI),),
    ),
    Transition(
        EXC, R.MODE_IS_EXCLUDE,
        "EXCLUDE (X,Y) IS_EX (A) -> EXCLUDE (A-Y,Y*A)   (A-X-Y)=GMI, Delete (X-A), "
        "Delete (Y-A), Group Timer=GMI",
        EXC, lambda X, Y, A: A - Y, lambda X, Y, A: Y & A,
        timers=((lambda X, Y, A: A - X - Y, TimerValue.GMI),),
        group_timer_gmi=True,
    ),
    # --- RFC 3376 §6.4.2: Reception of Filter-Mode-Change and Source-List-Change Records
    Transition(
        INC, R.ALLOW_NEW_SOURCES, "INCLUDE (A)  ALLOW (B)  -> INCLUDE (A+B)       (B)=GMI",
        INC, lambda A, B: A | B, _none,
        timers=((lambda A, B: B, TimerValue.GMI),),
    ),
    Transition(
        INC, R.BLOCK_OLD_SOURCES, "INCLUDE (A)  BLOCK (B)  -> INCLUDE (A)         Send Q(G,A*B)",
        INC, lambda A, B: A, _none,
        query_sources=(lambda A, B: A & B,),
    ),
    Transition(
        INC, R.CHANGE_TO_EXCLUDE_MODE,
        "INCLUDE (A)  TO_EX (B)  -> EXCLUDE (A*B,B-A)   (B-A)=0, Delete (A-B), Send Q(G,A*B), "
        "Group Timer=GMI",
        EXC, lambda A, B: A & B, lambda A, B: B - A,
        timers=((lambda A, B: B - A, TimerValue.ZERO),),
        group_timer_gmi=True,
        query_sources=(lambda A, B: A & B,),
    ),
    Transition(
        INC, R.CHANGE_TO_INCLUDE_MODE,
        "INCLUDE (A)  TO_IN (B)  -> INCLUDE (A+B)       (B)=GMI, Send Q(G,A-B)",
        INC, lambda A, B: A | B, _none,
        timers=((lambda A, B: B, TimerValue.GMI),),
        query_sources=(lambda A, B: A - B,),
    ),
    Transition(
        EXC, R.ALLOW_NEW_SOURCES, "EXCLUDE (X,Y) ALLOW (A) -> EXCLUDE (X+A,Y-A)   (A)=GMI",
        EXC, lambda X, Y, A: X | A, lambda X, Y, A: Y - A,
        timers=((lambda X, Y, A: A, TimerValue.GMI),),
    ),
    Transition(
        EXC, R.BLOCK_OLD_SOURCES,
        "EXCLUDE (X,Y) BLOCK (A) -> EXCLUDE (X+(A-Y),Y) (A-X-Y)=Group Timer, Send Q(G,A-Y)",
        EXC, lambda X, Y, A: X | (A - Y), lambda X, Y, A: Y,
        timers=((lambda X, Y, A: A - X - Y, TimerValue.GROUP_TIMER),),
        query_sources=(lambda X, Y, A: A - Y,),
    ),
    Transition(
        EXC, R.CHANGE_TO_EXCLUDE_MODE,
        "EXCLUDE (X,Y) TO_EX (A) -> EXCLUDE (A-Y,Y*A)   (A-X-Y)=Group Timer, Delete (X-A), "
        "Delete (Y-A), Send Q(G,A-Y), Group Timer=GMI",
        EXC, lambda X, Y, A: A - Y, lambda X, Y, A: Y & A,
        timers=((lambda X, Y, A: A - X - Y, TimerValue.GROUP_TIMER),),
        group_timer_gmi=True,
        query_sources=(lambda X, Y, A: A - Y,),
    ),
    Transition(
        EXC, R.CHANGE_TO_INCLUDE_MODE,
        "EXCLUDE (X,Y) TO_IN (A) -> EXCLUDE (X+A,Y-A)   (A)=GMI, Send Q(G,X-A), Send Q(G)",
        EXC, lambda X, Y, A: X | A, lambda X, Y, A: Y - A,
        timers=((lambda X, Y, A: A, TimerValue.GMI),),
        query_sources=(lambda X, Y, A: X - A,),
        query_group=True,
    ),
)

TABLE: dict[tuple[FilterMode, RecordType], Transition] = {
    (row.state, row.record): row for row in TRANSITIONS
}
"""(router filter mode, record type) -> the RFC row to apply."""

CURRENT_STATE_RECORDS = frozenset({R.MODE_IS_INCLUDE, R.MODE_IS_EXCLUDE})
"""§6.4.1 records (answers to queries); the others are §6.4.2 state changes."""
