"""The control server under abuse (issue 11): deep, huge or endless requests, too many
clients, no file descriptors left, clients that never read, and replies far larger than a
socket buffer. Each test drives the server from its own selector loop, as the daemon
does, and asserts what a client sees and that the server goes on answering."""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mrouter.errors import ControlError
from mrouter.router import control
from mrouter.router.control import ControlServer, Stream, request

BIG = [{"n": n, "pad": "x" * 100} for n in range(40_000)]  # about 4.5 MB of JSON


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def handlers() -> dict[str, Any]:
    return {"ping": lambda r: {"pong": True},
            "big": lambda r: BIG,
            "stream": lambda r: {"head": 1, "items": Stream(iter(BIG))}}


def turn(server: ControlServer, timeout: float = 0.0) -> None:
    """One turn of the daemon's loop for the control server."""
    with selectors.DefaultSelector() as sel:
        for sock, events in server.interest().items():
            sel.register(sock, events)
        for key, events in sel.select(min(timeout, server.timeout())):
            assert isinstance(key.fileobj, socket.socket)
            server.ready(key.fileobj, events)
    server.service()


@contextlib.contextmanager
def served(server: ControlServer) -> Iterator[None]:
    """The server's loop in a thread, for clients that use :func:`request`."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            turn(server, 0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    srv = ControlServer(tmp_path / "ctl.sock", handlers())
    yield srv
    srv.close()


def connect(server: ControlServer) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(server.path))
    return client


def read_reply(server: ControlServer, client: socket.socket) -> Any:
    """Turn the server's loop and read from ``client`` until a whole line came."""
    client.setblocking(False)
    data = b""
    for _ in range(100_000):
        turn(server, 0.01)
        with contextlib.suppress(BlockingIOError):
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        if data.endswith(b"\n"):
            break
    return json.loads(data)


# --- 1. malformed, deep and huge requests ---------------------------------------------------

@pytest.mark.parametrize(("line", "error"), [
    (b"[" * 1000 + b"]" * 1000, "nests deeper than 16 levels"),
    (b'{"command": "ping", "x": ' + b"[" * 17 + b"]" * 17 + b"}", "nests deeper than 16"),
    (b'{"command": "ping", "x": ' + b"1" * 4301 + b"}", "request is not JSON"),
    (b"1" * 4301, "request is not JSON"),
])
def test_deep_or_huge_requests_get_an_error_and_the_server_goes_on(
        server: ControlServer, line: bytes, error: str) -> None:
    client = connect(server)
    client.sendall(line + b"\n")
    first = read_reply(server, client)
    assert first["ok"] is False and error in first["error"]
    client.sendall(b'{"command": "ping"}\n')
    assert read_reply(server, client) == {"ok": True, "result": {"pong": True}}
    client.close()


def test_a_request_without_end_is_refused_and_closed(server: ControlServer) -> None:
    client = connect(server)
    client.sendall(b"[" * (control.MAX_REQUEST + 10))
    reply = read_reply(server, client)
    assert reply["ok"] is False and "longer than" in reply["error"]
    client.setblocking(True)
    client.settimeout(5)
    assert client.recv(10) == b""  # and the connection is closed
    client.close()
    with served(server):
        assert request(server.path, "ping") == {"pong": True}


def test_a_reply_that_is_not_json_able_is_an_internal_error(tmp_path: Path) -> None:
    srv = ControlServer(tmp_path / "c.sock", {"odd": lambda r: {1, 2}})
    try:
        with served(srv), pytest.raises(ControlError, match="internal error: the reply"):
            request(srv.path, "odd")
    finally:
        srv.close()


# --- 2. clients and file descriptors ---------------------------------------------------------

def test_a_full_server_closes_its_idlest_client_to_serve_a_new_one(
        server: ControlServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "MAX_CLIENTS", 8)
    held = [connect(server) for _ in range(8)]
    for _ in range(5):
        turn(server, 0.01)
    extra = connect(server)
    extra.sendall(b'{"command": "ping"}\n')
    assert read_reply(server, extra)["ok"] is True  # the newcomer is served ...
    assert held[0].recv(10) == b""  # ... and the client idle longest was closed
    held[1].sendall(b'{"command": "ping"}\n')
    assert read_reply(server, held[1])["ok"] is True  # the others keep working
    for sock in [*held, extra]:
        sock.close()


def test_too_many_clients_mid_request_get_an_error_line_and_the_rest_are_served(
        server: ControlServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "MAX_CLIENTS", 8)
    held = [connect(server) for _ in range(8)]
    for sock in held:
        sock.sendall(b'{"command": ')  # half a request: none of them is idle
    for _ in range(5):
        turn(server, 0.01)
    extra = connect(server)
    assert "already has 8 control clients" in read_reply(server, extra)["error"]
    held[0].sendall(b'"ping"}\n')
    assert read_reply(server, held[0])["ok"] is True
    for sock in [*held, extra]:
        sock.close()


