"""One service's life under the init: gate, spawn, readiness, health, exit, backoff, stop.

Runs in PID 1, one asyncio task per service. supervisord spawns the process
(in its own process group); the init watches it through a pidfd (no polling,
and no second waiter on a child that is not ours), decides what an exit means
under the restart policy, and never starts a service again while any process
of its previous group is alive (so there are never two copies of a daemon).
Every state change goes through state.next_state().
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helix_init import procmount
from helix_init.cmd import RunAs
from helix_init.contenv import expand
from helix_init.logsink import Log
from helix_init.procgroup import signal_group
from helix_init.reaper import Reaper
from helix_init.rootfiles import write_private
from helix_init.services import readiness
from helix_init.services.backoff import RestartClock
from helix_init.services.cgroup import RunProcesses, ServiceCgroup
from helix_init.services.engine import Engine, EngineError
from helix_init.services.environ import ServiceEnv
from helix_init.services.limits import exec_problem
from helix_init.services.notify import NotifyListener
from helix_init.services.probes import Probe, WaitFor
from helix_init.services.render import EnginePaths, Launch, signal_number
from helix_init.services.spec import ServiceSpec
from helix_init.services.state import Event, State, next_state
from helix_init.services.usage import usage

EXIT_INFO_TIMEOUT = 3.0  # how long supervisord may take to notice an exit we saw
KILL_MARGIN = 5.0  # past stop_timeout, supervisord has KILLed; we double-check after this
STOP_FILE_POLL = 1.0
FINISH_TIMEOUT = 5.0


@dataclass
class ServiceContext:
    """What a service needs from the rest of the init: narrow on purpose."""

    reaper: Reaper
    log: Log
    engine: Engine
    paths: EnginePaths
    environment: Callable[[ServiceSpec, str | None, RunAs | None], ServiceEnv]
    ready_event: Callable[[str], asyncio.Event | None]
    changed: Callable[[], None]
    gave_up: Callable[[str, str], None]
    add_secret: Callable[[str], None]
    cgroups: Path | None = None  # where service cgroups go; None: track descendants


class _Forced(Exception):
    """The init ended the run: not ready in time, or unhealthy."""


class _Held(Exception):
    """The run was stopped because the service's stop file appeared."""


