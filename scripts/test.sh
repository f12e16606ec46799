#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, lint, types, then pytest.
# Needs root (the integration tests build network namespaces).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not netns"`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
echo "== ruff" >&2
.venv/bin/ruff check .
echo "== mypy --strict" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/python -m pytest "$@"
