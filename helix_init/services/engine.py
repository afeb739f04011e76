"""supervisord as a child of the init, and an async XML-RPC client on its root-only unix socket.

Runs in PID 1. The client opens a new connection per call (HTTP/1.0): a call
never blocks the event loop, and a failed connection is never reused (the
stock SupervisorTransport keeps a broken one, see TESTBED.md). Calls that
would wait inside supervisord (stopProcess with wait) are made with wait=False;
the init watches the processes itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from helix_init.logsink import Log, follow_pipe
from helix_init.reaper import Child, Reaper
from helix_init.services import http10, rpcwire
from helix_init.services.render import EnginePaths

ENGINE_EXEC = Path(__file__).with_name("engineexec.py")

_OWN_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
START_TIMEOUT = 15.0
START_POLL = 0.005  # a stat until its socket is there (~0.1 s); a 20 ms poll lost up to 20 ms
REPEAT_QUIET = 60.0  # seconds before the same supervisord error is logged again
SHUTDOWN_TIMEOUT = 5.0
CALL_TIMEOUT = 5.0  # a call to a live supervisord takes milliseconds
HUNG_CALL_TIMEOUT = 0.5  # once a call went unanswered (a stopped or wedged supervisord)


def supervisord_argv(conf: Path, sys_path: Sequence[str]) -> list[str]:
    """`python -m supervisor.supervisord -n -c CONF`, but lean (engineexec.py).

    The same interpreter as the init, with its sys.path, without `site`,
    without OpenSSL, and pkg_resources only on demand: in the images, half the
    start and 0.6x the RSS of plain supervisord (docs/boot.md). `-n`: in the
    foreground, our child.
    """
    path = ":".join(p for p in sys_path if ":" not in p)
    module = "supervisor.supervisord"
    return [sys.executable, "-I", "-S", str(ENGINE_EXEC), path, module, "-n", "-c", str(conf)]


class EngineError(Exception):
    """supervisord refused a call or is not reachable."""


LIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "BACKOFF"})


@dataclass(frozen=True)
class ProcessInfo:
    """supervisord's view of one program (getProcessInfo), typed."""

    state: str  # STOPPED, STARTING, RUNNING, BACKOFF, STOPPING, EXITED, FATAL, UNKNOWN
    pid: int | None
    exitstatus: int  # -1 for a death by a signal (supervisord's own convention)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @classmethod
    def parse(cls, info: Mapping[str, Any]) -> ProcessInfo:
        return cls(
            str(info.get("statename", "UNKNOWN")),
            int(info.get("pid") or 0) or None,
            int(info.get("exitstatus", -1)),
        )


class Programs(Protocol):
    """What a service's supervision needs from the engine: three calls, typed."""

    async def start_program(self, name: str) -> ProcessInfo: ...

    async def program(self, name: str) -> ProcessInfo: ...

    async def stop_program(self, name: str) -> None: ...


