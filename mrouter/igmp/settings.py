"""IGMP and MLD settings of one interface: every default and every bound, written once.

Theory of operation: :class:`InterfaceSettings` is what the engine is given for an
interface. Its field defaults are the RFC's (RFC 3376 §8, RFC 2236 §8; RFC 3810 §9 has
the same values) plus mrouter's
bounds on state and on what a querier may impose; :data:`LIMITS` is the range of every
numeric field. Both are used everywhere a setting is read: the engine checks them in
``__post_init__``, the daemon's config parser (:mod:`mrouter.router.config`) takes its
key ranges from :data:`LIMITS` and builds an ``InterfaceSettings``, and the
``querier`` command takes its option defaults from :data:`DEFAULTS`. A bad value raises
:class:`SettingError`, which names the field so that a shell can point at its key.

``protocol`` says whose settings they are, and so how ``version`` counts: IGMP 1 to 3,
MLD 1 or 2 (:data:`MLD_DEFAULTS`); the Maximum Response limits follow the version's
field (IGMPv2: a byte of tenths; IGMPv3: the 8-bit float; MLDv1: 16 bits of ms; MLDv2:
the 16-bit float, above the common bound). Times are seconds for both; the engine
writes them in each protocol's units.

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from mrouter.errors import EngineError

__all__ = ["DEFAULTS", "LIMITS", "MLD_DEFAULTS", "InterfaceSettings", "Limit", "SettingError"]

MAX_V2_TENTHS = 255  # IGMPv2 Max Resp Time is one byte of tenths (25.5 s)
MAX_V3_TENTHS = 31744  # IGMPv3 Max Resp Code's largest value (3174.4 s)
MAX_CODE_SECONDS = 31744  # QQIC's largest value (RFC 3376 §4.1.7)
MAX_MLDV1_DELAY_MS = 0xFFFF  # MLDv1 Maximum Response Delay: 16 bits of ms (RFC 2710 §3.4)

#: Versions per protocol, and the largest Maximum Response time each can say, as
#: (largest value, units per second, field name); None: no bound tighter than LIMITS.
_MAX_RESPONSE: dict[tuple[str, int], tuple[int, int, str] | None] = {
    ("IGMP", 1): None,
    ("IGMP", 2): (MAX_V2_TENTHS, 10, "Max Resp Code"),
    ("IGMP", 3): (MAX_V3_TENTHS, 10, "Max Resp Code"),
    ("MLD", 1): (MAX_MLDV1_DELAY_MS, 1000, "Maximum Response Delay"),
    ("MLD", 2): None,  # the 16-bit float goes to 8387 s, past LIMITS' 3174.4 s
}


class SettingError(EngineError):
    """An IGMP setting out of range; ``field`` names it, ``problem`` says what is wrong
    (worded to follow the field's name, as a config file's key); the message itself says
    ``detail`` when given, else ``problem``."""

    def __init__(self, field: str, problem: str, detail: str | None = None,
                 protocol: str = "IGMP") -> None:
        super().__init__(f"{protocol} setting {detail or problem}; fix the interface's settings")
        self.field = field
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Limit:
    """The range of a numeric setting: whole numbers lo..hi, or seconds above lo up to hi."""

    lo: float
    hi: float
    seconds: bool = False

    def check(self, name: str, value: float) -> None:
        low = value <= self.lo if self.seconds else value < self.lo
        if low:
            raise SettingError(name, self.describe(), f"{name}={value} must be " + (
                "positive" if self.seconds and self.lo == 0 else
                f"above {_num(self.lo)}" if self.seconds else f"at least {_num(self.lo)}"))
        if value > self.hi:
            raise SettingError(name, self.describe(),
                               f"{name}={value} must be at most {_num(self.hi)}")

    def describe(self) -> str:
        """The range, worded to follow a key's name (as the config parser reports it)."""
        if self.seconds:
            return f"must be a number of seconds above {_num(self.lo)} and at most " \
                f"{_num(self.hi)}"
        return f"must be a whole number from {_num(self.lo)} to {_num(self.hi)}"


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


#: Range of every numeric field of :class:`InterfaceSettings` (None: not set).
LIMITS: dict[str, Limit] = {
    "version": Limit(1, 3),
    "robustness": Limit(1, 255),
    "query_interval": Limit(0, MAX_CODE_SECONDS, seconds=True),
    "query_response_interval": Limit(0, MAX_V3_TENTHS / 10, seconds=True),
    "startup_query_interval": Limit(0, MAX_CODE_SECONDS, seconds=True),
    "startup_query_count": Limit(1, 255),
    "last_member_query_interval": Limit(0, MAX_V3_TENTHS / 10, seconds=True),
    "last_member_query_count": Limit(1, 255),
    "max_groups": Limit(1, 1_000_000),
    "max_sources": Limit(1, 10_000_000),
    "max_group_sources": Limit(1, 1_000_000),
    "max_query_interval": Limit(0, MAX_CODE_SECONDS, seconds=True),
    "max_robustness": Limit(1, 7),
}


