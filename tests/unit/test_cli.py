"""The `mrouter` command as a user meets it: help that teaches, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mrouter.cli.main import COMMANDS, build_parser, main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mrouter", *args], capture_output=True, text=True, timeout=60
    )


def test_top_level_help_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for cmd in COMMANDS:
        assert cmd.name in out.stdout, f"{cmd.name} missing from mrouter --help"


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_each_command_has_help_with_an_example(name: str) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([name, "--help"])
    assert exc.value.code == 0


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.name)
def test_help_output_shows_example(cmd: object, capsys: pytest.CaptureFixture[str]) -> None:
    name = cmd.name  # type: ignore[attr-defined]
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = capsys.readouterr().out
    assert "example" in text.lower()
    assert f"mrouter {name}" in text


def test_no_command_prints_help_and_fails() -> None:
    out = run()
    assert out.returncode == 2
    assert "COMMAND" in out.stdout


def test_importing_the_cli_does_not_load_scapy() -> None:
    code = "import sys, mrouter.cli.main as m; m.build_parser(); print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
