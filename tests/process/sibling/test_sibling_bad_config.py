"""Bad sibling-mode settings: one line naming the variable at `helix-init check`, and at boot
exit 78 before any step or service starts. Good settings switch the shipped drop-ins on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

REPO = Path(__file__).resolve().parents[3]

BAD = [
    (
        {"HELIX_BRIDGE_GUARD": "sandbox0=10.213.0.1/33"},
        "HELIX_BRIDGE_GUARD: '10.213.0.1/33' is not an IPv4 address/prefix"
        " (such as sandbox0=10.213.0.1/24)",
    ),
    (
        {"HELIX_BRIDGE_GUARD": "eth0=10.213.0.1/24"},
        "HELIX_BRIDGE_GUARD: refusing to guard eth0: eth* and lo are never touched",
    ),
    (
        {"HELIX_LOCALHOST_FORWARD": "hydra1"},
        "HELIX_LOCALHOST_FORWARD: must be the gateway's IPv4 address, e.g. 10.200.1.1,"
        " got 'hydra1'",
    ),
    (
        {"HELIX_BRIDGE_GUARD": "sandbox0=10.213.0.1/24", "HELIX_BRIDGE_GUARD_MODE": "often"},
        "HELIX_BRIDGE_GUARD_MODE: must be event or poll, got 'often'",
    ),
]


def ship(pid1: Pid1) -> None:
    """The shipped drop-ins this feature adds, plus the services bridge-guard requires."""
    services = pid1.path("services.d")
    services.mkdir()
    for name in ("bridge-guard.toml", "dockerd.toml", "dns-relay.toml"):
        shutil.copy(REPO / "services.d" / name, services)
    shutil.copy(REPO / "cont-init.d" / "25-helix-localhost-forward", pid1.cont_init)
    shutil.copy(REPO / "cont-finish.d" / "25-helix-localhost-forward-undo", pid1.cont_finish)


@pytest.mark.parametrize(("env", "line"), BAD, ids=lambda v: str(v)[:40])
def test_check_names_the_variable(pid1: Pid1, env: dict[str, str], line: str) -> None:
    ship(pid1)
    result = pid1.command("check", env=env)
    assert result.code == 78, result.describe()
    assert result.lines == [line]
    assert "1 problem(s); the container would not start" in result.stderr


@pytest.mark.parametrize(("env", "line"), BAD, ids=lambda v: str(v)[:40])
def test_boot_stops_before_anything_starts(pid1: Pid1, env: dict[str, str], line: str) -> None:
    ship(pid1)
    marker = pid1.path("step-ran")
    pid1.step("10-marker", f"#!/bin/sh\ntouch {marker}\n")
    result = pid1.run("touch", str(pid1.path("cmd-ran")), env=env)
    assert result.code == 78, result.describe()
    assert line in result.errors()
    assert any("nothing was started" in e for e in result.errors())
    assert not marker.exists() and not pid1.path("cmd-ran").exists()


def test_good_settings_pass_check_and_enable_the_guard(pid1: Pid1) -> None:
    ship(pid1)
    off = pid1.command("check")
    assert off.code == 0 and "0 service(s) enabled of 3" in off.stdout, off.describe()
    env = {
        "HELIX_BRIDGE_GUARD": "sandbox0=10.213.0.1/24",
        "HELIX_BRIDGE_GUARD_MODE": "poll",
        "HELIX_LOCALHOST_FORWARD": "10.200.1.1",
        "HELIX_LOCALHOST_FORWARD_DNS": "1",
    }
    on = pid1.command("check", env=env)
    assert on.code == 0 and "1 service(s) enabled of 3" in on.stdout, on.describe()
    plan = pid1.command("plan", env=env)
    assert "bridge-guard" in plan.stdout and "ready by notify" in plan.stdout, plan.stdout
