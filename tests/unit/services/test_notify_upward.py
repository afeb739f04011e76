"""Upward: sd_notify to whoever started the init, on a path or an abstract (@) socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from helix_init.services.notify import Upward


def test_a_path_and_an_abstract_socket_get_the_message(tmp_path: Path) -> None:
    for given, bound in (
        (str(tmp_path / "n.sock"), str(tmp_path / "n.sock")),
        (f"@hx-upward-{os.getpid()}", f"\0hx-upward-{os.getpid()}"),
    ):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            listener.bind(bound)
            listener.settimeout(5)
            Upward(given).send("READY=1")
            assert listener.recv(64) == b"READY=1"


def test_no_socket_or_nobody_listening_is_no_error(tmp_path: Path) -> None:
    Upward(None).send("READY=1")
    Upward("relative.sock").send("READY=1")  # not an address systemd would give: ignored
    Upward(str(tmp_path / "gone.sock")).send("STOPPING=1")
