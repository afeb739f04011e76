"""services.d is read once, before cont-init, and resolved after it; a step that writes a
drop-in (an image that copies custom services in) has it read again, and says so."""

from __future__ import annotations

import signal

import pytest

from tests.support.pid1 import Pid1, wait_until

pytestmark = pytest.mark.process


def _start_and_stop(pid1: Pid1, marker_name: str) -> list[str]:
    marker = pid1.path(marker_name)
    running = pid1.start("sleep", "60")
    wait_until(marker.exists, 20, f"{marker_name} from the service", running.alive)
    running.signal(signal.SIGTERM)
    result = running.wait(30)
    assert result.code == 0, result.describe()
    return result.init_texts()


def test_a_drop_in_a_step_writes_is_read_and_started(pid1: Pid1) -> None:
    services = pid1.path("services.d")
    services.mkdir()
    ran = pid1.path("late-ran")
    drop_in = f'command = ["sh", "-c", "touch {ran}; exec sleep 60"]\n'
    pid1.step("10-add-service", f"#!/bin/sh\ncat > {services}/late.toml <<'E'\n{drop_in}E\n")
    texts = _start_and_stop(pid1, "late-ran")
    assert f"{services} changed during cont-init: read again" in texts


def test_an_unchanged_folder_is_not_read_again(pid1: Pid1) -> None:
    services = pid1.path("services.d")
    services.mkdir()
    ran = pid1.path("web-ran")
    (services / "web.toml").write_text(f'command = ["sh", "-c", "touch {ran}; exec sleep 60"]\n')
    texts = _start_and_stop(pid1, "web-ran")
    assert not [t for t in texts if "changed during cont-init" in t]
