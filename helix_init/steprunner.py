"""The cont-init / cont-finish runner: each step its own process, group, timeout and log prefix.

Runs in PID 1. A step is never sourced into the init, so its `exit`, `set -e`
or `set -u` can end only itself (the Helix images once lost a whole container
to `exit 0` in a sourced script). Each step gets stdin from /dev/null, its own
session and process group, and a timeout that kills that whole group. Its
output is logged line by line as `[NAME] text`.

A built-in step (a drop-in that only runs `exec helix-init step NAME`, see
dropins.py) is a fork of the init running NAME, not a shell starting a new
interpreter: the same process group, timeout, output and exports, 0.1-0.3 s
less each.

`*.sh` steps are sourced by a wrapper shell (shellstep.py) that reports the
shell's exported variables and functions as it ends, after the prelude
(HELIX_INIT_STEP_PRELUDE), so top-level `return`, `exit 0`, a helper library's
functions and earlier exports all behave as under the old sourcing entrypoint.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from helix_init import shellstep
from helix_init.contenv import ENV_FILE_VAR, Exports, parse_env_file
from helix_init.dropins import Step
from helix_init.logsink import Log, follow_pipe
from helix_init.procgroup import escaped_sessions, group_alive, live_processes, signal_group
from helix_init.reaper import Child, Reaper, SpawnError
from helix_init.settings import INIT_PID, STEP_PRELUDE, OnStepFailure

KILL_AFTER_TERM = 2.0  # seconds between TERM and KILL when a step's time is up
_LAST_LINES = 10
_PRELUDE = "prelude"  # the name the prelude's exports are recorded under


@dataclass(frozen=True)
class StepResult:
    step: Step
    code: int | None  # waitstatus_to_exitcode; None when it never started
    seconds: float
    last_lines: tuple[str, ...]
    timed_out: bool = False
    error: str | None = None
    missing: tuple[str, ...] = ()  # commands a *.sh step did not find

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.timed_out

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.timed_out:
            return f"timed out after {self.seconds:.1f}s (its process group was killed)"
        assert self.code is not None
        if self.code < 0:
            return f"killed by signal {signal.Signals(-self.code).name}"
        if self.missing and not self.ok:
            return (
                f"exit code {self.code}; command not found: {', '.join(self.missing)} "
                f"(a function from a helper library? list it in {STEP_PRELUDE})"
            )
        return f"exit code {self.code}"


class StepRunner:
    def __init__(
        self,
        reaper: Reaper,
        log: Log,
        exports: Exports,
        state_dir: Path,
        shell: str,
        prelude: Sequence[Path] = (),
        heartbeat: float = 60.0,
    ) -> None:
        self._reaper = reaper
        self._log = log
        self._exports = exports
        self._state_dir = state_dir
        self._shell = shell
        self._prelude = tuple(prelude)
        self._functions = state_dir / "functions.sh"  # carried to later *.sh steps
        self._known_functions: set[str] = set()
        self._current: Child | None = None
        self._heartbeat = heartbeat
        # (step name, session id) of steps that left processes running (adopted.py)
        self.left_running: list[tuple[str, int]] = []
        # Told of every finished step: (step, when it began on time.monotonic, result), once
        # its exports are recorded (boot: the timeline, s6's container_environment).
        self.on_step: Callable[[Step, float, StepResult], None] | None = None

    async def source_prelude(self, timeout: float) -> None:
        """Source the prelude once, before the first step: record what it exports and defines."""
        if not self._prelude:
            return
        env_file = self._state_dir / f"{_PRELUDE}.env"
        env = self._new_env_file(env_file)
        argv = shellstep.probe_argv(self._shell, self._prelude)
        ran = await self._execute(_PRELUDE, argv, env, timeout)
        if not self._record_exports(_PRELUDE, env, env_file, full=False) or ran.code != 0:
            # It ended the shell (`exit`) or failed: every *.sh step will say so too.
            self._log.warn(f"prelude: sourcing it did not end cleanly ({ran.describe()})")
        self._known_functions = shellstep.function_names(shellstep.read_functions(env_file))
        files = ", ".join(map(str, self._prelude))
        names = sorted(self._known_functions)
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        self._log.info(
            f"prelude {files} ({ran.describe()}) defines {shown or 'no functions'}; "
            "sourced before every *.sh step"
        )

    async def run(self, step: Step, timeout: float) -> StepResult:
        """Run one step to its end; timeout 0 = none."""
        began = time.monotonic()
        env_file = self._state_dir / f"{step.name}.env"
        env = self._new_env_file(env_file)
        argv = list(step.argv) if step.argv else [str(step.path)]
        if step.kind == "sh":
            carried = self._functions if self._functions.exists() else None
            argv = shellstep.wrapper_argv(self._shell, step.path, carried, self._prelude)
        how = f" (built-in {step.builtin}, in a fork of the init)" if step.builtin else ""
        self._log.info(f"step {step.name}: starting{how}")
        ran = await self._execute(step.name, argv, env, timeout, step.builtin)
        missing = shellstep.read_missing(env_file) if step.kind == "sh" else ()
        result = StepResult(
            step, ran.code, ran.seconds, ran.last_lines, ran.timed_out, ran.error, missing
        )
        reported = ran.code is not None and not ran.timed_out
        if reported and self._record_exports(step.name, env, env_file, full=step.kind == "sh"):
            self._carry_functions(step.name, env_file)
        self._log.info(f"step {step.name}: {result.describe()} in {ran.seconds:.2f}s")
        if self.on_step is not None:
            self.on_step(step, began, result)
        return result

    def _new_env_file(self, env_file: Path) -> dict[str, str]:
        """The environment for a step that reports into env_file (emptied, with its reports)."""
        env_file.write_bytes(b"")
        for suffix in (shellstep.FUNCTIONS_SUFFIX, shellstep.MISSING_SUFFIX):
            Path(str(env_file) + suffix).unlink(missing_ok=True)
        env = self._exports.current()
        env[INIT_PID] = str(os.getpid())  # for steps only: is the init PID 1?
        env[ENV_FILE_VAR] = str(env_file)
        return env

    async def _execute(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        timeout: float,
        builtin: str | None = None,
    ) -> _Ran:
        last: deque[str] = deque(maxlen=_LAST_LINES)

        def on_line(text: str) -> None:
            last.append(text)
            self._log.line(name, text)

        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        try:
            if builtin is not None:
                child = self._reaper.fork(
                    _builtin(builtin, env), name=name, env=env, stdout=write_fd
                )
            else:
                child = self._reaper.spawn(argv, name=name, env=env, stdout=write_fd)
        except (SpawnError, OSError) as exc:  # OSError: fork failed (EAGAIN, ENOMEM)
            os.close(read_fd)
            return _Ran(None, 0.0, (), False, str(exc))
        finally:
            os.close(write_fd)
        output = follow_pipe(read_fd, on_line)
        self._current = child
        try:
            timed_out = not await self._wait(name, child, timeout, started)
            if timed_out:
                await self._kill_group(child)
        finally:
            self._current = None
        code = child.exited.result()
        # Background processes a legacy script left behind may keep the pipe
        # open: give the output a moment to end, then keep reading it.
        await asyncio.wait([output], timeout=0.2)
        if group_alive(child.pid):
            self._log.info(
                f"step {name}: left processes running in its group (adopted: listed in"
                " `helix-init status`, stopped with TERM and a grace at shutdown)"
            )
            self.left_running.append((name, child.pid))
        self._adopt_escaped(name, child.pid)
        return _Ran(code, time.monotonic() - started, tuple(last), timed_out, None)

    def _adopt_escaped(self, name: str, step_sid: int) -> None:
        """Adopt, as the step's, the sessions its setsid'd daemons made (procgroup)."""
        ours = {c.pid for c in self._reaper.running()}
        known = {sid for _, sid in self.left_running} | {step_sid}
        for sid in escaped_sessions(live_processes(), os.getpid(), ours, known):
            self._log.info(
                f"step {name}: left a daemon running in a session of its own (sid {sid},"
                " setsid): adopted as the step's, stopped with TERM and a grace at shutdown"
            )
            self.left_running.append((name, sid))

    async def _wait(self, name: str, child: Child, timeout: float, started: float) -> bool:
        """True if the child ended within timeout seconds (0 = none); says every heartbeat
        that it is still running."""
        deadline = started + timeout if timeout else None
        while True:
            wake = next_wake(time.monotonic(), started, self._heartbeat, deadline)
            left = None if wake is None else max(0.0, wake - time.monotonic())
            done, _ = await asyncio.wait([child.exited], timeout=left)
            if done:
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            self._log.info(f"step {name}: still running after {_duration(now - started)}")

    def _record_exports(self, name: str, env: dict[str, str], env_file: Path, full: bool) -> bool:
        """Carry what the step reported; False when it reported nothing."""
        try:
            reported = env_file.read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return False
        if not parse_env_file(reported):
            # A *.sh step that was killed by a signal or replaced itself with
            # `exec` never ran its EXIT trap: no report is not "everything unset".
            if full:
                self._log.info(f"step {name}: no environment reported; nothing carried")
            return False
        changed = self._exports.apply(name, env, reported, full=full)
        if changed:
            self._log.info(f"step {name} exported {', '.join(sorted(changed))}")
        return True

    def _carry_functions(self, name: str, env_file: Path) -> None:
        declared = shellstep.read_functions(env_file)
        names = shellstep.function_names(declared)
        new = sorted(names - self._known_functions)
        if new:
            self._log.info(f"step {name} defined {', '.join(new)} (for later *.sh steps)")
        self._functions.write_text(declared, errors="surrogateescape")  # unset -f counts too
        self._known_functions |= names

    async def _kill_group(self, child: Child) -> None:
        signal_group(child.pid, signal.SIGTERM)
        await asyncio.wait([child.exited], timeout=KILL_AFTER_TERM)
        signal_group(child.pid, signal.SIGKILL)  # the leader's forks too, whatever they ignore
        await asyncio.shield(child.exited)

    def stop_current(self) -> None:
        """On a requested stop: TERM the running step's group; its timeout logic does the rest."""
        if self._current is not None:
            signal_group(self._current.pid, signal.SIGTERM)


