"""``mrouter lab graph`` and ``mrouter lab web``: a lab drawn as a picture, and served live.

``lab graph LAB|FILE -o lab.svg`` draws a topology file, or the one a running lab was
built from (:mod:`mrouter.diag.labgraph`). ``lab web LAB --listen 127.0.0.1:PORT`` serves
one page on the loopback: that picture, each router interface's packet rates next to
it, and each router's memberships and routes, refreshed each second. The figures come
from the daemons' control sockets: a :class:`Poller` thread finds the ``mrouter run``
processes inside the lab's router namespaces (their ``--socket``; ``--socket NODE=PATH``
names one by hand) and asks each for its interfaces, groups and routes
(:func:`mrouter.cli.top.poll`); the page's script fetches ``/state.json`` from the same
server each second. Nothing listens beyond the loopback: another address is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from mrouter.errors import LabError, MrouterError

GRAPH_EXAMPLE = """\
examples:
  mrouter lab graph netns/chain.toml -o chain.svg
  mrouter lab graph demo -o demo.svg          # a running lab, by name
"""
WEB_EXAMPLE = """\
examples:
  mrouter lab web demo --listen 127.0.0.1:8017
  mrouter lab web demo --listen 127.0.0.1:8017 --socket r1=/tmp/r1.sock
