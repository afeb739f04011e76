"""Commands a built-in step runs on this level: the result, the Runner interface, `check`.

A leaf shared by dind/, sibling/ and builtin/ (it imports nothing of
helix_init), so none of them has to import another to run a command.
Commands are run through a `Runner` that the caller passes in: PID 1's loop is
the only owner of waitpid(-1), so nothing in those libraries spawns a process
on its own; the step process hands them builtin.level.run_command.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class StepError(Exception):
    """A built-in step cannot do its job as configured; one line saying what to do.

    dind.DindError is the Docker-in-Docker kind; `check` raises this one.
    """


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    """Runs argv to completion and returns its result; never raises for a non-zero exit."""

    def __call__(self, argv: Sequence[str]) -> CommandResult: ...


def check(runner: Runner, argv: Sequence[str]) -> CommandResult:
    """Run argv; a non-zero exit becomes a StepError quoting the command and its stderr."""
    result = runner(argv)
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip() or "no output"
        raise StepError(f"`{' '.join(argv)}` exited {result.returncode}: {detail}")
    return result
