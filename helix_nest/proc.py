"""Run one host command for the nest, bounded in time; a failure is a NestError naming it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class NestError(Exception):
    """A step of building or running the nest failed; the message says which."""


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float = 600,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(argv),
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise NestError(f"timed out after {timeout:g}s: {' '.join(argv)}") from exc
    if check and done.returncode != 0:
        raise NestError(
            f"`{' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done
