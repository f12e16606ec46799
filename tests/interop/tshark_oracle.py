"""What the tshark cross-checks share (test_codec_tshark.py for IGMP, test_mld_tshark.py
for MLD): tshark or a module-level skip, the dissection of the packets our codec encoded
(written to a pcap with mrouter.traffic.pcap) as tshark's JSON layers, and
:func:`as_list` for a field tshark shows as one value or a list."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mrouter.traffic import pcap


def tshark_or_skip() -> str:
    """The tshark program, or skip the calling test module if it is not installed."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (Debian: apt-get install tshark); "
                    "the tshark cross-check cannot run", allow_module_level=True)
    return tshark


def dissect(tshark: str, folder: Path, datas: list[bytes], *options: str
            ) -> list[dict[str, Any]]:
    """Each of ``datas`` (raw IP packets) as tshark dissects it, ``options`` given
    (e.g. ``-o ip.check_checksum:TRUE``): the frame's layers, one per packet."""
    path = folder / "ours.pcap"
    with path.open("wb") as stream:
        writer = pcap.Writer(stream)
        for number, data in enumerate(datas):
            writer.write(data, 1_700_000_000 + number)
    result = subprocess.run(
        [tshark, "-r", str(path), "-T", "json", "--no-duplicate-keys", *options],
        capture_output=True, text=True, timeout=60, check=True,
    )
    frames = json.loads(result.stdout)
    assert len(frames) == len(datas)
    return [frame["_source"]["layers"] for frame in frames]


def as_list(value: Any) -> list[Any]:
    """A tshark JSON field that is absent, one value, or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
