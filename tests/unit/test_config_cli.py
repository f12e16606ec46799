"""`mrouter config example|check` and `mrouter lab list`: the shipped files, as a user sees them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mrouter.lab.topology import load_topology


def mrouter(*args: str, cwd: Path | str = "/") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mrouter", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_each_example_is_a_config_that_checks(tmp_path: Path) -> None:
    for kind in ("router", "proxy"):
        example = mrouter("config", "example", kind)
        assert example.returncode == 0, example.stderr
        assert example.stdout.startswith("# mrouter daemon config")
        (tmp_path / f"{kind}.toml").write_text(example.stdout)
        check = mrouter("config", "check", f"{kind}.toml", cwd=tmp_path)
        assert (check.returncode, check.stderr) == (0, "")
        assert check.stdout.startswith(f"{kind}.toml: ok: mode {kind}, ")


def test_config_check_names_the_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('mode = "router"\n\n[interfaces.dn0]\nigmp_version = 5\n')
    check = mrouter("config", "check", str(bad))
    assert check.returncode == 2 and check.stdout == ""
    assert check.stderr == (f"mrouter config: error: {bad}:4: interfaces.dn0.igmp_version: "
                            "must be 2 or 3\n")
    missing = mrouter("config", "check", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
    assert "none.toml" in missing.stderr and "Traceback" not in missing.stderr


def test_unknown_example_is_a_usage_error() -> None:
    out = mrouter("config", "example", "bridge")
    assert out.returncode == 2 and "invalid choice: 'bridge'" in out.stderr


def test_lab_list_names_every_shipped_topology_with_its_description() -> None:
    out = mrouter("lab", "list", "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    folder = Path(listed["folder"])
    names = sorted(p.stem for p in folder.glob("*.toml"))
    assert [t["name"] for t in listed["topologies"]] == names and "basic" in names
    for entry in listed["topologies"]:
        assert entry["description"] == load_topology(folder / f"{entry['name']}.toml").description
        assert entry["description"]  # every shipped topology says what it is
    assert Path(listed["format"]).is_file()
    human = mrouter("lab", "list")
    assert "basic" in human.stdout and "sender -- r1 -- receiver" in human.stdout
