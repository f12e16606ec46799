"""A bounded slice of scripts/fuzz.py (20k inputs in all, about a second): every parser
raises nothing but its own error type on random and mutated input, and the control
server answers every request line. Seeded, so each run feeds the same inputs."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import fuzz

SEED = 1


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, fuzz.Target]]:
    with tempfile.TemporaryDirectory(prefix="mrouter-fuzz-") as tmp, \
            fuzz.open_targets(Path(tmp)) as found:
        yield {t.name: t for t in found}


def run(targets: dict[str, fuzz.Target], name: str, count: int) -> None:
    result = fuzz.fuzz(targets[name], count, SEED)
    assert result.inputs == count
    assert result.unexpected == 0, fuzz.render([result], [])


def test_igmp_decoder_raises_only_codec_error(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "igmp", 8000)


def test_igmp_packet_decoder_raises_only_codec_error(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "igmp-packet", 8000)


def test_control_server_answers_every_request_line(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "control", 2000)


def test_config_loader_raises_only_config_error(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "config", 1000)


def test_topology_loader_raises_only_topology_error(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "topology", 1000)


def test_mld_decoder_raises_only_codec_error(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "mld", 2000)


def test_mld_packet_decoder_raises_only_codec_error(targets: dict[str, fuzz.Target]) -> None:
    run(targets, "mld-packet", 2000)
