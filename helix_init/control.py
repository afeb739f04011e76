"""The init's control socket: status and start/stop/restart for the CLI, root only.

The server runs in PID 1 on HELIX_INIT_RUN_DIR/control.sock (mode 0600, so the
kernel refuses anyone but root); the client is what `helix-init status`,
`health`, `start|stop|restart` use. One JSON request line, one JSON answer line.
A request names what it asks in "cmd"; the server dispatches it to the
handler the init registered for that name (boot.py: Boot.control_requests),
and answers an unknown one itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Requests = Mapping[str, Handler]  # "cmd" -> its handler
MAX_REQUEST = 64 * 1024


class ControlError(Exception):
    """The init cannot be reached, or refused the request."""


class NoPermission(ControlError):
    """Not root: the control socket is root only."""


async def dispatch(requests: Requests, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request: its handler's, or why there is none."""
    what = request.get("cmd")
    handler = requests.get(what) if isinstance(what, str) else None
    if handler is None:
        return {"ok": False, "error": f"unknown request {what!r}"}
    return await handler(request)


async def serve(path: Path, requests: Requests) -> asyncio.AbstractServer:
    path.unlink(missing_ok=True)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line[:MAX_REQUEST])
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                answer = await dispatch(requests, request)
            except ValueError as exc:
                answer = {"ok": False, "error": f"bad request: {exc}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, str(path))
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return server


def request(path: Path, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Blocking client for the CLI."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except PermissionError:
        raise NoPermission(f"permission denied: {path} is root only") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"helix-init is not running here (no {path})") from None
    try:
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise ControlError(f"helix-init did not answer within {timeout:g}s") from None
    except OSError as exc:  # it exited (or was KILLed) mid-request: a line, not a traceback
        raise ControlError(f"helix-init closed the connection: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        answer: dict[str, Any] = json.loads(data)
    except ValueError:
        raise ControlError("helix-init sent a bad answer") from None
    return answer