"""


def add_subcommands(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """Register ``graph`` and ``web`` under ``mrouter lab``."""
    graph = sub.add_parser("graph", help="draw a lab or topology file as an SVG picture",
                           description="Draw the nodes, links, LANs, interface names and "
                           "addresses of a topology file, or of the file a running lab "
                           "was built from, as an SVG picture.",
                           epilog=GRAPH_EXAMPLE, formatter_class=fmt)
    graph.add_argument("lab", metavar="LAB|FILE",
                       help="a running lab's name, or a topology file (e.g. lan.toml)")
    graph.add_argument("-o", "--output", metavar="FILE.svg", required=True,
                       help="where to write the picture")
    graph.set_defaults(func=run_graph)

    web = sub.add_parser("web", help="serve a running lab's picture with live rates and "
                         "memberships (loopback only)",
                         description="Serve one page on the loopback address: the lab's "
                         "picture, each router interface's packet rates and each router's "
                         "memberships and routes, updated each second from the daemons' "
                         "control sockets. Ctrl-C stops it.",
                         epilog=WEB_EXAMPLE, formatter_class=fmt)
    web.add_argument("lab", metavar="LAB", help="a running lab's name (mrouter lab status)")
    web.add_argument("--listen", metavar="127.0.0.1:PORT", default="127.0.0.1:8017",
                     help="loopback address and port (default 127.0.0.1:8017; port 0: any "
                          "free one)")
    web.add_argument("--socket", metavar="NODE=PATH", action="append", default=[],
                     help="a router's control socket, if it is not found by itself "
                          "(repeat for several)")
    web.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                     help="seconds between updates (default 1)")
    web.set_defaults(func=run_web)


# --- graph -------------------------------------------------------------------------------


def load_lab_topology(name: str) -> tuple[Any, Any]:
    """(topology, record) of a running lab ``name``, or (topology of the file ``name``,
    None)."""
    from mrouter.lab import state
    from mrouter.lab.topology import load_topology, resolve_topology_path

    try:
        record = state.load(name) if state.LAB_NAME_RE.fullmatch(name) else None
    except TypeError:  # a record with keys this mrouter does not know
        raise LabError(f"the record of lab {name!r} ({state.record_path(name)}) was written "
                       "by another mrouter version; draw its topology file instead") from None
    if record is not None:
        if not Path(record.topology).exists():
            raise LabError(f"lab {name!r} was built from {record.topology}, which is not a "
                           "file any more; draw the topology file instead")
        return load_topology(record.topology), record
    path = resolve_topology_path(name)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in state.state_dir().glob("*.json"))) \
            or "none"
        raise LabError(f"{name!r} is neither a running lab (labs up: {known}) nor a "
                       "topology file; give a lab name or a file such as netns/lan.toml")
    return load_topology(path), None


def run_graph(args: argparse.Namespace) -> int:
    from mrouter.diag.labgraph import render_svg

    out = Path(args.output)
    if out.suffix != ".svg":
        raise MrouterError(f"{out}: the picture is SVG; name the output FILE.svg")
    topo, record = load_lab_topology(args.lab)
    title = f"lab {record.name} ({topo.source})" if record is not None else None
    try:
        out.write_text(render_svg(topo, title=title))
    except OSError as exc:
        raise MrouterError(f"cannot write {out}: {exc.strerror}") from None
    print(f"{out}: {len(topo.nodes)} nodes, {len(topo.links)} links, {len(topo.lans)} LANs")
    return 0


# --- web ---------------------------------------------------------------------------------


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` with a loopback HOST (127.0.0.0/8 or localhost); anything else is
    refused: the page shows a lab's addresses and state to whoever can reach it."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise MrouterError(f"--listen {text}: expected 127.0.0.1:PORT (PORT 0 to 65535)")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ip_address(host.strip("[]")).is_loopback and ":" not in host
    except ValueError:
        loopback = False
    if not loopback:
        raise MrouterError(f"--listen {text}: lab web listens on the IPv4 loopback only "
                           "(127.0.0.1:PORT); to see it from another machine, forward the "
                           "port (ssh -L PORT:127.0.0.1:PORT)")
    return host, int(port_text)


def daemon_sockets(record: Any) -> dict[str, str]:
    """The control socket of each ``mrouter run`` found in the lab's router namespaces
    (node -> path), from the processes' command lines."""
    from mrouter.lab import netns
    from mrouter.router.control import DEFAULT_SOCKET, RUN_DIR

    routers = {ns: node for node, ns in record.namespaces.items()
               if record.kinds.get(node, "router") == "router" and node in record.nodes}
    found: dict[str, str] = {}
    for pid, ns in sorted(netns.pids_in(routers).items()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            cwd = Path(f"/proc/{pid}/cwd").resolve()
        except OSError:  # gone meanwhile
            continue
        words = [w for w in argv.split("\0") if w]
        is_mrouter = any(w == "mrouter" or w.endswith("/mrouter") for w in words)
        if not is_mrouter or "run" not in words:
            continue
        sock, given = DEFAULT_SOCKET, False
        for i, w in enumerate(words):
            if w == "--socket" and i + 1 < len(words):
                sock, given = words[i + 1], True
            elif w.startswith("--socket="):
                sock, given = w.split("=", 1)[1], True
            elif not given and w == "--instance" and i + 1 < len(words):
                sock = f"{RUN_DIR}/{words[i + 1]}.sock"  # --socket wins, wherever it is
            elif not given and w.startswith("--instance="):
                sock = f"{RUN_DIR}/{w.split('=', 1)[1]}.sock"
        found.setdefault(routers[ns], str(cwd / sock))
    return found


class Poller:
    """Asks each router's daemon for its state every ``interval`` seconds; :meth:`state`
    is the latest as JSON-able data (rates against the previous answer)."""

    def __init__(self, record: Any, overrides: Mapping[str, str], interval: float) -> None:
        self.record, self.overrides, self.interval = record, dict(overrides), interval
        self._prev: dict[str, Any] = {}
        self._state: dict[str, Any] = {"lab": record.name, "time": None, "routers": {}}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-web-poller", daemon=True)

    def start(self) -> None:
        self.poll_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()

    def poll_once(self) -> None:
        from mrouter.cli.top import poll, rates

        sockets = {**daemon_sockets(self.record), **self.overrides}
        routers: dict[str, Any] = {}
        for node in self.record.nodes:
            if self.record.kinds.get(node) != "router" and node not in self.overrides:
                continue
            sock = sockets.get(node)
            if sock is None:
                routers[node] = {"socket": None, "error": "no mrouter daemon found here",
                                 "interfaces": [], "groups": [], "routes": []}
                continue
            try:
                snap = poll(sock)
            except MrouterError as exc:
                routers[node] = {"socket": sock, "error": str(exc), "interfaces": [],
                                 "groups": [], "routes": []}
                self._prev.pop(node, None)
                continue
            r = rates(self._prev.get(node), snap)
            self._prev[node] = snap
            routers[node] = {
                "socket": sock, "error": None,
                "interfaces": [{"name": i["name"], "address": i["address"],
                                "querier": "self" if i.get("is_querier") else i.get("querier"),
                                "in_pps": r.iface_in.get(i["name"]),
                                "out_pps": r.iface_out.get(i["name"]),
                                "packets_in": i.get("packets_in"),
                                "packets_out": i.get("packets_out")} for i in snap.interfaces],
                "groups": [{"iface": g["iface"], "group": g["group"],
                            "filter_mode": g["filter_mode"], "sources": g["sources"],
                            "static": g["static"],
                            "timer": (g.get("igmp") or {}).get("group_timer"),
                            "hosts": [h["host"] for h in (g.get("igmp") or {}).get("hosts", [])]}
                           for g in snap.groups],
                "routes": [{"source": e["source"], "group": e["group"], "iif": e["iif"],
                            "oifs": e["oifs"], "packets": e["packets"],
                            "pps": r.routes.get((e["source"], e["group"]))}
                           for e in snap.routes],
            }
        with self._lock:
            self._state = {"lab": self.record.name, "time": time.time(), "routers": routers}


PAGE_SCRIPT = """
(function () {
  "use strict";
  const rate = (v) => (v === null || v === undefined) ? "-" : v.toFixed(1);
  const cell = (tr, text) => { const td = document.createElement("td"); td.textContent = text;
    tr.append(td); return td; };
  function show(state) {
    document.getElementById("updated").textContent =
      new Date(state.time * 1000).toLocaleTimeString();
    for (const [node, r] of Object.entries(state.routers)) {
      for (const i of r.interfaces) {
        const t = document.querySelector(
          `g.iface[data-node="${node}"][data-iface="${i.name}"] text.rate`);
        if (t) { t.textContent = `in ${rate(i.in_pps)}/s out ${rate(i.out_pps)}/s`; }
      }
      const note = document.querySelector(`g.router[data-node="${node}"] text.note`);
      if (note) { note.textContent = r.error ? "no daemon" :
        "querier on " + (r.interfaces.filter((i) => i.querier === "self")
                         .map((i) => i.name).join(", ") || "none"); }
      const box = document.getElementById("router-" + node);
      if (!box) { continue; }
      box.querySelector(".error").textContent = r.error || "";
      const groups = box.querySelector("tbody.groups");
      groups.replaceChildren();
      for (const g of r.groups) {
        const tr = document.createElement("tr");
        tr.dataset.iface = g.iface; tr.dataset.group = g.group;
        cell(tr, g.iface); cell(tr, g.group); cell(tr, g.filter_mode);
        cell(tr, g.sources.join(", ") || "-");
        cell(tr, g.static ? "static" : (g.timer === null ? "-" : g.timer.toFixed(1) + " s"));
        cell(tr, g.hosts.join(", ") || "-");
        groups.append(tr);
      }
      const routes = box.querySelector("tbody.routes");
      routes.replaceChildren();
      for (const e of r.routes) {
        const tr = document.createElement("tr");
        tr.dataset.source = e.source; tr.dataset.group = e.group;
        cell(tr, e.source); cell(tr, e.group); cell(tr, e.iif);
        cell(tr, e.oifs.join(", ") || "-"); cell(tr, rate(e.pps)); cell(tr, e.packets);
        routes.append(tr);
      }
    }
    document.body.dataset.updates = String(+(document.body.dataset.updates || 0) + 1);
  }
  async function tick() {
    try {
      const answer = await fetch("/state.json", {cache: "no-store"});
      if (answer.ok) { show(await answer.json()); }
      document.getElementById("status").textContent = answer.ok ? "" : "server error";
    } catch (err) {
      document.getElementById("status").textContent = "mrouter lab web stopped";
    }
  }
  tick();
  setInterval(tick, INTERVAL_MS);
})();
"""

PAGE_STYLE = """
body { font-family: sans-serif; margin: 1em; }
svg.labgraph { max-width: 100%; height: auto; }
.router { display: inline-block; vertical-align: top; margin: 0 2em 1em 0; }
table { border-collapse: collapse; font-size: 0.9em; margin-bottom: 0.6em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
.error { color: #b00; }
"""


def render_page(topo: Any, record: Any, interval: float) -> str:
    from mrouter.diag.labgraph import render_svg

    svg = render_svg(topo, title=f"lab {record.name} ({topo.source})")
    routers = [n.name for n in topo.nodes if n.kind.value == "router"]
    boxes = "\n".join(
        f'<div class="router" id="router-{escape(n)}"><h3>{escape(n)}</h3>'
        '<p class="error"></p><table><thead><tr><th>iface</th><th>group</th><th>mode</th>'
        '<th>sources</th><th>timer</th><th>hosts</th></tr></thead>'
        '<tbody class="groups"></tbody></table><table><thead><tr><th>source</th>'
        '<th>group</th><th>iif</th><th>oifs</th><th>pkts/s</th><th>packets</th></tr>'
        '</thead><tbody class="routes"></tbody></table></div>' for n in routers)
    script = PAGE_SCRIPT.replace("INTERVAL_MS", str(int(interval * 1000)))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>lab {escape(record.name)}</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{PAGE_STYLE}</style></head>\n"
            f"<body>\n{svg}<p>updated <span id=\"updated\">-</span> "
            "<span id=\"status\"></span></p>\n<h2>Routers: memberships and routes</h2>\n"
            f"{boxes}\n<script>{script}</script>\n</body></html>\n")


