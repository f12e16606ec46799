#!/usr/bin/env bash
# Set up everything mrouter's demo and tests need on a fresh Debian machine, as root:
# Debian packages (iproute2, tcpdump, tshark, smcroute, igmpproxy, frr, chromium, tmux,
# systemd for systemd-analyze, prometheus for the metrics test) and a .venv with
# mrouter installed in editable mode with its test extra. Safe to run again: it only
# installs what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEB_PACKAGES=(iproute2 procps tcpdump tshark smcroute igmpproxy frr chromium tmux systemd
              prometheus)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: need root to install Debian packages: ${missing[*]}" >&2
        exit 2
    fi
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
# smcroute's package starts its daemon in the host namespace: the tests run their own
# in lab namespaces, so stop the packaged one if init started it.
# FRR's package likewise starts zebra and friends (watchfrr), and prometheus's listens on
# :9090: the labs run FRR only inside FRR nodes' namespaces and the metrics test its own
# Prometheus in a lab namespace, so stop them (and keep FRR from starting again).
for service in smcroute frr prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null
    then
        systemctl stop "$service" || true
        [[ $service == frr ]] && { systemctl disable --quiet frr 2>/dev/null || true; }
    elif [[ -x /etc/init.d/$service ]] && /etc/init.d/"$service" status >/dev/null 2>&1; then
        /etc/init.d/"$service" stop >/dev/null 2>&1 || true
    fi
done

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c 'import mrouter, pytest, hypothesis, scapy, pyroute2' 2>/dev/null \
   || [[ pyproject.toml -nt .venv/.mrouter-installed || setup.py -nt .venv/.mrouter-installed ]]; then
    echo "setup: installing mrouter and its test extra into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    touch .venv/.mrouter-installed
fi
