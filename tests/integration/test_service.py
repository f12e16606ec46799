"""`mrouter run` as a system service (issue 16.2-16.4): systemd's notify protocol,
instances, dropping root, the default log, statistics and metrics, a real Prometheus.

Each daemon runs in r1 of its own basic lab; the member and sender are helpers.py's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import BASIC, member, received, send, start, wait_for
from prometheus_client.parser import text_string_to_metric_families

from mrouter.router.control import request, wait_answering

pytestmark = pytest.mark.netns

DYNAMIC = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 2
query_interval = 2
query_response_interval = 1
"""


@pytest.fixture
def basic(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    with sock:
        yield sock, path


def _messages(sock: socket.socket) -> dict[str, str]:
    fields = sock.recv(4096).decode().split("\n")
    return dict(f.split("=", 1) for f in fields if f)


def test_notify_ready_reloading_stopping_in_order(
        basic: Any, tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    daemon = start(basic, tmp_path, BASIC, env=dict(os.environ, NOTIFY_SOCKET=path))
    ready = _messages(sock)
    assert ready["READY"] == "1" and int(ready["MAINPID"]) == daemon.proc.pid
    assert "mrouter ready: router mode" in ready["STATUS"]
    daemon.proc.send_signal(signal.SIGHUP)
    assert _messages(sock)["RELOADING"] == "1"
    assert _messages(sock)["READY"] == "1"
    assert daemon("reload") == {"routes_added": 0, "routes_removed": 0,
                                "memberships_added": 0, "memberships_removed": 0}
    assert _messages(sock)["RELOADING"] == "1"
    assert _messages(sock)["READY"] == "1"
    assert daemon.cli("stop").returncode == 0
    assert _messages(sock) == {"STOPPING": "1"}
    assert daemon.proc.wait(10) == 0


def test_ready_means_the_control_socket_answers(
        basic: Any, tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    config = tmp_path / "r1.toml"
    config.write_text(BASIC)
    control = tmp_path / "r1.sock"
    proc = basic.node("r1").spawn(
        [sys.executable, "-m", "mrouter", "run", "--config", str(config), "--socket",
         str(control)], env=dict(os.environ, NOTIFY_SOCKET=path), stderr=subprocess.PIPE)
    assert _messages(sock)["READY"] == "1"
    assert request(control, "ping", timeout=2)["pid"] == proc.pid  # at once, no retry
    proc.terminate()
    assert proc.wait(10) == 0
    # the default log: one line per querier and route change, the ready line, the stop
    messages = [line.split(" INFO: ", 1)[1] for line in proc.communicate()[1].splitlines()]
    assert messages == [
        "up0: querier is now 198.51.100.1 (this router)",
        "dn0: querier is now 192.0.2.1 (this router)",
        "route (198.51.100.2, 239.1.1.1) from up0 to dn0",
        "mrouter ready: router mode, kernel data plane, interfaces up0 (VIF 0), dn0 (VIF 1); "
        f"control {control}",
        "signal SIGTERM: stopping",
        "mrouter stopping: kernel routes and VIFs removed"]


def test_syslog_identity_is_the_instance(basic: Any, tmp_path: Path) -> None:
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind(str(tmp_path / "log"))
    log.settimeout(10)
    name = f"t{os.getpid()}s"
    with log:
        daemon = start(basic, tmp_path, BASIC, "--instance", name, "--syslog",
                       str(tmp_path / "log"), verbose=False)
        try:
            lines = []
            while not any("mrouter ready" in line for line in lines):
                lines.append(log.recv(4096).decode())
        finally:
            daemon.cli("stop")
            daemon.proc.wait(10)
    # <facility daemon (3) * 8 + info (6)>, the instance's name and the PID
    assert lines[-1].startswith(f"<30>mrouter-{name}[{daemon.proc.pid}]: INFO "
                                "mrouter.router.daemon: mrouter ready: router mode")
    assert daemon.log.read_text() == ""  # nothing on stderr
    assert not Path(f"/run/mrouter/{name}.pid").exists()  # removed at the stop


def test_instance_sets_socket_and_pid_file(lab_factory: Callable[[str], Any],
                                           tmp_path: Path) -> None:
    first, second = lab_factory("basic.toml"), lab_factory("basic.toml")
    names = [f"t{os.getpid()}a", f"t{os.getpid()}b"]
    config = tmp_path / "r1.toml"
    config.write_text(BASIC)
    procs = []
    for lab, name in zip((first, second), names, strict=True):
        procs.append(lab.node("r1").spawn(
            [sys.executable, "-m", "mrouter", "run", "--config", str(config), "--instance",
             name], stderr=subprocess.DEVNULL))
    try:
        for proc, name in zip(procs, names, strict=True):
            sock = f"/run/mrouter/{name}.sock"
            assert wait_answering(sock, lambda p=proc: p.poll() is None)  # type: ignore[misc]
            assert Path(f"/run/mrouter/{name}.pid").read_text() == f"{proc.pid}\n"
        out = subprocess.run([sys.executable, "-m", "mrouter", "show", "interfaces", "--json",
                              "--instance", names[1]], capture_output=True, text=True,
                             timeout=30, check=True)
        assert [json.loads(line)["name"] for line in out.stdout.splitlines()] == ["up0", "dn0"]
        # the same instance again, in another namespace: refused, the first one untouched
        other = tmp_path / "receiver.toml"
        other.write_text("[interfaces.eth0]\n")
        again = first.node("receiver").run([sys.executable, "-m", "mrouter", "run",
                                            "--config", str(other), "--instance", names[1]])
        assert again.returncode == 2
        assert f"another daemon is answering on /run/mrouter/{names[1]}.sock" in again.stderr
        assert Path(f"/run/mrouter/{names[1]}.pid").read_text() == f"{procs[1].pid}\n"
        for name in names:
            stop = subprocess.run([sys.executable, "-m", "mrouter", "stop", "--instance", name],
                                  capture_output=True, text=True, timeout=30, check=False)
            assert stop.returncode == 0, stop.stderr
        for proc in procs:
            assert proc.wait(10) == 0
        for name in names:
            assert not Path(f"/run/mrouter/{name}.sock").exists()
            assert not Path(f"/run/mrouter/{name}.pid").exists()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for name in names:
            for suffix in ("sock", "pid"):
                Path(f"/run/mrouter/{name}.{suffix}").unlink(missing_ok=True)


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_user_keeps_only_net_admin_and_net_raw_and_still_routes(
        basic: Any, tmp_path: Path) -> None:
    # nobody must be able to read the config (and the events file it would write)
    shared = Path(tempfile.mkdtemp(prefix="mrouter-user-"))
    try:
        shared.chmod(0o755)
        daemon = start(basic, shared, DYNAMIC, "--user", "nobody")
        status = _status(daemon.proc.pid)
        assert status["Uid"].split()[:2] == ["65534", "65534"]
        assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == (1 << 12) | (1 << 13)
        assert int(status["CapBnd"], 16) == (1 << 12) | (1 << 13)
        group = "239.1.1.1"
        with member(basic, "receiver", group) as sock:
            wait_for(lambda: any(r["group"] == group
                                 for r in daemon("show", what="groups")), timeout=10)
            sent = send(basic, group, "routed")
            assert received(sock) == sent  # the route went into the kernel as nobody
        daemon.config.write_text(DYNAMIC + BASIC[BASIC.index("[[routes]]"):])
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in daemon.log.read_text())
        assert "2 routes added, 0 removed; 0 memberships added, 0 removed" \
            in daemon.log.read_text()
        static = daemon("show", what="routes")["static"]
        assert {r["group"] for r in static} == {"239.1.1.1/32", "239.3.0.0/16"}
        assert daemon.cli("stop").returncode == 0
        assert daemon.proc.wait(10) == 0
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _scrape(lab: Any, url: str) -> str:
    """GET ``url`` from inside r1's namespace."""
    with lab.node("r1").enter():
        conn = socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0])),
                                        timeout=5)
    with conn:
        path = "/" + url.split("/", 3)[3]
        conn.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data.decode()


