"""Boot: a container's life in stages, in order (the lifecycle of DESIGN.md).

Runs in PID 1 as root. `Boot.run` reads as the table of contents:

  stage 0  preflight   PID-1 duties first (reaping, signals: reaper.Duties) so
                       nothing started later can leave a zombie or miss a signal;
                       then every drop-in is validated before any side effect,
                       so bad input starts nothing.
  stage 1  cont-init   one-shot steps in order (steprunner.py); their exports
                       reach everything later.
  stage 2  services    (services.d) started in dependency order, gated on readiness.
                       An s6-overlay image's oneshots that need longruns run once
                       those are ready (s6/stage.py), still in this stage.
  stage 3  running     the CMD, if any; its end ends the container.
  stage 4  shutdown    CMD, services in reverse order, cont-finish.d, then TERM and
                       KILL for whatever is left (Duties.sweep), then the exit code.

The stage is timeline.Stage; `helix-init status` shows it and when each stage
and step began and how long it took (timeline.py). Control requests are
dispatched by control.py to the handlers here; the run dir's names are rundir.py's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helix_init import cmd as cmdmod
from helix_init import control, rundir, sigmask, usersetup
from helix_init.contenv import Exports
from helix_init.dind.plancheck import problems_from_env as dind_problems
from helix_init.dropins import Step, discover_steps
from helix_init.exitcodes import Exit, from_wait_status
from helix_init.logsink import Log
from helix_init.problems import ConfigError, Problem
from helix_init.procgroup import signal_group
from helix_init.reaper import Child, Duties, Reaper, SpawnError
from helix_init.rootfiles import temporary, write_private
from helix_init.settings import (
    CMD_USER,
    RUN_DIR,
    SERVICE_LOG_DIR,
    OnStepFailure,
    Settings,
    revdial,
)
from helix_init.settings import user as user_settings
from helix_init.settings.s6 import S6Config
from helix_init.settings.sibling import problems_from_env
from helix_init.steprunner import StepResult, StepRunner, run_folder
from helix_init.timeline import Stage, Timeline, seconds_since_exec

if TYPE_CHECKING:  # services.d's parser and the engine client load only when services exist
    from helix_init.s6.stage import Runtime, S6Plan
    from helix_init.services.engine import Engine
    from helix_init.services.manager import ServiceManager
    from helix_init.services.notify import Upward
    from helix_init.services.spec import Fingerprint, ServicePlan, ServiceSpec


@dataclass(frozen=True)
class BootPlan:
    """Everything validated before the first side effect."""

    cont_init: tuple[Step, ...]
    cont_finish: tuple[Step, ...]
    services: ServicePlan
    cmd: tuple[str, ...]
    startup_script: bool = False  # COMPAT: the CMD is GOW's startup script (cmd.py)
    s6: S6Plan | None = None  # an s6-overlay image's tree and runtime duties (s6/stage.py)
    # services.d as read (files -> specs), resolved again after cont-init (start_services),
    # and what it looked like then: a step that changes it has it read again.
    service_specs: tuple[ServiceSpec, ...] = ()
    services_seen: Fingerprint = ()


def _installed(program: str, settings: Settings) -> bool:
    """On the container's PATH, as the step that uses it will look (shutil stays out of PID 1)."""
    return any(
        os.access(os.path.join(folder, program), os.X_OK)
        for folder in os.get_exec_path(dict(settings.environ))
    )


