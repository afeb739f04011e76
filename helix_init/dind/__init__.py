"""Docker-in-Docker set-up for one nesting level: the error and command runner its steps share.

Each module owns one concern and says where it runs; decisions are pure
functions over plain data, and the I/O that feeds them sits in small collector
functions beside them:

- facts: read-only preflight facts about this level (facts.json)
- cgroups: v2 delegation and v1 read-write remounts, before dockerd starts
- storage: the storage driver for /var/lib/docker and stale pid files
- netplan: bip, address pools and MTU that clash with nothing around us
- iptables: which iptables backend dockerd sees on its PATH
- daemonjson: daemon.json from the plan, with the operator's file merged in
- dockergroup: the `docker` group and the desktop user's membership

Commands are run through a `Runner` that the caller passes in: PID 1's loop is
the only owner of waitpid(-1), so nothing here spawns a process on its own.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class DindError(Exception):
    """This level cannot run dockerd as configured; the message is one line saying what to do."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    """Runs argv to completion and returns its result; never raises for a non-zero exit."""

    def __call__(self, argv: Sequence[str]) -> CommandResult: ...


def check(runner: Runner, argv: Sequence[str]) -> CommandResult:
    """Run argv; a non-zero exit becomes a DindError quoting the command and its stderr."""
    result = runner(argv)
    if result.returncode != 0:
        detail = result.stderr.strip() or result.stdout.strip() or "no output"
        raise DindError(f"`{' '.join(argv)}` exited {result.returncode}: {detail}")
    return result
