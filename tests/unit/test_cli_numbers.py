"""Numbers typed on the command line are ASCII digits: a superscript or other Unicode digit
('²' passes str.isdigit, but int() refuses it) gets the usual one-line usage error."""

from __future__ import annotations

import argparse

import pytest

from mrouter.cli.igmp import parse_record_type
from mrouter.cli.main import main


def test_a_unicode_digit_is_not_a_record_type() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="record type '²'"):
        parse_record_type("²")
    assert parse_record_type("4") == 4


def test_a_unicode_digit_in_a_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["send", "239.1.1.1:5²", "--count", "1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not GROUP:PORT" in err[0]
