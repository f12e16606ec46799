"""The control server's answers to bad requests, without a daemon: every malformed or
failing request gets an error reply naming what was wrong, and the server goes on."""

from __future__ import annotations

import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mrouter.errors import ConfigError, ControlError
from mrouter.router.control import ControlServer, request


def failing(request: Mapping[str, Any]) -> Any:
    raise RuntimeError("a bug")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    def show(request: Mapping[str, Any]) -> Any:
        if request["what"] not in ("routes",):
            raise ConfigError(f"show what? {request['what']!r}")
        return ["r"]

    srv = ControlServer(tmp_path / "ctl.sock", {"show": show, "boom": failing})
    yield srv
    srv.close()


@pytest.mark.parametrize(("line", "error"), [
    (b"{not json", "request is not JSON"),
    (b"\xff\xfe", "request is not JSON"),
    (b"[1, 2]", 'an object with a "command" string'),
    (b'{"what": "routes"}', 'an object with a "command" string'),
    (b'{"command": "fly"}', "unknown command 'fly'; known: boom, show"),
    (b'{"command": "show"}', "bad arguments for show: KeyError('what')"),
    (b'{"command": "show", "what": "cats"}', "show what? 'cats'"),
    (b'{"command": "boom"}', "internal error in boom: RuntimeError('a bug')"),
])
def test_bad_requests_get_error_replies(server: ControlServer, line: bytes,
                                        error: str) -> None:
    reply = server.answer(line)
    assert reply["ok"] is False
    assert error in reply["error"]
    assert server.answer(b'{"command": "show", "what": "routes"}') == {
        "ok": True, "result": ["r"]}  # and the next good request is served


def test_socket_is_private(server: ControlServer) -> None:
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


def test_client_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=r"is `mrouter run` running\?"):
        request(tmp_path / "nothing.sock", "show", what="routes")


def test_wait_answering_gives_up_when_the_process_ends_and_sees_a_server(
        tmp_path: Path) -> None:
    import select
    import threading

    from mrouter.router.control import wait_answering

    asked: list[bool] = []

    def ended() -> bool:
        asked.append(False)
        return False

    assert not wait_answering(tmp_path / "none.sock", ended, timeout=10.0)
    assert len(asked) == 1  # gave up at the first failed ping: no polling a dead process
    # (how long that takes is scripts/bench_wait_answering.py's business, not a unit test's)
    assert not wait_answering(tmp_path / "none.sock", lambda: True, timeout=0.2)

    srv = ControlServer(tmp_path / "up.sock", {"ping": lambda r: {}})
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for sock in select.select(srv.sockets(), [], [], 0.05)[0]:
                srv.ready(sock)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert wait_answering(tmp_path / "up.sock", lambda: True, timeout=5.0)
    finally:
        stop.set()
        thread.join()
        srv.close()
