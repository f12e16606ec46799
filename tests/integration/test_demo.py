"""The README's demo (`scripts/demo.sh` runs `scripts/demo.py` after set-up) as a user sees it.

scripts/demo.py has no options, so it runs whole (about 7 s): a lan.toml lab comes up, the
daemon starts in r1, h1 and h2 join, traffic flows, h2 then h1 leave, `mrouter show` prints
the router's view, and everything is torn down. The demo runs with its own lab record
directory, namespace prefix and TMPDIR, so what it leaves behind (namespaces, processes,
files) is told apart from anyone else's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import netns_list

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scripts" / "demo.py"
PYTHON = ROOT / ".venv" / "bin" / "python"
NODES = ("sender", "r1", "h1", "h2", "h3")


def leftover_processes(session: int, marker: str) -> list[str]:
    """Processes still in the demo's session, or naming ``marker`` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it ended while we looked
        sid = int(stat.rsplit(")", 1)[1].split()[3])
        if sid == session or marker in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def steps(out: str) -> dict[str, str]:
    """The demo's output by step, keyed by the header's first word: '1/7' ... '7/7', 'torn'."""
    return {part.split()[0]: part for part in re.split(r"^== ", out, flags=re.M)[1:]}


def shows(text: str) -> list[tuple[str, list[dict[str, str]]]]:
    """Each `$ mrouter show WHAT` in ``text``: WHAT and its table's rows as dicts."""
    found = []
    for block in text.split("$ mrouter show ")[1:]:
        what, *lines = block.splitlines()
        header: list[str] = []
        rows = []
        for line in lines:
            if line.startswith(("$ ", "== ")):
                break
            if not line.strip() or line.rstrip().endswith(":"):
                continue
            if not header:
                header = line.split()
                continue
            rows.append(dict(zip(header, line.split(), strict=True)))
        found.append((what.strip(), rows))
    return found


def test_demo_runs_a_lab_and_leaves_nothing_behind(tmp_path: Path) -> None:
    prefix = f"mrdemo{os.getpid()}-"
    tmp, labs = tmp_path / "tmp", tmp_path / "labs"
    tmp.mkdir()
    env = dict(os.environ, MROUTER_LAB_DIR=str(labs), MROUTER_LAB_PREFIX=prefix,
               TMPDIR=str(tmp))
    proc = subprocess.Popen([str(PYTHON), str(DEMO)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the lab tears itself down on Ctrl-C
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        pytest.fail("scripts/demo.py did not finish within 60 s")
    finally:
        if any(n.startswith(prefix) for n in netns_list()):
            subprocess.run([sys.executable, "-m", "mrouter", "lab", "down", "--all"], env=env,
                           capture_output=True, timeout=60)
            for ns in netns_list():
                if ns.startswith(prefix):
                    subprocess.run(["ip", "netns", "del", ns], check=False)
                    print(f"removed leftover namespace {ns}")

    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    assert err == "", err
    step = steps(out)
    assert list(step) == ["1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7", "torn"], out

    # 1: the lab comes up, one namespace per node
    shown = re.search(r"^up in [\d.]+ s: namespaces (.+)$", step["1/7"], re.M)
    assert shown, step["1/7"]
    namespaces = shown.group(1).split(", ")
    lab = f"{prefix}p{proc.pid}n"
    assert [re.sub(rf"^{lab}\d+-", "", n) for n in namespaces] == list(NODES), namespaces

    # 2: the daemon starts and runs both interfaces, IGMPv3 querier on each
    ((what, ifaces),) = shows(step["2/7"])
    assert what == "interfaces"
    assert {(i["IFACE"], i["STATE"], i["IGMP"], i["QUERIER"]) for i in ifaces} == {
        ("up0", "up", "v3", "self"), ("dn0", "up", "v3", "self")}

    # 3: h1 and h2 join; the router sees both on dn0, h3 not at all
    ((what, members),) = shows(step["3/7"])
    assert what == "groups"
    (group,) = members
    assert (group["IFACE"], group["GROUP"], group["MODE"]) == ("dn0", "239.1.2.3", "EXCLUDE")
    assert sorted(group["HOSTS"].split(",")) == ["192.0.2.11", "192.0.2.12"]

    # 4: traffic flows: the kernel route from the sender to dn0 counts packets
    ((what, routes),) = shows(step["4/7"])
    assert what == "routes"
    (route,) = routes
    assert (route["SOURCE"], route["GROUP"], route["IIF"], route["OIFS"]) == (
        "198.51.100.2", "239.1.2.3", "up0", "dn0")
    assert int(route["PACKETS"]) > 0

    # 5: h2 has left; h1 is still a member; the sender sent all 300
    ((what, members),) = shows(step["5/7"])
    assert what == "groups"
    assert [(g["IFACE"], g["GROUP"], g["HOSTS"]) for g in members] == [
        ("dn0", "239.1.2.3", "192.0.2.11")]
    assert "sent 300 datagrams" in step["5/7"]

    # 6: what the receivers got: h1 all 300, h2 the 100 before it left; all forwarded
    for host, count in (("h1", 300), ("h2", 100)):
        assert re.search(rf"^{host}: received {count}  lost 0 .* from 198\.51\.100\.2$",
                         step["6/7"], re.M), step["6/7"]
    ((what, routes),) = shows(step["6/7"])
    assert [(r["OIFS"], r["PACKETS"]) for r in routes] == [("dn0", "300")]

    # 7: h1 has left too: no member, and the route forwards nowhere
    (what_g, members), (what_r, routes) = shows(step["7/7"])
    assert (what_g, members, what_r) == ("groups", [], "routes")
    assert [(r["GROUP"], r["OIFS"], r["PACKETS"]) for r in routes] == [("239.1.2.3", "-", "300")]

    # torn down: no namespace, no lab record, no process, no temporary file left
    assert "no namespace, no process left" in step["torn"]
    assert not [n for n in netns_list() if n.startswith(prefix)]
    assert not set(namespaces) & netns_list()
    assert not list(labs.glob("*.json"))
    assert leftover_processes(proc.pid, str(tmp)) == []
    assert list(tmp.iterdir()) == []
