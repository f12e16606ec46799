"""FRR routers in a lab: start, probe and stop FRR's daemons inside a node's namespace.

Theory of operation
-------------------
A node of kind ``frr`` (see :mod:`mrouter.lab.topology`) runs the FRR daemons it names
(zebra first, then e.g. staticd and pimd) inside its network namespace. FRR keeps its
sockets, pid files and configs in ``/var/run/frr`` and ``/etc/frr`` by default, so two
nodes (or two labs) would collide there; each node gets a run directory of its own
instead, named after its namespace (which is unique: it carries the lab prefix and the
lab name)::

    /run/mrouter/frr/<netns>/   owned by user frr (Debian's FRR drops to it at start)
        frr.conf                the node's integrated config, applied with vtysh -f
        vtysh.conf              empty (vtysh reads it from --config_dir)
        <daemon>.conf           each daemon's own (empty) startup config
        <daemon>.pid .vty .log  pid file, vty socket, log file (--log file:)
        <daemon>.out            what the daemon wrote on stdout/stderr
        zserv.api               zebra's socket for the other daemons (-z)
        bin/vtysh               vtysh bound to this directory (--vty_socket, --config_dir)

:func:`start` runs each daemon in the foreground (no ``-d``) as a child of the lab, in a
session of its own, so the lab holds its PID; the TCP vty port is off (``-P 0``). A daemon
is up when ``vtysh -d DAEMON`` answers through its vty socket; one that exits first, or
does not answer within :data:`ANSWER_TIMEOUT`, stops the start with a :class:`LabError`
quoting the end of its own output and log. Then the config is applied through vtysh,
which gives every line to the daemon that owns it; a line FRR rejects stops the start
too, with FRR's complaint and the line of the topology file it came from.

``lab exec`` and :meth:`~mrouter.lab.lab.Node.run` put ``bin/`` first on ``PATH`` for FRR
nodes, so plain ``vtysh`` reaches that node's daemons (and a ``write`` writes the run
directory's ``frr.conf``, never ``/etc/frr``). :func:`remove` ends the daemons by their
pid files, last started first, and deletes the directory.

``MROUTER_FRR_SBIN`` names the folder of FRR's daemons (default ``/usr/lib/frr``, where
Debian puts them), for an FRR built from source.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mrouter.errors import LabError
from mrouter.lab.topology import FrrSpec

log = logging.getLogger(__name__)

#: The root of every FRR node's run directory.
RUN_ROOT = Path("/run/mrouter/frr")
DEFAULT_SBIN = Path("/usr/lib/frr")
#: Debian's FRR runs as this user and group; -u root fails ("not part of vty group").
FRR_USER = "frr"
#: How long a daemon may take to answer vtysh after it was started (normally ~40 ms).
ANSWER_TIMEOUT = 10.0
#: How long daemons get to exit after SIGTERM before SIGKILL.
STOP_GRACE = 2.0
#: How many lines of a daemon's output and log a failure message quotes.
QUOTED_LINES = 4
#: vtysh's complaint about a config line: "line 5: % Unknown command[17]: ..."
_VTYSH_LINE = re.compile(r"^line (\d+): ", re.MULTILINE)


def sbin() -> Path:
    return Path(os.environ.get("MROUTER_FRR_SBIN", str(DEFAULT_SBIN)))


def run_dir(netns_name: str) -> Path:
    """The run directory of the FRR node living in namespace ``netns_name``."""
    return RUN_ROOT / netns_name


def bin_dir(netns_name: str) -> Path:
    """The folder with this node's ``vtysh``: put it first on PATH."""
    return run_dir(netns_name) / "bin"