def make_plan(settings: Settings, cmd: Sequence[str]) -> BootPlan:
    """Validate drop-ins and settings; raises ConfigError listing every problem."""
    cont_init, problems = discover_steps(settings.cont_init_dir)
    cont_finish, more = discover_steps(settings.cont_finish_dir)
    problems += more
    # services.d read once; resolved now as far as it can be before the steps ran
    # (`plan` says what waits for them), and again after cont-init.
    from helix_init.services.resolve import plan_of, resolve_specs  # not the engine client
    from helix_init.services.spec import ServicePlan, fingerprint, read_specs

    seen = fingerprint(settings.services_dir)
    specs, unread = read_specs(settings.services_dir)
    resolved, pending, more = resolve_specs(specs, settings.environ, before_cont_init=True)
    problems += unread + more
    services = ServicePlan() if unread else plan_of(resolved, pending)  # (a cycle: no levels)
    s6 = None
    if S6Config.from_env(settings.environ).active:  # an s6-rc.d tree, or S6_* variables
        from helix_init.s6 import stage as s6stage

        s6, more = s6stage.plan(settings.environ, services)
        problems += more
        try:
            services = s6stage.with_longruns(services, s6)
        except ConfigError as exc:
            problems += exc.problems
    problems += user_settings.problems(settings.environ)  # PUID, PGID, UNAME, UMASK
    problems += revdial.problems_from_env(settings.environ, _installed("revdial-client", settings))
    # Checked now, resolved when the CMD starts (see run_main).
    user = settings.cmd_user
    if user and not usersetup.will_create(settings.environ, user.partition(":")[0]):
        try:
            cmdmod.resolve_user(user)
        except KeyError as exc:
            problems.append(Problem(CMD_USER, str(exc.args[0])))
    problems += problems_from_env(settings.environ)  # sibling-dockerd mode variables
    problems += dind_problems(settings.environ)  # DinD variables, HELIX_DOCKERD_CONFIG's file
    if problems:
        raise ConfigError(problems)
    if s6 is not None:
        cont_init = list(s6.cont_init(cont_init))  # S6_STAGE2_HOOK, cont-init.d, first oneshots
        cont_finish = list(s6.cont_finish(cont_finish))  # the oneshots' down lines, cont-finish.d
        cmd = s6.cmd(cmd)  # S6_CMD_ARG0
    argv, startup_script = cmdmod.plan_argv(cmd, settings)
    return BootPlan(
        tuple(cont_init), tuple(cont_finish), services, tuple(argv), startup_script, s6, specs, seen
    )


