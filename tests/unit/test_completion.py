"""`mrouter completion bash|zsh`: scripts generated from the parser that really complete."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from mrouter.cli.main import COMMANDS


def script(shell: str) -> str:
    out = subprocess.run([sys.executable, "-m", "mrouter", "completion", shell],
                         capture_output=True, text=True, timeout=60, check=False)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def bash_script() -> str:
    return script("bash")


def complete(bash_script: str, line: str) -> list[str]:
    """What bash offers after ``line`` (a trailing space: a new word), with the script."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    program = (bash_script + "\nCOMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
               f"COMP_CWORD={len(words) - 1}\nCOMP_LINE='{line}'\nCOMP_POINT={len(line)}\n"
               "_shtab_mrouter mrouter\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = subprocess.run(["bash", "--norc", "--noprofile"], input=program, capture_output=True,
                         text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    return sorted(w.strip() for w in out.stdout.splitlines() if w.strip())


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_every_subcommand(bash_script: str) -> None:
    assert complete(bash_script, "mrouter ") == sorted(c.name for c in COMMANDS)
    assert complete(bash_script, "mrouter con") == ["config"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_actions_and_options(bash_script: str) -> None:
    assert complete(bash_script, "mrouter lab ") == ["down", "exec", "graph", "list", "status",
                                                     "up", "web"]
    assert complete(bash_script, "mrouter config ") == ["check", "example", "unit"]
    assert complete(bash_script, "mrouter config example ") == ["proxy", "router"]
    assert "--config" in complete(bash_script, "mrouter run --")
    assert complete(bash_script, "mrouter lab down --f") == ["--force"]
    assert complete(bash_script, "mrouter show s") == ["statistics"]
    assert complete(bash_script, "mrouter metrics --i") == ["--instance"]


def test_zsh_script_names_every_subcommand() -> None:
    text = script("zsh")
    assert text.startswith("#compdef mrouter")
    for cmd in COMMANDS:
        assert f"\n    {cmd.name}:'" in text, cmd.name
    if shutil.which("zsh"):
        checked = subprocess.run(["zsh", "-n"], input=text, text=True, capture_output=True,
                                 check=False)
        assert checked.returncode == 0, checked.stderr


def test_unknown_shell_is_a_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "mrouter", "completion", "fish"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and "invalid choice: 'fish'" in out.stderr
