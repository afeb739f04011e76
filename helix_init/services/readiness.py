"""Run readiness, health and wait_for checks against a live service (in PID 1, async, bounded).

Each check is one attempt with its own timeout and answers True or False;
`wait_until` repeats one with tenacity until it passes, its time is up, or the
service has died. The docker check speaks HTTP to the Engine API socket
directly (`GET /_ping`, answered `OK` once the API serves): PID 1 never imports
the docker SDK (its import costs ~0.4 s and 40 MB, see TESTBED.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from helix_init.contenv import expand
from helix_init.procgroup import signal_group
from helix_init.reaper import Reaper, SpawnError
from helix_init.services import http10
from helix_init.services.probes import Probe

Check = Callable[[], Awaitable[bool]]


def split_host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    return ("127.0.0.1" if host == "localhost" else host), int(port)


# asyncio.timeout, not asyncio.wait_for: on 3.11 wait_for returns the inner
# result when a cancel lands after the inner call has already ended (a connect
# to a missing socket fails at once), so the stop of a service waiting in
# wait_for was lost and the shutdown hung (test_readiness_cancel.py).


async def unix_connects(path: str, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_unix_connection(path)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def tcp_connects(target: str, timeout: float) -> bool:
    host, port = split_host_port(target)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def http_status(url: str, timeout: float, *, unix_path: str | None = None) -> int | None:
    """Status code of GET url (over unix_path when given), None when no answer."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        host, port = split_host_port(f"{parts.hostname}:{parts.port or 80}")
        ask = http10.exchange(
            http10.request("GET", path, parts.hostname or "localhost"),
            unix_path=unix_path,
            host=host,
            port=port,
            status_only=True,
        )
        async with asyncio.timeout(timeout):
            return http10.status_of(await ask)
    except (OSError, TimeoutError, ValueError):
        return None


async def docker_pings(socket_url: str, timeout: float) -> bool:
    path = socket_url.removeprefix("unix://")
    return await http_status("http://docker/_ping", timeout, unix_path=path) == 200


async def command_succeeds(
    reaper: Reaper, argv: Sequence[str], env: Mapping[str, str], timeout: float
) -> bool:
    try:
        child = reaper.spawn(argv, name="probe", env=env, stdout=subprocess.DEVNULL)
    except SpawnError:
        return False
    done, _ = await asyncio.wait([child.exited], timeout=timeout)
    if not done:
        signal_group(child.pid, signal.SIGKILL)
        await asyncio.shield(child.exited)
        return False
    return child.exited.result() == 0


async def wait_until(
    check: Check, *, interval: float, timeout: float, alive: Callable[[], bool]
) -> bool:
    """Repeat `check` every `interval` s until it passes (True), times out or the service dies."""
    import tenacity

    def dead_or_late(state: tenacity.RetryCallState) -> bool:
        late = timeout > 0 and (state.seconds_since_start or 0) >= timeout
        return late or not alive()

    retrying = tenacity.AsyncRetrying(
        stop=dead_or_late,
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_result(lambda passed: passed is not True),
        retry_error_callback=lambda _state: False,
    )

    async def attempt() -> bool:
        return await check()

    result: bool = await retrying(attempt)
    return result


def wait_for_check(kind: str, targets: Sequence[str]) -> Check:
    """A wait_for condition: any one target exists (path) or accepts (unix, tcp)."""

    async def check() -> bool:
        for target in targets:
            if kind == "path" and os.path.exists(target):
                return True
            if kind == "unix" and await unix_connects(target, 1.0):
                return True
            if kind == "tcp" and await tcp_connects(target, 1.0):
                return True
        return False

    return check


def probe_check(
    probe: Probe,
    timeout: float,
    env: Mapping[str, str],
    reaper: Reaper,
    notified: Callable[[], bool] | None = None,
) -> Check:
    """One attempt of a ready or health probe; `${VAR}` in its target expanded from `env`."""
    target, kind = probe.target, probe.kind
    if kind == "notify":
        assert notified is not None
        is_notified = notified

        async def by_notify() -> bool:
            return is_notified()

        return by_notify
    if kind == "command":
        argv = [expand(a, env) for a in (target if isinstance(target, tuple) else ())]
        return lambda: command_succeeds(reaper, argv, env, timeout)
    text = expand(str(target), env)
    if kind == "unix":
        return lambda: unix_connects(text, timeout)
    if kind == "tcp":
        return lambda: tcp_connects(text, timeout)
    if kind == "docker":
        return lambda: docker_pings(text, timeout)

    async def http_ok() -> bool:
        return await http_status(text, timeout) == probe.status

    return http_ok
