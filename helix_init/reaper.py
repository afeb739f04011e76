"""PID-1 duties: reaping, signals held and forwarded, the final sweep; all children spawned here.

Runs in PID 1 (or as a child subreaper below another init). `Duties` is what
PID 1 owes everything below it, as tini does: reap every child (Reaper, the
one owner of waitpid(-1)), act on TERM/INT and forward every other signal to
the CMD (sigmask.py holds them until the handlers exist), and at the end TERM
then KILL whatever is left (`sweep`).

Why the Reaper's shape:
the init must reap orphans it never started, and must also learn the exit
status of the children it did start (steps, supervisord, the CMD). Two
waiters on the same children lose statuses to each other, so nothing else in
the package calls wait(): every child is spawned here and registered before
the event loop runs again (the loop is single-threaded, so its SIGCHLD handler
cannot run in between). Exits of pids nobody registered are orphans; the last
few are held in case a registration arrives late.

subprocess.Popen is used for its careful fork/exec (user switching, process
groups, close_fds), but never asked to wait: we set its returncode ourselves
so its own clean-up never calls waitpid on a pid we already reaped.

`fork` runs a function of the loaded init in a child instead (a built-in
step): no new interpreter, no imports again, the same guarantees as a spawned
program (own session and process group, stdin /dev/null, output to a pipe, no
descriptor of the init's left open, the signal dispositions a fresh exec
would have) and an exit status the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from helix_init import sigmask
from helix_init.logsink import Log

PR_SET_CHILD_SUBREAPER = 36
_HELD_EXITS = 256
KILL_WAIT = 5.0  # after KILL, how long to wait for the kernel (a D-state process can stall)


class SpawnError(Exception):
    """The program could not be started at all (not found, not executable, bad format)."""


@dataclass
class Child:
    pid: int
    name: str
    # os.waitstatus_to_exitcode(): -N when killed by signal N. Await it through
    # asyncio.shield() or asyncio.wait(): cancelling a task that awaits it
    # directly would cancel the future and lose the exit status.
    exited: asyncio.Future[int]
    popen: subprocess.Popen[bytes] | None = field(repr=False)  # None for a fork (Reaper.fork)

    @property
    def running(self) -> bool:
        return not self.exited.done()


def _become_fresh_process(
    stdout: int, env: Mapping[str, str], child_setup: Callable[[], None] | None
) -> None:
    """In a forked child of the init: shed what a fresh exec would not have."""
    os.setsid()
    signal.set_wakeup_fd(-1)  # the init's event loop is not ours
    for sig in (*sigmask.HELD, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # as subprocess's restore_signals does
        signal.signal(sig, signal.SIG_DFL)
    if child_setup is not None:
        child_setup()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout, 1)
    os.dup2(stdout, 2)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.environ.clear()
    os.environ.update(env)
    if sys.modules.get("ssl", 0) is None:  # PID 1 marks ssl missing (cli.py); a step may use it
        del sys.modules["ssl"]
    # New streams on 1 and 2 (the init's may be anything, a test's capture
    # too), line-buffered so every line reaches the log as it is printed.
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = open(fd, "w", 1, "utf-8", "surrogateescape", closefd=False)  # noqa: SIM115
        setattr(sys, name, stream)


def _both(first: Callable[[], None], then: Callable[[], None] | None) -> Callable[[], None]:
    if then is None:
        return first

    def run() -> None:
        first()
        then()

    return run


def become_subreaper() -> bool:
    """Ask the kernel to re-parent our orphaned descendants to us (prctl); True on success."""
    import ctypes  # only below another init: PID 1 itself never needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Reaper:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, child_setup: Callable[[], None] | None = None
    ) -> None:
        self.loop = loop
        self._loop = loop
        # Run in every child before its exec (sigmask.keep_ignored: what the
        # caller had ignored stays ignored); None, the usual case, keeps vfork.
        self._child_setup = child_setup
        self._children: dict[int, Child] = {}
        # pid -> (number of the reap, exit code). The number tells an exit that
        # happened during a spawn from a stale one of an earlier process with
        # the same pid: pids wrap (pid_max is often 32768), and a stale exit
        # must never end a new child (a probe, a service) the moment it starts.
        self._held: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self._reaps = 0
        self.orphans_reaped = 0
        self.reaped = asyncio.Event()  # set whenever a child was collected

    def start(self) -> None:
        self._loop.add_signal_handler(signal.SIGCHLD, self.reap)
        self.reap()  # children that ended before the handler existed

    def spawn(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str],
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
        new_session: bool = True,
        process_group: int | None = None,
        cwd: str | None = None,
        user: int | None = None,
        group: int | None = None,
        extra_groups: list[int] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        pass_fds: Sequence[int] = (),
        umask: int = -1,
    ) -> Child:
        reaps_before = self._reaps
        if self._child_setup is not None:
            preexec_fn = _both(self._child_setup, preexec_fn)
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=stdin,
                stdout=stdout,
                stderr=subprocess.STDOUT if stdout is not None else None,
                env=dict(env),
                cwd=cwd,
                start_new_session=new_session,
                process_group=process_group,
                user=user,
                group=group,
                extra_groups=extra_groups,
                preexec_fn=preexec_fn,
                pass_fds=tuple(pass_fds),
                umask=umask,
                restore_signals=True,
            )
        except OSError as exc:
            raise SpawnError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, subprocess.SubprocessError) as exc:
            raise SpawnError(f"cannot start {argv[0]}: {exc}") from None
        child = Child(popen.pid, name, self._loop.create_future(), popen)
        held = self._held.pop(popen.pid, None)
        if held is not None and held[0] > reaps_before:
            self._finish(child, held[1])
        else:
            self._children[popen.pid] = child
        return child

    def reap(self) -> None:
        """Collect every exited child; resolve registered ones, count the orphans."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self._reaps += 1
            self.reaped.set()
            child = self._children.pop(pid, None)
            if child is not None:
                self._finish(child, code)
                continue
            self.orphans_reaped += 1
            self._held[pid] = (self._reaps, code)
            while len(self._held) > _HELD_EXITS:
                self._held.popitem(last=False)

    def fork(
        self, main: Callable[[], int], *, name: str, env: Mapping[str, str], stdout: int
    ) -> Child:
        """Run `main()` in a forked child of the init, as `spawn` would run a program.

        The child is what a spawned program would be at its exec: a session and
        process group of its own, stdin from /dev/null, stdout and stderr to
        `stdout`, no other descriptor of the init's, every signal default
        (or ignored as the caller had it: child_setup), `env` as its whole
        environment. Its exit status is main()'s return value (70 for an
        exception, with its traceback on its output); it never returns here.
        """
        reaps_before = self._reaps
        for stream in (sys.stdout, sys.stderr):  # else the child writes our buffer out again
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 70
            try:
                _become_fresh_process(stdout, env, self._child_setup)
                code = main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:  # nothing left to tell it to
                        pass
                os._exit(code)
        child = Child(pid, name, self._loop.create_future(), None)
        held = self._held.pop(pid, None)
        if held is not None and held[0] > reaps_before:
            self._finish(child, held[1])
        else:
            self._children[pid] = child
        return child

    @staticmethod
    def _finish(child: Child, code: int) -> None:
        if child.popen is not None:
            child.popen.returncode = code
        if not child.exited.done():
            child.exited.set_result(code)

    def has_children(self) -> bool:
        """True while any process (registered or orphan) is still ours to reap."""
        self.reap()
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return True

    def running(self) -> list[Child]:
        return list(self._children.values())


