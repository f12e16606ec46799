"""`mrouter events` from a file and from a control socket serving an EventLog."""

from __future__ import annotations

import json
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mrouter.cli.diag import main as diag_main
from mrouter.diag.events import EventLog, make
from mrouter.router.control import ControlServer


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[EventLog, Path]]:
    """A control server answering "events" from an EventLog, run by a thread."""
    log = EventLog(capacity=100)
    path = tmp_path / "ctl.sock"
    server = ControlServer(path, {"events": log.serve})
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            ready, _, _ = select.select(server.sockets(), [], [], 0.05)
            for sock in ready:
                server.ready(sock)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield log, path
    finally:
        stop.set()
        thread.join()
        server.close()


def test_events_from_the_daemon(served: tuple[EventLog, Path],
                                capsys: pytest.CaptureFixture[str]) -> None:
    log, path = served
    log.record("igmp_in", 1.0, "dn0", type="report", src="192.0.2.2", group="239.1.1.1",
               version=3)
    log.record("mfc_add", 1.5, source="198.51.100.2", group="239.1.1.1", iif="up0",
               oifs=["dn0"])
    assert diag_main(["events", "--socket", str(path), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["kind"] for x in lines] == ["igmp_in", "mfc_add"]
    assert diag_main(["events", "--socket", str(path)]) == 0
    human = capsys.readouterr().out.splitlines()
    assert "igmp_in" in human[0] and "dn0" in human[0] and "src=192.0.2.2" in human[0]


def test_kind_filters_and_knows_every_kind(served: tuple[EventLog, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mrouter.cli.diag import _KINDS
    from mrouter.diag.events import EventKind

    assert sorted(_KINDS) == sorted(k.value for k in EventKind)
    log, path = served
    log.record("igmp_in", 1.0, "dn0", type="report", src="192.0.2.2", group="239.1.1.1",
               version=3)
    log.record("timer_expired", 1.2, "dn0", timer="group", group="239.1.1.1")
    log.record("mfc_add", 1.5, source="198.51.100.2", group="239.1.1.1", iif="up0",
               oifs=["dn0"])
    assert diag_main(["events", "--socket", str(path), "--json", "--kind", "mfc_add",
                      "--kind", "timer_expired"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["kind"] for x in lines] == ["timer_expired", "mfc_add"]
    with pytest.raises(SystemExit):
        diag_main(["events", "--socket", str(path), "--kind", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_a_daemon_without_events_says_how_to_get_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ctl.sock"
    server = ControlServer(path, {"ping": lambda r: {}})

    def answer_once() -> None:
        for _ in range(2):  # accept, then read the request and reply
            ready, _, _ = select.select(server.sockets(), [], [], 5)
            for sock in ready:
                server.ready(sock)

    thread = threading.Thread(target=answer_once)
    thread.start()
    try:
        assert diag_main(["events", "--socket", str(path)]) == 2
    finally:
        thread.join()
        server.close()
    assert "does not serve events yet" in capsys.readouterr().err


def test_events_from_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ev.jsonl"
    p.write_text(make("iface_changed", 2.5, "dn0", state="down").to_json() + "\n")
    assert diag_main(["events", "--file", str(p), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "down"
    assert diag_main(["events", "--file", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read events file" in capsys.readouterr().err


def test_commands_plug_into_the_main_table(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """explain, events and timeline are reachable through the one `mrouter` command."""
    from mrouter.cli import main as cli_main

    p = tmp_path / "ev.jsonl"
    p.write_text(make("daemon_started", 0.0).to_json() + "\n")
    assert cli_main.main(["timeline", str(p), "-o", str(tmp_path / "t.html")]) == 0
    assert "<svg" in (tmp_path / "t.html").read_text()
    assert cli_main.main(["events", "--file", str(p)]) == 0
    assert "daemon_started" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main.main(["explain", "10.0.0.1"])
    assert "not a multicast group" in capsys.readouterr().err