def env_for(netns_name: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which plain ``vtysh`` talks to this node's daemons."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{bin_dir(netns_name)}:{env.get('PATH', os.defpath)}"
    return env


def vtysh_path() -> str:
    found = shutil.which("vtysh")
    if found is None:
        raise LabError("FRR is not installed (no vtysh on PATH); install it with "
                       "'apt-get install frr' (scripts/setup.sh does)")
    return found


def vtysh_argv(netns_name: str) -> list[str]:
    """vtysh bound to one node's daemons and run directory."""
    d = str(run_dir(netns_name))
    return [vtysh_path(), "--vty_socket", d, "--config_dir", d]


def check_installed(spec: FrrSpec) -> None:
    """LabError unless vtysh and every daemon ``spec`` names are installed."""
    vtysh_path()
    missing = [d for d in spec.daemons if not os.access(sbin() / d, os.X_OK)]
    if missing:
        raise LabError(
            f"FRR is not installed or lacks {', '.join(missing)} (no "
            f"{', '.join(str(sbin() / d) for d in missing)}); install it with "
            f"'apt-get install frr' (scripts/setup.sh does), or set MROUTER_FRR_SBIN to "
            f"the folder of FRR's daemons"
        )
    try:
        pwd.getpwnam(FRR_USER)
    except KeyError:
        raise LabError(f"there is no user {FRR_USER!r}, which FRR's daemons run as; "
                       f"install FRR from its Debian package (apt-get install frr)") from None


def _chown(path: Path) -> None:
    shutil.chown(path, FRR_USER, FRR_USER)


def daemon_argv(netns_name: str, daemon: str) -> list[str]:
    d = run_dir(netns_name)
    return [str(sbin() / daemon), "-f", str(d / f"{daemon}.conf"),
            "-i", str(d / f"{daemon}.pid"), "-z", str(d / "zserv.api"),
            "--vty_socket", str(d), "-u", FRR_USER, "-g", FRR_USER, "-P", "0",
            "--log", f"file:{d / f'{daemon}.log'}"]


def prepare(netns_name: str, spec: FrrSpec) -> Path:
    """Make the node's run directory with its configs and vtysh wrapper (owned by frr)."""
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    d = run_dir(netns_name)
    if d.exists():  # left by a crash: this namespace name is ours again now
        shutil.rmtree(d)
    d.mkdir(mode=0o750)
    _chown(d)
    (d / "frr.conf").write_text(spec.config)
    _chown(d / "frr.conf")
    (d / "vtysh.conf").write_text("")  # else vtysh complains of its absence on each run
    for daemon in spec.daemons:
        (d / f"{daemon}.conf").write_text("")
        _chown(d / f"{daemon}.conf")
    b = d / "bin"
    b.mkdir()
    wrapper = b / "vtysh"
    args = " ".join(f"'{a}'" for a in vtysh_argv(netns_name))
    wrapper.write_text(f"#!/bin/sh\n# vtysh for the FRR node in namespace {netns_name}\n"
                       f'exec {args} "$@"\n')
    wrapper.chmod(0o755)
    return d


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def complaint(netns_name: str, daemon: str) -> str:
    """What a daemon said, for a message: the first lines of its output (a daemon that
    stops at start says why first, then perhaps its usage) and the last of its log."""
    d = run_dir(netns_name)
    half = QUOTED_LINES // 2
    out = _lines(d / f"{daemon}.out")
    said = out[:half] + [line for line in _lines(d / f"{daemon}.log")[-half:]
                         if line not in out]
    return " | ".join(said) if said else "(it wrote nothing)"


Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]
Spawner = Callable[[list[str], Path], subprocess.Popen[str]]


def answers(run: Runner, netns_name: str, daemon: str) -> bool:
    """Whether ``daemon`` answers vtysh through its vty socket."""
    if not (run_dir(netns_name) / f"{daemon}.vty").exists():
        return False
    done = run([*vtysh_argv(netns_name), "-d", daemon, "-c", "show version"])
    return done.returncode == 0


def start(node_name: str, netns_name: str, spec: FrrSpec, run: Runner,
          spawn: Spawner, started: Callable[[int], None]) -> None:
    """Start the daemons of one FRR node, wait until each answers, apply its config.

    ``run`` runs a command in the node and waits; ``spawn(argv, out)`` starts one in the
    node with stdout and stderr to ``out``; ``started(pid)`` is told each daemon's PID at
    once (so the lab can end it if a later step fails). Raises LabError quoting FRR.
    """
    check_installed(spec)
    prepare(netns_name, spec)
    d = run_dir(netns_name)
    procs: dict[str, subprocess.Popen[str]] = {}
    # zebra first and alone: the others connect to its zserv socket.
    for batch in ([spec.daemons[0]], list(spec.daemons[1:])):
        for daemon in batch:
            proc = spawn(daemon_argv(netns_name, daemon), d / f"{daemon}.out")
            procs[daemon] = proc
            started(proc.pid)
        for daemon in batch:
            _wait_answering(node_name, netns_name, daemon, procs[daemon], run)
    apply_config(node_name, netns_name, spec, run)