class Engine:
    def __init__(self, reaper: Reaper, log: Log, paths: EnginePaths) -> None:
        self._reaper = reaper
        self._log = log
        self.paths = paths
        self.child: Child | None = None
        self._in_traceback = ""  # "frames", then "between" after its error line; "" outside
        self._said: dict[str, float] = {}  # error line -> when it was last logged
        self.hung = False  # the last call went unanswered
        self.start_took: tuple[float, float] | None = None  # the last start: spawned at, seconds

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.running

    @staticmethod
    def environment(environ: Mapping[str, str]) -> dict[str, str]:
        """supervisord's own environment (each program's is its launch script's)."""
        return {"PATH": environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}

    async def start(self, env: Mapping[str, str]) -> None:
        """Spawn supervisord and wait until its RPC answers; EngineError if it does not."""
        self.paths.socket.unlink(missing_ok=True)
        self.hung = False
        read_fd, write_fd = os.pipe()
        argv = supervisord_argv(self.paths.conf, sys.path)
        try:
            self.child = self._reaper.spawn(argv, name="supervisord", env=env, stdout=write_fd)
        finally:
            os.close(write_fd)
        follow_pipe(read_fd, self._log_line)
        spawned = time.monotonic()
        deadline = spawned + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.child.running:
                raise EngineError(f"supervisord exited with code {self.child.exited.result()}")
            if self.paths.socket.exists():  # a stat, not a call, until it is there
                try:
                    state = await self.call("supervisor.getState")
                    if state.get("statename") == "RUNNING":
                        self.start_took = (spawned, time.monotonic() - spawned)
                        return
                except (EngineError, OSError):
                    pass
            await asyncio.wait([self.child.exited], timeout=START_POLL)
        raise EngineError(f"supervisord did not answer within {START_TIMEOUT:g}s")

    def _log_line(self, text: str) -> None:
        # supervisord stamps its own lines; ours already carry a timestamp.
        text = _OWN_TIMESTAMP.sub("", text)
        if self._traceback(text):
            return
        # Its warning about the unauthenticated socket is moot: the socket is 0700, root only.
        if "without any HTTP authentication checking" not in text:
            self._log.line("supervisord", text)

    def _traceback(self, text: str) -> bool:
        """Fold a Python traceback from supervisord into one line per error; True if taken.

        supervisord prints one for every log write that fails: with a full log
        disk, a busy service filled `docker logs` with tracebacks that looked
        like a crash. Each error line is said once per REPEAT_QUIET seconds;
        the frames go to the debug log (HELIX_INIT_VERBOSITY=2).
        """
        if text == _TRACEBACK:
            self._in_traceback = "frames"
        elif self._in_traceback == "frames" and text.startswith((" ", "\t")):
            pass  # a frame
        elif self._in_traceback == "frames":  # the error line ends this part
            self._in_traceback = "between"
            now = time.monotonic()
            if self._said.get(text, -REPEAT_QUIET) + REPEAT_QUIET <= now:
                self._said[text] = now
                self._log.line("supervisord", f"ERROR: {text}")
        elif self._in_traceback == "between" and (text == "" or text in _CHAINED):
            pass  # between the parts of a chained exception
        else:
            self._in_traceback = ""
            return False
        self._log.debug(f"[supervisord] {text}")
        return True

    async def call(self, method: str, *params: Any) -> Any:
        """One XML-RPC call; EngineError when refused, unreachable or not answered in time.

        The time limit is what keeps a stopped or wedged supervisord (SIGSTOP, a
        stuck disk) from hanging the init: the shutdown used to wait on its
        stopProcess answer forever. After one unanswered call the next ones get
        HUNG_CALL_TIMEOUT, so a shutdown over many services stays short.
        """
        body = rpcwire.dumps(params, method).encode()
        timeout = HUNG_CALL_TIMEOUT if self.hung else CALL_TIMEOUT
        # Shielded: a caller cancelled mid-call (a stop during a start) leaves the
        # exchange to finish and read its answer; closing the connection under
        # supervisord made it log "uncaptured python exception ... Broken pipe".
        exchange = asyncio.ensure_future(asyncio.wait_for(self._exchange(body), timeout))
        exchange.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            data = await asyncio.shield(exchange)
        except TimeoutError:
            self.hung = True
            raise EngineError(f"supervisord did not answer {method} within {timeout:g}s") from None
        self.hung = False
        _, _, payload = data.partition(b"\r\n\r\n")
        try:
            result, _ = rpcwire.loads(payload)
        except rpcwire.Fault as fault:
            raise EngineError(fault.faultString) from None
        except Exception as exc:  # a truncated answer from a dying supervisord
            raise EngineError(f"bad answer from supervisord: {exc}") from None
        return result[0]

    async def start_program(self, name: str) -> ProcessInfo:
        """Start `name` without waiting inside supervisord; what it then runs.

        One round trip (system.multicall: the start, then its info) instead of
        two: each call waits for a turn of supervisord's loop, ~2.5 ms, a sixth
        of a crash loop's restart (docs/service-limits.md).
        """
        started, info = await self.call(
            "system.multicall",
            [
                {"methodName": "supervisor.startProcess", "params": [name, False]},
                {"methodName": "supervisor.getProcessInfo", "params": [name]},
            ],
        )
        for answer in (started, info):  # a refused call's fault, in place of its result
            if isinstance(answer, dict) and "faultString" in answer:
                raise EngineError(str(answer["faultString"]))
        return ProcessInfo.parse(info)

    async def program(self, name: str) -> ProcessInfo:
        return ProcessInfo.parse(await self.call("supervisor.getProcessInfo", name))

    async def stop_program(self, name: str) -> None:
        """Send its stopsignal (KILL after stopwaitsecs); returns at once, we watch the exit."""
        await self.call("supervisor.stopProcess", name, False)

    async def _exchange(self, body: bytes) -> bytes:
        call = http10.request("POST", "/RPC2", body=body, Content_Type="text/xml")
        try:
            return await http10.exchange(call, unix_path=str(self.paths.socket))
        except http10.Unreachable as exc:
            raise EngineError(f"cannot reach supervisord: {exc.strerror}") from None
        except OSError as exc:  # supervisord died mid-call
            raise EngineError(f"supervisord dropped the call: {exc.strerror or exc}") from None

    async def stop(self) -> None:
        """Ask supervisord to exit (all programs stopped already); TERM, then KILL if it hangs."""
        if self.child is None or not self.child.running:
            return
        if self.hung:  # it answers nothing, and a stopped one would not act on TERM either
            self._log.warn("supervisord is not answering; killing it")
            self._signal(9)
        else:
            try:
                await self.call("supervisor.shutdown")
            except EngineError as exc:
                self._log.debug(f"supervisord shutdown call failed: {exc}")
                self._signal(15)
        done, _ = await asyncio.wait([self.child.exited], timeout=SHUTDOWN_TIMEOUT)
        if not done:
            # No program is left under it, so nothing can be lost by killing it.
            self._log.warn("supervisord did not exit in time; killing it")
            self._signal(9)
            await asyncio.shield(self.child.exited)

    def _signal(self, sig: int) -> None:
        if self.child is not None:
            try:
                os.kill(self.child.pid, sig)
            except ProcessLookupError:
                pass