def test_out_of_file_descriptors_pauses_accepting_instead_of_failing(
        server: ControlServer) -> None:
    clients = [connect(server) for _ in range(6)]  # waiting in the backlog
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    probe = socket.socket()
    room = probe.fileno() + 2  # two more descriptors, then EMFILE
    probe.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (room, hard))
    try:
        for _ in range(5):
            server.ready(server.listener)  # the daemon's loop would die here on EMFILE
            server.service()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert server.listener not in server.interest()  # paused, not spinning
    for client in clients:
        client.close()
    with served(server):
        assert request(server.path, "ping") == {"pong": True}


def test_a_full_backlog_is_waited_for_not_reported(server: ControlServer) -> None:
    fillers = []
    for _ in range(10_000):  # fill the listen backlog while the loop does not accept
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(str(server.path))
        except BlockingIOError:
            sock.close()
            break
        fillers.append(sock)
    assert len(fillers) >= 64  # room for many clients at once
    result: list[Any] = []
    client = threading.Thread(target=lambda: result.append(request(server.path, "ping")))
    client.start()
    for sock in fillers:  # they give up; the daemon's loop gets to them
        sock.close()
    with served(server):
        client.join(10)
    assert result == [{"pong": True}]


def test_idle_clients_are_closed(tmp_path: Path) -> None:
    clock = Clock()
    srv = ControlServer(tmp_path / "c.sock", handlers(), clock=clock)
    try:
        client = connect(srv)
        turn(srv, 0.01)
        assert len(srv.connections) == 1
        clock.now += control.IDLE_TIMEOUT + 1
        turn(srv)
        assert srv.connections == {}
        client.settimeout(5)
        assert client.recv(10) == b""
        client.close()
    finally:
        srv.close()


# --- 3. slow readers and large replies ---------------------------------------------------------

def test_a_client_that_does_not_read_gets_its_reply_late_and_others_are_served(
        server: ControlServer) -> None:
    slow = [connect(server) for _ in range(5)]
    for sock in slow:
        sock.sendall(b'{"command": "big"}\n')
    for _ in range(5):
        turn(server, 0.01)  # each reply is far larger than the socket buffer
    quick = connect(server)
    quick.sendall(b'{"command": "ping"}\n')
    assert read_reply(server, quick)["ok"] is True
    for sock in slow:  # and each slow reader still gets all of its reply
        assert read_reply(server, sock) == {"ok": True, "result": BIG}
        sock.close()
    quick.close()


def test_a_client_that_never_reads_is_dropped(tmp_path: Path) -> None:
    clock = Clock()
    srv = ControlServer(tmp_path / "c.sock", handlers(), clock=clock)
    try:
        client = connect(srv)
        client.sendall(b'{"command": "big"}\n')
        for _ in range(3):
            turn(srv, 0.01)
        assert len(srv.connections) == 1
        clock.now += control.SEND_TIMEOUT + 1
        turn(srv)
        assert srv.connections == {}
        client.close()
    finally:
        srv.close()


def test_a_streamed_reply_is_encoded_a_slice_per_turn_and_arrives_whole(
        server: ControlServer) -> None:
    produced: list[int] = []

    def items() -> Iterator[dict[str, Any]]:
        for item in BIG:
            produced.append(item["n"])
            yield item

    streaming: Mapping[str, Any] = {"stream": lambda r: {"head": 1, "items": Stream(items())}}
    server.handlers = streaming
    client = connect(server)
    client.sendall(b'{"command": "stream"}\n')
    for _ in range(3):
        turn(server, 0.01)
    assert 0 < len(produced) < len(BIG)  # not all at once
    assert read_reply(server, client) == {"ok": True, "result": {"head": 1, "items": BIG}}
    client.close()


def test_the_client_reads_a_large_reply_whole(server: ControlServer) -> None:
    with served(server):
        assert request(server.path, "stream") == {"head": 1, "items": BIG}
        assert request(server.path, "big") == BIG


def test_a_reply_cut_off_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def half_reply() -> None:
        conn, _ = listener.accept()
        conn.recv(100)
        conn.sendall(b'{"ok": true, "result": [1, 2')
        conn.close()

    thread = threading.Thread(target=half_reply)
    thread.start()
    try:
        with pytest.raises(ControlError, match="closed the connection after 28 bytes, "
                                               "before its reply ended"):
            request(path, "show", what="groups")
    finally:
        thread.join()
        listener.close()


def test_a_stream_that_fails_half_way_closes_its_connection_only(tmp_path: Path) -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("a bug")

    srv = ControlServer(tmp_path / "c.sock", {"broken": lambda r: Stream(broken()),
                                              "ping": lambda r: {}})
    try:
        with served(srv):
            with pytest.raises(ControlError, match="before its reply ended"):
                request(srv.path, "broken")
            assert request(srv.path, "ping") == {}
    finally:
        srv.close()