def _wait_answering(node_name: str, netns_name: str, daemon: str,
                    proc: subprocess.Popen[str], run: Runner) -> None:
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while not answers(run, netns_name, daemon):
        status = proc.poll()
        if status is not None:
            raise LabError(f"node {node_name}: FRR's {daemon} exited at once (status "
                           f"{status}); it said: {complaint(netns_name, daemon)}")
        if time.monotonic() > deadline:
            raise LabError(f"node {node_name}: FRR's {daemon} did not answer vtysh within "
                           f"{ANSWER_TIMEOUT:.0f} s; its log ends: "
                           f"{complaint(netns_name, daemon)}")
        time.sleep(0.02)


def apply_config(node_name: str, netns_name: str, spec: FrrSpec, run: Runner) -> None:
    """Give the node's frr.conf to its daemons through vtysh; LabError if FRR rejects it."""
    done = run([*vtysh_argv(netns_name), "-f", str(run_dir(netns_name) / "frr.conf")])
    if done.returncode == 0:
        # accepted, with a remark: most often "No Path to RP address specified", as the
        # static routes in the same config reach zebra a moment later
        if done.stdout.strip():
            log.info("node %s: FRR accepted its config but said: %s", node_name,
                        " | ".join(done.stdout.split("\n")).strip(" |"))
        return
    said = (done.stderr + done.stdout).strip()

    def where(m: re.Match[str]) -> str:  # FRR's line N of the config -> the file's line
        return f"line {spec.config_line + int(m.group(1)) - 1}: "

    if spec.config_source.endswith(".frr_config"):  # inline: name the topology's line
        said = _VTYSH_LINE.sub(where, said)
    lines = [line.strip() for line in said.splitlines() if line.strip()][:QUOTED_LINES]
    raise LabError(f"node {node_name}: FRR rejects its config ({spec.config_source}): "
                   f"{' | '.join(lines) or f'vtysh exited with status {done.returncode}'}; "
                   f"fix it there")


@dataclass(frozen=True)
class DaemonStatus:
    """One FRR daemon of a node, as ``lab status`` reports it."""

    name: str
    pid: int | None  # from its pid file; None if there is none
    running: bool
    answers: bool


def read_pid(netns_name: str, daemon: str) -> int | None:
    try:
        return int((run_dir(netns_name) / f"{daemon}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2: stat.rfind(b")") + 3] != b"Z"


def runner_in(netns_name: str, timeout: float = 10.0) -> Runner:
    """A :data:`Runner` for a namespace known only by name (``lab status``)."""
    from mrouter.lab import netns

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        with netns.entered(netns_name):
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False)

    return run


def status(netns_name: str, daemons: Iterable[str], run: Runner) -> list[DaemonStatus]:
    """Each daemon's PID, whether it runs and whether it answers vtysh."""
    out = []
    for daemon in daemons:
        pid = read_pid(netns_name, daemon)
        running = pid is not None and _alive(pid)
        out.append(DaemonStatus(daemon, pid, running,
                                running and answers(run, netns_name, daemon)))
    return out


def stop(netns_name: str, daemons: Iterable[str], grace: float = STOP_GRACE) -> None:
    """End the node's daemons (SIGTERM, last started first; SIGKILL after ``grace``)."""
    pids = [p for p in (read_pid(netns_name, d) for d in reversed(list(daemons)))
            if p is not None and _is_frr_daemon(p, netns_name)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _is_frr_daemon(pid: int, netns_name: str) -> bool:
    """A pid file's PID is ours only if that process was started on this run directory
    (a stale pid file's number may belong to someone else by now)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(run_dir(netns_name)).encode() in cmdline


def remove(netns_name: str, daemons: Iterable[str]) -> None:
    """Stop the node's daemons and delete its run directory; nothing is left."""
    stop(netns_name, daemons)
    shutil.rmtree(run_dir(netns_name), ignore_errors=True)
