"""Reaper bookkeeping: held exits of unregistered pids versus pid reuse (fake Popen, real fork)."""

from __future__ import annotations

import asyncio
import functools
import os
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helix_init.reaper import Reaper


def _zombie(code: int) -> int:
    """A child of ours that has exited with `code` and is not yet reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(code)
    deadline = time.monotonic() + 5
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    return pid


def in_own_process(test: Callable[..., None]) -> Callable[..., None]:
    """Run the test in a forked child, so the reaper's waitpid(-1) sees only the
    children the test makes, never a leftover child of the pytest process."""

    @functools.wraps(test)
    def isolated(*args: Any, **kwargs: Any) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code = 0
            try:
                test(*args, **kwargs)
            except BaseException:
                os.write(write_end, traceback.format_exc().encode())
                code = 1
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as report:
            failure = report.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, failure

    return isolated


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def fake_popen(monkeypatch: pytest.MonkeyPatch, make_pid: Any) -> None:
    class FakePopen:
        returncode: int | None = None

        def __init__(self, *args: object, **kwargs: object) -> None:
            self.pid = make_pid()

    monkeypatch.setattr("helix_init.reaper.subprocess.Popen", FakePopen)


@in_own_process
def test_an_orphan_exit_is_counted(loop: asyncio.AbstractEventLoop) -> None:
    reaper = Reaper(loop)
    _zombie(5)
    reaper.reap()
    assert reaper.orphans_reaped == 1
    assert reaper.reaped.is_set()
    assert not reaper.has_children()


@in_own_process
def test_a_stale_exit_of_a_reused_pid_does_not_end_a_new_child(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    reaper = Reaper(loop)
    old = _zombie(9)
    reaper.reap()  # an orphan's exit, held
    fake_popen(monkeypatch, lambda: old)  # the kernel hands the same pid out again

    child = reaper.spawn(["probe"], name="probe", env={})

    assert child.running
    assert [c.pid for c in reaper.running()] == [old]


@in_own_process
def test_an_exit_collected_while_spawning_ends_that_child(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    reaper = Reaper(loop)

    def fork_exit_and_reap() -> int:
        pid = _zombie(3)
        reaper.reap()  # as if SIGCHLD were handled before the registration
        return pid

    fake_popen(monkeypatch, fork_exit_and_reap)

    child = reaper.spawn(["quick"], name="quick", env={})

    assert child.exited.done() and child.exited.result() == 3
    assert child.popen.returncode == 3
    assert reaper.running() == []


def _read_all(fd: int) -> str:
    with os.fdopen(fd, "rb") as f:
        return f.read().decode()


@in_own_process
def test_a_forked_function_is_a_fresh_process_with_its_own_group_and_exit_code(
    loop: asyncio.AbstractEventLoop,
) -> None:
    import signal

    reaper = Reaper(loop)
    loop.add_signal_handler(signal.SIGCHLD, reaper.reap)
    signal.signal(signal.SIGUSR1, lambda *_: None)  # the init's handlers: not the child's
    kept = os.open(os.devnull, os.O_RDONLY)  # an fd of the init's: closed in the child
    read_end, write_end = os.pipe()

    def main() -> int:
        print("session leader:", os.getsid(0) == os.getpid() == os.getpgrp())
        print("stdin:", os.path.realpath(f"/proc/self/fd/{0}"))
        print("init fd open:", os.path.exists(f"/proc/self/fd/{kept}"))
        print("USR1 default:", signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL)
        print("env:", sorted(os.environ.items()))
        return 7

    child = reaper.fork(main, name="builtin", env={"ONLY": "this"}, stdout=write_end)
    os.close(write_end)
    code = loop.run_until_complete(asyncio.wait_for(asyncio.shield(child.exited), 10))

    assert code == 7
    assert child.popen is None and reaper.running() == []
    assert _read_all(read_end).splitlines() == [
        "session leader: True",
        "stdin: /dev/null",
        "init fd open: False",
        "USR1 default: True",
        "env: [('ONLY', 'this')]",
    ]


@in_own_process
def test_a_forked_function_that_raises_exits_70_with_its_traceback(
    loop: asyncio.AbstractEventLoop,
) -> None:
    import signal

    reaper = Reaper(loop)
    loop.add_signal_handler(signal.SIGCHLD, reaper.reap)
    read_end, write_end = os.pipe()

    def main() -> int:
        raise RuntimeError("a bug in a built-in step")

    child = reaper.fork(main, name="builtin", env={}, stdout=write_end)
    os.close(write_end)
    code = loop.run_until_complete(asyncio.wait_for(asyncio.shield(child.exited), 10))

    assert code == 70
    assert "RuntimeError: a bug in a built-in step" in _read_all(read_end)