class Boot:
    def __init__(self, settings: Settings, log: Log, held: sigmask.Held | None = None) -> None:
        self.settings = settings
        self.log = log
        self.held = held
        self.loop = asyncio.get_running_loop()
        self.reaper = Reaper(self.loop, sigmask.keep_ignored(held.ignored if held else ()))
        self.duties = Duties(self.reaper, log, held, self.on_stop_signal, lambda: self.cmd)
        self.stop_requested = asyncio.Event()
        self.exit_code: int | None = None  # the first cause of the end wins
        self.cmd: Child | None = None
        # NOTIFY_SOCKET is ours (sd_notify upward), not our children's.
        base = {k: v for k, v in settings.environ.items() if k != "NOTIFY_SOCKET"}
        self.exports = Exports(base)
        self.runner: StepRunner | None = None
        self.services: ServiceManager | None = None
        self.upward: Upward | None = None  # sd_notify upward when there is no service manager
        self.s6: Runtime | None = None
        # supervisord, started beside cont-init (start_engine_early), and its start
        self.early_engine: tuple[Engine, asyncio.Task[bool]] | None = None
        self.timeline = Timeline(since_exec=seconds_since_exec())

    @property
    def stage(self) -> Stage:
        return self.timeline.stage

    async def run(self, cmd: Sequence[str]) -> int:
        """The table of contents: the stages in order (the module docstring says what each is)."""
        preflight = await self.preflight(cmd)  # stage 0
        if isinstance(preflight, int):
            return preflight  # bad drop-ins or an unusable run dir: nothing was started
        plan, server = preflight
        try:
            await self.run_cont_init(plan)  # stage 1
            if self.running():
                await self.start_services(plan)  # stage 2
            if self.running() and plan.s6 is not None and plan.s6.stages.late:
                await self.run_late_oneshots(plan)  # s6-rc oneshots that need longruns
            if self.running():
                await self.run_main(plan)  # stage 3
        finally:
            server.close()
            await self.shutdown(plan)  # stage 4, whatever happened above
        code = Exit.OK if self.exit_code is None else self.exit_code
        # s6-overlay: a finish script may have written the exit code to a file.
        return self.s6.final_code(code) if self.s6 else code

    # -- stage 0 -------------------------------------------------------------
    async def preflight(self, cmd: Sequence[str]) -> tuple[BootPlan, asyncio.AbstractServer] | int:
        """PID-1 duties first, then everything validated: the plan, or the exit code if bad."""
        self.timeline.enter(Stage.PREFLIGHT)
        self.duties.take()  # reaping and signals before anything can start a child
        try:
            plan = make_plan(self.settings, cmd)
        except ConfigError as exc:
            for problem in exc.problems:
                self.log.error(str(problem))
            self.log.error(f"invalid drop-ins: nothing was started (exit {Exit.CONFIG.value})")
            return Exit.CONFIG
        # A read-only or full run dir, a socket path too long for AF_UNIX: one
        # line and exit 73 before anything ran, not a traceback and exit 70.
        why = self.prepare_folders(plan)
        if why is None:
            try:
                server = await control.serve(self.settings.sock_path, self.control_requests())
            except OSError as exc:
                sock = self.settings.sock_path
                why = f"{RUN_DIR}: cannot serve {sock}: {exc.strerror or exc}"
        if why is None and plan.s6 is not None:  # container_environment, halt, results
            from helix_init.s6.stage import Runtime

            self.s6 = Runtime(plan.s6, self.log)
            why = self.s6.boot(self.exports)
            if why is not None:
                server.close()
        if why is not None:
            self.log.error(f"{why}; nothing was started (exit {Exit.CANT_CREATE.value})")
            return Exit.CANT_CREATE
        return plan, server

    def on_stop_signal(self, sig: int) -> None:
        if self.stop_requested.is_set():
            self.log.info(f"got {sigmask.name(sig)} again; shutdown is already under way")
            return
        self.log.info(f"got {sigmask.name(sig)}: graceful shutdown")
        self.stop_requested.set()
        if self.runner is not None:
            self.runner.stop_current()

    def prepare_folders(self, plan: BootPlan) -> str | None:
        """Make HELIX_INIT_RUN_DIR ours again, and the service log folder; why not, if we cannot.

        What the init keeps in the run dir is removed first, whatever a previous
        run left there (a crash leaves garbage, a stale socket, a folder where a
        file belongs: each used to be a traceback or a boot that hung), and made
        anew later; other entries (the DinD steps' docker/, facts.json) are kept.
        The service log folder is root-only: supervisord writes a service's raw
        output there, which the init cannot mask (only its stdout copy is).
        """
        s = self.settings
        env_file = s.run_dir / rundir.ENV_FILE
        try:
            s.run_dir.mkdir(parents=True, exist_ok=True)
            # Never group/world-writable, whatever umask we were given: anyone who
            # can write here can swap control.sock or supervisor.sock for their own.
            os.chmod(s.run_dir, stat.S_IMODE(os.stat(s.run_dir).st_mode) & ~0o022)
            for path in rundir.cleared(s.run_dir):
                _remove(path)
            for path in (temporary(env_file), temporary(s.run_dir / rundir.SUPERVISORD_CONF)):
                _remove(path)
            (s.run_dir / rundir.STEPS).mkdir(mode=0o700)
        except OSError as exc:
            return f"{RUN_DIR}: cannot write {s.run_dir}: {exc.strerror or exc}"
        if plan.services.services:
            try:
                s.service_log_dir.mkdir(parents=True, exist_ok=True)
                os.chmod(s.service_log_dir, 0o700)  # also fails (EROFS) on a read-only mount
            except OSError as exc:
                where = s.service_log_dir
                return f"{SERVICE_LOG_DIR}: cannot write {where}: {exc.strerror or exc}"
        problem = self.log.open_file(s.log_dir / "init.log")
        if problem:
            self.log.warn(problem)
        return None

    # -- stage 1 -------------------------------------------------------------
    async def run_cont_init(self, plan: BootPlan) -> None:
        self.timeline.enter(Stage.CONT_INIT)
        self.early_engine = self.start_engine_early(plan)
        s = self.settings
        shell = _which("bash", s.environ.get("PATH", os.defpath)) or "/bin/sh"
        s6 = self.s6
        self.runner = StepRunner(
            self.reaper,
            self.log,
            self.exports,
            s.run_dir / rundir.STEPS,
            shell,
            s.step_prelude,
            heartbeat=s.step_heartbeat,
        )

        def step_done(step: Step, started: float, result: StepResult) -> None:
            if s6 is not None and result.code is not None:  # it ran: keep the envdir in step
                s6.after_step(self.exports, step.name)
            outcome = "ok" if result.ok else result.describe()
            self.timeline.step(self.stage, step.name, started, result.seconds, outcome)

        self.runner.on_step = step_done
        await self.runner.source_prelude(s.step_timeout)
        outcome = await run_folder(
            self.runner,
            plan.cont_init,
            self.log,
            stage="cont-init",
            default_timeout=s.step_timeout,
            sh_timeout=s.sh_step_timeout,
            behaviour_if_fails=s.behaviour_if_step_fails,
            stop_requested=self.stop_requested,
        )
        try:
            self.exports.save(s.run_dir / rundir.ENV_FILE)
        except OSError as exc:  # a full run dir: one line and exit 73, not a traceback
            where = s.run_dir / rundir.ENV_FILE
            self.finish(Exit.CANT_CREATE, f"{RUN_DIR}: cannot write {where}: {exc.strerror}")
        if outcome.failed is not None:
            self.log.error(
                f"stopping the container: required step {outcome.failed.step.name} failed "
                f"(exit {Exit.STEP_FAILED.value})"
            )
            self.finish(Exit.STEP_FAILED)

    def start_engine_early(self, plan: BootPlan) -> tuple[Engine, asyncio.Task[bool]] | None:
        """supervisord starts while cont-init runs: it needs nothing the steps make.

        It starts with no programs; the services stage writes them into its
        conf and has it reread that (ServiceManager.start). If it fails to
        start here, the services stage starts it as it always did.
        """
        if not plan.services.services:
            return None
        from helix_init.services.engine import Engine, EngineError
        from helix_init.services.render import EnginePaths, supervisord_conf

        s = self.settings
        paths = EnginePaths(s.run_dir, s.service_log_dir)
        engine = Engine(self.reaper, self.log, paths)
        try:  # now, not in the task: the services stage may write its own before the task runs
            write_private(
                paths.conf,
                supervisord_conf(paths, [], s.service_log_maxbytes, s.service_log_backups),
            )
        except OSError as exc:
            self.log.info(f"supervisord does not start beside cont-init ({exc}); starting later")
            return None

        async def start() -> bool:
            try:
                await engine.start(Engine.environment(s.environ))
            except (EngineError, OSError) as exc:
                self.log.info(f"supervisord did not start beside cont-init ({exc}); starting later")
                await engine.stop()
                return False
            if engine.start_took is not None:
                self.timeline.engine(*engine.start_took)
            return True

        return engine, asyncio.get_running_loop().create_task(start())

    def running(self) -> bool:
        return self.exit_code is None and not self.stop_requested.is_set()

    # -- stage 2 -------------------------------------------------------------
    async def start_services(self, plan: BootPlan) -> None:
        self.timeline.enter(Stage.SERVICES)
        from helix_init.services.spec import fingerprint, read_specs

        specs, folder = plan.service_specs, self.settings.services_dir
        if fingerprint(folder) != plan.services_seen:
            self.log.info(f"{folder} changed during cont-init: read again")
            specs, unread = read_specs(folder)
            if unread:
                for problem in unread:
                    self.log.error(str(problem))
                self.finish(Exit.CONFIG, "services cannot start as configured; nothing was started")
                return
        if not specs and (plan.s6 is None or not plan.s6.stages.longruns):
            self.settings.ready_path.write_text(f"{time.time():.3f}\n")
            if notify_socket := self.settings.environ.get("NOTIFY_SOCKET"):
                from helix_init.services.notify import Upward  # (the manager's, with services)

                self.upward = Upward(notify_socket)
                self.upward.send("READY=1")
            return
        # enabled_if is decided now, after cont-init: steps create the files and
        # export the variables that switch services on (daemon.json -> dockerd).
        from helix_init.services.resolve import resolve

        try:  # accounts must exist now: the user step may have been removed or failed
            services = resolve(specs, self.exports.current())
            if plan.s6 is not None:
                from helix_init.s6.stage import with_longruns

                services = with_longruns(services, plan.s6)
        except ConfigError as exc:
            for problem in exc.problems:
                self.log.error(str(problem))
            self.finish(Exit.CONFIG, "services cannot start as configured; nothing was started")
            return
        from helix_init.services.engine import EngineError
        from helix_init.services.manager import ServiceManager

        early, self.early_engine = self.early_engine, None  # the manager's from now on
        self.services = ServiceManager(
            services, self.settings, self.reaper, self.log, self.exports, early
        )
        try:
            await self.services.start()
            if (took := self.services.engine.start_took) is not None:  # if it started only now
                self.timeline.engine(*took)
        except EngineError as exc:  # the manager has recorded why in .ended
            self.log.error(f"cannot start services: {exc}")
        except OSError as exc:
            # The manager records only engine failures: without this, a run dir
            # that filled up left the CMD waiting for services that never began.
            where = f" ({exc.filename})" if exc.filename else ""
            self.finish(Exit.CANT_CREATE, f"cannot start services: {exc.strerror or exc}{where}")
            return
        if self.services.ended.done():
            self.finish(*self.services.ended.result())
            return
        if plan.cmd:
            await self.wait_for_services()

    async def wait_for_services(self) -> None:
        """Hold the CMD until all services are ready (or the configured maximum time)."""
        assert self.services is not None
        maxtime = self.settings.cmd_wait_for_services_maxtime
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self.services.cmd_may_start.wait()),
            asyncio.ensure_future(self.stop_requested.wait()),
            self.services.ended,
        ]
        done, _ = await asyncio.wait(
            waits, timeout=maxtime or None, return_when=asyncio.FIRST_COMPLETED
        )
        for fut in waits[:2]:
            fut.cancel()
        if self.services.ended.done():
            self.finish(*self.services.ended.result())
        elif not done:
            self.finish(
                Exit.READY_TIMEOUT, f"services not ready within {maxtime:g}s; not starting the CMD"
            )

    async def run_late_oneshots(self, plan: BootPlan) -> None:
        """s6-rc oneshots that depend on longruns (user2, ci-service-check): after readiness."""
        assert plan.s6 is not None
        if self.services is not None and not self.services.cmd_may_start.is_set():
            await self.wait_for_services()
        if not self.running() or self.runner is None:
            return
        s = self.settings
        outcome = await run_folder(
            self.runner, plan.s6.stages.late, self.log, stage="s6-rc",
            default_timeout=s.step_timeout, behaviour_if_fails=s.behaviour_if_step_fails,
            stop_requested=self.stop_requested,
        )  # fmt: skip
        if outcome.failed is not None:
            self.finish(Exit.STEP_FAILED, f"required oneshot {outcome.failed.step.name} failed")

    # -- stage 3 -------------------------------------------------------------
    async def run_main(self, plan: BootPlan) -> None:
        self.timeline.enter(Stage.RUNNING)
        waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self.stop_requested.wait())]
        if self.services is not None:
            waits.append(self.services.ended)  # type: ignore[arg-type]
        if plan.cmd:
            try:
                # The user is read now, not at plan time: a cont-init step may
                # have made it (the user step exports HELIX_INIT_CMD_USER) or
                # added it to a group (docker) since.
                env = self.exports.current()
                if self.services is not None:
                    # A secret reaches only the service that declares it, never the
                    # CMD: the desktop session runs as the desktop user, whose own
                    # processes' /proc/PID/environ that user can read.
                    hidden = self.services.secret_sources
                    env = {k: v for k, v in env.items() if k not in hidden}
                user = cmdmod.cmd_user(
                    self.settings.start, plan.startup_script, self.settings.cmd_user, env
                )
                run_as = cmdmod.resolve_user(user) if user else None
                if plan.startup_script:
                    cmdmod.make_executable(plan.cmd[0])
                self.cmd = cmdmod.start_cmd(
                    self.reaper, plan.cmd, env, run_as, user_settings.umask(env)
                )
            except (SpawnError, KeyError, ValueError) as exc:  # ValueError: a bad UMASK
                self.log.error(f"CMD: {exc.args[0] if exc.args else exc}")
                self.finish(Exit.NOT_FOUND)
                return
            who = f" as {run_as.name}" if run_as is not None else ""
            self.log.info(f"CMD started: {plan.cmd[0]}{who} (pid {self.cmd.pid})")
            waits.append(self.cmd.exited)  # type: ignore[arg-type]
        elif self.settings.start == "gow":
            self.log.info(cmdmod.NO_STARTUP)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        waits[0].cancel()
        if self.services is not None and self.services.ended.done():
            self.finish(*self.services.ended.result())
        elif self.cmd is not None and not self.cmd.running:
            code = from_wait_status(self.cmd.exited.result())
            self.log.info(f"CMD ended with exit code {code}; stopping the container")
            self.finish(code)

    def finish(self, code: int, why: str = "") -> None:
        """Record why the container ends; the first cause wins."""
        if self.exit_code is None:
            self.exit_code = code
            if why:
                self.log.error(f"stopping the container: {why} (exit {code})")

    # -- operators ---------------------------------------------------------------
    def control_requests(self) -> control.Requests:
        """What the CLI may ask on the control socket (dispatched by control.py)."""
        return {
            "status": self.on_status,
            "env": self.on_env,
            "start": self.on_service_control,
            "stop": self.on_service_control,
            "restart": self.on_service_control,
        }

    async def on_status(self, request: dict[str, Any]) -> dict[str, Any]:
        # "usage": false (what `health` asks): no psutil walk of every service's processes
        return {"ok": True, "status": self.status(with_usage=request.get("usage") is not False)}

    async def on_env(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.services is None:
            return {"ok": False, "error": f"no services (stage {self.stage.value})"}
        # Off the loop, as a start builds it (supervise._prepare_launch): a service's
        # environment can be tens of thousands of variables (~75 ms to build).
        name = str(request.get("service", ""))
        ok, answer = await asyncio.to_thread(self.services.describe_environment, name)
        return {"ok": True, "env": answer} if ok else {"ok": False, "error": answer}

    async def on_service_control(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.services is None or self.stage not in (Stage.SERVICES, Stage.RUNNING):
            return {"ok": False, "error": f"no services to control (stage {self.stage.value})"}
        what = str(request["cmd"])
        ok, message = await self.services.control(what, str(request.get("service", "")))
        return {"ok": ok, "message" if ok else "error": message}

    def status(self, with_usage: bool = True) -> dict[str, Any]:
        services = self.services.status(with_usage) if self.services is not None else None
        ready = self.stage is Stage.RUNNING and (services is None or bool(services["ready"]))
        return {
            "stage": self.stage.value,
            "ready": ready,
            "pid": os.getpid(),
            "cmd": {"pid": self.cmd.pid, "running": self.cmd.running} if self.cmd else None,
            "exports": {name: step for name, (_v, step) in self.exports.carried.items()},
            "adopted": self.adopted_status(),
            "services": services,
            "timeline": self.timeline.to_json(),
        }

    def adopted_status(self) -> dict[str, list[dict[str, object]]]:
        """Processes cont-init steps left running, by step: pid, name, command (secrets masked)."""
        if self.runner is None or not self.runner.left_running:
            return {}
        from helix_init import adopted

        hide = adopted.masker(self.settings.environ)
        procs = adopted.scan()
        found: dict[str, list[dict[str, object]]] = {}
        for step, sid in self.runner.left_running:
            left = adopted.members(procs, sid)
            if left:  # a step's own session, and any its setsid'd daemons made
                found.setdefault(step, []).extend(adopted.describe(left, hide))
        return found

    # -- stage 4 -------------------------------------------------------------
    async def shutdown(self, plan: BootPlan) -> None:
        started = time.monotonic()
        self.timeline.enter(Stage.SHUTDOWN)
        self.settings.ready_path.unlink(missing_ok=True)
        await self.stop_cmd()
        if self.services is not None:
            await self.services.stop_all()
        elif self.upward is not None:
            self.upward.send("STOPPING=1")
        if self.early_engine is not None:  # the boot ended before the services stage
            engine, starting = self.early_engine
            await asyncio.wait([starting])
            await engine.stop()
        if plan.cont_finish and self.runner is not None:
            await run_folder(
                self.runner,
                plan.cont_finish,
                self.log,
                stage="cont-finish",
                default_timeout=self.settings.step_timeout,
                sh_timeout=self.settings.sh_step_timeout,
                behaviour_if_fails=OnStepFailure.WARN,
                budget=self.settings.finish_timeout or 0.0,
            )
        await self.stop_adopted()
        await self.duties.sweep(self.settings.kill_gracetime)
        code = Exit.OK if self.exit_code is None else self.exit_code
        self.log.info(f"shutdown complete in {time.monotonic() - started:.2f}s; exit code {code}")

    async def stop_cmd(self) -> None:
        if self.cmd is None or not self.cmd.running:
            return
        grace = self.settings.cmd_gracetime
        self.log.info(f"stopping the CMD (TERM, KILL after {grace:g}s)")
        signal_group(self.cmd.pid, signal.SIGTERM)
        done, _ = await asyncio.wait([self.cmd.exited], timeout=grace)
        if not done:
            self.log.warn(f"CMD did not stop within {grace:g}s; killing it")
            signal_group(self.cmd.pid, signal.SIGKILL)
            await asyncio.shield(self.cmd.exited)

    async def stop_adopted(self) -> None:
        """What cont-init steps left running, latest step first, with its grace (adopted.py)."""
        left = self.runner.left_running if self.runner else []
        if not left:
            return
        from helix_init import adopted  # only where a step left something

        hide = adopted.masker(self.settings.environ)
        for step, sid in reversed(left):
            grace = self.settings.adopted_gracetime
            await adopted.stop_step(step, sid, self.log, grace, hide)


def _which(program: str, path: str) -> str | None:
    """shutil.which for the init's own PATH, without loading shutil."""
    for folder in path.split(os.pathsep):
        candidate = os.path.join(folder or ".", program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def _remove(path: Path) -> None:
    """Remove a file, socket, symlink or folder tree; nothing there is fine.

    Not shutil.rmtree: shutil loads its compressors, ~0.6 MiB of an idle PID 1.
    """
    if not (path.is_dir() and not path.is_symlink()):
        path.unlink(missing_ok=True)
        return
    for root, dirs, files in os.walk(path, topdown=False):  # never follows a symlink
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            entry = os.path.join(root, name)
            os.unlink(entry) if os.path.islink(entry) else os.rmdir(entry)
    os.rmdir(path)


def run(settings: Settings, cmd: Sequence[str], log: Log, held: sigmask.Held | None = None) -> int:
    """Boot; `held`: the signals the entry point holds until the handlers exist (sigmask.py)."""

    async def main() -> int:
        return await Boot(settings, log, held).run(cmd)

    return asyncio.run(main())
