"""What labs exist: one JSON record per lab, and taking labs down.

Theory of operation
-------------------
A lab's record (``<state dir>/<lab>.json``, by default under /run/mrouter/labs) is
claimed with O_EXCL *before* any namespace is made, and deleted only after all of them
are gone. So every namespace mrouter makes is always listed in some record, two labs can
never share a name, and ``down`` removes exactly what ``up`` made. Namespace names carry
a fixed prefix (``mrlab-`` by default) so that ``down --all`` can also sweep namespaces
whose record was lost, and never touches anyone else's. ``down --all`` leaves the labs
whose owner (the process that made them and tears them down, e.g. a test run) is alive,
unless forced: taking them away under it breaks that run.

Environment: ``MROUTER_LAB_DIR`` moves the records, ``MROUTER_LAB_PREFIX`` changes the
prefix; tests use both to keep their labs apart from everyone else's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mrouter.errors import LabError
from mrouter.lab import netns

DEFAULT_STATE_DIR = Path("/run/mrouter/labs")
DEFAULT_PREFIX = "mrlab-"
LAB_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")

#: How long processes get to exit after SIGTERM before SIGKILL.
TERM_GRACE = 1.0


def state_dir() -> Path:
    return Path(os.environ.get("MROUTER_LAB_DIR", str(DEFAULT_STATE_DIR)))


def prefix() -> str:
    return os.environ.get("MROUTER_LAB_PREFIX", DEFAULT_PREFIX)


def check_lab_name(name: str) -> str:
    if not LAB_NAME_RE.fullmatch(name):
        raise LabError(
            f"bad lab name {name!r}: use 1-32 letters, digits, '_' or '-', starting with a "
            f"letter or digit"
        )
    return name


@dataclass
class LabRecord:
    """The JSON record of one lab."""

    name: str
    topology: str  # the file it was built from
    prefix: str
    namespaces: dict[str, str]  # node or LAN name -> namespace name
    nodes: list[str]
    lans: list[str]
    owner_pid: int | None  # the process that tears it down; None: until `lab down`
    created: float = field(default_factory=time.time)
    pids: list[int] = field(default_factory=list)  # commands started by `lab up`
    kinds: dict[str, str] = field(default_factory=dict)  # node -> "host"/"router"/"frr"
    ready: bool = False
    frr: dict[str, list[str]] = field(default_factory=dict)  # FRR node -> its daemons

    @property
    def path(self) -> Path:
        return record_path(self.name)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path)

    def log_dir(self) -> Path:
        return state_dir() / self.name


def record_path(name: str) -> Path:
    return state_dir() / f"{name}.json"


def claim(record: LabRecord) -> bool:
    """Write a new record; False if a lab of that name already has one."""
    state_dir().mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(record.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(record), f, indent=1)
    return True


def load(name: str) -> LabRecord | None:
    try:
        data: dict[str, Any] = json.loads(record_path(name).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read the record of lab {name!r} ({record_path(name)}): "
                       f"{exc}; remove that file and its namespaces by hand") from None
    return LabRecord(**data)


def all_records() -> list[LabRecord]:
    try:
        names = sorted(p.stem for p in state_dir().glob("*.json"))
    except FileNotFoundError:
        return []
    return [r for r in (load(n) for n in names) if r is not None]


def is_alive(record: LabRecord) -> bool:
    """Whether all the namespaces of the lab still exist."""
    return all(netns.exists(ns) for ns in record.namespaces.values())


def owner_alive(record: LabRecord) -> bool:
    if record.owner_pid is None:
        return True
    try:
        os.kill(record.owner_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owned_by_live_process(record: LabRecord) -> bool:
    """Whether a running process (a test run, a ``with Lab(...)`` block) owns the lab.

    Labs made by ``mrouter lab up`` have no owner: they live until ``lab down``.
    """
    # A zombie owner has exited: only its parent has not reaped it yet.
    return (record.owner_pid is not None and owner_alive(record)
            and _exists(record.owner_pid))


def end_processes(pids: list[int], grace: float = TERM_GRACE) -> None:
    """SIGTERM each PID, wait up to ``grace`` s for all, then SIGKILL what is left."""
    alive = [p for p in pids if _signal(p, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _exists(p)]
        if alive:
            time.sleep(0.005)
    for p in alive:
        _signal(p, signal.SIGKILL)


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _exists(pid: int) -> bool:
    """Alive and not a zombie (a zombie has let go of its namespaces already)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rfind(b")") + 2: stat.rfind(b")") + 3]
    return state != b"Z"


def remove_namespaces(names: list[str]) -> list[str]:
    """End every process inside the namespaces, then remove them. Returns those removed."""
    inside = netns.pids_in(names)
    if inside:
        end_processes(sorted(inside))
    removed = [n for n in names if netns.remove(n)]
    from mrouter.lab import frr

    for n in names:  # an FRR node's run directory (a stray namespace's too)
        if frr.run_dir(n).exists() and not netns.exists(n):
            shutil.rmtree(frr.run_dir(n), ignore_errors=True)
    return removed


def remove_frr(record: LabRecord) -> None:
    """Stop the FRR daemons of the lab's FRR nodes and delete their run directories."""
    from mrouter.lab import frr

    for node, daemons in record.frr.items():
        frr.remove(record.namespaces[node], daemons)


def down(record: LabRecord) -> list[str]:
    """Take a lab down from its record: FRR daemons, processes, namespaces, log files,
    record."""
    remove_frr(record)
    end_processes([p for p in record.pids if _exists(p)])
    removed = remove_namespaces(list(record.namespaces.values()))
    remove_logs(record)
    record.path.unlink(missing_ok=True)
    return removed


def remove_logs(record: LabRecord) -> None:
    logs = record.log_dir()
    if logs.is_dir():
        for f in logs.iterdir():
            f.unlink(missing_ok=True)
        logs.rmdir()


def orphans() -> list[str]:
    """Namespaces with our prefix that no record lists (e.g. after a crash)."""
    listed = {ns for r in all_records() for ns in r.namespaces.values()}
    return [n for n in netns.list_names(prefix()) if n not in listed]
