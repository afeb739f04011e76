"""The cont-init / cont-finish runner: each step its own process, group, timeout and log prefix.

Runs in PID 1. A step is never sourced into the init, so its `exit`, `set -e`
or `set -u` can end only itself (the Helix images once lost a whole container
to `exit 0` in a sourced script). Each step gets stdin from /dev/null, its own
session and process group, and a timeout that kills that whole group. Its
output is logged line by line as `[NAME] text`.

`*.sh` steps run as `bash -c '. STEP'` with an EXIT trap that reports the
shell's exported variables, so top-level `return`, `exit 0` and reliance on
earlier exports all behave as under the old sourcing entrypoint.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from helix_init.contenv import ENV_FILE_VAR, Exports
from helix_init.dropins import Step
from helix_init.logsink import Log, follow_pipe
from helix_init.procgroup import group_alive, signal_group
from helix_init.reaper import Child, Reaper, SpawnError

KILL_AFTER_TERM = 2.0  # seconds between TERM and KILL when a step's time is up
_LAST_LINES = 10
# Sources the step in this (child) shell; the EXIT trap runs on `exit` in the
# script too, reporting the exported environment as the shell ends.
_SOURCE_WRAPPER = (
    '__helix_out="$' + ENV_FILE_VAR + '"; unset ' + ENV_FILE_VAR + "; "
    "trap '__helix_rc=$?; env -0 > \"$__helix_out\"; exit $__helix_rc' EXIT; "
    '. "$0"'
)


@dataclass(frozen=True)
class StepResult:
    step: Step
    code: int | None  # waitstatus_to_exitcode; None when it never started
    seconds: float
    last_lines: tuple[str, ...]
    timed_out: bool = False
    error: str | None = None

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
        return f"exit code {self.code}"


class StepRunner:
    def __init__(
        self, reaper: Reaper, log: Log, exports: Exports, state_dir: Path, shell: str
    ) -> None:
        self._reaper = reaper
        self._log = log
        self._exports = exports
        self._state_dir = state_dir
        self._shell = shell
        self._current: Child | None = None

    async def run(self, step: Step, timeout: float) -> StepResult:
        """Run one step to its end; timeout 0 = none."""
        env_file = self._state_dir / f"{step.name}.env"
        env_file.write_bytes(b"")
        env = self._exports.current()
        env[ENV_FILE_VAR] = str(env_file)
        argv = [self._shell, "-c", _SOURCE_WRAPPER, str(step.path)]
        if step.kind == "exec":
            argv = [str(step.path)]
        last: deque[str] = deque(maxlen=_LAST_LINES)

        def on_line(text: str) -> None:
            last.append(text)
            self._log.line(step.name, text)

        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        self._log.info(f"step {step.name}: starting")
        try:
            child = self._reaper.spawn(argv, name=step.name, env=env, stdout=write_fd)
        except SpawnError as exc:
            os.close(read_fd)
            return StepResult(step, None, 0.0, (), error=str(exc))
        finally:
            os.close(write_fd)
        output = follow_pipe(read_fd, on_line)
        self._current = child
        try:
            timed_out = not await _wait(child, timeout)
            if timed_out:
                await self._kill_group(child)
        finally:
            self._current = None
        code = child.exited.result()
        # Background processes a legacy script left behind may keep the pipe
        # open: give the output a moment to end, then keep reading it.
        await asyncio.wait([output], timeout=0.2)
        seconds = time.monotonic() - started
        result = StepResult(step, code, seconds, tuple(last), timed_out)
        if not timed_out:
            self._record_exports(step, env, env_file)
        if group_alive(child.pid):
            self._log.info(f"step {step.name}: left processes running in its group")
        self._log.info(f"step {step.name}: {result.describe()} in {seconds:.2f}s")
        return result

    def _record_exports(self, step: Step, env: dict[str, str], env_file: Path) -> None:
        try:
            reported = env_file.read_bytes().decode("utf-8", "surrogateescape")
        except OSError:
            return
        if not reported:
            # A *.sh step that was killed by a signal or replaced itself with
            # `exec` never ran its EXIT trap: no report is not "everything unset".
            if step.kind == "sh":
                self._log.info(f"step {step.name}: no environment reported; nothing carried")
            return
        changed = self._exports.apply(step.name, env, reported, full=step.kind == "sh")
        if changed:
            self._log.info(f"step {step.name} exported {', '.join(sorted(changed))}")

    async def _kill_group(self, child: Child) -> None:
        signal_group(child.pid, signal.SIGTERM)
        await asyncio.wait([child.exited], timeout=KILL_AFTER_TERM)
        signal_group(child.pid, signal.SIGKILL)  # the leader's forks too, whatever they ignore
        await asyncio.shield(child.exited)

    def stop_current(self) -> None:
        """On a requested stop: TERM the running step's group; its timeout logic does the rest."""
        if self._current is not None:
            signal_group(self._current.pid, signal.SIGTERM)


async def _wait(child: Child, timeout: float) -> bool:
    """True if the child ended within timeout seconds (0 = wait forever)."""
    done, _ = await asyncio.wait([child.exited], timeout=timeout or None)
    return bool(done)


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
    behaviour_if_fails: int,
    budget: float = 0.0,
    stop_requested: asyncio.Event | None = None,
) -> FolderOutcome:
    """Run steps in order under the failure policy (0 silent, 1 warn, 2 stop); budget 0 = none."""
    results: list[StepResult] = []
    deadline = time.monotonic() + budget if budget else None
    for step in steps:
        if stop_requested is not None and stop_requested.is_set():
            log.info(f"{stage}: stop requested, skipping {step.name} and later steps")
            break
        timeout = default_timeout if step.timeout is None else step.timeout
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
        if step.optional or behaviour_if_fails == 1:
            log.warn(f"{stage} step {step.name} failed ({result.describe()}); continuing")
        elif behaviour_if_fails == 2 and not (stop_requested and stop_requested.is_set()):
            _quote_failure(log, stage, result)
            return FolderOutcome(tuple(results), result)
    return FolderOutcome(tuple(results), None)


def _quote_failure(log: Log, stage: str, result: StepResult) -> None:
    log.error(f"{stage} step {result.step.name} failed: {result.describe()}")
    if result.last_lines:
        log.error(f"last output lines of {result.step.name}:")
        for text in result.last_lines:
            log.error(f"  | {text}")
