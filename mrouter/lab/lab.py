"""The lab as a Python object: start, drive nodes, tear down.

::

    with Lab.from_file("netns/basic.toml") as lab:
        out = lab.node("sender").run(["ping", "-c1", "192.0.2.2"])
        daemon = lab.node("r1").spawn(["mrouter", "run", ...])   # ended at teardown
        with lab.node("receiver").enter():
            sock = socket.socket(...)                            # lives in receiver's netns

A lab owned by a Python process (``owner_pid``) is torn down by that process: by
``with``, :meth:`Lab.teardown`, the pytest fixture, or at interpreter exit. A lab made by
``mrouter lab up`` is :meth:`~Lab.detach`-ed and lives until ``mrouter lab down``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType
from typing import Any

from mrouter.errors import LabError
from mrouter.lab import frr, netns, state
from mrouter.lab.build import build, write_sysctl
from mrouter.lab.command import same_mrouter
from mrouter.lab.topology import (
    SYSCTL_RE,
    FrrSpec,
    NodeKind,
    NodeSpec,
    Topology,
    load_topology,
    resolve_topology_path,
)
from mrouter.linux import netlink, sysctl

log = logging.getLogger(__name__)

_counter = itertools.count(1)
_live: set[Lab] = set()
_live_lock = threading.Lock()


class Node:
    """One node (network namespace) of a running lab."""

    def __init__(self, lab: Lab, spec: NodeSpec, netns_name: str) -> None:
        self.lab = lab
        self.spec = spec
        self.name = spec.name
        self.kind: NodeKind = spec.kind
        self.netns = netns_name

    def __repr__(self) -> str:
        return f"<Node {self.name} ({self.kind}) netns={self.netns}>"

    @contextmanager
    def enter(self) -> Iterator[None]:
        """Switch this thread's network namespace to the node's, and back afterwards.

        Sockets made inside stay in the node's namespace after the block ends.
        """
        self.lab._check_running()
        with netns.entered(self.netns):
            yield

    def spawn(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[str]:
        """Start a process in the node (text mode unless told otherwise).

        The lab ends it at teardown (SIGTERM, then SIGKILL) and closes its pipes.
        """
        for key in ("text", "universal_newlines", "encoding", "errors"):
            if key in popen_kwargs:
                break
        else:
            popen_kwargs["text"] = True
        if self.spec.frr is not None:  # plain `vtysh` reaches this node's FRR daemons
            popen_kwargs.setdefault("env", frr.env_for(self.netns))
        # A child inherits the namespace of the thread that forks it, so no preexec_fn:
        # subprocess keeps its fast, thread-safe vfork path.
        argv, popen_kwargs["env"] = same_mrouter(argv, popen_kwargs.get("env"))
        with self.enter():
            try:
                proc: subprocess.Popen[str] = subprocess.Popen(argv, **popen_kwargs)
            except FileNotFoundError:
                raise LabError(f"{self.name}: cannot run {argv[0]!r}: no such program "
                               f"(is it installed and on PATH?)") from None
        self.lab._processes.append(proc)
        return proc

    def run(
        self,
        argv: Sequence[str],
        check: bool = False,
        timeout: float | None = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the node and wait for it, capturing stdout and stderr.

        Like subprocess.run: ``check=True`` raises CalledProcessError on a non-zero
        status; a timeout kills it and raises TimeoutExpired.
        """
        argv, env = same_mrouter(argv)
        if self.spec.frr is not None:  # plain `vtysh` reaches this node's FRR daemons
            env = frr.env_for(self.netns, env)
        with self.enter():
            try:
                proc = subprocess.Popen(
                    argv, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                )
            except FileNotFoundError:
                raise LabError(f"{self.name}: cannot run {argv[0]!r}: no such program "
                               f"(is it installed and on PATH?)") from None
        with proc:
            try:
                stdout, stderr = proc.communicate(input, timeout=timeout)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        result = subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)
        if check:
            result.check_returncode()
        return result

    def ifindex(self, ifname: str) -> int:
        """The interface index of ``ifname`` inside this node."""
        with self.enter():
            try:
                return socket.if_nametoindex(ifname)
            except OSError:
                known = ", ".join(name for _, name in socket.if_nameindex())
                raise LabError(f"node {self.name} has no interface {ifname!r}; it has: "
                               f"{known}") from None

    def address(self, ifname: str) -> IPv4Address:
        """The first IPv4 address of ``ifname`` inside this node."""
        index = self.ifindex(ifname)

        def query() -> list[netlink.Address]:
            return netlink.query(lambda ipr: netlink.addresses(ipr, index))

        self.lab._check_running()
        found = netns.call_in(self.netns, query)
        if not found:
            raise LabError(f"interface {ifname} of node {self.name} has no IPv4 address")
        return found[0].address.ip

    # -- FRR nodes ------------------------------------------------------------------

    def _frr_spec(self) -> FrrSpec:
        if self.spec.frr is None:
            raise LabError(f"node {self.name} is a {self.kind.value}, not an FRR node "
                           f"(kind = \"frr\")")
        return self.spec.frr

    def vtysh(self, *commands: str, check: bool = True) -> str:
        """Run FRR commands on this node's daemons (``vtysh -c CMD ...``); their output.

        ``check``: a failing command raises LabError quoting vtysh.
        """
        self._frr_spec()
        argv = frr.vtysh_argv(self.netns)
        for command in commands:
            argv += ["-c", command]
        done = self.run(argv)
        if check and done.returncode != 0:
            raise LabError(f"node {self.name}: vtysh {' '.join(commands)!r} failed: "
                           f"{(done.stderr + done.stdout).strip()}")
        return done.stdout

    def vtysh_json(self, command: str) -> Any:
        """One FRR ``show ... json`` command's answer, parsed."""
        out = self.vtysh(command)
        try:
            return json.loads(out)
        except ValueError:
            raise LabError(f"node {self.name}: {command!r} did not answer JSON: "
                           f"{out[:200]!r}") from None

    def frr_status(self) -> list[frr.DaemonStatus]:
        """Each FRR daemon of this node: its PID, whether it runs and answers vtysh."""
        return frr.status(self.netns, self._frr_spec().daemons, self.run)

    def frr_stop(self) -> None:
        """Stop this node's FRR daemons (as a crash or `systemctl stop frr` would)."""
        frr.stop(self.netns, self._frr_spec().daemons)

    def frr_start(self) -> None:
        """(Re)start this node's FRR daemons from its config; returns once they answer."""
        self.lab._check_running()
        self.lab._start_frr_node(self, detached=self.lab._detached)

    def sysctl(self, key: str, value: str | int | None = None) -> str:
        """Set a net.* sysctl in this node (and return the value), or get it."""
        if not SYSCTL_RE.fullmatch(key):
            raise LabError(f"sysctl {key!r}: only net.* keys belong to a namespace")
        with self.enter():
            if value is not None:
                write_sysctl(key, str(value))
            return sysctl.read(key, error=LabError)


