"""One service under the init: the adapter that performs what its state machine asks.

Runs in PID 1, one asyncio task per service. machine.py decides (a table of
state x event -> action, pure); this performs each Effect and reports what
happened as the next Event: the gate (requires, stop file, wait_for), the
spawn through supervisord (typed calls, engine.Programs), the watch
(readiness, health, stop file, and the exit through a pidfd: no polling, no
second waiter on a child that is not ours), the finish program, the stop.
A service's processes are its cgroup, or its group, session and descendants
(cgroup.py); it never starts again while any of them is alive, so there are
never two copies of a daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from asyncio import FIRST_COMPLETED
from collections import deque
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
from helix_init.services.engine import EngineError, ProcessInfo, Programs
from helix_init.services.environ import ServiceEnv
from helix_init.services.limits import exec_problem
from helix_init.services.machine import Do, Effect, Event, Machine, Policy, RunEnd, Verdict
from helix_init.services.notify import NotifyListener
from helix_init.services.probes import Probe
from helix_init.services.render import EnginePaths, Launch, signal_number
from helix_init.services.spec import ServiceSpec
from helix_init.services.state import State
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
    engine: Programs  # supervisord, through three typed calls
    paths: EnginePaths
    environment: Callable[[ServiceSpec, str | None, RunAs | None], ServiceEnv]
    ready_event: Callable[[str], asyncio.Event | None]
    changed: Callable[[], None]
    gave_up: Callable[[str, str], None]
    add_secret: Callable[[str], None]
    cgroups: Path | None = None  # where service cgroups go; None: track descendants


@dataclass(frozen=True)
class _Prepared:
    """One start's launch, built off the loop: the files' text, what to mask, the probes' env."""

    json: str
    script: str
    secrets: list[str]
    probe_env: dict[str, str]


class _SpawnFailed(Exception):
    """supervisord would not start it."""


Happened = tuple[Event, dict[str, object]]


