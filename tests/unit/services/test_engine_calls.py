"""The engine's typed calls over scripted supervisord answers (no supervisord, no socket)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from helix_init.logsink import Log
from helix_init.reaper import Reaper
from helix_init.services.engine import Engine, EngineError, ProcessInfo
from helix_init.services.render import EnginePaths

INFO = {"statename": "RUNNING", "pid": 4242, "exitstatus": 0}


class Scripted(Engine):
    """call() answers from a script and records what was asked."""

    def __init__(self, answer: Any) -> None:
        loop = asyncio.new_event_loop()
        try:
            super().__init__(Reaper(loop), Log(io.BytesIO()), EnginePaths(Path("/r"), Path("/l")))
        finally:
            loop.close()
        self.answer = answer
        self.asked: list[tuple[str, tuple[Any, ...]]] = []

    async def call(self, method: str, *params: Any) -> Any:
        self.asked.append((method, params))
        return self.answer


def test_a_start_is_one_round_trip_the_start_then_its_pid() -> None:
    engine = Scripted([True, INFO])
    assert asyncio.run(engine.start_program("web")) == ProcessInfo("RUNNING", 4242, 0)
    assert engine.asked == [
        (
            "system.multicall",
            (
                [
                    {"methodName": "supervisor.startProcess", "params": ["web", False]},
                    {"methodName": "supervisor.getProcessInfo", "params": ["web"]},
                ],
            ),
        )
    ]


def test_a_refused_start_is_its_fault_string() -> None:
    """multicall answers a fault in place of a result, where a single call would raise it."""
    fault = {"faultCode": 60, "faultString": "ALREADY_STARTED: web"}
    with pytest.raises(EngineError, match=r"^ALREADY_STARTED: web$"):
        asyncio.run(Scripted([fault, INFO]).start_program("web"))
    lost = {"faultCode": 10, "faultString": "BAD_NAME: web"}
    with pytest.raises(EngineError, match=r"^BAD_NAME: web$"):
        asyncio.run(Scripted([True, lost]).start_program("web"))
