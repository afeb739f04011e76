"""Helpers for the services process tests, on top of the `Pid1` harness (tests/support/pid1.py).

`Services` writes services.d drop-ins for one test, reads the init's state
from outside its PID namespace (the control socket, the same answer
`helix-init status --json` prints), the events the example services record,
and maps a pid inside the init's namespace to the pid the test can signal.
Every wait polls a condition with a deadline; nothing sleeps for readiness.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.pid1 import PYTHON, Pid1, Running, wait_until

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "services"
STATUS_TIMEOUT = 5.0


def example(script: str, *args: str) -> str:
    """A TOML argv running one of examples/services/ with the real interpreter, isolated."""
    argv = [PYTHON, "-I", str(EXAMPLES / script), *args]
    return json.dumps(argv)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Event:
    """One line an example service appended to the record file: "EPOCH NAME EVENT"."""

    at: float
    name: str
    what: str


class Services:
    """The services.d folder of one test, and views of the running init from outside."""

    def __init__(self, pid1: Pid1) -> None:
        self.pid1 = pid1
        self.dir = pid1.root / "services.d"
        self.dir.mkdir(exist_ok=True)
        self.log_dir = pid1.root / "service-logs"
        self.record = pid1.root / "record"
        run_dir = Path(pid1.env["HELIX_INIT_RUN_DIR"])  # a test may have moved it
        self.ready_file = run_dir / "ready"
        self.control_sock = run_dir / "control.sock"

    def add(self, name: str, toml: str) -> Path:
        path = self.dir / f"{name}.toml"
        path.write_text(textwrap.dedent(toml).lstrip())
        return path

    # -- the init's state ---------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What `helix-init status --json` prints, asked directly on the control socket."""
        from helix_init import control

        answer = control.request(self.control_sock, {"cmd": "status"}, STATUS_TIMEOUT)
        status: dict[str, Any] = answer["status"]
        return status

    def control(self, verb: str, name: str) -> dict[str, Any]:
        """What `helix-init start|stop|restart NAME` asks, without a CLI process per call."""
        from helix_init import control

        return control.request(self.control_sock, {"cmd": verb, "service": name}, 60)

    def service(self, name: str) -> dict[str, Any]:
        services = (self.status().get("services") or {}).get("services", [])
        for s in services:
            if s["name"] == name:
                return dict(s)
        raise KeyError(name)

    def wait_service(
        self,
        running: Running,
        name: str,
        check: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Poll the service's status until `check` holds; returns that status."""
        seen: list[dict[str, Any]] = []

        def holds() -> bool:
            from helix_init import control

            try:  # the socket file exists a moment before the init listens on it
                s = self.service(name)
            except control.ControlError:
                return False
            seen[:] = [s]
            return check(s)

        try:
            wait_until(holds, timeout, f"{name}: {what}", running.alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last status {seen}\n{running.output()}") from None
        return seen[0]

    def wait_ready(self, running: Running, name: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_service(running, name, lambda s: s["state"] == "ready", "ready", timeout)

    # -- what the services and the init wrote ---------------------------------------
    def events(self, name: str | None = None) -> list[Event]:
        if not self.record.exists():
            return []
        found = []
        for line in self.record.read_text().splitlines():
            at, who, what = line.split(" ", 2)
            if name is None or who == name:
                found.append(Event(float(at), who, what))
        return found

    def first(self, name: str, what: str) -> Event:
        for event in self.events(name):
            if event.what == what:
                return event
        raise AssertionError(f"no event {what!r} from {name}: {self.events()}")

    def init_log(self) -> str:
        """Everything the init printed so far (its log file mirrors its stdout)."""
        path = self.pid1.log_dir / "init.log"
        return path.read_text(errors="backslashreplace") if path.exists() else ""

    def init_lines(self, fragment: str) -> list[str]:
        return [line for line in self.init_log().splitlines() if fragment in line]


# -- processes inside the init's PID namespace ----------------------------------------
@dataclass(frozen=True)
class Proc:
    host_pid: int
    ns_pid: int
    argv: tuple[str, ...]


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def namespace_procs(running: Running) -> Iterator[Proc]:
    """Every live process in the init's PID namespace, with its pid there and here."""
    ns = _pid_ns(running.init_pid())
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or _pid_ns(int(entry.name)) != ns:
            continue
        try:
            status = Path(f"/proc/{entry.name}/status").read_text()
            raw = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z"):
            continue
        nspids = fields.get("NSpid", "").split()
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        yield Proc(int(entry.name), int(nspids[-1]), argv)


def host_pid(running: Running, ns_pid: int) -> int:
    """The pid this test can signal for `ns_pid` of the init's namespace."""
    for proc in namespace_procs(running):
        if proc.ns_pid == ns_pid:
            return proc.host_pid
    raise AssertionError(f"no process {ns_pid} in the init's namespace")


def exec_environ(pid: int, program: bytes, timeout: float = 10.0) -> dict[str, str]:
    """The environment host pid `pid` was exec'd with, once its exec of `program` is complete.

    The pid a status names may still be the launch chain (`env -i`, the shell,
    svcexec) that execs the service. And a finished-looking exec is not enough:
    the kernel publishes the new argv before the new environment
    (`create_elf_tables` in fs/binfmt_elf.c sets `mm->arg_end`, then walks every
    environment string before it sets `mm->env_end`), so for that walk
    /proc/PID/cmdline already names `program` while /proc/PID/environ reads
    empty. With 24,000 variables under CI load that window was hit (0 of the
    24,000 read back). So wait for both: argv naming `program`, and the
    environment published (every service here has at least one variable).
    """
    cmdline, environ = Path(f"/proc/{pid}/cmdline"), Path(f"/proc/{pid}/environ")
    raw = b""

    def done() -> bool:
        nonlocal raw
        if not cmdline.read_bytes().startswith(program + b"\0"):
            return False
        raw = environ.read_bytes()
        return bool(raw)

    wait_until(done, timeout, f"pid {pid} to exec {program.decode()} with its environment")
    return dict(e.split("=", 1) for e in raw.decode().split("\0") if e)


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Until host pid `pid` has exited (and been reaped)."""

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        return state == "Z"

    wait_until(gone, timeout, f"pid {pid} to exit")


def elapsed(since: float) -> float:
    return time.monotonic() - since