class Lab:
    """A network-namespace lab built from a :class:`Topology`."""

    def __init__(self, topology: Topology, name: str | None = None) -> None:
        self.topology = topology
        self._given_name = state.check_lab_name(name) if name is not None else None
        self.name = self._given_name or ""
        self.prefix = state.prefix()
        self.record: state.LabRecord | None = None
        self._nodes: dict[str, Node] = {}
        self._processes: list[subprocess.Popen[Any]] = []
        self._running = False
        self._detached = False

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> Lab:
        """A lab from a topology file (a bare name such as ``basic.toml`` means netns/).

        The file is read and validated now; the lab starts at ``with`` or :meth:`start`.
        """
        return cls(load_topology(resolve_topology_path(path)), name=name)

    def __repr__(self) -> str:
        return f"<Lab {self.name or '(not started)'} from {self.topology.source}>"

    # -- life cycle -----------------------------------------------------------------

    def __enter__(self) -> Lab:
        if not self._running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def _namespaces(self, lab_name: str) -> dict[str, str]:
        names = [n.name for n in self.topology.nodes] + [lan.name for lan in self.topology.lans]
        return {n: f"{self.prefix}{lab_name}-{n}" for n in names}

    def _claim(self, owner_pid: int | None) -> state.LabRecord:
        while True:
            name = self._given_name or f"p{os.getpid()}n{next(_counter)}"
            record = state.LabRecord(
                name=name, topology=str(Path(self.topology.source).resolve())
                if self.topology.source != "<string>" else self.topology.source,
                prefix=self.prefix, namespaces=self._namespaces(name),
                nodes=[n.name for n in self.topology.nodes],
                lans=[lan.name for lan in self.topology.lans], owner_pid=owner_pid,
                kinds={n.name: n.kind.value for n in self.topology.nodes},
                frr={n.name: list(n.frr.daemons) for n in self.topology.nodes
                     if n.frr is not None},
            )
            if state.claim(record):
                return record
            if self._given_name is not None:
                raise LabError(
                    f"a lab named {name!r} is already up; take it down with "
                    f"'mrouter lab down {name}' or choose another name"
                )

    def start(self, *, detached: bool = False) -> Lab:
        """Create the namespaces, links and addresses; start the nodes' commands.

        ``detached=True`` (``mrouter lab up``): the lab outlives this process; the
        nodes' commands run in sessions of their own with output in log files under
        the state directory, and ``mrouter lab down`` ends them.

        If anything fails (or Ctrl-C arrives), what was made is removed before the error
        is raised.
        """
        if self._running:
            raise LabError(f"lab {self.name} is already started")
        for spec in self.topology.nodes:  # before anything is made
            if spec.frr is not None:
                frr.check_installed(spec.frr)
        record = self._claim(None if detached else os.getpid())
        self.record, self.name = record, record.name
        with _live_lock:
            _live.add(self)
        created: list[str] = []
        cancel = threading.Event()
        try:
            netns.call_in_thread(
                lambda: build(self.topology, record.namespaces, created,
                              cancelled=cancel.is_set),
                on_interrupt=cancel.set,
            )
            self._nodes = {
                spec.name: Node(self, spec, record.namespaces[spec.name])
                for spec in self.topology.nodes
            }
            self._running = True
            for node in self._nodes.values():
                if node.spec.frr is not None:
                    self._start_frr_node(node, detached)
            self._start_commands(record, detached)
            record.ready = True
            record.save()
        except BaseException:
            self._running = False
            state.remove_frr(record)
            self._end_processes()
            state.end_processes(record.pids)
            state.remove_namespaces(created)
            state.remove_logs(record)
            record.path.unlink(missing_ok=True)
            self.record = None
            with _live_lock:
                _live.discard(self)
            raise
        if detached:
            self.detach()
        log.info("lab %s up: %s", self.name, ", ".join(record.namespaces.values()))
        return self

    def _start_commands(self, record: state.LabRecord, detached: bool) -> None:
        for spec in self.topology.nodes:
            for i, argv in enumerate(spec.commands):
                node = self._nodes[spec.name]
                if not detached:
                    node.spawn(argv, stdin=subprocess.DEVNULL)
                    continue
                logs = record.log_dir()
                logs.mkdir(parents=True, exist_ok=True)
                with open(logs / f"{spec.name}.{i}.log", "wb") as out:
                    proc = node.spawn(argv, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
                record.pids.append(proc.pid)
                record.save()

    def _start_frr_node(self, node: Node, detached: bool) -> None:
        """Start one FRR node's daemons; their PIDs go to the record when detached."""
        assert node.spec.frr is not None and self.record is not None
        record = self.record

        def spawn(argv: list[str], out_path: Path) -> subprocess.Popen[str]:
            with open(out_path, "w") as out:
                return node.spawn(argv, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)

        def started(pid: int) -> None:
            if detached:
                record.pids.append(pid)
                record.save()

        frr.start(node.name, node.netns, node.spec.frr, node.run, spawn, started)

    def detach(self) -> None:
        """Leave the lab up when this object goes away (``mrouter lab up``)."""
        self._detached = True
        self._processes = []  # ended by `mrouter lab down`, from the record
        with _live_lock:
            _live.discard(self)

    def teardown(self) -> None:
        """End spawned processes, remove the namespaces and the record. Idempotent."""
        self._running = False
        with _live_lock:
            _live.discard(self)
        self._end_processes()
        if self.record is not None:
            state.down(self.record)
            self.record = None

    def _end_processes(self) -> None:
        procs, self._processes = self._processes, []
        running = [p for p in procs if p.poll() is None]
        for p in running:
            p.terminate()
        deadline = time.monotonic() + state.TERM_GRACE
        for p in running:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for p in procs:
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream is not None:
                    stream.close()

    # -- access ---------------------------------------------------------------------

    def _check_running(self) -> None:
        if not self._running:
            raise LabError(
                f"lab {self.name or '(not started)'} is not running; use it inside "
                f"'with Lab.from_file(...) as lab:' or call lab.start() first"
            )

    def node(self, name: str) -> Node:
        self._check_running()
        try:
            return self._nodes[name]
        except KeyError:
            raise LabError(f"lab {self.name} has no node {name!r}; its nodes are: "
                           f"{', '.join(self._nodes)}") from None

    @property
    def nodes(self) -> list[Node]:
        self._check_running()
        return list(self._nodes.values())

    @property
    def namespaces(self) -> list[str]:
        return list(self.record.namespaces.values()) if self.record else []


@atexit.register
def _teardown_leftovers() -> None:
    """Labs a program forgot to tear down go away when the interpreter exits."""
    with _live_lock:
        leftovers = list(_live)
    for lab in leftovers:
        try:
            lab.teardown()
        except Exception as exc:
            log.warning("could not tear down lab %s at exit: %s", lab.name, exc)
