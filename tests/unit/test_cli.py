"""The `mrouter` command as a user meets it: help that teaches, one-line errors."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

import pytest

from mrouter.cli.main import COMMANDS, Command, build_parser, main


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
def test_each_command_has_help(name: str) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([name, "--help"])
    assert exc.value.code == 0


def help_examples(text: str) -> list[str]:
    """The command lines under the help's "example:"/"examples:" heading(s)."""
    found, under = [], False
    for line in text.splitlines():
        if line.strip().lower() in ("example:", "examples:"):
            under = True
        elif not line.startswith("  "):
            under = False
        elif under and line.strip().startswith("mrouter "):
            found.append(line.strip())
    return found


def parse_example(name: str, example: str) -> argparse.Namespace:
    """``example`` parsed as `mrouter` parses it (an example that does not parse exits 2)."""
    words = shlex.split(example, comments=True)
    assert words[:2] == ["mrouter", name], f"an example of {name} runs {words[:2]}"
    return build_parser().parse_args(words[1:])


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.name)
def test_each_example_parses_with_its_commands_parser(
        cmd: Command, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([cmd.name, "--help"])
    shown = help_examples(capsys.readouterr().out)
    assert shown, f"mrouter {cmd.name} --help shows no example"
    for example in [cmd.example, *shown]:
        args = parse_example(cmd.name, example)
        assert args.command == cmd.name
        assert callable(args.func), example  # the subcommand's parser sets func


def test_an_example_with_a_wrong_option_fails_the_check(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_example("show", "mrouter show routes --jsn")
    assert exc.value.code == 2
    assert "--jsn" in capsys.readouterr().err
    assert help_examples("example:\n  mrouter show routes --jsn\n\nmore text") == [
        "mrouter show routes --jsn"]


def test_no_command_prints_help_and_fails() -> None:
    out = run()
    assert out.returncode == 2
    assert "COMMAND" in out.stdout


def test_importing_the_cli_does_not_load_scapy() -> None:
    code = "import sys, mrouter.cli.main as m; m.build_parser(); print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
