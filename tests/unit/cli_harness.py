"""Running the CLI in-process for the unit tests (test_codec_cli.py, test_mld_cli.py):
``mrouter ARGV`` through :func:`mrouter.cli.main.main`, its status and what it printed."""

from __future__ import annotations

import pytest

from mrouter.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``mrouter ARGV``: (exit status, stdout, stderr)."""
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err