def _received(stats: dict[str, Any], iface: str, kind: str) -> int:
    (row,) = [i for i in stats["interfaces"] if i["name"] == iface]
    return sum(m["count"] for m in row["received"] if m["type"] == kind)


def test_statistics_and_metrics_count_a_join(basic: Any, tmp_path: Path) -> None:
    daemon = start(basic, tmp_path, DYNAMIC, "--metrics", "127.0.0.1:9641")
    # the hosts may have answered the start-up queries already (for other groups)
    base = _received(daemon("show", what="statistics"), "dn0", "report")
    with member(basic, "receiver", "239.1.1.1"):
        wait_for(lambda: _received(daemon("show", what="statistics"), "dn0", "report") > base)
        send(basic, "239.1.1.1", "x", count=2)
        time.sleep(0.3)
    out = daemon.cli("show", "statistics", "--json")
    stats = json.loads(out.stdout)
    (dn0,) = [i for i in stats["interfaces"] if i["name"] == "dn0"]
    assert {"type": "query", "version": 2} in [
        {k: m[k] for k in ("type", "version")} for m in dn0["sent"]]
    assert dn0["upcalls"] == {} and stats["routes"]["installs"] >= 1
    (up0,) = [i for i in stats["interfaces"] if i["name"] == "up0"]
    assert up0["upcalls"]["NOCACHE"] >= 1
    assert stats["control"]["requests"]["show"] >= 2  # the two above (this one counts after)
    table = daemon.cli("show", "statistics").stdout
    assert "IGMP messages:" in table and "dn0" in table

    text = daemon.cli("metrics").stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    reports = [s for s in families["mrouter_igmp_messages_received"].samples
               if s.labels == {"interface": "dn0", "type": "report", "version": "2"}]
    assert reports and reports[0].value >= 1
    assert families["mrouter_upcalls"].type == "counter"

    http = _scrape(basic, "http://127.0.0.1:9641/metrics")
    head, body = http.split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.0 200") and "text/plain; version=0.0.4" in head
    served = {f.name for f in text_string_to_metric_families(body)}
    assert "mrouter_igmp_messages_received" in served
    assert _scrape(basic, "http://127.0.0.1:9641/other").startswith("HTTP/1.0 404")
    assert "; metrics http://127.0.0.1:9641/metrics" in daemon.log.read_text()  # ready line


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mrouter
    static_configs:
      - targets: ["127.0.0.1:9641"]