class ServiceRunner:
    def __init__(
        self, spec: ServiceSpec, ctx: ServiceContext, run_as: RunAs | None, clock: RestartClock
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.run_as = run_as
        self.clock = clock
        self.state = State.WAITING
        self.reason = ""
        self.pid: int | None = None
        self.started_at: float | None = None  # wall clock, for status
        self.restarts = 0
        self.last_exit = ""
        self.next_retry: float | None = None
        self.ready_event = asyncio.Event()
        self.notify = (
            NotifyListener(ctx.paths.notify_socket(spec.name), self.owns, self._refused)
            if _notifies(spec)
            else None
        )
        self.cgroup = ServiceCgroup(ctx.cgroups / spec.name) if ctx.cgroups else None
        self.procs: RunProcesses | None = None  # the last run's processes, until the next
        self._refused_said = -60.0
        self._exit: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._run_started = 0.0
        self._starting: asyncio.Future[int | None] | None = None  # a start in supervisord
        # One stop or start at a time. An operator's stop, the shutdown and a
        # supervisord restart can overlap (`helix-init stop dockerd` waits up to
        # its stop_timeout, and `docker stop` may arrive meanwhile); without this
        # the second stop applied STOPPED twice (BadTransition: exit 70 instead
        # of a clean shutdown), and a start during a stop hit STOPPING -> START.
        self._control = asyncio.Lock()
        self._retired = False  # stopped by the shutdown: no start may follow
        self.stop_requested = False  # stopped by stop(), not merely held by its stop file

    # -- control ---------------------------------------------------------------
    def begin(self) -> None:
        if self.cgroup is not None and not self.cgroup.create():
            self.ctx.log.warn(f"service {self.spec.name}: cannot make {self.cgroup.path}")
            self.cgroup = None
        if self.notify is not None and self.notify._sock is None:
            self.notify.open(self.run_as.uid if self.run_as else None)
        self._task = asyncio.get_running_loop().create_task(self._life())

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, why: str, *, final: bool = False) -> None:
        """Stop for good (operator, shutdown): no restart until start() is called.

        `final` (the shutdown) also refuses every later start: an operator's
        start queued behind the shutdown's stop must not spawn it again.
        """
        async with self._control:
            self._retired = self._retired or final
            self.stop_requested = True
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            if self.state is State.STOPPED:
                return
            if self.state is not State.STOPPING:
                self._to(Event.STOP, why)
            await self._terminate()
            self._to(Event.STOPPED, why)

    async def start(self) -> None:
        """Start again after a stop (operator, supervisord restart); a no-op while it runs."""
        async with self._control:
            if self.active or self._retired:
                return
            self.stop_requested = False
            self._to(Event.START, "start requested")
            self.clock.reset()
            self.begin()

    # -- the life loop -----------------------------------------------------------
    async def _life(self) -> None:
        while True:
            if not await self._gate():
                continue
            problem = self._write_launch()
            if problem:
                self._give_up(problem)
                return
            try:
                await self._spawn()
                statename, status, description = await self._run_until_exit()
                forced = ""
            except _Forced as exc:
                statename, status, description = "EXITED", -1, ""
                forced = str(exc)
            except _Held:
                continue  # stopped; the gate holds it until the stop file is gone
            ran_for = time.monotonic() - self._run_started
            self.last_exit = forced or description
            if statename == "STOPPED" and not forced:  # stopped behind our back (supervisorctl)
                self._to(Event.STOP, "stopped through supervisorctl")
                self._to(Event.STOPPED, "stopped through supervisorctl")
                return
            await self._run_finish(status)
            if not await self._after_exit(ok=not forced and status == 0, ran_for=ran_for):
                return

    async def _after_exit(self, ok: bool, ran_for: float) -> bool:
        """Apply the restart policy; True to go round again."""
        spec = self.spec
        if spec.restart == "never" or (spec.restart == "on-failure" and ok):
            if spec.essential and not ok:
                self._give_up(f"ended ({self.last_exit}) and its restart policy is {spec.restart}")
            else:
                self._to(Event.DONE, self.last_exit)
            return False
        self.clock.record_exit(ran_for)
        if self.clock.exhausted(spec.max_restarts):
            self._give_up(f"restart budget of {spec.max_restarts} used up ({self.last_exit})")
            return False
        delay = self.clock.delay()
        self.next_retry = time.time() + delay
        self._to(Event.CRASH, f"{self.last_exit}; restarting in {delay:.2f}s")
        await asyncio.sleep(delay)
        self.next_retry = None
        self.restarts += 1
        self._to(Event.RETRY, f"restart #{self.restarts}")
        return True

    async def _gate(self) -> bool:
        """Wait for requires, stop file and wait_for; False when a wait_for timed out."""
        for dep in self.spec.requires:
            event = self.ctx.ready_event(dep)
            if event is not None and not event.is_set():
                self._note(f"waiting for {dep} to be ready")
                await event.wait()
        stop_file = self.spec.stop_file
        if stop_file and os.path.exists(stop_file):
            # Held by the stop file is "stopped", as after `helix-init stop`: it was
            # reported "waiting" before, and a snapshot script waiting for
            # "stopped" (COMPAT /tmp/.dockerd-stop) could miss it; a held service
            # also no longer holds the container's readiness and the CMD.
            held = f"held while {stop_file} exists"
            if self.state is State.STOPPED:
                self._note(held)
            else:
                self._to(Event.STOP, held)
                self._to(Event.STOPPED, held)
            while os.path.exists(stop_file):
                await asyncio.sleep(STOP_FILE_POLL)
            self._to(Event.START, f"{stop_file} is gone")
        for wait in self.spec.wait_for:
            self._note(f"waiting for {wait.kind} {' or '.join(wait.targets)}")
            if not await readiness.wait_until(
                self._wait_check(wait), interval=0.1, timeout=wait.timeout, alive=lambda: True
            ):
                self.last_exit = f"wait_for {wait.kind} not met within {wait.timeout:g}s"
                self._to(Event.CRASH, self.last_exit)
                await asyncio.sleep(self.clock.delay())
                self._to(Event.RETRY, "retrying")
                return False
        return True

    def _wait_check(self, wait: WaitFor) -> readiness.Check:
        env = self._probe_env()
        targets = [expand(t, env) for t in wait.targets]

        async def check() -> bool:
            for target in targets:
                if wait.kind == "path" and os.path.exists(target):
                    return True
                if wait.kind == "unix" and await readiness.unix_connects(target, 1.0):
                    return True
                if wait.kind == "tcp" and await readiness.tcp_connects(target, 1.0):
                    return True
            return False

        return check

    # -- start -------------------------------------------------------------------
    def environment(self) -> ServiceEnv:
        notify = str(self.notify.path) if self.notify is not None else None
        return self.ctx.environment(self.spec, notify, self.run_as)

    def _probe_env(self) -> dict[str, str]:
        """wait_for, probes and `finish` run as root for the init: no secrets, no user's HOME."""
        return self.ctx.environment(self.spec, None, None).public

    def _write_launch(self) -> str | None:
        """Write this start's launch file; returns a problem when a required input is missing."""
        spec = self.spec
        made = self.environment()
        if made.missing:
            return f"missing required variable(s): {', '.join(made.missing)}"
        for name, var in made.variables.items():
            if var.secret and var.value and name not in made.secret_files:
                self.ctx.add_secret(var.value)
        for path in made.secret_files.values():
            with contextlib.suppress(OSError), open(path) as f:
                self.ctx.add_secret(f.read().strip())
        env = made.env
        files = made.secret_files
        run_as = self.run_as
        in_argv = tuple(s.name for s in spec.secrets if s.argv and s.name in made.variables)
        if in_argv and not procmount.hides_other_users(procmount.read_mountinfo()):
            return (
                f"secret {', '.join(in_argv)} goes on the command line, but /proc does not"
                " hide root's processes (hidepid): keep the hide-proc step"
                " (cont-init.d/02-helix-hide-proc)"
            )
        kept = {name: f"${{{name}}}" for name in in_argv}  # svcexec fills them in at exec
        argv = tuple(expand(arg, {**env, **kept}) for arg in spec.command)
        unfit = launch_problem(argv, env)
        if unfit:
            return unfit
        launch = Launch(
            name=spec.name,
            argv=argv,
            env=env,
            secret_files=files,
            argv_secrets=in_argv,
            uid=run_as.uid if run_as else None,
            gid=run_as.gid if run_as else None,
            groups=run_as.groups if run_as else (),
            cwd=spec.working_dir,
        )
        write_private(self.ctx.paths.launch_file(spec.name), launch.to_json())
        return None

    async def _spawn(self) -> None:
        if self.notify is not None:
            self.notify.reset()
        await self._wait_group_gone()
        self._run_started = time.monotonic()
        # Shielded: a stop() that cancels us meanwhile waits for this to learn
        # what supervisord started (see _adopt_spawned) instead of missing it.
        self._starting = asyncio.ensure_future(self._start_in_engine())
        try:
            self.pid = await asyncio.shield(self._starting)
        except EngineError as exc:
            raise _Forced(f"supervisord could not start it: {exc}") from None
        finally:
            if self._starting.done():
                self._starting = None
        self.started_at = time.time()
        self._track(self.pid)
        self._exit = _pid_exit(self.pid)
        self._to(Event.SPAWN, f"pid {self.pid}")

    async def _start_in_engine(self) -> int | None:
        await self.ctx.engine.call("supervisor.startProcess", self.spec.name, False)
        info: dict[str, Any] = await self.ctx.engine.call(
            "supervisor.getProcessInfo", self.spec.name
        )
        return int(info.get("pid") or 0) or None

    async def _run_until_exit(self) -> tuple[str, int, str]:
        assert self._exit is not None
        watchers: list[asyncio.Future[tuple[str, str]]] = [
            asyncio.ensure_future(self._readiness_then_health())
        ]
        done: set[asyncio.Future[Any]] = set()
        if self.spec.stop_file:
            watchers.append(asyncio.ensure_future(self._watch_stop_file(self.spec.stop_file)))
        try:
            waits: list[asyncio.Future[Any]] = [self._exit, *watchers]
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                if watcher not in done:
                    watcher.cancel()
        # A watcher that ends has a verdict; the process is still running then.
        for watcher in watchers:
            if watcher in done:
                kind, reason = watcher.result()
                if kind == "held":
                    self._to(Event.STOP, reason)
                    await self._terminate()
                    self._to(Event.STOPPED, f"{reason}; exited")
                    raise _Held()
                self.ctx.log.warn(f"service {self.spec.name}: {reason}; stopping it")
                await self._terminate()
                raise _Forced(reason)
        return await self._exit_info()

    async def _readiness_then_health(self) -> tuple[str, str]:
        ready = self.spec.ready
        if ready is not None:
            passed = await readiness.wait_until(
                self._probe_check(ready, ready.timeout or 5.0),
                interval=ready.interval,
                timeout=ready.timeout,
                alive=lambda: self._exit is not None and not self._exit.done(),
            )
            if not passed:
                if self._exit is not None and self._exit.done():
                    await asyncio.Future()  # it died: the exit path reports it
                return "forced", f"not ready within {ready.timeout:g}s"
        self._to(Event.PROBE_OK, "ready")
        health = self.spec.health
        while health is None:
            await asyncio.Future()  # nothing more to watch; the exit ends this
        check = self._probe_check(health.probe, health.timeout)
        failures = 0
        while True:
            await asyncio.sleep(health.interval)
            failures = 0 if await check() else failures + 1
            if failures >= health.failures:
                return "forced", f"unhealthy ({failures} failed health checks)"

    def _probe_check(self, probe: Probe, timeout: float) -> readiness.Check:
        env = self._probe_env()
        target = probe.target
        kind = probe.kind
        if kind == "notify":
            assert self.notify is not None
            notify = self.notify

            async def notified() -> bool:
                notify.recheck()
                return notify.ready.is_set()

            return notified
        if kind == "command":
            argv = [expand(a, env) for a in (target if isinstance(target, tuple) else ())]
            return lambda: readiness.command_succeeds(self.ctx.reaper, argv, env, timeout)
        text = expand(str(target), env)
        if kind == "unix":
            return lambda: readiness.unix_connects(text, timeout)
        if kind == "tcp":
            return lambda: readiness.tcp_connects(text, timeout)
        if kind == "docker":
            return lambda: readiness.docker_pings(text, timeout)

        async def http_ok() -> bool:
            return await readiness.http_status(text, timeout) == probe.status

        return http_ok

    async def _watch_stop_file(self, path: str) -> tuple[str, str]:
        while not os.path.exists(path):
            await asyncio.sleep(STOP_FILE_POLL)
        return "held", f"{path} exists"

    async def _exit_info(self) -> tuple[str, int, str]:
        """supervisord's view of the exit: (statename, exitstatus, description).

        Each call also makes supervisord run its loop once, and it reaps in
        every loop, so asking is what makes it notice the exit quickly.
        """
        deadline = time.monotonic() + EXIT_INFO_TIMEOUT
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                info = await self.ctx.engine.call("supervisor.getProcessInfo", self.spec.name)
            except EngineError:
                break
            if info.get("statename") not in ("RUNNING", "STARTING", "STOPPING"):
                break
            await asyncio.sleep(0.01)
        await self._wait_group_gone()
        self.pid = None
        status = int(info.get("exitstatus", -1))
        # supervisord reports -1 for a death by signal (its log line names the signal).
        description = f"exit status {status}" if status >= 0 else "killed by a signal"
        return str(info.get("statename", "EXITED")), status, description

    async def _run_finish(self, status: int) -> None:
        if not self.spec.finish:
            return
        argv = [*self.spec.finish, str(status)]
        try:
            child = self.ctx.reaper.spawn(
                argv, name=f"{self.spec.name}-finish", env=self._probe_env()
            )
        except Exception as exc:
            self.ctx.log.warn(f"service {self.spec.name}: finish script: {exc}")
            return
        done, _ = await asyncio.wait([child.exited], timeout=FINISH_TIMEOUT)
        if not done:
            signal_group(child.pid, signal.SIGKILL)
            await asyncio.shield(child.exited)

    # -- stop ----------------------------------------------------------------------
    async def _terminate(self) -> None:
        """Stop the running process (stop_signal, KILL after stop_timeout) and its whole group."""
        if self.pid is None:
            await self._adopt_spawned()
        if self.pid is not None and self._exit is not None and not self._exit.done():
            try:
                await self.ctx.engine.call("supervisor.stopProcess", self.spec.name, False)
            except EngineError:
                self._signal_all(signal_number(self.spec.stop_signal))
            timeout = self.spec.stop_timeout + KILL_MARGIN
            done, _ = await asyncio.wait([self._exit], timeout=timeout)
            if not done:
                self.ctx.log.warn(f"service {self.spec.name}: still running; killing it all")
                self._signal_all(signal.SIGKILL)
                await asyncio.shield(self._exit)
            await self._exit_info()  # supervisord must have settled before a new start
        await self._wait_group_gone()

    async def _adopt_spawned(self) -> None:
        """A stop that cancelled _spawn() mid-call: supervisord may have started it anyway.

        Without this, `helix-init stop` during a restart answered "stopped" while
        the new process ran on, unwatched (and the next start failed with
        ALREADY_STARTED, over and over).
        """
        starting, self._starting = self._starting, None
        if starting is None:
            return
        await asyncio.wait([starting])  # its calls are bounded (engine.CALL_TIMEOUT)
        pid = None if starting.cancelled() or starting.exception() else starting.result()
        if pid is None:  # it failed half-way: ask what is running
            try:
                info = await self.ctx.engine.call("supervisor.getProcessInfo", self.spec.name)
            except EngineError:
                return  # supervisord is gone; nothing of ours runs under it
            if info.get("statename") in ("STARTING", "RUNNING", "STOPPING"):
                pid = int(info.get("pid") or 0) or None
        if pid is not None:
            self.pid, self._exit = pid, _pid_exit(pid)
            self._track(pid)

    def _track(self, pid: int | None) -> None:
        """A new run: its processes are its cgroup, or its group, session and descendants."""
        if pid is not None:
            self.procs = RunProcesses(pid, self.cgroup)
            self.procs.enter()

    def _signal_all(self, sig: int) -> None:
        if self.procs is not None:
            self.procs.signal(sig)

    def owns(self, pid: int) -> bool:
        """Whether `pid` is one of this service's processes (its notify socket asks)."""
        return self.procs is not None and pid in self.procs.members()

    def _refused(self, pid: int) -> None:
        now = time.monotonic()
        if now - self._refused_said < 60:  # once a minute: a flood must not flood the log
            return
        self._refused_said = now
        self.ctx.log.warn(
            f"service {self.spec.name}: ignored a notify message from pid {pid}, which is not"
            " one of the service's processes"
        )

    async def _wait_group_gone(self) -> None:
        """Nothing of the last run may outlive it: TERM, then KILL, what is left of it.

        "What is left" is the service's cgroup (a setsid or double-forked
        daemon cannot leave it), else its group, session and descendants seen.
        """
        procs = self.procs
        if procs is None or not procs.alive():
            return
        procs.signal(signal_number(self.spec.stop_signal))
        deadline = time.monotonic() + self.spec.stop_timeout
        while procs.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if procs.alive():
            self.ctx.log.warn(f"service {self.spec.name}: leftover processes; killing them")
            procs.signal(signal.SIGKILL)
            while procs.alive():
                await asyncio.sleep(0.05)

    # -- state -----------------------------------------------------------------------
    def _to(self, event: Event, reason: str = "") -> None:
        before = self.state
        self.state = next_state(self.state, event)
        self.reason = reason
        if self.state is State.READY or (self.state is State.EXITED and self.last_exit_ok()):
            self.ready_event.set()
        else:
            self.ready_event.clear()
        if self.state is not before:
            text = f"service {self.spec.name}: {before.value} -> {self.state.value}"
            self.ctx.log.info(f"{text} ({reason})" if reason else text)
        self.ctx.changed()

    def last_exit_ok(self) -> bool:
        return self.last_exit in ("", "exit status 0")

    def _note(self, reason: str) -> None:
        if reason != self.reason:
            self.reason = reason
            self.ctx.log.info(f"service {self.spec.name}: {reason}")
            self.ctx.changed()

    def _give_up(self, why: str) -> None:
        self._to(Event.GIVE_UP, why)
        self.ctx.log.error(f"service {self.spec.name} gave up: {why}")
        self.ctx.gave_up(self.spec.name, why)

    def status(self) -> dict[str, Any]:
        now = time.time()
        return {
            "name": self.spec.name,
            "state": self.state.value,
            "ready": self.ready_event.is_set(),
            "pid": self.pid,
            "uptime": round(now - self.started_at, 1) if self.pid and self.started_at else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit or None,
            "next_retry_in": round(self.next_retry - now, 2) if self.next_retry else None,
            "essential": self.spec.essential,
            "reason": self.reason,
            "usage": usage(self.procs.members()).as_dict() if self.procs and self.pid else None,
        }


def launch_problem(argv: tuple[str, ...], env: dict[str, str]) -> str | None:
    """What would make every start fail the same way (a step exported it): give up, loudly."""
    for name, value in env.items():
        if "\0" in value:
            return f"variable {name} holds a NUL byte, which no environment can carry"
    if any("\0" in arg for arg in argv):
        return "its command holds a NUL byte after ${VAR} expansion"
    return exec_problem(argv, env)


def _notifies(spec: ServiceSpec) -> bool:
    return spec.ready is not None and spec.ready.kind == "notify"


def _pid_exit(pid: int | None) -> asyncio.Future[None]:
    """A future that completes when `pid` exits, through a pidfd (works for non-children)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    if pid is None:
        fut.set_result(None)
        return fut
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fut.set_result(None)
        return fut

    def exited() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, exited)
    return fut
