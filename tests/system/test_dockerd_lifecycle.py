"""Stopping dockerd on purpose, at level 1, on sandboxes of the tests' own (not the nest).

- `docker stop` of a sandbox: exit 0, dockerd got TERM and finished its own
  shutdown (never KILLed), and `docker start` brings back what was in
  /var/lib/docker (a named inner image, an `unless-stopped` container) with no
  "pid file found" refusal.
- `touch /tmp/.dockerd-stop`: dockerd stops and stays stopped; `helix-init
  status` says "stopped" only once the dockerd process is gone; removing the
  file starts it again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
BUSYBOX = "local/busybox:latest"
STOP_FILE = "/tmp/.dockerd-stop"
# An inner container that leaves at once on TERM, so dockerd's shutdown is quick.
QUICK_EXIT = 'trap "exit 0" TERM; while :; do sleep 1; done'
# helix-init's lines when it has to KILL (services/supervise.py, boot.py).
KILL_LINES = ("killing its group", "killing them", "sending KILL", "killing it")


def load_busybox(nestlib: Any, level: Any) -> None:
    level.load(BUSYBOX)


def dockerd_state(level: Any) -> tuple[dict[str, Any], list[int]]:
    """dockerd's status entry and, read right after it, the pids of dockerd processes."""
    done = level.sh("helix-init status --json; echo '=== pgrep'; pgrep -x dockerd || true")
    status_text, _, pids = done.stdout.partition("=== pgrep\n")
    services = json.loads(status_text)["services"]["services"]
    (entry,) = [s for s in services if s["name"] == "dockerd"]
    return entry, [int(p) for p in pids.split()]


