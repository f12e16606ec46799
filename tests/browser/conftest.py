"""The browser tests use the integration tests' helpers (one daemon starter, one sender:
tests/integration/helpers.py) as well as chromium.py here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
