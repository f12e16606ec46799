"""The built wheel, installed into a fresh virtualenv, works away from the checkout.

What a pip user does (issue 16, "done when"): build the wheel, install it into a new
virtualenv, then from `/`, without activating the virtualenv, bring up a shipped
topology by name, run the installed `mrouter` inside one of its nodes, take it down;
and in an empty directory write the example config and check it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import netns_list

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
#: PATH as a fresh root shell has it: no virtualenv on it.
BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _run(argv: list[str], *, cwd: Path | str, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh virtualenv with the wheel built from this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    # The build runs in a copy: it leaves build/ and *.egg-info behind, and the checkout
    # may be in use by another run.
    src = tmp / "src"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], check=True, capture_output=True
                           ).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                  str(tmp / "dist"), str(src)], cwd=tmp)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("mrouter-*.whl")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
               cwd=tmp)
    assert pip.returncode == 0, pip.stderr
    return venv / "bin"


def test_wheel_ships_what_the_commands_need(installed: Path, tmp_path: Path) -> None:
    env = {"PATH": BARE_PATH, "HOME": str(tmp_path)}
    listed = _run([str(installed / "mrouter"), "lab", "list"], cwd="/", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "basic" in listed.stdout
    assert "sender -- r1 -- receiver over two point-to-point links" in listed.stdout
    assert str(installed.parent) in listed.stdout  # the installed copy, not the checkout
    # The topology format and the scenario docs are installed too.
    site = Path(_run([str(installed / "python"), "-c", "import mrouter; print(mrouter.__file__)"],
                     cwd="/", env=env).stdout.strip()).parent
    assert str(site).startswith(str(installed.parent))
    assert (site / "netns" / "README.md").is_file() and (site / "docs" / "scenarios.md").is_file()
    # The man pages are installed next to the venv's bin/, where man-db looks for them.
    for page in ("man8/mrouter.8", "man5/mrouter.toml.5"):
        assert (installed.parent / "share" / "man" / page).is_file()
    if shutil.which("man"):
        where = _run(["man", "-w", "mrouter.toml"], cwd="/",
                     env={"PATH": f"{installed}:{BARE_PATH}", "HOME": str(tmp_path)})
        assert where.stdout.strip() == str(installed.parent / "share/man/man5/mrouter.toml.5")
    run_help = _run([str(installed / "mrouter"), "run", "--help"], cwd="/", env=env)
    assert "examples/" not in run_help.stdout and "mrouter config example" in run_help.stdout
    # The systemd units ship too, and run the installed mrouter.
    unit = _run([str(installed / "mrouter"), "config", "unit", "--instance", "a"], cwd="/",
                env=env)
    assert unit.returncode == 0, unit.stderr
    assert f"ExecStart={installed / 'mrouter'} run --config /etc/mrouter/%i.toml" in unit.stdout


def test_config_example_and_check_in_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    shell = _run(["sh", "-c", f"{installed}/mrouter config example router > r.toml && "
                  f"{installed}/mrouter config check r.toml"], cwd=empty,
                 env={"PATH": BARE_PATH})
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.startswith("r.toml: ok: mode router")
    proxy = _run([str(installed / "mrouter"), "config", "example", "proxy"], cwd=empty)
    assert 'mode = "proxy"' in proxy.stdout


@pytest.fixture
def lab_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = f"mrw{os.getpid()}x{time.monotonic_ns() % 100000}-"
    env = {"PATH": BARE_PATH, "MROUTER_LAB_DIR": str(tmp_path / "labs"),
           "MROUTER_LAB_PREFIX": prefix}
    yield env
    for ns in netns_list():  # whatever the test did, nothing of ours outlives it
        if ns.startswith(prefix):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def test_lab_up_a_shipped_topology_from_root(installed: Path, lab_env: dict[str, str]) -> None:
    mrouter = str(installed / "mrouter")
    name = f"w{os.getpid()}"
    up = _run([mrouter, "lab", "up", "basic", "--name", name], cwd="/", env=lab_env)
    try:
        assert up.returncode == 0, up.stderr
        assert f"lab {name} up from {installed.parent}" in up.stdout
        for spelling in ("basic.toml", "netns/basic.toml"):  # the same shipped file
            again = _run([mrouter, "lab", "up", spelling, "--name", name], cwd="/", env=lab_env)
            assert again.returncode == 0, again.stderr
            assert f"lab {name} is already up" in again.stdout
        # `mrouter` inside a node is the one that was run, with no virtualenv on PATH.
        inside = _run([mrouter, "lab", "exec", name, "r1", "--", "mrouter", "ifaces", "--json"],
                      cwd="/", env=lab_env)
        assert inside.returncode == 0, inside.stderr
        assert '"dn0"' in inside.stdout and '"up0"' in inside.stdout
        via_shell = _run([mrouter, "lab", "exec", name, "r1", "--", "sh", "-c",
                          "command -v mrouter"], cwd="/", env=lab_env)
        assert via_shell.stdout.strip() == mrouter
    finally:
        down = _run([mrouter, "lab", "down", name], cwd="/", env=lab_env)
    assert down.returncode == 0 and f"lab {name} down (3 namespaces removed)" in down.stdout
    assert not {n for n in netns_list() if n.startswith(lab_env["MROUTER_LAB_PREFIX"])}


def test_topology_commands_run_the_installed_mrouter(installed: Path, lab_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    """A topology's `commands` started by `lab up` find mrouter without the venv on PATH."""
    topology = tmp_path / "one.toml"
    topology.write_text('description = "one router"\n'
                        '[nodes.r1]\nkind = "router"\n'
                        'commands = ["mrouter --version", ["sh", "-c", "command -v mrouter"]]\n')
    mrouter = str(installed / "mrouter")
    name = f"c{os.getpid()}"
    up = _run([mrouter, "lab", "up", str(topology), "--name", name], cwd="/", env=lab_env)
    try:
        assert up.returncode == 0, up.stderr
        logs = Path(lab_env["MROUTER_LAB_DIR"]) / name
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
                (logs / f"r1.{i}.log").exists() and (logs / f"r1.{i}.log").read_text()
                for i in (0, 1)):
            time.sleep(0.05)
        assert (logs / "r1.0.log").read_text().startswith("mrouter ")
        assert (logs / "r1.1.log").read_text().strip() == mrouter
    finally:
        down = _run([mrouter, "lab", "down", name], cwd="/", env=lab_env)
    assert down.returncode == 0, down.stderr

