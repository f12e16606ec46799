"""mrouter.linux.sysctl: keys to /proc/sys paths, and the messages when a key is missing.

Reading and writing are checked on a stand-in /proc/sys in a temporary directory, so
no test touches the host's sysctls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mrouter.errors import LabError, MrouterError
from mrouter.linux import sysctl


@pytest.fixture
def proc_sys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sysctl, "PROC_SYS", tmp_path)
    conf = tmp_path / "net" / "ipv4" / "conf"
    for iface in ("all", "eth0.100"):
        (conf / iface).mkdir(parents=True)
        (conf / iface / "rp_filter").write_text("2\n")
    (tmp_path / "net" / "ipv4" / "igmp_max_msf").write_text("10\n")
    return tmp_path


def test_keys_are_dotted_and_a_slash_stands_for_a_dot_in_a_name() -> None:
    assert sysctl.path("net.ipv4.ip_forward") == Path("/proc/sys/net/ipv4/ip_forward")
    assert sysctl.conf_key("eth0.100", "rp_filter") == "net.ipv4.conf.eth0/100.rp_filter"
    assert sysctl.path(sysctl.conf_key("eth0.100", "rp_filter")) == Path(
        "/proc/sys/net/ipv4/conf/eth0.100/rp_filter")


def test_read_gives_the_text_without_its_newline(proc_sys: Path) -> None:
    assert sysctl.read("net.ipv4.igmp_max_msf") == "10"
    assert sysctl.read_or("net.ipv4.igmp_max_msf", "?") == "10"
    assert sysctl.read_int(sysctl.conf_key("eth0.100", "rp_filter"), 0) == 2


def test_a_missing_key_is_the_default_or_one_clear_error(proc_sys: Path) -> None:
    assert sysctl.read_or("net.ipv4.igmp_max_memberships", "?") == "?"
    assert sysctl.read_int(sysctl.conf_key("dn0", "rp_filter"), 0) == 0
    with pytest.raises(LabError, match=r"^sysctl net\.ipv4\.nope does not exist in a "
                                       r"network namespace$"):
        sysctl.read("net.ipv4.nope", error=LabError)
    with pytest.raises(MrouterError, match="does not exist in a network namespace; check it"):
        sysctl.write("net.ipv4.conf.dn0.rp_filter", "0", hint="check it")


def test_read_int_of_text_that_is_no_number_is_the_default(proc_sys: Path) -> None:
    (proc_sys / "net" / "ipv4" / "igmp_max_msf").write_text("many\n")
    assert sysctl.read_int("net.ipv4.igmp_max_msf", 7) == 7


def test_write_sets_the_value(proc_sys: Path) -> None:
    sysctl.write("net.ipv4.conf.all.rp_filter", "0")
    assert sysctl.read("net.ipv4.conf.all.rp_filter") == "0"


def test_a_refused_write_names_the_key_value_and_reason(proc_sys: Path) -> None:
    target = proc_sys / "net" / "ipv4" / "conf" / "all" / "rp_filter"
    target.unlink()
    target.mkdir()  # writing a directory fails with EISDIR, as a refused value would fail
    with pytest.raises(LabError, match=r"^cannot set sysctl net\.ipv4\.conf\.all\.rp_filter=0: "):
        sysctl.write("net.ipv4.conf.all.rp_filter", "0", error=LabError)