class Duties:
    """PID 1's duties to everything below it; boot's stage 0 takes them, its stage 4 sweeps."""

    def __init__(
        self,
        reaper: Reaper,
        log: Log,
        held: sigmask.Held | None,
        on_stop: Callable[[int], None],
        cmd: Callable[[], Child | None],
    ) -> None:
        self.reaper = reaper
        self._log = log
        self._held = held
        self._on_stop = on_stop  # TERM, INT: the init's graceful stop
        self._cmd = cmd  # where every other signal goes
        self.is_pid1 = os.getpid() == 1

    def take(self) -> None:
        """Reap, handle and forward signals; what arrived while held is acted on first."""
        loop = self.reaper.loop
        self.reaper.start()
        if not self.is_pid1:
            if become_subreaper():
                self._log.info(
                    f"not PID 1 (pid {os.getpid()}): running as child subreaper for our descendants"
                )
            else:
                self._log.warn("not PID 1 and could not become a subreaper; orphans go elsewhere")
        for stop in sigmask.STOP:
            loop.add_signal_handler(stop, self._on_stop, stop)
        for sig in sigmask.FORWARDED:
            loop.add_signal_handler(sig, self.forward, sig)
        if self._held is not None:
            sigmask.release(self._held, self._on_signal)

    def _on_signal(self, sig: int) -> None:
        if sig in sigmask.STOP:
            self._on_stop(sig)
        else:
            self.forward(sig)

    def forward(self, sig: int) -> None:
        """To the CMD's process (not its group, as tini without -g); dropped without a CMD."""
        cmd = self._cmd()
        if cmd is not None and cmd.running:
            try:
                os.kill(cmd.pid, sig)
            except ProcessLookupError:
                pass
        else:
            self._log.debug(f"got {sigmask.name(sig)}; no CMD running to forward it to")

    async def sweep(self, grace: float) -> None:
        """TERM everything still running, KILL after `grace` (HELIX_INIT_KILL_GRACETIME)."""
        reaper = self.reaper
        if not reaper.has_children():
            return
        self._log.info("sending TERM to the remaining processes")
        self._signal_rest(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while reaper.has_children() and time.monotonic() < deadline:
            reaper.reaped.clear()
            try:
                await asyncio.wait_for(reaper.reaped.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        if reaper.has_children():
            self._log.warn("processes left after the kill grace time; sending KILL")
            self._signal_rest(signal.SIGKILL)
            deadline = time.monotonic() + KILL_WAIT
            while reaper.has_children() and time.monotonic() < deadline:
                reaper.reaped.clear()
                try:
                    await asyncio.wait_for(reaper.reaped.wait(), 0.5)
                except TimeoutError:
                    continue

    def _signal_rest(self, sig: signal.Signals) -> None:
        if self.is_pid1:
            try:
                os.kill(-1, sig)  # every process in our PID namespace but us
            except ProcessLookupError:
                pass
            return
        import psutil  # only here: a subreaper must not kill(-1) the outer world

        for proc in psutil.Process().children(recursive=True):
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
