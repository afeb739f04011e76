"""All services of a level: start them in dependency order, report readiness, stop them in reverse.

Runs in PID 1. Every enabled service gets a ServiceRunner at once; each waits
for the READY events of what it `requires`, so the start order falls out of
the graph and independent services start in parallel. Shutdown goes level by
level in reverse (services in one level stop in parallel, each with its own
stop_signal and stop_timeout), then supervisord exits.

If supervisord itself dies, its services are orphaned to us: they are stopped
(stop_signal, their full stop_timeout, then KILL: dockerd keeps its grace) and
the engine and services start again, so two copies can never run. More than
ENGINE_RESTARTS engine deaths within ENGINE_WINDOW seconds stop the container.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from helix_init.cmd import RunAs, resolve_user
from helix_init.contenv import Exports, is_secret_name
from helix_init.exitcodes import Exit
from helix_init.logsink import Log
from helix_init.reaper import Reaper
from helix_init.rootfiles import write_private
from helix_init.services.backoff import RestartClock
from helix_init.services.cgroup import clear_stale, detect_base, remove_all
from helix_init.services.engine import Engine, EngineError
from helix_init.services.environ import ServiceEnv, service_env
from helix_init.services.logtail import MIN_SECRET, LogMirror
from helix_init.services.notify import Upward
from helix_init.services.render import EnginePaths, supervisord_conf
from helix_init.services.spec import ServicePlan, ServiceSpec
from helix_init.services.state import State
from helix_init.services.supervise import ServiceContext, ServiceRunner
from helix_init.settings import Settings

ENGINE_RESTARTS = 3
ENGINE_WINDOW = 60.0


class ServiceManager:
    def __init__(
        self,
        plan: ServicePlan,
        settings: Settings,
        reaper: Reaper,
        log: Log,
        exports: Exports,
        # supervisord being started already (boot: beside cont-init), and its start
        early: tuple[Engine, asyncio.Task[bool]] | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.log = log
        self.exports = exports
        self.paths = EnginePaths(settings.run_dir, settings.service_log_dir)
        self.engine = early[0] if early else Engine(reaper, log, self.paths)
        self._early_start = early[1] if early else None
        self.mirror = LogMirror(log)
        self.upward = Upward(settings.environ.get("NOTIFY_SOCKET"))
        self.all_ready = asyncio.Event()
        self.cmd_may_start = asyncio.Event()  # every `before_cmd` service ready
        self.ended: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.runners: dict[str, ServiceRunner] = {}
        self._engine_deaths: list[float] = []
        self._engine_watch: asyncio.Task[None] | None = None
        self._shutting_down = False
        self._told_ready = False
        # Variables a service takes a secret from: only that service gets it.
        self.secret_sources = frozenset(
            s.env for spec in plan.services for s in spec.secrets if s.env
        )
        self._hidden = self.secret_sources | {"NOTIFY_SOCKET"}
        enabled = [s for s in plan.services if s.enabled]
        ctx = ServiceContext(
            reaper=reaper,
            log=log,
            engine=self.engine,
            paths=self.paths,
            environment=self.environment,
            ready_event=lambda name: r.ready_event if (r := self.runners.get(name)) else None,
            changed=self._changed,
            gave_up=self._gave_up,
            add_secret=self.mirror.mask,
            cgroups=detect_base(),
        )
        self._cgroups = ctx.cgroups
        for spec in enabled:
            self.runners[spec.name] = ServiceRunner(
                spec, ctx, _run_as(spec), RestartClock(spec.backoff)
            )

    def environment(
        self, spec: ServiceSpec, notify_socket: str | None = None, run_as: RunAs | None = None
    ) -> ServiceEnv:
        return service_env(
            spec, self.exports, self._hidden, self.settings.environ, notify_socket, run_as
        )

    def describe_environment(self, name: str) -> tuple[bool, Any]:
        """`helix-init env NAME`: [name, shown value, origin] rows, secrets masked; or why not."""
        runner = self.runners.get(name)
        if runner is None:
            return False, self._no_such(name)
        made = runner.environment()
        named = {v.value for n, v in made.variables.items() if is_secret_name(n)}
        secrets = self.mirror.secrets | {v for v in named if len(v) >= MIN_SECRET}
        rows = [[n, v.shown(n, secrets), v.origin] for n, v in sorted(made.variables.items())]
        return True, {"variables": rows, "missing": list(made.missing)}

    # -- start ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start supervisord and every service; returns at once (readiness comes later)."""
        p = self.paths
        for folder, mode in ((p.launch_dir, 0o700), (p.notify_dir, 0o755)):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, mode)
        p.log_dir.mkdir(parents=True, exist_ok=True)
        specs = [r.spec for r in self.runners.values()]
        conf = supervisord_conf(
            p, specs, self.settings.service_log_maxbytes, self.settings.service_log_backups
        )
        write_private(p.conf, conf)
        for spec in self.plan.services:
            if not spec.enabled:
                self.log.info(f"service {spec.name}: disabled ({spec.disabled_reason})")
        if self._cgroups is not None:
            clear_stale(self._cgroups)
        for name in self.runners:
            self.mirror.follow(name, p.log_file(name))
        self.mirror.start()
        started = self._early_start is not None and await self._early_start
        if started and self.engine.alive:  # started while cont-init ran: it learns its programs
            await self._adopt_engine()
        else:
            await self._start_engine()
        for runner in self.runners.values():
            runner.begin()
        self._changed()

    async def _adopt_engine(self) -> None:
        """supervisorctl's `update`: reread the conf just written, add its programs."""
        try:
            ((added, _changed, _removed),) = await self.engine.call("supervisor.reloadConfig")
            for name in added:
                await self.engine.call("supervisor.addProcessGroup", name)
        except EngineError as exc:
            self._end(Exit.ENGINE_LOST, f"supervisord: {exc}")
            raise
        self._engine_watch = asyncio.get_running_loop().create_task(self._watch_engine())

    async def _start_engine(self, *, restart: bool = False) -> None:
        try:
            await self.engine.start(Engine.environment(self.settings.environ))
        except EngineError as exc:
            if not restart:  # a restart that fails is one more death, counted by the caller
                self._end(Exit.ENGINE_LOST, f"supervisord: {exc}")
            raise
        self._engine_watch = asyncio.get_running_loop().create_task(self._watch_engine())

    async def _watch_engine(self) -> None:
        assert self.engine.child is not None
        code = await asyncio.shield(self.engine.child.exited)  # a cancel must not cancel the exit
        if self._shutting_down:
            return
        self.log.error(f"supervisord died (code {code}); stopping its services before a restart")
        # What was meant to run comes back, held by a stop file too (it is held
        # again, and starts once the file is gone); not what was stopped on
        # request, nor what had finished (a one-shot that exited, or a service
        # that gave up must not get a second life from a supervisord crash).
        wanted = [
            n
            for n, r in self.runners.items()
            if not r.stop_requested and r.state not in (State.EXITED, State.FAILED)
        ]
        await self._stop_levels("supervisord died", engine_lost=True)
        # A supervisord that dies again while it starts is one more death within
        # the budget, not the end: before, one KILL during a restart ended the
        # container (exit 82) with most of its restart budget unused.
        while True:
            now = time.monotonic()
            self._engine_deaths = [t for t in self._engine_deaths if now - t < ENGINE_WINDOW]
            self._engine_deaths.append(now)
            if len(self._engine_deaths) > ENGINE_RESTARTS:
                self._end(Exit.ENGINE_LOST, f"supervisord died {len(self._engine_deaths)} times")
                return
            try:
                await self._start_engine(restart=True)
                break
            except EngineError as exc:
                self.log.error(f"supervisord did not come back: {exc}")
                await self.engine.stop()  # one that hangs instead of answering
        for name in wanted:
            await self.runners[name].start()

    # -- readiness -------------------------------------------------------------------
    def _changed(self) -> None:
        if self._shutting_down:
            return

        def ok(r: ServiceRunner) -> bool:  # an operator's stop is not a failure
            return r.ready_event.is_set() or r.state is State.STOPPED

        if all(ok(r) for r in self.runners.values() if r.spec.before_cmd):
            self.cmd_may_start.set()
        ready = all(ok(r) for r in self.runners.values())
        if ready and not self.all_ready.is_set():
            self.all_ready.set()
            self.settings.ready_path.write_text(f"{time.time():.3f}\n")
            if not self._told_ready:
                self._told_ready = True
                self.upward.send("READY=1")
                self.log.info(f"all {len(self.runners)} service(s) ready")
        elif not ready and self.all_ready.is_set():
            self.all_ready.clear()
            self.settings.ready_path.unlink(missing_ok=True)

    def _gave_up(self, name: str, why: str) -> None:
        if self.runners[name].spec.essential:
            self._end(Exit.SERVICE_GAVE_UP, f"essential service {name} gave up: {why}")

    def _end(self, code: int, message: str) -> None:
        if not self.ended.done():
            self.ended.set_result((code, message))

    # -- stop ------------------------------------------------------------------------
    async def stop_all(self) -> None:
        self._shutting_down = True
        self.upward.send("STOPPING=1")
        self.settings.ready_path.unlink(missing_ok=True)
        if self._engine_watch is not None:
            self._engine_watch.cancel()
        await self._stop_levels("shutdown", final=True)
        await self.engine.stop()
        self.mirror.stop()
        for runner in self.runners.values():
            if runner.notify is not None:
                runner.notify.close()
        if self._cgroups is not None:
            made = [r.cgroup for r in self.runners.values() if r.cgroup is not None]
            if not await remove_all(made, self._cgroups):
                self.log.warn(f"could not remove the service cgroups under {self._cgroups}")

    async def _stop_levels(
        self, why: str, *, final: bool = False, engine_lost: bool = False
    ) -> None:
        for level in self.plan.stop_levels:
            runners = [self.runners[n] for n in level if n in self.runners]
            await asyncio.gather(
                *(r.stop(why, final=final, engine_lost=engine_lost) for r in runners)
            )

    # -- control -----------------------------------------------------------------------
    def status(self, with_usage: bool = True) -> dict[str, Any]:
        return {
            "ready": self.all_ready.is_set(),
            "services": [r.status(with_usage) for r in self.runners.values()],
            "disabled": [
                {"name": s.name, "reason": s.disabled_reason}
                for s in self.plan.services
                if not s.enabled
            ],
            "engine": {
                "pid": self.engine.child.pid if self.engine.alive and self.engine.child else None,
                "restarts": len(self._engine_deaths),
            },
            "cgroups": str(self._cgroups) if self._cgroups else None,
        }

    async def control(self, action: str, name: str) -> tuple[bool, str]:
        runner = self.runners.get(name)
        if runner is None:
            return False, self._no_such(name)
        if action in ("stop", "restart"):
            await runner.stop(f"{action} requested")
        if action in ("start", "restart"):
            await runner.start()
        return True, f"{name}: {runner.state.value}"

    def _no_such(self, name: str) -> str:
        spec = next((s for s in self.plan.services if s.name == name), None)
        if spec is not None:
            return f"service {name} is disabled ({spec.disabled_reason})"
        import difflib  # only for a mistyped name: not loaded at every boot with services

        close = difflib.get_close_matches(name, list(self.runners), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"no enabled service {name!r}{hint}"


def _run_as(spec: ServiceSpec) -> RunAs | None:
    if spec.user is None and spec.group is None:
        return None
    user = spec.user or "root"
    return resolve_user(f"{user}:{spec.group}" if spec.group else user)