"""


def _query(lab: Any, expr: str) -> list[dict[str, Any]]:
    url = "http://127.0.0.1:9642/api/v1/query?query=" + expr
    with lab.node("r1").enter():
        conn = socket.create_connection(("127.0.0.1", 9642), timeout=5)
    with conn:
        conn.sendall(f"GET {url.split('9642', 1)[1]} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, body = data.decode().split("\r\n\r\n", 1)
    assert " 200 " in head.splitlines()[0], head
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus")
def test_prometheus_scrapes_the_daemon(basic: Any, tmp_path: Path) -> None:
    start(basic, tmp_path, DYNAMIC, "--metrics", "127.0.0.1:9641")
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS_CONFIG)
    with (tmp_path / "prometheus.log").open("w") as log:
        prom = basic.node("r1").spawn(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             "--web.listen-address=127.0.0.1:9642"], stdout=log, stderr=log)
    try:
        with member(basic, "receiver", "239.1.1.1"):
            expr = 'mrouter_igmp_messages_received_total{interface="dn0",type="report"}'

            def scraped() -> bool:
                try:
                    result = _query(basic, urllib.request.quote(expr))
                except OSError:
                    return False  # not listening yet
                return any(float(r["value"][1]) > 0 for r in result)

            wait_for(scraped, timeout=30)
    finally:
        prom.terminate()
        prom.wait(10)
