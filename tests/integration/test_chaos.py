"""Short versions of scripts/chaos.py's faults, each in a fresh lab with a staying member
h1 receiving a numbered flow through the daemon. A user sees: the daemon survives (or
comes back from kill -9 with the kernel's tables empty in between), the member gets its
packets again and, where the fault should not touch it, loses none; `show` from a
well-behaved client stays answered. The faults live in scripts/chaoslib.py (one copy for
the script and the tests); each row's detail is the assertion message.

Each of issue 11's failures has its row here: deep and huge-number requests, running out
of descriptors, clients that never read, connect/close churn, a source flood, a forged
QQIC, 32 interfaces and a SIGHUP with a hostile config all failed before the fixes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import chaoslib

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]


def check(row: chaoslib.Row) -> None:
    print(f"{row.fault}: {row.detail}")
    assert row.ok, f"{row.fault}: {row.detail}"


def test_kill_9_leaves_kernel_tables_empty_and_a_restart_serves_the_member(
        tmp_path: Path) -> None:
    row = chaoslib.kill_restart(tmp_path, rounds=1)
    assert row.figures.get("dirty") == [], row.detail
    check(row)


def test_link_flaps_then_the_member_gets_its_flow_without_loss(tmp_path: Path) -> None:
    check(chaoslib.link_flaps(tmp_path, flaps=5, seconds=2.5))


def test_interface_deleted_and_recreated_twice_gets_followed(tmp_path: Path) -> None:
    check(chaoslib.recreate_interface(tmp_path, times=2))


def test_sighup_storm_with_broken_configs_leaves_no_sequence_gap(tmp_path: Path) -> None:
    row = chaoslib.sighup_storm(tmp_path, count=15, seconds=3.0)
    assert row.figures.get("lost") == 0, row.detail
    check(row)


def test_sighup_with_a_nested_or_huge_number_config_keeps_the_daemon(tmp_path: Path) -> None:
    check(chaoslib.sighup_hostile_config(tmp_path))


def test_500_idle_control_clients_leave_show_answered(tmp_path: Path) -> None:
    check(chaoslib.idle_clients(tmp_path, clients=500, hold=1.0))


def test_20_mb_request_is_answered(tmp_path: Path) -> None:
    check(chaoslib.huge_request(tmp_path, megabytes=20))


def test_invalid_json_and_utf8_requests_are_answered(tmp_path: Path) -> None:
    check(chaoslib.bad_requests(tmp_path))


def test_connect_close_churn_leaves_show_answered(tmp_path: Path) -> None:
    check(chaoslib.churn(tmp_path, connections=20000))


def test_deeply_nested_request_is_answered(tmp_path: Path) -> None:
    check(chaoslib.deep_request(tmp_path, depth=20000))


def test_huge_number_request_is_answered(tmp_path: Path) -> None:
    check(chaoslib.huge_number_request(tmp_path))


def test_descriptor_exhaustion_leaves_the_daemon_running(tmp_path: Path) -> None:
    check(chaoslib.fd_exhaustion(tmp_path))


def test_non_reading_clients_do_not_stall_show(tmp_path: Path) -> None:
    check(chaoslib.non_reading_clients(tmp_path, clients=3))


def test_igmp_flood_is_capped_and_the_member_loses_nothing(tmp_path: Path) -> None:
    check(chaoslib.igmp_flood(tmp_path, rate=20000, seconds=3.0))


def test_source_flood_is_bounded(tmp_path: Path) -> None:
    check(chaoslib.source_flood(tmp_path, rate=2000, seconds=3.0))


def test_rogue_querier_takes_the_role_and_gives_it_back_on_time(tmp_path: Path) -> None:
    check(chaoslib.rogue_querier(tmp_path, seconds=3.0))


def test_rogue_querier_with_forged_qqic_cannot_silence_the_router(tmp_path: Path) -> None:
    check(chaoslib.rogue_querier(tmp_path, seconds=2.0, qqic=255))


def test_32_interfaces_start_and_forward(tmp_path: Path) -> None:
    check(chaoslib.many_interfaces(tmp_path, total=32))


def test_5k_groups_are_learned_while_the_member_loses_nothing(tmp_path: Path) -> None:
    check(chaoslib.many_groups(tmp_path, groups=5000))
