"""The daemon's control socket: one JSON object per line each way, over a Unix socket.

Theory of operation: the daemon listens on a Unix stream socket (mode 0600, so only its
owner, normally root, may talk to it). A client writes one request per line,
``{"command": "show", "what": "routes"}``, and reads one reply per line:
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "what was wrong"}``. A
malformed request gets an error reply and the daemon carries on. :class:`ControlServer`
is non-blocking and driven by the daemon's selector; :func:`request` is the client the
CLI uses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mrouter.errors import ControlError, MrouterError

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/mrouter/mrouter.sock"
MAX_REQUEST = 64 * 1024  # a request line longer than this is refused

Handler = Callable[[Mapping[str, Any]], Any]


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""


class ControlServer:
    """Accepts connections and answers requests with ``handlers[request["command"]]``.

    A handler returns the JSON-able result or raises MrouterError (sent back as the
    error text). The selector integration: :meth:`sockets` lists what to poll for
    reading, :meth:`ready` handles one readable socket.
    """

    def __init__(self, path: str | Path, handlers: Mapping[str, Handler]) -> None:
        self.path = Path(path)
        self.handlers = handlers
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
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.connections: dict[int, _Connection] = {}

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
                               "(mrouter stop) or choose another path with --socket")
        finally:
            probe.close()

    def sockets(self) -> list[socket.socket]:
        return [self.listener, *(c.sock for c in self.connections.values())]

    def ready(self, sock: socket.socket) -> None:
        if sock is self.listener:
            self._accept()
            return
        conn = self.connections.get(sock.fileno())
        if conn is not None:
            self._read(conn)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        client.setblocking(False)
        self.connections[client.fileno()] = _Connection(client)

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
        conn.inbuf += data
        while b"\n" in conn.inbuf:
            line, conn.inbuf = conn.inbuf.split(b"\n", 1)
            self._reply(conn, self.answer(line))
        if len(conn.inbuf) > MAX_REQUEST:
            self._reply(conn, {"ok": False, "error": f"request longer than {MAX_REQUEST} "
                                                     "bytes without a newline"})
            self._drop(conn)

    def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line (never raises for bad input)."""
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {"ok": False, "error": f"request is not JSON: {exc}"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'request must be an object with a "command" string,'
                                          ' e.g. {"command": "show", "what": "routes"}'}
        handler = self.handlers.get(request["command"])
        if handler is None:
            return {"ok": False, "error": f"unknown command {request['command']!r}; known: "
                                          + ", ".join(sorted(self.handlers))}
        try:
            return {"ok": True, "result": handler(request)}
        except MrouterError as exc:
            return {"ok": False, "error": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": f"bad arguments for {request['command']}: {exc!r}"}
        except Exception as exc:  # a bug must not take the daemon (and its routes) down
            log.exception("control request %r failed", request)
            return {"ok": False, "error": f"internal error in {request['command']}: {exc!r} "
                                          "(see the daemon's log)"}

    def _reply(self, conn: _Connection, reply: Mapping[str, Any]) -> None:
        data = json.dumps(reply).encode() + b"\n"
        try:
            conn.sock.setblocking(True)  # replies are small; a slow reader may block us
            conn.sock.settimeout(2.0)
            conn.sock.sendall(data)
            conn.sock.setblocking(False)
        except OSError:
            log.info("control client went away before its reply")
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        self.connections.pop(conn.sock.fileno(), None)
        conn.sock.close()

    def close(self) -> None:
        for conn in list(self.connections.values()):
            self._drop(conn)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: str | Path, command: str, timeout: float = 10.0, **args: Any) -> Any:
    """Send one request to the daemon at ``path``; return its result or raise ControlError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
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
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc.strerror}") from None
        sock.sendall(json.dumps({"command": command, **args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise ControlError(f"the daemon at {path} did not answer within {timeout:g} s") from None
    finally:
        sock.close()
    if not data:
        raise ControlError(f"the daemon at {path} closed the connection without a reply")
    reply = json.loads(data)
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the daemon refused the request")))
    return reply.get("result")


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
