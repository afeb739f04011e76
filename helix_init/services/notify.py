"""sd_notify in both directions: a NOTIFY_SOCKET per service, and READY/STOPPING to the level above.

Runs in PID 1. Each service that declares `ready = { notify = true }` gets its
own datagram socket, only writable by the service's user, and every message
is checked against its sender's credentials (SO_PASSCRED: the kernel adds the
sending pid): only the service's own processes (its cgroup, or its group,
session and descendants) can report readiness. Before, any process running as
the service's uid could declare another service ready. dockerd speaks this
protocol (READY=1 once its API serves). Upward, when the
init itself was given a NOTIFY_SOCKET (systemd, or an outer helix-init), it
reports READY=1 once every service is ready and STOPPING=1 at shutdown.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path


class NotifyListener:
    """Receives sd_notify datagrams for one service; `ready` is set on READY=1 from its own."""

    def __init__(
        self,
        path: Path,
        owns: Callable[[int], bool] = lambda pid: True,
        refused: Callable[[int], None] = lambda pid: None,
    ) -> None:
        self.path = path
        self.ready = asyncio.Event()
        self.status = ""
        self._owns = owns
        self._refused = refused
        self._sock: socket.socket | None = None
        self._unsure: list[tuple[int, bytes]] = []

    def open(self, uid: int | None) -> None:
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
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
                data, ancillary, _flags, _addr = self._sock.recvmsg(4096, _CREDS_SPACE)
            except BlockingIOError:
                return
            pid = sender_pid(ancillary)
            if pid is not None and self._owns(pid):
                self._apply(data)
            elif len(self._unsure) < MAX_UNSURE:
                # Perhaps sent before the init had noted the run's first process
                # (supervisord had just spawned it): decided at the next check.
                self._unsure.append((pid or 0, data))

    def recheck(self) -> None:
        """Decide the messages whose sender was not known to be the service's when they came."""
        unsure, self._unsure = self._unsure, []
        for pid, data in unsure:
            if pid and self._owns(pid):
                self._apply(data)
            else:
                self._refused(pid)

    def _apply(self, data: bytes) -> None:
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
        self._unsure = []

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self.path.unlink(missing_ok=True)


MAX_UNSURE = 16
_UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid
_CREDS_SPACE = socket.CMSG_SPACE(_UCRED.size)


def sender_pid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The sending pid from SCM_CREDENTIALS (0 when the sender is not in our PID namespace)."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            pid, _uid, _gid = _UCRED.unpack_from(data)
            return int(pid) or None
    return None


class Upward:
    """sd_notify to whoever started us (systemd, `podman run --sdnotify=container`), if anyone
    did: READY=1 once every service is ready, STOPPING=1 at shutdown.

    A datagram to the socket the settings name, not the sdnotify package: that
    reads $NOTIFY_SOCKET behind the settings' back, and it is these few lines.
    A supervisor that stopped listening is no reason to stop: a failed send is
    dropped, as sd_notify(3) callers do.
    """

    def __init__(self, notify_socket: str | None) -> None:
        self._sock: socket.socket | None = None
        self._addr = ""
        if notify_socket and notify_socket.startswith(("/", "@")):
            # "@name": the abstract namespace (systemd's own spelling)
            self._addr = "\0" + notify_socket[1:] if notify_socket[0] == "@" else notify_socket
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def send(self, message: str) -> None:
        if self._sock is not None:
            try:
                self._sock.sendto(message.encode(), self._addr)
            except OSError:
                pass