def wait_dockerd(level: Any, state: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entry, _ = dockerd_state(level)
        if entry["state"] == state:
            return entry
        time.sleep(0.2)
    raise AssertionError(f"dockerd not {state} within {timeout:g}s: {entry}")


def test_docker_stop_terms_dockerd_and_start_keeps_inner_state(level1: Any, nestlib: Any) -> None:
    sandbox = level1("stop")
    host = sandbox.parent
    load_busybox(nestlib, sandbox)
    sandbox.docker("tag", BUSYBOX, "kept/named:1")
    sandbox.docker(
        "run", "-d", "--pull", "never", "--name", "keeper", "--restart", "unless-stopped",
        BUSYBOX, "sh", "-c", QUICK_EXIT,
    )  # fmt: skip

    started = time.monotonic()
    host.docker("stop", "-t", "90", sandbox.name, timeout=150)
    took = time.monotonic() - started
    state = json.loads(host.docker("inspect", "-f", "{{json .State}}", sandbox.name).stdout)
    logs = host.docker("logs", sandbox.name)
    text = logs.stdout + logs.stderr
    assert state["ExitCode"] == 0, text[-3000:]
    assert not state["OOMKilled"]
    assert took < 60, f"docker stop took {took:.1f}s (the KILL would come at 90 s)"
    assert "[helix-init] got SIGTERM: graceful shutdown" in text
    assert "[helix-init] service dockerd: ready -> stopping (shutdown)" in text
    assert "Processing signal 'terminated'" in text  # dockerd's own line: it got TERM
    assert "Daemon shutdown complete" in text  # and finished its shutdown itself
    assert "service dockerd: stopping -> stopped" in text
    assert "shutdown complete in" in text and "exit code 0" in text
    for line in text.splitlines():
        if "[helix-init]" in line:
            assert not any(kill in line for kill in KILL_LINES), line

    host.docker("start", sandbox.name)
    sandbox.wait_healthy(120)
    sandbox.docker("image", "inspect", "kept/named:1")
    names = sandbox.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "keeper" in names
    deadline = time.monotonic() + 30  # unless-stopped: dockerd starts it again itself
    while sandbox.docker("inspect", "-f", "{{.State.Running}}", "keeper").stdout.strip() != "true":
        assert time.monotonic() < deadline, "keeper was not restarted by dockerd"
        time.sleep(0.2)
    logs = host.docker("logs", sandbox.name)
    assert "pid file found" not in logs.stdout + logs.stderr


def test_stop_file_holds_dockerd_stopped_until_removed(level1: Any, nestlib: Any) -> None:
    sandbox = level1("stopfile")
    host = sandbox.parent
    load_busybox(nestlib, sandbox)
    # Ignores TERM for 3 s (its stop timeout): dockerd's shutdown takes that long,
    # which is the window where "stopped" must not be reported yet.
    sandbox.docker(
        "run", "-d", "--pull", "never", "--stop-timeout", "3", "--name", "slow",
        BUSYBOX, "sh", "-c", 'trap "" TERM; while :; do sleep 1; done',
    )  # fmt: skip
    before, pids = dockerd_state(sandbox)
    assert before["state"] == "ready" and before["pid"] in pids, (before, pids)

    sandbox.exec(["touch", STOP_FILE])
    seen_stopping_alive = False
    deadline = time.monotonic() + 90
    while True:
        entry, pids = dockerd_state(sandbox)
        if entry["state"] == "stopped":
            # status was read before pgrep: dockerd must already be gone
            assert pids == [], f"status says stopped while dockerd runs: {entry} {pids}"
            break
        if entry["state"] == "stopping" and pids:
            seen_stopping_alive = True
        assert time.monotonic() < deadline, f"dockerd not stopped in 90s: {entry}"
        time.sleep(0.1)
    assert seen_stopping_alive, "never saw dockerd stopping while its process was alive"
    assert sandbox.exec(["test", "-e", f"/proc/{before['pid']}"], check=False).returncode != 0

    # Held: no restart while the file exists (well past dockerd's 1 s initial backoff).
    held_until = time.monotonic() + 5
    while time.monotonic() < held_until:
        entry, pids = dockerd_state(sandbox)
        assert entry["state"] == "stopped" and pids == [], (entry, pids)
        time.sleep(0.5)
    assert sandbox.docker("version", check=False).returncode != 0  # the engine is down
    # COMPAT: today's probes run `docker info`; it fails while dockerd is held.
    assert sandbox.exec(["docker", "info"], check=False).returncode != 0

    # As documented: remove the file and start it (already under way: a no-op).
    sandbox.exec(["rm", STOP_FILE])
    sandbox.exec(["helix-init", "start", "dockerd"])
    again = wait_dockerd(sandbox, "ready", 60)
    assert again["pid"] != before["pid"]
    sandbox.docker("version")
    assert sandbox.exec(["docker", "info"]).returncode == 0
    logs = host.docker("logs", sandbox.name)
    text = logs.stdout + logs.stderr
    assert f"service dockerd: ready -> stopping ({STOP_FILE} exists)" in text
    assert f"service dockerd: stopped -> waiting ({STOP_FILE} is gone)" in text
    assert "Processing signal 'terminated'" in text


def test_a_paused_engine_never_blocks_the_init_and_gets_its_grace(
    level1: Any, tmp_path: Any
) -> None:
    """Fault: the Docker engine is paused (SIGSTOP) while its health probe runs.

    A short pause: the init keeps answering (its probes are bounded, never
    blocking), and nothing is restarted. A long pause: the health checks fail,
    the init stops dockerd with TERM and waits its whole stop_timeout before
    KILL (a paused process cannot act on TERM), then starts one new dockerd.
    The shipped dockerd.toml is used with quicker health numbers, as an
    operator would override it.
    """
    shipped = (REPO / "services.d" / "dockerd.toml").read_text()
    quick = shipped.replace(
        "interval = 15, failures = 4, timeout = 10", "interval = 1, failures = 3, timeout = 1"
    ).replace("stop_timeout = 60", "stop_timeout = 4")
    assert quick.count("interval = 1,") == 1 and "stop_timeout = 4" in quick
    override = tmp_path / "dockerd.toml"
    override.write_text(quick)
    override.chmod(0o644)
    sandbox = level1("pause", "-v", f"{override}:/etc/services.d/dockerd.toml:ro")
    entry, (pid,) = dockerd_state(sandbox)
    assert entry["state"] == "ready"

    # Short pause: the init answers at once; dockerd resumes, same process.
    sandbox.sh(f"kill -STOP {pid}")
    started = time.monotonic()
    entry, pids = dockerd_state(sandbox)
    assert time.monotonic() - started < 5, "status blocked while dockerd was paused"
    assert pids == [pid]
    sandbox.sh(f"kill -CONT {pid}")
    entry, pids = dockerd_state(sandbox)
    assert pids == [pid] and entry["restarts"] == 0, entry

    # Long pause: unhealthy, TERM, the full grace, then KILL, then one new dockerd.
    sandbox.sh(f"kill -STOP {pid}")
    deadline = time.monotonic() + 90
    while True:
        entry, pids = dockerd_state(sandbox)
        if entry["restarts"] >= 1 and entry["state"] == "ready":
            break
        assert time.monotonic() < deadline, f"dockerd not back after the pause: {entry}"
        time.sleep(0.2)
    assert len(pids) == 1 and pids[0] != pid, pids
    assert entry["last_exit"].startswith("unhealthy"), entry
    log = sandbox.exec(["cat", "/var/log/helix-init/init.log"]).stdout.splitlines()
    term = next(i for i, line in enumerate(log) if "dockerd: unhealthy" in line)
    ended = next(
        i for i, line in enumerate(log[term:], term) if "dockerd: ready -> backoff" in line
    )
    grace = _seconds(log[ended]) - _seconds(log[term])
    assert grace >= 4 - 0.5, f"dockerd replaced {grace:.2f}s after TERM, before its 4 s grace"
    assert any("dockerd (terminated by SIGKILL)" in line for line in log[term : ended + 1]), (
        "a paused dockerd can only end by KILL, after its grace"
    )


def _seconds(line: str) -> float:
    """The time of a log line `2026-11-23T17:35:29.123Z [source] ...` in seconds."""
    stamp = line.split(" ", 1)[0]
    hours, minutes, seconds = stamp[11:-1].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
