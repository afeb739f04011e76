"""The s6-compat commands' option parsing, and their control client against the init's server.

The compat scripts are stdlib only (they never import helix_init), so their
client is a second implementation of control.py's wire format: the last test
runs the init's own server and has the compat client talk to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helix_init import control
from helix_init.s6.compat import notifyoncheck, svc


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-z", "x"], "usage: bad option -z"),
        (["-wq", "x"], "usage: bad option -wq"),
        (["-T", "soon", "x"], "usage: bad option -T soon"),
        (["-T"], "usage: bad option -T"),
        (["-s", "NOSUCH", "x"], "usage: bad option"),
        (["-o", "x"], "-o (run once) is not supported by helix-init"),
        (["-u"], "usage: s6-svc"),
    ],
)
def test_s6_svc_refuses_bad_usage_with_one_line_and_100(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert svc.svc(args) == 100
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("s6-svc: fatal: "), err
    assert message in err[0]


def test_s6_svwait_refuses_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert svc.svwait(["-U", "-t", "1x", "svc-a"]) == 100
    assert capsys.readouterr().err == "s6-svwait: fatal: usage: bad option -t 1x\n"


def test_s6_svc_with_no_init_says_the_socket_and_111(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HELIX_INIT_RUN_DIR", str(tmp_path))
    assert svc.svc(["-wU", "-T", "10", "-r", "/run/service/svc-a"]) == 111
    err = capsys.readouterr().err
    assert f"{tmp_path}/control.sock" in err and err.count("\n") == 1


def test_notifyoncheck_options_are_clustered_or_separate_and_stop_at_prog() -> None:
    opts, prog = notifyoncheck.parse(
        ["-d", "-3", "5", "-w500", "-n0", "-c", "nc -z x 1", "cmd", "-d"]
    )
    assert (opts["d"], opts["3"], opts["w"], opts["n"], opts["c"]) == (True, 5, 500, 0, "nc -z x 1")
    assert (opts["s"], opts["T"], opts["t"]) == (10, 0, 0)  # s6's defaults
    assert prog == ["cmd", "-d"]


@pytest.mark.parametrize(("args", "bad"), [(["-x", "p"], "-x"), (["-w", "1s", "p"], "-w 1s")])
def test_notifyoncheck_names_the_bad_option(args: list[str], bad: str) -> None:
    with pytest.raises(ValueError, match=f"^{bad}$"):
        notifyoncheck.parse(args)


@pytest.fixture
def init_server(tmp_path: Path) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """The init's control server (control.serve) on its own loop, answering like the init."""
    seen: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def handle(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        services = [{"name": "svc-a", "state": "ready", "pid": 4242, "ready": True}]
        if request["cmd"] == "status":
            return {"ok": True, "status": {"services": {"services": services}}}
        return {"ok": request.get("service") == "svc-a", "error": "no such service"}

    async def main() -> None:
        requests = {cmd: handle for cmd in ("status", "start", "stop", "restart")}
        server = await control.serve(tmp_path / "control.sock", requests)
        ready.set()
        async with server:
            await server.serve_forever()

    task: asyncio.Future[None] | None = None

    def run() -> None:
        nonlocal task
        task = asyncio.ensure_future(main(), loop=loop)
        try:
            loop.run_until_complete(task)
        except asyncio.CancelledError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield tmp_path, seen
    loop.call_soon_threadsafe(lambda: task and task.cancel())
    thread.join(10)
    loop.close()


def test_the_compat_client_speaks_the_init_control_wire_format(
    init_server: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, seen = init_server
    monkeypatch.setenv("HELIX_INIT_RUN_DIR", str(run_dir))
    assert svc.services()["svc-a"]["pid"] == 4242
    assert svc.svc(["-r", "-wU", "-T", "1000", "/etc/s6-overlay/s6-rc.d/svc-a"]) == 0
    assert {"cmd": "restart", "service": "svc-a"} in seen
    # the init's own client reads the same answers
    assert control.request(run_dir / "control.sock", {"cmd": "status"}, 5)["ok"] is True
