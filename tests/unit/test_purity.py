"""The sans-I/O line: the pure core (mrouter/igmp/, mrouter/mld/, mrouter/traffic/) imports no
I/O, clock, randomness, logging or scapy; both ruff's banned-api rule and an import walk hold it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mrouter.igmp
import mrouter.mld
import mrouter.traffic

PURE_DIR = Path(mrouter.igmp.__file__).parent
PURE_DIRS = [PURE_DIR, Path(mrouter.mld.__file__).parent, Path(mrouter.traffic.__file__).parent]
PURE_MODULES = sorted(p for d in PURE_DIRS for p in d.rglob("*.py"))
REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")
BANNED = {"socket", "select", "selectors", "asyncio", "time", "random", "logging", "scapy",
          "subprocess", "threading"}
ALLOWED_UNDER_TYPE_CHECKING = {"random"}  # for the rng: random.Random annotation


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(top-level module name, line, under `if TYPE_CHECKING:`) for every import."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((a.name.split(".")[0], node.lineno, guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno, guarded))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "__import__", "import_module"):
            found.append(("<dynamic import>", node.lineno, guarded))
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(child, guarded or child in node.body)
            else:
                visit(child, guarded)

    visit(tree, False)
    return found


def test_there_are_pure_modules() -> None:
    names = {p.name for p in PURE_MODULES}
    assert {"codec.py", "ipv4.py", "messages.py", "describe.py"} <= names


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_module_imports_nothing_banned(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        f"{path.name}:{line}: imports {name}"
        for name, line, guarded in imports(tree)
        if name == "<dynamic import>"
        or (name in BANNED and not (guarded and name in ALLOWED_UNDER_TYPE_CHECKING))
    ]
    assert not bad, "sans-I/O violation:\n" + "\n".join(bad)


def test_the_walker_catches_what_it_should() -> None:
    # A check that cannot fail proves nothing: feed it the violations it must find.
    source = (
        "import socket\nfrom time import monotonic\nimport logging.handlers\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import random\n"
        "else:\n    import random as r\nimport scapy.all\n"
    )
    found = {(name, guarded) for name, _, guarded in imports(ast.parse(source))}
    assert {("socket", False), ("time", False), ("logging", False), ("random", True),
            ("random", False), ("scapy", False)} <= found


def test_daemon_import_path_does_not_load_scapy() -> None:
    # In a fresh interpreter: what the daemon and the engine import must not pull scapy
    # in (it costs a second of start-up and much memory).
    modules = ["mrouter.igmp.codec", "mrouter.igmp.describe", "mrouter.sockets.igmp_socket",
               "mrouter.mld.codec"]
    if (PURE_DIR / "engine.py").exists():
        modules.append("mrouter.igmp.engine")
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'scapy')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert json.loads(result.stdout) == []
    # and the check would notice scapy if it were there
    code_with_scapy = code.replace("import importlib", "import scapy, importlib")
    result = subprocess.run([sys.executable, "-c", code_with_scapy], capture_output=True,
                            text=True, check=True, timeout=60)
    assert "scapy" in json.loads(result.stdout)


def _ruff_on(path: str, source: str) -> subprocess.CompletedProcess[str]:
    # --stdin-filename makes ruff apply the project's per-file rules for that path without a
    # probe file ever being written into the package.
    return subprocess.run([str(RUFF), "check", "--no-cache", "--stdin-filename", path, "-"],
                          input=source, capture_output=True, text=True, cwd=REPO, timeout=60)


PROBE = "import socket\n\nprint(socket.AF_INET)\n"


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is installed with the test extra")
@pytest.mark.parametrize("path", ["mrouter/igmp/probe.py", "mrouter/igmp/sub/probe.py",
                                  "mrouter/mld/probe.py", "mrouter/traffic/probe.py",
                                  "mrouter/probe.py"])
def test_ruff_bans_socket_in_the_pure_core(path: str) -> None:
    result = _ruff_on(path, PROBE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TID251" in result.stdout and "socket" in result.stdout


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is installed with the test extra")
@pytest.mark.parametrize("path", ["mrouter/router/probe.py", "mrouter/sockets/probe.py"])
def test_ruff_allows_socket_in_the_shells(path: str) -> None:
    # the other half: the same probe passes where I/O belongs, so the first test is not
    # failing for some unrelated reason
    result = _ruff_on(path, PROBE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_daemon_start_up_loads_no_socket_api_or_asyncio() -> None:
    # `mrouter run` imports mrouter.router.daemon first: the multicast socket API (and
    # pyroute2's asyncio with it) is loaded only when a step needs it, not at start-up.
    code = ("import json, sys\nimport mrouter.router.daemon\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'asyncio'"
            " or m.startswith('mrouter.sockets.mcast'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert json.loads(result.stdout) == []
