"""sd_notify in both directions: a NOTIFY_SOCKET per service, and READY/STOPPING to the level above.

Runs in PID 1. Each service that declares `ready = { notify = true }` gets its
own datagram socket, so a message's sender is known without SCM_CREDENTIALS;
dockerd speaks this protocol (READY=1 once its API serves). Upward, when the
init itself was given a NOTIFY_SOCKET (systemd, or an outer helix-init), it
reports READY=1 once every service is ready and STOPPING=1 at shutdown.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path


class NotifyListener:
    """Receives sd_notify datagrams for one service; `ready` is set on READY=1."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = asyncio.Event()
        self.status = ""
        self._sock: socket.socket | None = None

    def open(self, uid: int | None) -> None:
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # Only the service (and root) may send: whoever can write to this socket
        # can declare the service ready. Not left to the umask we were given.
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        sock.setblocking(False)
        if uid is not None:
            os.chown(self.path, uid, -1)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(4096)
            except BlockingIOError:
                return
            for line in data.decode("utf-8", "replace").splitlines():
                key, _, value = line.partition("=")
                if key == "READY" and value == "1":
                    self.ready.set()
                elif key == "STATUS":
                    self.status = value[:200]

    def reset(self) -> None:
        """Before each start: readiness is per run."""
        self.ready.clear()
        self.status = ""

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self.path.unlink(missing_ok=True)


class Upward:
    """sd_notify to whoever started us, if anyone did."""

    def __init__(self, notify_socket: str | None) -> None:
        self._notifier = None
        if notify_socket:
            import sdnotify

            self._notifier = sdnotify.SystemdNotifier()  # connects to $NOTIFY_SOCKET

    def send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)