class ServiceRunner:
    """The adapter: performs what the machine asks (Effect) and reports what happened (Event)."""

    def __init__(
        self, spec: ServiceSpec, ctx: ServiceContext, run_as: RunAs | None, clock: RestartClock
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.run_as = run_as
        policy = Policy(spec.restart, spec.essential, spec.max_restarts, bool(spec.finish))
        self.machine = Machine(policy, clock, time.monotonic)
        self.pid: int | None = None
        self.started_at: float | None = None  # wall clock, for status
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
        self._starting: asyncio.Future[int | None] | None = None  # a start in supervisord
        self._run_probe_env: dict[str, str] | None = None  # see _probe_env
        self._launch_written: tuple[str, str] | None = None  # see _write_launch
        # One stop or start at a time. An operator's stop, the shutdown and a
        # supervisord restart can overlap (`helix-init stop dockerd` waits up to
        # its stop_timeout, and `docker stop` may arrive meanwhile).
        self._control = asyncio.Lock()

    # -- what the rest of the init reads -------------------------------------------
    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def reason(self) -> str:
        return self.machine.reason

    @property
    def stop_requested(self) -> bool:
        """Stopped by stop(), not merely held by its stop file or by a supervisord death."""
        return not self.machine.wanted

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- control ---------------------------------------------------------------------
    def begin(self) -> None:
        if self.cgroup is not None and not self.cgroup.create():
            self.ctx.log.warn(f"service {self.spec.name}: cannot make {self.cgroup.path}")
            self.cgroup = None
        if self.notify is not None and self.notify._sock is None:
            self.notify.open(self.run_as.uid if self.run_as else None)
        self._drive(Event.BEGIN)

    async def stop(self, why: str, *, final: bool = False, engine_lost: bool = False) -> None:
        """Stop for good (operator, shutdown): no restart until start() is called.

        `final` (the shutdown) also refuses every later start: an operator's
        start queued behind the shutdown's stop must not spawn it again.
        `engine_lost`: supervisord died; it comes back with the engine.
        """
        async with self._control:
            await self._cancel_life()
            event = Event.ENGINE_LOST if engine_lost else Event.STOP
            effects = self._handle(event, why=why, final=final)
            if not effects and self.state is State.STOPPING:  # a stop it was cancelled in
                effects = [Effect(Do.TERMINATE, why=why)]
            await self._perform_all(effects)

    async def start(self) -> None:
        """Start again after a stop (operator, supervisord restart); a no-op while it runs."""
        async with self._control:
            if self.active:
                return
            self._drive(Event.START, why="start requested")

    async def _cancel_life(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _drive(self, event: Event, **data: object) -> None:
        effects = self._handle(event, **data)
        if effects:
            self._task = asyncio.get_running_loop().create_task(self._perform_all(effects))

    # -- the machine and the effects ---------------------------------------------------
    def _handle(self, event: Event, **data: object) -> list[Effect]:
        m = self.machine
        before = m.state
        effects = m.handle(event, **data)
        if m.ready:
            self.ready_event.set()
        else:
            self.ready_event.clear()
        if m.state is not before:
            text = f"service {self.spec.name}: {before.value} -> {m.state.value}"
            self.ctx.log.info(f"{text} ({m.reason})" if m.reason else text)
        self.ctx.changed()
        return effects

    async def _perform_all(self, effects: list[Effect]) -> None:
        todo = deque(effects)
        while todo:
            happened = await self._perform(todo.popleft())
            if happened is not None:
                todo.extend(self._handle(happened[0], **happened[1]))

    async def _perform(self, effect: Effect) -> Happened | None:
        if effect.do is Do.GATE:
            return await self._gate()
        if effect.do is Do.SPAWN:
            return await self._spawn()
        if effect.do is Do.WATCH:
            return await self._watch()
        if effect.do is Do.TERMINATE:
            if self.state in (State.STARTING, State.READY):  # the init ends this run
                self.ctx.log.warn(f"service {self.spec.name}: {effect.why}")
            await self._terminate()
            return Event.STOPPED, {}
        if effect.do is Do.FINISH:
            assert effect.end is not None
            return Event.FINISHED, {"code": await self._run_finish(effect.end)}
        if effect.do is Do.SLEEP:
            await asyncio.sleep(effect.delay)
            return Event.RETRY, {}
        if effect.do is Do.AWAIT_RELEASE:
            assert self.spec.stop_file is not None
            self._note(f"held while {self.spec.stop_file} exists")
            while os.path.exists(self.spec.stop_file):
                await asyncio.sleep(STOP_FILE_POLL)
            return Event.RELEASED, {"path": self.spec.stop_file}
        self.ctx.log.error(f"service {self.spec.name} gave up: {effect.why}")
        self.ctx.gave_up(self.spec.name, effect.why)
        return None

    async def _gate(self) -> Happened:
        """Requires, stop file and wait_for: GATE_OPEN, HELD or WAIT_TIMEOUT."""
        for dep in self.spec.requires:
            event = self.ctx.ready_event(dep)
            if event is not None and not event.is_set():
                self._note(f"waiting for {dep} to be ready")
                await event.wait()
        stop_file = self.spec.stop_file
        if stop_file and os.path.exists(stop_file):
            # Held by the stop file is "stopped", as after `helix-init stop`: a
            # snapshot script waiting for "stopped" (COMPAT /tmp/.dockerd-stop)
            # sees it, and a held service no longer holds the CMD.
            return Event.HELD, {"path": stop_file}
        env = await asyncio.to_thread(self._probes_environment) if self.spec.wait_for else {}
        for wait in self.spec.wait_for:
            self._note(f"waiting for {wait.kind} {' or '.join(wait.targets)}")
            check = readiness.wait_for_check(wait.kind, [expand(t, env) for t in wait.targets])
            if not await readiness.wait_until(
                check, interval=0.1, timeout=wait.timeout, alive=lambda: True
            ):
                return Event.WAIT_TIMEOUT, {
                    "why": f"wait_for {wait.kind} not met within {wait.timeout:g}s"
                }
        return Event.GATE_OPEN, {}

    def environment(self) -> ServiceEnv:
        notify = str(self.notify.path) if self.notify is not None else None
        return self.ctx.environment(self.spec, notify, self.run_as)

    def _probe_env(self) -> dict[str, str]:
        """wait_for, probes and `finish` run as root for the init: no secrets, no user's HOME.

        This run's, built with its launch off the event loop (_spawn); built here before any.
        """
        if self._run_probe_env is not None:
            return self._run_probe_env
        return self._probes_environment()

    def _probes_environment(self) -> dict[str, str]:
        return self.ctx.environment(self.spec, None, None).public

    def _prepare_launch(self) -> _Prepared | str:
        """This start's launch, or the problem that stops every start (a worker thread runs it).

        Pure but for reads (secret files, mountinfo): what it shares with the
        loop (the secrets to mask, the files) the caller applies on the loop.
        """
        spec = self.spec
        made = self.environment()
        if made.missing:
            return f"missing required variable(s): {', '.join(made.missing)}"
        secrets = [
            var.value
            for name, var in made.variables.items()
            if var.secret and var.value and name not in made.secret_files
        ]
        for path in made.secret_files.values():
            with contextlib.suppress(OSError), open(path) as f:
                secrets.append(f.read().strip())
        env = made.env
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
            secret_files=made.secret_files,
            argv_secrets=in_argv,
            uid=run_as.uid if run_as else None,
            gid=run_as.gid if run_as else None,
            groups=run_as.groups if run_as else (),
            cwd=spec.working_dir,
            cgroup=str(self.cgroup.path) if self.cgroup else None,
        )
        json_file = self.ctx.paths.launch_file(spec.name)
        probes = self._probes_environment()
        return _Prepared(launch.to_json(), launch.script(json_file), secrets, probes)

    async def _spawn(self) -> Happened:
        """Write the launch file and start it: SPAWNED, SPAWN_FAILED or BAD_LAUNCH."""
        # In a worker thread: a 24,000-variable environment is ~0.16 s of
        # building and checking, and PID 1's loop (signals, other services,
        # the control socket) must not wait for it. A stop meanwhile cancels
        # only the wait: the thread has no side effect to undo.
        prepared = await asyncio.to_thread(self._prepare_launch)
        if isinstance(prepared, str):
            return Event.BAD_LAUNCH, {"why": prepared}
        for secret in prepared.secrets:
            self.ctx.add_secret(secret)
        self._run_probe_env = prepared.probe_env
        self._write_launch(prepared)
        if self.notify is not None:
            self.notify.reset()
        await self._wait_group_gone()
        # Shielded: a stop() that cancels us meanwhile waits for this to learn
        # what supervisord started (see _adopt_spawned) instead of missing it.
        self._starting = asyncio.ensure_future(self._start_in_engine())
        try:
            self.pid = await asyncio.shield(self._starting)
        except EngineError as exc:
            self._starting = None
            return Event.SPAWN_FAILED, {"why": f"supervisord could not start it: {exc}"}
        # Not in a `finally`: a stop can cancel this wait after the start has
        # answered but before its pid is read here; the start is then done and
        # only _adopt_spawned reads it (clearing it when done lost that pid).
        self._starting = None
        self.started_at = time.time()
        self._track(self.pid)
        self._exit = _pid_exit(self.pid)
        return Event.SPAWNED, {"why": f"pid {self.pid}"}

    def _write_launch(self, prepared: _Prepared) -> None:
        """The launch files, unless they hold this start's already (a crash loop's do).

        Rewriting them (two atomic replaces) was 1-4 ms of a ~15 ms restart.
        """
        files = (
            self.ctx.paths.launch_file(self.spec.name),
            self.ctx.paths.launch_script(self.spec.name),
        )
        texts = (prepared.json, prepared.script)
        if texts == self._launch_written and all(f.exists() for f in files):
            return
        for path, text in zip(files, texts, strict=True):
            write_private(path, text)
        self._launch_written = texts

    async def _start_in_engine(self) -> int | None:
        return (await self.ctx.engine.start_program(self.spec.name)).pid

    async def _watch(self) -> Happened:
        """Until something happens to the run: READY, NOT_READY, UNHEALTHY, HELD or its exit."""
        assert self._exit is not None
        if self.state is State.STARTING:
            watcher = asyncio.ensure_future(self._readiness())
        else:
            watcher = asyncio.ensure_future(self._health())
        watchers: list[asyncio.Future[Happened]] = [watcher]
        if self.spec.stop_file:
            watchers.append(asyncio.ensure_future(self._watch_stop_file(self.spec.stop_file)))
        try:
            waits: list[asyncio.Future[Any]] = [self._exit, *watchers]
            done, _ = await asyncio.wait(waits, return_when=FIRST_COMPLETED)
        finally:
            for w in watchers:
                w.cancel()
        if self._exit in done:
            return await self._ended()
        for w in watchers:  # a verdict while the process still runs
            if w in done:
                return w.result()
        raise AssertionError("asyncio.wait returned nothing")

    async def _readiness(self) -> Happened:
        ready = self.spec.ready
        if ready is None:
            return Event.READY, {}
        passed = await readiness.wait_until(
            self._probe_check(ready, ready.timeout or 5.0),
            interval=ready.interval,
            timeout=ready.timeout,
            alive=lambda: self._exit is not None and not self._exit.done(),
        )
        if passed:
            return Event.READY, {}
        await asyncio.shield(self._exit or asyncio.Future())  # it died: its exit says so
        return Event.NOT_READY, {"why": f"not ready within {ready.timeout:g}s"}

    async def _health(self) -> Happened:
        health = self.spec.health
        if health is None:
            await asyncio.Future()  # nothing to watch; the exit ends this
        assert health is not None
        check = self._probe_check(health.probe, health.timeout)
        failures = 0
        while True:
            await asyncio.sleep(health.interval)
            failures = 0 if await check() else failures + 1
            if failures >= health.failures:
                return Event.UNHEALTHY, {"why": f"unhealthy ({failures} failed health checks)"}

    def _probe_check(self, probe: Probe, timeout: float) -> readiness.Check:
        notified = None
        if self.notify is not None:
            notify = self.notify

            def notified() -> bool:
                notify.recheck()
                return notify.ready.is_set()

        return readiness.probe_check(probe, timeout, self._probe_env(), self.ctx.reaper, notified)

    async def _watch_stop_file(self, path: str) -> Happened:
        while not os.path.exists(path):
            await asyncio.sleep(STOP_FILE_POLL)
        return Event.HELD, {"path": path}

    async def _ended(self) -> Happened:
        """The run's first process is gone: EXITED with how, or stopped behind our back."""
        info = await self._exit_info()
        if info is not None and info.state == "STOPPED":  # supervisorctl stop
            return Event.ENGINE_STOPPED, {}
        return Event.EXITED, {"end": _run_end(info)}

    async def _exit_info(self) -> ProcessInfo | None:
        """supervisord's view of the exit, once it has one (None: it does not answer).

        Each call also makes supervisord run its loop once, and it reaps in
        every loop, so asking is what makes it notice the exit quickly.
        """
        deadline = time.monotonic() + EXIT_INFO_TIMEOUT
        info: ProcessInfo | None = None
        while time.monotonic() < deadline:
            try:
                info = await self.ctx.engine.program(self.spec.name)
            except EngineError:
                break
            if info.state not in ("RUNNING", "STARTING", "STOPPING"):
                break
            await asyncio.sleep(0.01)
        await self._wait_group_gone()
        self.pid = None
        return info

    async def _run_finish(self, end: RunEnd) -> int | None:
        """The finish program, given the exit status; its exit code (None: it was KILLed)."""
        assert self.spec.finish is not None
        argv = [*self.spec.finish, str(end.status)]
        try:
            child = self.ctx.reaper.spawn(
                argv, name=f"{self.spec.name}-finish", env=self._probe_env()
            )
        except Exception as exc:
            self.ctx.log.warn(f"service {self.spec.name}: finish script: {exc}")
            return None
        done, _ = await asyncio.wait([child.exited], timeout=FINISH_TIMEOUT)
        if not done:
            signal_group(child.pid, signal.SIGKILL)
            await asyncio.shield(child.exited)
            return None
        code = child.exited.result()
        return code if isinstance(code, int) else None

    # -- stop ----------------------------------------------------------------------
    async def _terminate(self) -> None:
        """Stop the running process (stop_signal, KILL after stop_timeout) and all the rest."""
        # A start in flight is adopted even when self.pid is set: that is then the
        # last run's, whose exit a stop had already seen (it left pid as it was).
        if self.pid is None or self._starting is not None:
            await self._adopt_spawned()
        if self.pid is not None and self._exit is not None and not self._exit.done():
            try:
                await self.ctx.engine.stop_program(self.spec.name)
            except EngineError:
                self._signal_all(signal_number(self.spec.stop_signal))
            timeout = self.spec.stop_timeout + KILL_MARGIN
            done, _ = await asyncio.wait([self._exit], timeout=timeout)
            if not done:
                self.ctx.log.warn(f"service {self.spec.name}: still running; killing it all")
                self._signal_all(signal.SIGKILL)
                await asyncio.shield(self._exit)
            info = await self._exit_info()  # supervisord must have settled before a new start
            if self.spec.finish is not None:  # after every end of a run, as s6 runs ./finish
                await self._run_finish(_run_end(info))
        await self._wait_group_gone()
        self.pid = None

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
                info = await self.ctx.engine.program(self.spec.name)
            except EngineError:
                return  # supervisord is gone; nothing of ours runs under it
            if info.state in ("STARTING", "RUNNING", "STOPPING"):
                pid = info.pid
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
    def _note(self, reason: str) -> None:
        if reason != self.machine.reason:
            self.machine.reason = reason
            self.ctx.log.info(f"service {self.spec.name}: {reason}")
            self.ctx.changed()

    def status(self, with_usage: bool = True) -> dict[str, Any]:
        """What `status` shows; `with_usage`: the processes' CPU, memory and fds (psutil)."""
        m = self.machine
        now = time.time()
        retry = m.next_retry_at - time.monotonic() if m.next_retry_at is not None else None
        return {
            "name": self.spec.name,
            "state": m.state.value,
            "ready": self.ready_event.is_set(),
            "pid": self.pid,
            "uptime": round(now - self.started_at, 1) if self.pid and self.started_at else None,
            "restarts": m.restarts,
            "last_exit": m.last_end.describe() if m.last_end else None,
            "next_retry_in": round(max(0.0, retry), 2) if retry is not None else None,
            "essential": self.spec.essential,
            "reason": m.reason,
            "usage": (
                usage(self.procs.members()).as_dict()
                if with_usage and self.procs and self.pid
                else None
            ),
        }


def _run_end(info: ProcessInfo | None) -> RunEnd:
    """How a run ended, from supervisord's view of it (None: it did not answer)."""
    status = info.exitstatus if info is not None else -1
    if status == 0:
        return RunEnd(Verdict.OK, 0)
    if status > 0:
        return RunEnd(Verdict.FAILED, status)
    return RunEnd(Verdict.KILLED)  # supervisord reports -1 for a death by signal


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
