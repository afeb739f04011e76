"""The init's one HTTP client: supervisord's XML-RPC calls, `http` probes, the Engine API ping.

Runs in PID 1, on its event loop. HTTP/1.0 and a new connection per request,
closed after the answer: nothing is kept open between calls, so a failed
connection is never reused (the stock SupervisorTransport keeps a broken one,
see TESTBED.md), and no call blocks the loop. Callers bound each call with
their own timeout. No docker SDK here: PID 1 never imports it.
"""

from __future__ import annotations

import asyncio


class Unreachable(OSError):
    """The connection itself could not be made (nothing listening, no such socket)."""


def request(
    method: str, path: str, host: str = "localhost", body: bytes = b"", **headers: str
) -> bytes:
    """One HTTP/1.0 request; header names are given as Content_Type=... (underscores)."""
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join([*lines, "", ""]).encode() + body


async def exchange(
    data: bytes,
    *,
    unix_path: str | None = None,
    host: str = "127.0.0.1",
    port: int = 80,
    status_only: bool = False,
) -> bytes:
    """Send one request; the whole answer, or only its status line. Unreachable if no connection."""
    try:
        if unix_path is not None:
            reader, writer = await asyncio.open_unix_connection(unix_path)
        else:
            reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        raise Unreachable(exc.errno, exc.strerror) from None
    try:
        writer.write(data)
        return await (reader.readline() if status_only else reader.read())
    finally:
        writer.close()


def status_of(answer: bytes) -> int | None:
    """The status code of an answer's first line, None when it is not HTTP."""
    fields = answer.split(b"\r\n", 1)[0].split()
    return int(fields[1]) if len(fields) >= 2 and fields[1].isdigit() else None
