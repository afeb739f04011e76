"""Unit: the adapter over a fake engine (three methods) and real `sleep` processes.

No supervisord: FakePrograms starts each run as a child of the test (its own
session), answers `program` from the child's exit, and stops it with TERM.
The runner watches the pid through a pidfd as it does in PID 1.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helix_init.cmd import RunAs
from helix_init.logsink import Log
from helix_init.services.backoff import RestartClock
from helix_init.services.engine import ProcessInfo
from helix_init.services.environ import ServiceEnv, Variable
from helix_init.services.render import EnginePaths
from helix_init.services.spec import Backoff, ServiceSpec
from helix_init.services.state import State
from helix_init.services.supervise import ServiceContext, ServiceRunner


class FakePrograms:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.runs: list[subprocess.Popen[bytes]] = []
        self.on_start: Callable[[], None] = lambda: None  # as the start call answers

    async def start_program(self, name: str) -> ProcessInfo:
        self.runs.append(subprocess.Popen(self.argv, start_new_session=True))
        self.on_start()
        return ProcessInfo("RUNNING", self.runs[-1].pid, 0)

    async def program(self, name: str) -> ProcessInfo:
        run = self.runs[-1]
        code = run.poll()
        if code is None:
            return ProcessInfo("RUNNING", run.pid, 0)
        return ProcessInfo("EXITED", None, code if code >= 0 else -1)

    async def stop_program(self, name: str) -> None:
        self.runs[-1].terminate()


Environment = Callable[[ServiceSpec, str | None, RunAs | None], ServiceEnv]


def runner(
    tmp_path: Path,
    engine: FakePrograms,
    environment: Environment = lambda s, n, r: ServiceEnv({}),
    **spec: Any,
) -> tuple[ServiceRunner, list[str]]:
    paths = EnginePaths(tmp_path / "run", tmp_path / "logs")
    paths.launch_dir.mkdir(parents=True)
    gave_up: list[str] = []
    ctx = ServiceContext(
        reaper=None,  # type: ignore[arg-type]  # no probe runs a command here
        log=Log(stream=io.BytesIO()),
        engine=engine,
        paths=paths,
        environment=environment,
        ready_event=lambda name: None,
        changed=lambda: None,
        gave_up=lambda name, why: gave_up.append(why),
        add_secret=lambda secret: None,
    )
    fast = Backoff(initial=0.01, max=0.01, jitter=0.0)
    s = ServiceSpec("svc", tuple(engine.argv), "/s/svc.toml", backoff=fast, **spec)
    return ServiceRunner(s, ctx, None, RestartClock(fast)), gave_up


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_spawn_ready_kill_restart_and_stop(tmp_path: Path) -> None:
    engine = FakePrograms(["sleep", "100"])
    r, _ = runner(tmp_path, engine)

    async def main() -> None:
        r.begin()
        await until(lambda: r.state is State.READY)
        first = r.pid
        assert first is not None and r.ready_event.is_set()
        os.kill(first, signal.SIGKILL)
        await until(lambda: r.state is State.READY and r.pid not in (None, first))
        assert r.machine.restarts == 1
        assert r.status()["last_exit"] == "killed by a signal"
        await r.stop("test over")
        assert r.state is State.STOPPED and r.pid is None
        assert all(run.poll() is not None for run in engine.runs)
        await r.start()
        await until(lambda: r.state is State.READY)
        await r.stop("shutdown", final=True)
        await r.start()  # the shutdown refuses it
        assert r.state is State.STOPPED and not r.active

    asyncio.run(main())


def test_a_stop_as_the_start_call_answers_still_stops_what_it_started(tmp_path: Path) -> None:
    """The start call has answered, its waiter has not yet run, and a stop cancels that waiter.

    The spawn forgot the answered start (its `finally` cleared it because it
    was done), so the stop found nothing to stop and said "stopped" over a
    live process (test_svc_stopping saw it under load, 1 run in 15).
    """
    engine = FakePrograms(["sleep", "100"])
    r, _ = runner(tmp_path, engine)
    stops: list[asyncio.Future[None]] = []

    async def main() -> None:
        engine.on_start = lambda: stops.append(asyncio.ensure_future(r.stop("now")))
        r.begin()
        await until(lambda: bool(stops))
        await stops[0]
        assert r.state is State.STOPPED
        assert [run.poll() is not None for run in engine.runs] == [True], "stopped, yet running"

    try:
        asyncio.run(main())
    finally:
        for run in engine.runs:
            run.kill()


def test_a_one_shot_that_fails_with_a_budget_gives_up(tmp_path: Path) -> None:
    engine = FakePrograms(["false"])
    r, gave_up = runner(tmp_path, engine, max_restarts=3)

    async def main() -> None:
        r.begin()
        await until(lambda: r.state is State.FAILED)
        assert gave_up == ["restart budget of 3 used up (exit status 1)"]
        assert len(engine.runs) == 4 and r.machine.restarts == 3

    asyncio.run(main())


def test_a_stop_file_holds_it_and_its_removal_starts_it(tmp_path: Path) -> None:
    stop_file = tmp_path / "stop"
    engine = FakePrograms(["sleep", "100"])
    r, _ = runner(tmp_path, engine, stop_file=str(stop_file))

    async def main() -> None:
        stop_file.touch()
        r.begin()
        await until(lambda: r.state is State.STOPPED)
        assert r.reason == f"held while {stop_file} exists" and not engine.runs
        stop_file.unlink()
        await until(lambda: r.state is State.READY, timeout=5)
        await r.stop("test over")

    asyncio.run(main())


def test_the_launch_is_built_off_the_event_loop(tmp_path: Path) -> None:
    """A 24,000-variable environment takes ~0.16 s to build and check: PID 1's loop runs meanwhile.

    The environment waits for an event only a loop task sets: built on the
    loop, it would wait its 5 s out, the loop blocked; in a worker thread the
    loop sets it at once.
    """
    engine = FakePrograms(["sleep", "100"])
    built = {f"V{i:05d}": Variable("v") for i in range(24_000)}
    loop_ran = threading.Event()
    builds: list[tuple[threading.Thread, bool]] = []

    def environment(spec: ServiceSpec, notify: str | None, run_as: RunAs | None) -> ServiceEnv:
        asking.set()
        builds.append((threading.current_thread(), loop_ran.wait(5)))
        return ServiceEnv(dict(built))

    asking = threading.Event()
    r, _ = runner(tmp_path, engine, environment)

    async def main() -> None:
        async def answer() -> None:
            while not asking.is_set():
                await asyncio.sleep(0.001)
            loop_ran.set()

        answering = asyncio.ensure_future(answer())
        r.begin()
        await until(lambda: r.state is State.READY)
        await answering
        await r.stop("test over")

    asyncio.run(main())
    assert builds and all(thread is not threading.main_thread() for thread, _ in builds)
    assert all(in_time for _, in_time in builds)
    launch = json.loads(r.ctx.paths.launch_file("svc").read_text())
    assert len(launch["env"]) == 24_000


def test_a_crash_loop_writes_its_launch_files_once_and_again_when_they_are_gone(
    tmp_path: Path,
) -> None:
    """Each start's launch is the last start's in a crash loop: no rewrite (1-4 ms a restart)."""
    engine = FakePrograms(["false"])
    r, _ = runner(tmp_path, engine, max_restarts=3)
    launch = r.ctx.paths.launch_file("svc")
    inodes: list[int] = []

    def started() -> None:
        inodes.append(launch.stat().st_ino)
        if len(inodes) == 2:
            launch.unlink()  # the next start must write it again

    engine.on_start = started

    async def main() -> None:
        r.begin()
        await until(lambda: r.state is State.FAILED)

    asyncio.run(main())
    assert len(inodes) == 4
    assert inodes[0] == inodes[1] and inodes[2] == inodes[3]  # the 3rd start wrote it again
