#!/usr/bin/env bash
# The mrouter demo, from a fresh machine (as root): set-up, then a lab where multicast
# crosses a router namespace run by `mrouter run`, receivers join and leave, and
# `mrouter show` prints the router's view. Everything it creates is removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
