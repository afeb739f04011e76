"""A wait_for or probe loop ends when its task is cancelled (a stop, the shutdown).

asyncio.wait_for (3.11) returns the inner result instead of raising when the
cancel lands after the inner connect has already failed: a unix connect to a
missing socket fails at once, so the window is a whole loop turn, and a
service stopped while it waited for its wait_for socket never stopped (the
shutdown hung; TERM 0.2-0.35 s after boot in the desktop-bridge test).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helix_init.services import readiness


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_a_cancelled_wait_for_loop_ends(tmp_path: Path, kind: str) -> None:
    target = str(tmp_path / "missing.sock") if kind == "unix" else "127.0.0.1:9"
    check = readiness.wait_for_check(kind, [target])

    async def main() -> int:
        hung = 0
        for i in range(40):  # the cancel lands at every point of the connect loop
            task = asyncio.ensure_future(
                readiness.wait_until(check, interval=0.001, timeout=0, alive=lambda: True)
            )
            await asyncio.sleep(0.0005 * (i % 8))
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=1.0)
            if not done:
                hung += 1
                task.cancel()
        return hung

    assert asyncio.run(main()) == 0