def _overrides(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        node, sep, path = item.partition("=")
        if not sep or not node or not path:
            raise MrouterError(f"--socket {item}: expected NODE=PATH, e.g. r1=/tmp/r1.sock")
        out[node] = path
    return out


def run_web(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    overrides = _overrides(args.socket)
    if args.interval <= 0:
        raise MrouterError(f"--interval must be a positive number of seconds, not "
                           f"{args.interval:g}")
    topo, record = load_lab_topology(args.lab)
    if record is None:
        raise LabError(f"{args.lab!r} is a topology file, not a running lab; start it with "
                       f"'mrouter lab up {args.lab}' and give its name")
    unknown = sorted(set(overrides) - set(record.nodes))
    if unknown:
        raise MrouterError(f"--socket: lab {record.name} has no node {unknown[0]} (nodes: "
                           + ", ".join(record.nodes) + ")")
    page = render_page(topo, record, args.interval).encode()
    poller = Poller(record, overrides, args.interval)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                body, kind = page, "text/html; charset=utf-8"
            elif self.path == "/state.json":
                body, kind = json.dumps(poller.state()).encode(), "application/json"
            else:
                self.send_error(404, "only / and /state.json")
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # no line per request on the terminal

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise MrouterError(f"cannot listen on {host}:{port}: {exc.strerror}; choose "
                           "another port with --listen 127.0.0.1:PORT") from None
    server.daemon_threads = True
    poller.start()
    print(f"lab {record.name}: serving http://{host}:{server.server_address[1]}/ "
          "(Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        poller.stop()
    sys.stdout.flush()
    return 0
