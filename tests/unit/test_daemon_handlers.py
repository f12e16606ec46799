"""The daemon's parts without a kernel: a Daemon is made without opening anything, and
its control handlers refuse bad requests with their own error type."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from mrouter.errors import ControlError, RequestError
from mrouter.router.config import load_config
from mrouter.router.daemon import Daemon
from mrouter.router.interfaces import Interface


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    path = tmp_path / "r.toml"
    path.write_text('mode = "router"\n[interfaces.up0]\n[interfaces.dn0]\n')
    return Daemon(load_config(str(path)), str(tmp_path / "ctl.sock"))


def test_a_daemon_is_made_without_opening_anything(daemon: Daemon, tmp_path: Path) -> None:
    assert daemon.interfaces == {} and daemon.dropped == {}
    assert not (tmp_path / "ctl.sock").exists()
    daemon.close()  # nothing to close: fine


def test_a_bad_show_is_a_request_error(daemon: Daemon) -> None:
    with pytest.raises(RequestError, match=re.escape(
            "show what? 'cats' is not one of interfaces, groups, routes")) as raised:
        daemon.handlers.show({"what": "cats"})
    assert isinstance(raised.value, ControlError)


def test_a_bad_route_or_membership_is_a_request_error(daemon: Daemon) -> None:
    for vif, cfg in enumerate(daemon.config.interfaces):  # as open() would find them
        daemon.interfaces[cfg.name] = Interface(cfg, vif, vif + 1, IPv4Address(0),
                                                IPv4Network(0), igmp=True)
    with pytest.raises(RequestError, match="route action must be add or del"):
        daemon.handlers.route({"action": "move", "group": "239.1.1.1", "from": "up0",
                               "to": ["dn0"]})
    with pytest.raises(RequestError, match="no such route"):
        daemon.handlers.route({"action": "del", "group": "239.1.1.1", "from": "up0"})
    with pytest.raises(RequestError, match=re.escape("239.2.2.2 on dn0 is not joined")):
        daemon.handlers.membership({"iface": "dn0", "group": "239.2.2.2"}, join=False)
