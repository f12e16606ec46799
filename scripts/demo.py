"""The mrouter demo: forwarding follows group membership, on a real namespace lab.

    sender --- r1 (mrouter run) --- LAN: h1 h2 h3

1. bring up netns/lan.toml;
2. start the daemon on r1 (router mode, IGMPv3 on both interfaces);
3. h1 and h2 join 239.1.2.3 with `mrouter recv`; h3 does not;
4. the sender sends 300 numbered datagrams at 100/s with TTL 8;
5. h2 leaves after 100 datagrams (its socket closes), h1 stays to the end;
6. `mrouter show groups` and `show routes` while traffic flows; the receivers' reports;
7. h1 leaves last: after the last-member queries the route has no outgoing interface;
then everything is torn down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mrouter.lab import Lab

ROOT = Path(__file__).resolve().parent.parent
GROUP = "239.1.2.3:5000"
MROUTER = [sys.executable, "-m", "mrouter"]

CONFIG = """\
mode = "router"
[interfaces.up0]
igmp_version = 3
[interfaces.dn0]
igmp_version = 3
fast_leave = false
"""


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def show(lab: Lab, sock: Path, what: str) -> None:
    out = lab.node("r1").run([*MROUTER, "show", what, "--socket", str(sock)], timeout=10)
    print(f"$ mrouter show {what}")
    print(out.stdout.rstrip() or out.stderr.rstrip())


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise SystemExit(f"demo: mrouter run exited early:\n{err}")
        if time.monotonic() > deadline:
            raise SystemExit("demo: mrouter run did not open its control socket in time")
        time.sleep(0.02)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mrouter-demo-") as tmp:
        cfg = Path(tmp) / "router.toml"
        cfg.write_text(CONFIG)
        sock = Path(tmp) / "mrouter.sock"
        step("1/7 lab: netns/lan.toml  (sender -- r1 -- LAN h1 h2 h3)")
        t0 = time.monotonic()
        with Lab.from_file(ROOT / "netns" / "lan.toml") as lab:
            print(f"up in {time.monotonic() - t0:.2f} s: namespaces "
                  + ", ".join(lab.node(n).netns for n in ("sender", "r1", "h1", "h2", "h3")))

            step("2/7 r1: mrouter run (router mode, IGMPv3 querier on up0 and dn0)")
            print(CONFIG.rstrip())
            daemon = lab.node("r1").spawn(
                [*MROUTER, "-v", "run", "--config", str(cfg), "--socket", str(sock)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            wait_for(sock, daemon, 10)
            show(lab, sock, "interfaces")

            step("3/7 h1 and h2 join 239.1.2.3 (mrouter recv); h3 stays out")
            recv = {
                name: lab.node(name).spawn(
                    [*MROUTER, "recv", GROUP, "--count", str(count), "--timeout", "12", "--json"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )
                for name, count in (("h1", 300), ("h2", 100))
            }
            time.sleep(0.5)
            show(lab, sock, "groups")

            step("4/7 sender: 300 datagrams at 100/s, TTL 8; h2 leaves after 100 of them")
            sender = lab.node("sender").spawn(
                [*MROUTER, "send", GROUP, "--ttl", "8", "--count", "300", "--rate", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            time.sleep(1.5)
            show(lab, sock, "routes")
            time.sleep(0.8)
            step("5/7 after h2's leave (last-member queries run; h1 still a member)")
            show(lab, sock, "groups")
            sent_out, sent_err = sender.communicate(timeout=20)
            print(f"$ mrouter send ...\n{sent_out.rstrip() or sent_err.rstrip()}")

            step("6/7 what the receivers saw")
            for name, proc in recv.items():
                out, err = proc.communicate(timeout=20)
                for line in out.splitlines():
                    r = json.loads(line)
                    print(f"{name}: received {r['received']:>3}  lost {r['lost']}  "
                          f"duplicates {r['duplicates']}  reordered {r['reordered']}  "
                          f"TTL {r['ttl_min']}..{r['ttl_max']}  from {', '.join(r['sources'])}")
                if proc.returncode not in (0, 1):
                    print(f"{name}: recv failed: {err.strip()}")
            show(lab, sock, "routes")

            step("7/7 h1 has left too: the router queries twice, 1 s apart (LMQC x LMQI),"
                 " then stops forwarding")
            time.sleep(2.3)
            show(lab, sock, "groups")
            show(lab, sock, "routes")
            lab.node("r1").run([*MROUTER, "stop", "--socket", str(sock)], timeout=10)
            daemon.wait(timeout=10)
        step("torn down: no namespace, no process left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
