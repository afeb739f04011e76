"""Unit: the notify socket reads the sender's pid from the kernel and asks who owns it."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from helix_init.services.notify import NotifyListener


def send(path: Path, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(data, str(path))


async def listen(tmp_path: Path, owner: int) -> tuple[NotifyListener, list[int]]:
    refused: list[int] = []
    listener = NotifyListener(tmp_path / "svc.sock", lambda pid: pid == owner, refused.append)
    listener.open(None)
    return listener, refused


def test_ready_from_the_owner_counts(tmp_path: Path) -> None:
    async def main() -> None:
        listener, refused = await listen(tmp_path, os.getpid())
        send(listener.path, b"READY=1\nSTATUS=serving")
        await asyncio.wait_for(listener.ready.wait(), 5)
        assert listener.status == "serving" and refused == []
        listener.close()

    asyncio.run(main())


def test_ready_from_anyone_else_is_held_then_refused(tmp_path: Path) -> None:
    async def main() -> None:
        listener, refused = await listen(tmp_path, owner=-1)
        send(listener.path, b"READY=1")
        for _ in range(100):  # until the datagram was read
            await asyncio.sleep(0.01)
            if listener._unsure:
                break
        assert not listener.ready.is_set()
        listener.recheck()
        assert refused == [os.getpid()] and not listener.ready.is_set()
        listener.close()

    asyncio.run(main())


def test_a_sender_known_only_later_is_accepted_at_the_recheck(tmp_path: Path) -> None:
    async def main() -> None:
        owner = [-1]
        listener = NotifyListener(tmp_path / "svc.sock", lambda pid: pid == owner[0])
        listener.open(None)
        send(listener.path, b"READY=1")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if listener._unsure:
                break
        owner[0] = os.getpid()  # the init noted the run's first process meanwhile
        listener.recheck()
        assert listener.ready.is_set()
        listener.close()

    asyncio.run(main())
