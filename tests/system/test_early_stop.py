"""A stop right after the start: the TERM reaches PID 1 while python3 starts.

Issue 18's case at level 1: `docker stop` right after `docker run` used to
wait out its timeout and end in KILL (exit 137). Here the Engine API's kill
follows its start at once on an open connection (the docker CLI's own start
takes longer than the interpreter's, so `docker stop` would come too late to
tell), so the TERM lands while the launcher's python3 starts. The launcher
blocks the stop signals before the interpreter starts (its first line:
coreutils' `env --block-signal`), so the TERM is queued, not discarded, and
the boot stops gracefully: exit 0, and not after the kill's wait.
"""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest
import requests

import helix_nest
from tests.support.system import SYSTEM_PREFIX

pytestmark = pytest.mark.system

STOP_TIMEOUT = 60  # a lost TERM leaves the boot running: the wait fails after this


def test_a_term_right_after_the_start_is_queued_and_the_boot_stops_gracefully(
    helix_images: Any,
) -> None:
    host = helix_nest.Level.host(helix_images)
    name = f"{SYSTEM_PREFIX}early-stop"
    try:
        host.docker(
            "create", "--pull", "never", "--name", name, *helix_nest.CAPS,
            "-v", f"{name}-docker:/var/lib/docker", helix_nest.SANDBOX_IMAGE,
        )  # fmt: skip
        api = docker.APIClient(base_url=helix_images.host)
        api.start(name)
        api.kill(name, "SIGTERM")  # a few ms after runc's exec of the launcher
        try:
            waited = api.wait(name, timeout=STOP_TIMEOUT)
        except requests.exceptions.ConnectionError:  # the read timed out: still running
            logs = host.docker("logs", name, check=False)
            pytest.fail(
                f"TERM lost: still running {STOP_TIMEOUT}s later\n{logs.stdout}{logs.stderr}"
            )

        state = json.loads(host.docker("inspect", "--format", "{{json .State}}", name).stdout)
        logs = host.docker("logs", name, check=False)
        output = logs.stdout + logs.stderr
        assert waited["StatusCode"] == state["ExitCode"] == 0, f"{state}\n{output}"
        assert "got SIGTERM: graceful shutdown" in output, output
    finally:
        host.docker("rm", "-f", "-v", name, check=False, timeout=180)
        host.docker("volume", "rm", "-f", f"{name}-docker", check=False)