@dataclass(frozen=True)
class InterfaceSettings:
    """IGMP (or MLD) settings of one interface. Defaults are RFC 3376 §8 / RFC 2236 §8
    (RFC 3810 §9 for MLD: the same values).

    ``startup_query_interval`` (default QI/4), ``startup_query_count`` and
    ``last_member_query_count`` (default: robustness) are filled in when left as None.
    """

    version: int = 3
    robustness: int = 2
    query_interval: float = 125.0
    query_response_interval: float = 10.0
    startup_query_interval: float | None = None
    startup_query_count: int | None = None
    last_member_query_interval: float = 1.0
    last_member_query_count: int | None = None
    fast_leave: bool = False
    querier: bool = True
    # A bound on the per-interface group table, so that a flood of reports for random
    # groups cannot take all memory: past it, reports for *new* groups are dropped (and
    # counted); groups already known keep working.
    max_groups: int = 4096
    # The same for sources (RFC 3376 §6.2.3 source records): at most max_sources on the
    # interface and max_group_sources in one group. A record's sources that are new and
    # past either bound are left out of it (and counted as source-limit drops); sources
    # already known keep working. 2,000 groups of 762 sources (1.5 million records,
    # about 1 GB) are held to 65,536 records (well under 150 MB).
    max_sources: int = 65536
    max_group_sources: int = 1024
    # Bounds on what a querier's QRV and QQIC impose on us (§4.1.6, §4.1.7 say to adopt
    # them): one forged query with QRV 7 and QQIC 255 would otherwise make every group
    # timer 7 x 31744 s + QRI (62 hours). A value above both the bound and our own
    # setting is lowered to the larger of the two, so our own settings always hold.
    # Worst case with the defaults: 4 x 600 s + QRI, about 40 minutes.
    max_query_interval: float = 600.0
    max_robustness: int = 4
    # FRR's `ip igmp require-router-alert`: drop (and count) IGMP without the IP Router
    # Alert option (RFC 2113). Off by default: RFC 3376 §9.1 makes it a host's check.
    require_router_alert: bool = False
    # Whose settings these are: "IGMP" (version 1-3) or "MLD" (version 1-2).
    protocol: str = "IGMP"

    def __post_init__(self) -> None:
        if self.startup_query_interval is None:
            object.__setattr__(self, "startup_query_interval", self.query_interval / 4)
        if self.startup_query_count is None:
            object.__setattr__(self, "startup_query_count", self.robustness)
        if self.last_member_query_count is None:
            object.__setattr__(self, "last_member_query_count", self.robustness)
        try:
            self._validate()
        except SettingError as exc:
            if self.protocol == "IGMP":
                raise
            raise SettingError(exc.field, exc.problem, exc.detail, self.protocol) from None

    def _validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            limit = LIMITS.get(f.name)
            if isinstance(value, bool):
                continue
            if limit is not None:
                if value is None or not isinstance(value, int | float):
                    raise SettingError(f.name, f"{f.name}={value!r} is not a number")
                limit.check(f.name, value)
        if self.query_response_interval >= self.query_interval:
            raise SettingError(
                "query_response_interval",
                "query_response_interval must be less than query_interval (RFC 3376 §8.3), "
                f"got {self.query_response_interval:g} >= {self.query_interval:g}",
                f"query_response_interval={self.query_response_interval} must be less than "
                f"query_interval={self.query_interval} (RFC 3376 §8.3)")
        if (self.protocol, self.version) not in _MAX_RESPONSE:
            versions = [v for p, v in _MAX_RESPONSE if p == self.protocol]
            if not versions:
                raise SettingError("protocol", f"protocol={self.protocol!r} must be IGMP or MLD")
            raise SettingError("version", f"version={self.version} must be one of "
                               f"{', '.join(map(str, versions))} for {self.protocol}")
        bound = _MAX_RESPONSE[(self.protocol, self.version)]
        if bound is None:
            return
        most, per_second, field_name = bound
        for name in ("query_response_interval", "last_member_query_interval"):
            value = getattr(self, name)
            if round(value * per_second) > most:
                raise SettingError(
                    name, f"{name}={value} must be positive and at most {most / per_second} s "
                    f"for {self.protocol}v{self.version} ({field_name})")

    @property
    def startup_interval(self) -> float:
        return self.startup_query_interval or self.query_interval / 4

    @property
    def startup_count(self) -> int:
        return self.startup_query_count or self.robustness

    @property
    def lmq_count(self) -> int:
        return self.last_member_query_count or self.robustness

    @property
    def group_membership_interval(self) -> float:
        """GMI = RV x QI + QRI (RFC 3376 §8.4)."""
        return self.robustness * self.query_interval + self.query_response_interval

    @property
    def other_querier_present_interval(self) -> float:
        """RV x QI + QRI / 2 (RFC 3376 §8.5)."""
        return self.robustness * self.query_interval + self.query_response_interval / 2

    @property
    def last_member_query_time(self) -> float:
        """LMQT = LMQC x LMQI (RFC 3376 §8.9)."""
        return self.lmq_count * self.last_member_query_interval

    @property
    def older_host_present_interval(self) -> float:
        """RV x QI + QRI (RFC 3376 §8.13)."""
        return self.group_membership_interval

    def adopted_robustness(self, qrv: int) -> int | None:
        """The robustness to use under a querier that sent ``qrv`` (0: none given)."""
        if not qrv:
            return None
        return min(qrv, max(self.max_robustness, self.robustness))

    def adopted_query_interval(self, qqi: float) -> float | None:
        """The query interval to use under a querier that sent ``qqi`` (0: none given)."""
        if not qqi:
            return None
        return min(qqi, max(self.max_query_interval, self.query_interval))


DEFAULTS = InterfaceSettings()
"""Every default in one object (the querier command's option defaults come from it)."""

MLD_DEFAULTS = InterfaceSettings(protocol="MLD", version=2)
"""MLD's defaults: MLDv2 and RFC 3810 §9's values (the same as IGMP's)."""
