"""The kernel's limits on one exec's argv and environment: checked at `check` and at start (pure).

execve() refuses (E2BIG) an argv plus environment larger than a quarter of
the stack limit (2 MiB with the usual 8 MiB stack; what `getconf ARG_MAX`
says), counting every string with its NUL and a pointer to it, and any one
string longer than MAX_ARG_STRLEN (32 pages). A service past either failed
at every start with 126 and was restarted for ever; refused here, it is one
line and exit 78 at `check` (the container's own variables and the service
file are known then), or a service that gives up at start (exports of the
cont-init steps are only known then).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EXEC_LIMIT = 2 * 1024 * 1024  # bytes, argv + environment, as the kernel counts them
MAX_ARG_STRLEN = 32 * 4096  # bytes, one argument or one NAME=value
POINTER = 8


def exec_problem(argv: Iterable[str], env: Mapping[str, str]) -> str | None:
    """Why execve() would refuse this argv and environment, or None."""
    total = 0
    for arg in argv:
        size = len(arg.encode("utf-8", "surrogateescape")) + 1
        if size > MAX_ARG_STRLEN:
            return f"an argument of {size:,} bytes is over the kernel's {MAX_ARG_STRLEN:,}"
        total += size + POINTER
    for name, value in env.items():
        size = (
            len(name.encode("utf-8", "surrogateescape"))
            + len(value.encode("utf-8", "surrogateescape"))
            + 2
        )
        if size > MAX_ARG_STRLEN:
            return (
                f"variable {name} is {size:,} bytes, over the kernel's {MAX_ARG_STRLEN:,}"
                " per variable"
            )
        total += size + POINTER
    if total > EXEC_LIMIT:
        return (
            f"command and environment take {total:,} bytes ({len(env):,} variables),"
            f" over the kernel's {EXEC_LIMIT:,} for one process"
        )
    return None
