"""The daemon's control socket: one JSON object per line each way, over a Unix socket.

Theory of operation: the daemon listens on a Unix stream socket (mode 0600, so only its
owner, normally root, may talk to it). A client writes one request per line,
``{"command": "show", "what": "routes"}``, and reads one reply per line:
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "what was wrong"}``.
:func:`request` is the client the CLI uses.

:class:`ControlServer` lives in the daemon's selector loop and must never stop or stall
it, whatever a client sends or fails to read:

- every socket is non-blocking. A reply goes into the connection's out-buffer and is
  written as the socket becomes writable (:meth:`ControlServer.interest` asks for
  EVENT_WRITE while something is waiting), so a client that does not read gets its
  reply late, or is dropped, but never holds the loop;
- a handler may return :class:`Stream` (a JSON array produced item by item, possibly
  inside a dict): :meth:`ControlServer.service`, called once per loop turn, encodes at
  most :data:`SLICE_SECONDS` of it per turn over all connections, and only while the
  connection's out-buffer is below :data:`HIGH_WATER`, so a big view costs the loop a
  few milliseconds per turn and the wire format stays one JSON line per reply;
- one request at a time per connection: the next line is read after the reply is out;
- any request, however malformed, deep or large, gets an error reply or a closed
  connection, and the server carries on; a bug in a handler is logged and answered as
  an internal error.

The limits (module constants):

==================== ============ ==================================================
:data:`MAX_CLIENTS`  512          connections at once; when full, the connection idle
                                  longest (no request, no reply waiting) is closed to
                                  make room, so hoarded idle connections cannot lock
                                  out `mrouter show`; if none is idle the newcomer gets
                                  an error line and is closed
:data:`MAX_REQUEST`  64 KiB       a request line longer than this is refused and the
                                  connection closed
:data:`MAX_DEPTH`    16           nesting of arrays and objects in a request
:data:`IDLE_TIMEOUT` 30 s         a connection with nothing to read or write for this
                                  long is closed
:data:`SEND_TIMEOUT` 10 s         a reply that makes no progress for this long (the
                                  client does not read) is dropped with its connection
:data:`BACKLOG`      128          the listen backlog (connections waiting for accept)
==================== ============ ==================================================

When the process runs out of file descriptors (EMFILE), the server stops accepting
for :data:`ACCEPT_PAUSE` seconds instead of failing (waiting clients stay in the
backlog); the client, :func:`request`, retries a connect that finds the backlog full
until its timeout, and reads a reply of up to :data:`MAX_REPLY` bytes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import selectors
import socket
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrouter.errors import ControlError, MrouterError

log = logging.getLogger(__name__)

RUN_DIR = "/run/mrouter"
#: the instance whose paths are used when neither --instance nor --socket is given
DEFAULT_INSTANCE = "mrouter"
DEFAULT_SOCKET = f"{RUN_DIR}/{DEFAULT_INSTANCE}.sock"
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_CLIENTS = 512
MAX_REQUEST = 64 * 1024  # a request line longer than this is refused
MAX_DEPTH = 16
IDLE_TIMEOUT = 30.0
SEND_TIMEOUT = 10.0
BACKLOG = 128
ACCEPT_PAUSE = 0.1
ACCEPT_BATCH = 16  # connections accepted per readable event
HIGH_WATER = 256 * 1024  # bytes waiting in a connection before no more is encoded
SLICE_SECONDS = 0.005  # encoding of streamed replies per loop turn, all connections
MAX_REPLY = 512 * 1024 * 1024  # the client's limit on one reply

#: errors of accept() that mean "no resources now", not "the listener is broken"
_ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

Handler = Callable[[Mapping[str, Any]], Any]


def check_instance(name: str) -> str:
    """``name`` if it can name an instance (its socket, PID file and syslog identity)."""
    if not _INSTANCE_NAME.fullmatch(name):
        raise ControlError(f"instance name {name!r}: use up to 64 letters, digits, '_', '.' "
                           "or '-', not starting with '.' or '-' (e.g. --instance lan1)")
    return name


def instance_socket(name: str = DEFAULT_INSTANCE) -> str:
    """The control socket of instance ``name``: /run/mrouter/NAME.sock."""
    return f"{RUN_DIR}/{check_instance(name)}.sock"


def instance_pidfile(name: str = DEFAULT_INSTANCE) -> str:
    """The PID file of instance ``name``: /run/mrouter/NAME.pid."""
    return f"{RUN_DIR}/{check_instance(name)}.pid"


@dataclass(frozen=True, slots=True)
class Stream:
    """A JSON array sent item by item: return it (alone or as a value in a dict) from a
    handler whose result can be large. ``items`` is consumed lazily, a bounded slice per
    loop turn, so it should compute each item when asked (and tolerate the daemon's
    state changing between items)."""

    items: Iterable[Any]


#: What a :class:`Stream`'s iterator may yield instead of an item: "not an item, I had
#: work to do", so that a long preparation (collecting and ordering keys) is done in
#: steps, each within a loop turn's slice.
PENDING: Any = object()


def _fragments(value: Any) -> Iterator[str]:
    """``value`` as JSON text in pieces; a :class:`Stream` yields one piece per item."""
    if isinstance(value, Stream):
        yield "["
        first = True
        for item in value.items:
            if item is PENDING:
                yield ""
                continue
            yield ("" if first else ", ") + json.dumps(item)
            first = False
        yield "]"
    elif isinstance(value, dict) and any(isinstance(v, Stream) for v in value.values()):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            yield ("" if n == 0 else ", ") + json.dumps(str(key)) + ": "
            yield from _fragments(item)
        yield "}"
    else:
        yield json.dumps(value)


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a decoded request (iteratively)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return deepest


class _Connection:
    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = bytearray()
        self.pending: Iterator[str] | None = None  # the rest of a streamed reply
        self.close_after = False  # close once the out-buffer is written
        self.last_progress = now

    @property
    def busy(self) -> bool:
        return bool(self.outbuf) or self.pending is not None


class ControlServer:
    """Accepts connections and answers requests with ``handlers[request["command"]]``.

    A handler returns the JSON-able result (or a :class:`Stream`) or raises MrouterError
    (sent back as the error text). The selector integration: :meth:`interest` maps each
    socket to the events to poll for, :meth:`ready` handles one ready socket,
    :meth:`service` (once per loop turn) continues streamed replies and closes idle
    connections, and :meth:`timeout` says when it next needs to run. A plain
    ``select`` loop over :meth:`sockets` and :meth:`ready` serves small replies too.
    """

    def __init__(self, path: str | Path, handlers: Mapping[str, Handler], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.handlers = handlers
        self.clock = clock
        self._prepare_path()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: nobody else may race in
        try:
            self.listener.bind(str(self.path))
        except OSError as exc:
            self.listener.close()
            raise ControlError(f"cannot create control socket {self.path}: {exc.strerror}; "
                               "choose another path with --socket") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        self.listener.listen(BACKLOG)
        self.listener.setblocking(False)
        self.connections: dict[int, _Connection] = {}
        # requests answered and error replies, by command ("unknown" for a request that
        # named no known command), for the daemon's statistics
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._accept_paused_until: float | None = None
        self._exhausted_logged = False

    def _prepare_path(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        except OSError as exc:
            raise ControlError(f"cannot create the directory of control socket {self.path}: "
                               f"{exc.strerror}") from None
        if not self.path.exists() and not self.path.is_symlink():
            return
        if not stat.S_ISSOCK(self.path.lstat().st_mode):
            raise ControlError(f"{self.path} exists and is not a socket; choose another "
                               "path with --socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink()  # stale: left by a daemon that died
        else:
            raise ControlError(f"another daemon is answering on {self.path}; stop it "
                               "(mrouter stop) or give this one another --instance NAME "
                               "(or --socket PATH)")
        finally:
            probe.close()

    # --- selector integration ----------------------------------------------------------
    def interest(self) -> dict[socket.socket, int]:
        """Each socket to poll and its events (EVENT_READ and/or EVENT_WRITE)."""
        wanted: dict[socket.socket, int] = {}
        if self._accept_paused_until is None:
            wanted[self.listener] = selectors.EVENT_READ
        for conn in self.connections.values():
            if conn.outbuf:
                wanted[conn.sock] = selectors.EVENT_WRITE
            elif conn.pending is None:
                wanted[conn.sock] = selectors.EVENT_READ
            # a streamed reply with an empty out-buffer waits for service(), not the socket
        return wanted

    def sockets(self) -> list[socket.socket]:
        """The sockets to poll for reading (for simple ``select`` loops)."""
        return [s for s, events in self.interest().items() if events & selectors.EVENT_READ]

    def ready(self, sock: socket.socket, events: int = selectors.EVENT_READ) -> None:
        if sock is self.listener:
            self._accept()
            return
        conn = self.connections.get(sock.fileno())
        if conn is None:
            return
        try:
            if events & selectors.EVENT_WRITE:
                self._pump(conn)
            if events & selectors.EVENT_READ and conn.sock.fileno() >= 0 and not conn.busy:
                self._read(conn)
        except Exception:  # a bug must not take the daemon (and its routes) down
            log.exception("control connection failed; closed")
            self._drop(conn)

    def service(self) -> None:
        """Once per loop turn: encode a bounded slice of streamed replies, close idle and
        stalled connections, resume accepting after a pause."""
        now = self.clock()
        if self._accept_paused_until is not None and now >= self._accept_paused_until:
            self._accept_paused_until = None
        budget_end = time.perf_counter() + SLICE_SECONDS
        for conn in list(self.connections.values()):
            if conn.pending is not None and len(conn.outbuf) < HIGH_WATER \
                    and time.perf_counter() < budget_end:
                self._produce(conn, budget_end)
                self._pump(conn)
            if conn.sock.fileno() < 0:
                continue
            limit = SEND_TIMEOUT if conn.busy else IDLE_TIMEOUT
            if now - conn.last_progress > limit:
                log.info("control client %s for %.0f s; closed",
                         "not reading its reply" if conn.busy else "idle", limit)
                self._drop(conn)

    def timeout(self) -> float:
        """Seconds until :meth:`service` next has something to do."""
        now = self.clock()
        deadlines = [now + IDLE_TIMEOUT]
        if self._accept_paused_until is not None:
            deadlines.append(self._accept_paused_until)
        for conn in self.connections.values():
            if conn.pending is not None and len(conn.outbuf) < HIGH_WATER:
                return 0.0
            deadlines.append(conn.last_progress
                             + (SEND_TIMEOUT if conn.busy else IDLE_TIMEOUT))
        return max(0.0, min(deadlines) - now)

    # --- connections -------------------------------------------------------------------
    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._accept_paused_until is not None or not self._accept_one():
                return

    def _accept_one(self) -> bool:
        """Accept one waiting connection; False if there was none (or no room for it)."""
        try:
            client, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            if exc.errno not in _ACCEPT_EXHAUSTED:  # e.g. a client that gave up at once
                log.info("control socket: accept failed: %s", exc.strerror)
                return False
            # Out of descriptors (or memory): leave the waiting clients in the backlog and
            # try again shortly, rather than spin on a listener that stays readable.
            if not self._exhausted_logged:
                log.warning("control socket: cannot accept a connection: %s; pausing "
                            "new connections for %g s", exc.strerror, ACCEPT_PAUSE)
                self._exhausted_logged = True
            self._accept_paused_until = self.clock() + ACCEPT_PAUSE
            return False
        self._exhausted_logged = False
        client.setblocking(False)
        if len(self.connections) >= MAX_CLIENTS and not self._evict_idlest():
            with contextlib.suppress(OSError):
                client.send(json.dumps({
                    "ok": False, "error": f"the daemon already has {MAX_CLIENTS} control "
                    "clients; try again when some have finished"}).encode() + b"\n")
            client.close()
            return True
        self.connections[client.fileno()] = _Connection(client, self.clock())
        return True

    def _evict_idlest(self) -> bool:
        """Close the connection that has been idle longest (nothing half-read, nothing to
        send) to make room for a new client; False if every connection is mid-request."""
        idle = [c for c in self.connections.values() if not c.busy and not c.inbuf]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.last_progress)
        log.info("control socket: %d clients; closed the one idle longest to make room",
                 len(self.connections))
        self._drop(oldest)
        return True

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.last_progress = self.clock()
        conn.inbuf += data
        self._pump(conn)

    def _pump(self, conn: _Connection) -> None:
        """Write what the socket takes; once a reply is out, answer the next complete
        request line (one at a time), or close if the connection is to be closed."""
        while True:
            self._flush(conn)
            if conn.sock.fileno() < 0 or conn.busy:
                return
            if conn.close_after:
                self._drop(conn)
                return
            if b"\n" in conn.inbuf:
                line, conn.inbuf = conn.inbuf.split(b"\n", 1)
                if len(line) > MAX_REQUEST:
                    self._refuse(conn)
                else:
                    self._start_reply(conn, self.answer(line))
            elif len(conn.inbuf) > MAX_REQUEST:
                self._refuse(conn)
            else:
                return

    def _refuse(self, conn: _Connection) -> None:
        conn.inbuf = b""
        conn.close_after = True
        self._start_reply(conn, {"ok": False, "error": f"request longer than {MAX_REQUEST} "
                                                       "bytes; nothing was done"})

    def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line (never raises for bad input). A handler's
        :class:`Stream` result is left in the reply, to be encoded as it is sent."""
        reply, command = self._reply(line)
        self.requests[command] += 1
        if not reply["ok"]:
            self.errors[command] += 1
        return reply

    def _reply(self, line: bytes) -> tuple[dict[str, Any], str]:
        """The reply and the command it answered ("unknown" when the request named no
        known command)."""
        if len(line) > MAX_REQUEST:
            return {"ok": False, "error": f"request longer than {MAX_REQUEST} bytes; "
                                          "nothing was done"}, "unknown"
        try:
            request = json.loads(line)
        except RecursionError:
            return {"ok": False, "error": f"request nests deeper than {MAX_DEPTH} levels"}, \
                "unknown"
        except ValueError as exc:  # JSON, UTF-8, or a number too long to convert
            return {"ok": False, "error": f"request is not JSON: {exc}"}, "unknown"
        if _depth(request) > MAX_DEPTH:
            return {"ok": False, "error": f"request nests deeper than {MAX_DEPTH} levels"}, \
                "unknown"
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'request must be an object with a "command" string,'
                                          ' e.g. {"command": "show", "what": "routes"}'}, \
                "unknown"
        command = request["command"]
        handler = self.handlers.get(command)
        if handler is None:
            return {"ok": False, "error": f"unknown command {command!r}; known: "
                                          + ", ".join(sorted(self.handlers))}, "unknown"
        try:
            return {"ok": True, "result": handler(request)}, command
        except MrouterError as exc:
            return {"ok": False, "error": str(exc)}, command
        except (KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": f"bad arguments for {command}: {exc!r}"}, command
        except Exception as exc:  # a bug must not take the daemon (and its routes) down
            log.exception("control request %r failed", request)
            return {"ok": False, "error": f"internal error in {command}: {exc!r} "
                                          "(see the daemon's log)"}, command

    def _start_reply(self, conn: _Connection, reply: Mapping[str, Any]) -> None:
        result = reply.get("result")
        if isinstance(result, Stream) or (isinstance(result, dict) and any(
                isinstance(v, Stream) for v in result.values())):
            conn.pending = self._streamed(reply)
            return  # service() encodes it, a slice per loop turn
        try:
            data = json.dumps(reply).encode() + b"\n"
        except (TypeError, ValueError) as exc:  # a handler's bug: not JSON-able
            log.error("control reply cannot be encoded: %r", exc)
            data = json.dumps({"ok": False, "error": f"internal error: the reply cannot be "
                               f"encoded: {exc!r} (see the daemon's log)"}).encode() + b"\n"
        conn.outbuf += data

    @staticmethod
    def _streamed(reply: Mapping[str, Any]) -> Iterator[str]:
        yield '{"ok": true, "result": '
        yield from _fragments(reply["result"])
        yield "}\n"

    def _produce(self, conn: _Connection, budget_end: float) -> None:
        assert conn.pending is not None
        try:
            while len(conn.outbuf) < HIGH_WATER and time.perf_counter() < budget_end:
                conn.outbuf += next(conn.pending).encode()
        except StopIteration:
            conn.pending = None
        except Exception:  # half a reply is out: all we can do is close the connection
            log.exception("control reply failed while it was being sent; connection closed")
            conn.pending = None
            conn.close_after = True

    def _flush(self, conn: _Connection) -> None:
        """Write what the socket takes now; the rest waits for EVENT_WRITE."""
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.info("control client went away before its reply")
                self._drop(conn)
                return
            del conn.outbuf[:sent]
            conn.last_progress = self.clock()

    def _drop(self, conn: _Connection) -> None:
        if self.connections.get(conn.sock.fileno()) is conn:
            del self.connections[conn.sock.fileno()]
        conn.sock.close()

    def close(self) -> None:
        for conn in list(self.connections.values()):
            self._drop(conn)
        self.listener.close()
        # gone already, or a daemon that dropped root may not write the directory (the
        # next daemon on this path removes a stale socket)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            self.path.unlink()


def request(path: str | Path, command: str, timeout: float = 10.0, **args: Any) -> Any:
    """Send one request to the daemon at ``path``; return its result or raise ControlError.

    ``timeout`` bounds the connect (retried while the daemon's backlog is full) and each
    wait for more of the reply; a reply may be up to :data:`MAX_REPLY` bytes.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    size = 0
    try:
        _connect(sock, path, timeout)
        sock.sendall(json.dumps({"command": command, **args}).encode() + b"\n")
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n"):
                break
            if size > MAX_REPLY:
                raise ControlError(f"the daemon's reply to {command} is larger than "
                                   f"{MAX_REPLY // (1 << 20)} MiB; not read")
    except TimeoutError:
        raise ControlError(f"the daemon at {path} did not answer within {timeout:g} s"
                           + (f" (after {size} bytes of its reply)" if size else "")) from None
    except ConnectionResetError:
        raise ControlError(f"the daemon at {path} closed the connection after {size} bytes "
                           "of its reply") from None
    except OSError as exc:
        raise ControlError(f"talking to the daemon at {path} failed: {exc.strerror}") from None
    finally:
        sock.close()
    data = b"".join(chunks)
    if not data:
        raise ControlError(f"the daemon at {path} closed the connection without a reply")
    if not data.endswith(b"\n"):
        raise ControlError(f"the daemon at {path} closed the connection after {size} bytes, "
                           "before its reply ended; see the daemon's log")
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise ControlError(f"the daemon's reply is not valid JSON ({exc}); see its log") \
            from None
    if not isinstance(reply, dict):
        raise ControlError("the daemon's reply is not a JSON object; is that an mrouter "
                           f"control socket at {path}?")
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the daemon refused the request")))
    return reply.get("result")


def _connect(sock: socket.socket, path: str | Path, timeout: float) -> None:
    """Connect, retrying while the listen backlog is full (EAGAIN) until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.connect(str(path))
            return
        except FileNotFoundError:
            raise ControlError(f"no daemon control socket at {path}: is `mrouter run` "
                               "running? (pass its --socket PATH if it uses another)") from None
        except ConnectionRefusedError:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise ControlError(f"{path} is not a socket: pass the daemon's control "
                                   "socket with --socket PATH") from None
            raise ControlError(f"nothing answers on {path}: the daemon is not running "
                               "(stale socket); start it with `mrouter run`") from None
        except PermissionError:
            raise ControlError(f"permission denied on {path}: the control socket is "
                               "mode 0600; run as the daemon's user (root)") from None
        except (BlockingIOError, InterruptedError):
            if time.monotonic() > deadline:
                raise ControlError(f"the daemon at {path} accepted no connection within "
                                   f"{timeout:g} s (its backlog stayed full)") from None
            time.sleep(0.01)
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc.strerror}") from None


def wait_answering(path: str | Path, running: Callable[[], bool], timeout: float = 15.0,
                   interval: float = 0.05) -> bool:
    """Poll the daemon at ``path`` until it answers ``ping`` (True), or until ``running()``
    says its process has ended or ``timeout`` seconds pass (False). For tools that start
    ``mrouter run`` and must wait for it to be ready: tests, benchmarks, scenarios."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            request(path, "ping", timeout=2.0)
            return True
        except ControlError:
            if not running() or time.monotonic() > deadline:
                return False
            time.sleep(interval)