@dataclass(frozen=True)
class _Ran:
    """How one step process went; StepResult adds what the step is."""

    code: int | None
    seconds: float
    last_lines: tuple[str, ...]
    timed_out: bool
    error: str | None

    def describe(self) -> str:
        if self.error:
            return self.error
        return "timed out" if self.timed_out else f"exit code {self.code}"


def _builtin(name: str, env: dict[str, str]) -> Callable[[], int]:
    """What a forked child runs for the built-in step NAME (`helix-init step NAME`)."""

    def main() -> int:
        from helix_init.builtin import run_step  # in the child only: PID 1 stays lean

        return run_step(name, env)

    return main


def next_wake(now: float, started: float, heartbeat: float, deadline: float | None) -> float | None:
    """When a running step next needs attention: its next heartbeat or its deadline."""
    beat = None
    if heartbeat > 0:
        beat = started + heartbeat * (int((now - started) // heartbeat) + 1)
    if deadline is None:
        return beat
    return deadline if beat is None else min(beat, deadline)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


@dataclass(frozen=True)
class FolderOutcome:
    results: tuple[StepResult, ...]
    failed: StepResult | None  # the step that stops the container, if any


async def run_folder(
    runner: StepRunner,
    steps: Sequence[Step],
    log: Log,
    *,
    stage: str,
    default_timeout: float,
    behaviour_if_fails: OnStepFailure,
    sh_timeout: float | None = None,
    budget: float = 0.0,
    stop_requested: asyncio.Event | None = None,
) -> FolderOutcome:
    """Run steps in order under the failure policy ; budget 0 = none.

    COMPAT: sourced `*.sh` steps get `sh_timeout` (none by default: the old
    entrypoint had no timeout, and Helix's dockerd script pulls images for
    minutes), program steps `default_timeout`; a step's `timeout=` wins."""
    results: list[StepResult] = []
    deadline = time.monotonic() + budget if budget else None
    for step in steps:
        if stop_requested is not None and stop_requested.is_set():
            log.info(f"{stage}: stop requested, skipping {step.name} and later steps")
            break
        timeout = step_timeout(step, default_timeout, sh_timeout)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warn(f"{stage}: time budget of {budget:g}s used up; skipping {step.name}")
                break
            timeout = min(timeout, left) if timeout else left
        result = await runner.run(step, timeout)
        results.append(result)
        if result.ok:
            continue
        if step.optional or behaviour_if_fails == OnStepFailure.WARN:
            log.warn(f"{stage} step {step.name} failed ({result.describe()}); continuing")
        elif behaviour_if_fails == OnStepFailure.STOP and not (
            stop_requested and stop_requested.is_set()
        ):
            _quote_failure(log, stage, result)
            return FolderOutcome(tuple(results), result)
    return FolderOutcome(tuple(results), None)


def step_timeout(step: Step, default: float, sh_default: float | None) -> float:
    """A step's timeout (0 = none): its `timeout=`, else the default for its kind."""
    if step.timeout is not None:
        return step.timeout
    return sh_default if step.kind == "sh" and sh_default is not None else default


def _quote_failure(log: Log, stage: str, result: StepResult) -> None:
    log.error(f"{stage} step {result.step.name} failed: {result.describe()}")
    if result.last_lines:
        log.error(f"last output lines of {result.step.name}:")
        for text in result.last_lines:
            log.error(f"  | {text}")
