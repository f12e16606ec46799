"""The man pages in docs/man/ are what the parser and the config schema generate now."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from mrouter.cli import manual
from mrouter.cli.main import COMMANDS
from mrouter.router import config

MAN = Path(__file__).resolve().parents[2] / "docs" / "man"
REGENERATE = "python -m mrouter.cli.manual docs/man"


@pytest.mark.parametrize("page", manual.PAGES)
def test_committed_page_is_the_generated_one(page: str) -> None:
    committed = (MAN / page).read_text(encoding="utf-8")
    assert committed == manual.generate()[page], f"docs/man/{page} is stale: run {REGENERATE}"


def test_mrouter_8_has_a_section_for_every_subcommand() -> None:
    page = manual.mrouter_8()
    for cmd in COMMANDS:
        assert f".SS mrouter {cmd.name}\n" in page, cmd.name
    for nested in ("lab up", "lab down", "config check", "config example"):
        assert f".SS mrouter {nested}\n" in page
    assert "\\fB\\-\\-force\\fR" in page  # lab down's options are there


def test_mrouter_toml_5_has_every_key_with_its_default() -> None:
    page = manual.mrouter_toml_5()
    iface = config.InterfaceConfig(name="x")
    for key in config._INTERFACE_KEYS:
        field = config._INTERFACE_KEYS[key][1]
        value = getattr(iface, field)
        if value is None:  # derived from another key: the meaning says from which
            assert f".TP\n\\fB{key}\\fR\n" in page
        else:
            shown = manual._toml(getattr(value, "value", value))
            assert f"\\fB{key}\\fR = {manual._esc(shown)}\n" in page, key
    for key in config._TOP_KEYS:
        assert f"\\fB{key}\\fR" in page
    assert f"\\fBexpire_after\\fR = {config.Config(path='x').expire_after!r}" in page
    assert "\\fBfrom\\fR (required)" in page and "\\fBiface\\fR (required)" in page


def test_a_key_without_a_meaning_stops_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    meanings = {s: dict(m) for s, m in manual.KEY_MEANINGS.items()}
    del meanings["interfaces"]["max_groups"]
    monkeypatch.setattr(manual, "KEY_MEANINGS", meanings)
    with pytest.raises(SystemExit, match=r"interfaces: max_groups"):
        manual.config_keys()


def test_keys_fall_back_to_the_dataclass_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the config module stops exposing its key tables, the page still lists the keys."""
    monkeypatch.delattr(config, "_ROUTE_KEYS")
    keys = [k.name for k in manual.config_keys() if k.section == "routes"]
    fields = [f.name for f in dataclasses.fields(config.RouteConfig)]
    assert sorted(keys) == sorted({"iif": "from", "oifs": "to"}.get(f, f) for f in fields)


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff")
@pytest.mark.parametrize("page", manual.PAGES)
def test_page_renders_without_warnings(page: str) -> None:
    out = subprocess.run(["groff", "-man", "-ww", "-z", "-K", "utf8", str(MAN / page)],
                         capture_output=True, text=True, timeout=30, check=False)
    assert (out.returncode, out.stderr) == (0, "")
