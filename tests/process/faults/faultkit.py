"""The stack the fault tests break, and the invariants they check after every fault.

The stack is three services of a Docker-in-Docker level in miniature:
- `dockerd`: graceful.py, essential, ready on a unix socket, stop_timeout 5;
  on TERM it says "got TERM" and takes 1 s to flush. It must never be KILLed.
- `web`: server.py on a TCP port, `requires = ["dockerd"]`.
- `worker`: graceful.py without a socket, ready once spawned.
All restart always, after 0.05 s. A cont-init step (optional) runs until the
test lets it go or kills it, and the CMD is witness.py, which watches from
inside the namespace for two copies of a service and for unreaped zombies.

Each boot of the init is a `Life`, with its own record and witness files
(pids restart at 1 in every new namespace). Nothing here sleeps for
readiness: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helix_init.control import ControlError
from tests.support.pid1 import (
    PYTHON,
    Finished,
    NsProc,
    Pid1,
    Running,
    assert_no_traceback,
    init_status,
    ns_processes,
    wait_until,
)

FAULTS = Path(__file__).resolve().parent
REPO = FAULTS.parents[2]
GRACEFUL = FAULTS / "graceful.py"
WITNESS = FAULTS / "witness.py"
SERVER = REPO / "examples" / "services" / "server.py"
SVCEXEC = REPO / "helix_init" / "services" / "svcexec.py"
SERVICES = ("dockerd", "web", "worker")
DOCKERD_GRACE = 1.0
DOCKERD_STOP_TIMEOUT = 5
SETTLE_TIMEOUT = 20.0
SLOW_STEP = "10-slow.sh"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _argv(*args: str) -> str:
    return json.dumps([PYTHON, "-I", *args])


class Stack:
    """services.d and cont-init.d of the fault tests, written once, booted as often as needed."""

    def __init__(self, pid1: Pid1) -> None:
        self.pid1 = pid1
        # Unique per stack: no_marker_left() looks at the whole host, where
        # another run of these tests may have its own stack.
        token = secrets.token_hex(4)
        self.markers = {name: f"fault-{name}-{token}" for name in SERVICES}
        self.docker_sock = pid1.path("docker.sock")
        self.port = free_port()
        self.lives: list[Life] = []
        services = pid1.root / "services.d"
        services.mkdir(exist_ok=True)
        backoff = "backoff = { initial = 0.05, max = 0.2, jitter = 0, reset_after = 1 }"
        dockerd = _argv(
            str(GRACEFUL), "--name", self.markers["dockerd"], "--record", "${FAULT_RECORD}",
            "--socket", str(self.docker_sock), "--grace", f"{DOCKERD_GRACE:g}",
        )  # fmt: skip
        (services / "dockerd.toml").write_text(
            f"command = {dockerd}\n"
            f'ready = {{ unix = "{self.docker_sock}", interval = 0.02, timeout = 10 }}\n'
            f"{backoff}\nessential = true\nstop_timeout = {DOCKERD_STOP_TIMEOUT}\n"
        )
        web = _argv(
            str(SERVER), "--name", self.markers["web"], "--listen", f"127.0.0.1:{self.port}"
        )
        (services / "web.toml").write_text(
            f'command = {web}\nrequires = ["dockerd"]\n'
            f'ready = {{ tcp = "127.0.0.1:{self.port}", interval = 0.02, timeout = 10 }}\n'
            f"{backoff}\nstop_timeout = 3\n"
        )
        worker = _argv(
            str(GRACEFUL), "--name", self.markers["worker"], "--record", "${FAULT_RECORD}",
            "--grace", "0",
        )  # fmt: skip
        (services / "worker.toml").write_text(f"command = {worker}\n{backoff}\nstop_timeout = 3\n")
        # Optional: a kill only warns, so the boot goes on (a required one is exit 79).
        pid1.step(
            SLOW_STEP,
            '# helix-init: optional\nwhile [ ! -e "$FAULT_GO" ]; do sleep 0.01; done\n',
            mode=0o644,
        )

    def boot(self, *cmd: str, env: dict[str, str] | None = None, go: bool = False) -> Life:
        """Start the init; the CMD is the witness unless `cmd` is given; `go` lets the step end."""
        n = len(self.lives)
        record, witness, go_file = (self.pid1.path(f"{w}.{n}") for w in ("record", "witness", "go"))
        if go:
            go_file.touch()
        running = self.pid1.start(
            *(cmd or (PYTHON, "-I", str(WITNESS), str(witness))),
            env={
                "FAULT_RECORD": str(record),
                "FAULT_GO": str(go_file),
                "FAULT_MARKERS": " ".join(self.markers.values()),
                **(env or {}),
            },
        )  # fmt: skip
        life = Life(self, running, record, witness, go_file, witnessed=not cmd)
        self.lives.append(life)
        return life


@dataclass
class Life:
    """One boot of the init over the stack, from start to its exit."""

    stack: Stack
    running: Running
    record: Path
    witness: Path
    go: Path
    witnessed: bool = True  # the CMD is witness.py
    killed_ns_pids: set[int] = field(default_factory=set)  # what the test KILLed itself
    engine_kills: int = 0

    @property
    def run_dir(self) -> Path:
        return self.stack.pid1.run_dir

    # -- finding processes ------------------------------------------------------
    def procs(self) -> list[NsProc]:
        return ns_processes(self.running)

    def live(self) -> Iterator[NsProc]:
        return (p for p in self.procs() if p.state != "Z")

    def copies(self, name: str) -> list[NsProc]:
        return [p for p in self.live() if p.carries(self.stack.markers[name])]

    def engine(self) -> NsProc | None:
        for p in self.live():
            if _is_engine(p):
                return p
        return None

    def step(self) -> NsProc | None:
        path = str(self.stack.pid1.cont_init / SLOW_STEP)
        for p in self.live():
            if path in p.argv:
                return p
        return None

    def find(self, what: str, timeout: float = 10.0) -> NsProc:
        """The process `what` names (a service, supervisord, the cont-init step), once it runs."""
        found: list[NsProc] = []

        def there() -> bool:
            if what == "supervisord":
                proc = self.engine()
            elif what == "step":
                proc = self.step()
            else:
                procs = self.copies(what)
                proc = procs[0] if len(procs) == 1 else None
            found[:] = [proc] if proc else []
            return bool(found)

        wait_until(there, timeout, f"{what} to run", self.running.alive)
        return found[0]

    # -- faults -----------------------------------------------------------------
    def kill(self, proc: NsProc) -> bool:
        """SIGKILL one process of the namespace and wait until it is dead; False if it was gone.

        Dead, not only signalled: on a loaded machine the victim can take a
        while to be scheduled and exit, and a wait_settled() right after the
        kill then passed on the view from before it (status and /proc still
        showed it ready), so the stop that followed met the fault instead
        (dockerd's last run "start, ready" with no TERM).
        """
        try:
            os.kill(proc.host_pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.killed_ns_pids.add(proc.ns_pid)
        _wait_dead(proc.host_pid)
        return True

    def catch_svcexec(self, timeout: float = 3.0) -> bool:
        """Kill a service's start wrapper between supervisord's fork and its exec, if it shows.

        The wrapper is the launch script's exec chain (`env -i /bin/sh NAME.sh`,
        render.py) or, where a shell cannot say the launch, svcexec.py. It lives
        a millisecond or so, so this reads supervisord's children list in a
        tight loop; True when one was caught and killed.
        """
        engine = self.engine()
        if engine is None:
            return False
        children = Path(f"/proc/{engine.host_pid}/task/{engine.host_pid}/children")
        wrapper = str(SVCEXEC).encode()
        launches = str(self.run_dir / "services").encode()  # render.py: NAME.sh in there
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pids = children.read_text().split()
            except OSError:
                return False
            for pid in pids:
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    nspid = _ns_pid(int(pid))
                except OSError:
                    continue
                script = any(a.startswith(launches) and a.endswith(b".sh") for a in argv)
                if wrapper in argv or script:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.killed_ns_pids.add(nspid)
                    _wait_dead(int(pid))  # as kill() does
                    return True
        return False

    # -- invariants -------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return init_status(self.run_dir)

    def wait_settled(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until every service is ready, runs exactly once as status says, no zombie is left,
        and the witness watches."""
        last: list[str] = []

        def settled() -> bool:
            try:
                status = self.status()
            except ControlError as exc:  # not serving yet (a stale socket file may be there)
                last[:] = [str(exc)]
                return False
            if status["services"] is None:
                last[:] = [f"stage {status['stage']}"]
                return False
            services = {s["name"]: s for s in status["services"]["services"]}
            procs = self.procs()
            problems = []
            for name, marker in self.stack.markers.items():
                copies = [p for p in procs if p.state != "Z" and p.carries(marker)]
                s = services[name]
                if s["state"] != "ready":
                    problems.append(f"{name} is {s['state']}")
                elif [p.ns_pid for p in copies] != [s["pid"]]:
                    problems.append(f"{name}: status pid {s['pid']}, running {copies}")
            engines = [p.ns_pid for p in procs if p.state != "Z" and _is_engine(p)]
            if engines != [status["services"]["engine"]["pid"]]:
                problems.append(
                    f"supervisord: status {status['services']['engine']}, running {engines}"
                )
            if self.witnessed and not self.witness.exists():
                problems.append("the witness (the CMD) has not started")
            zombies = [p for p in procs if p.state == "Z"]
            if zombies:
                problems.append(f"zombies {zombies}")
            last[:] = problems
            return not problems

        try:
            wait_until(settled, timeout, "the stack to settle", self.running.alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {last}\n{self.running.output()}") from None

    def records(self) -> list[tuple[float, int, str, str]]:
        """(epoch, pid in the namespace, marker, event) as graceful.py wrote them."""
        if not self.record.exists():
            return []
        lines = (line.split() for line in self.record.read_text().splitlines())
        return [(float(at), int(pid), name, what) for at, pid, name, what in lines]

    def stop(self, timeout: float = 30.0) -> Finished:
        self.running.signal(signal.SIGTERM)
        return self.running.wait(timeout)


def _is_engine(proc: NsProc) -> bool:
    return "supervisor.supervisord" in proc.argv


def _ns_pid(host_pid: int) -> int:
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    raise OSError(f"no NSpid for {host_pid}")


def graceful_stops(life: Life) -> list[str]:
    """Every process of the graceful services that got TERM and did not flush and exit.

    A process the test KILLed itself is excused; any other `term` without an
    `exit` is a KILL before its grace, which must never happen to dockerd.
    """
    events: dict[tuple[int, str], list[str]] = {}
    for _at, pid, name, what in life.records():
        events.setdefault((pid, name), []).append(what)
    return [
        f"{name} pid {pid}: {seen}"
        for (pid, name), seen in events.items()
        if "term" in seen and "exit" not in seen and pid not in life.killed_ns_pids
    ]


def witness_report(life: Life) -> list[str]:
    """The witness's findings; it must have started, found nothing, and ended on TERM."""
    lines = life.witness.read_text().splitlines() if life.witness.exists() else []
    assert lines[:1] == ["started"], lines[:5]
    assert lines[-1].startswith("looked "), lines[-5:]
    return lines[1:-1]


def no_marker_left(stack: Stack) -> bool:
    """No process anywhere on the host carries a marker of the stack."""
    wanted = {m.encode() for m in stack.markers.values()}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                argv = set(Path(entry.path, "cmdline").read_bytes().split(b"\0"))
            except OSError:
                continue
            if argv & wanted:
                return False
    return True


ENGINE_KILLED = "supervisord died (code -9); stopping its services before a restart"


def assert_clean_shutdown(
    life: Life,
    result: Finished,
    allowed_warnings: tuple[str, ...] = (),
    allowed_errors: tuple[str, ...] = (ENGINE_KILLED,),
) -> None:
    """What every stop of the stack must show, whatever was done to it before.

    dockerd got its TERM and its whole grace (every time, this last time
    included); everything stopped in order, so the final sweep found nothing
    to signal; no error but those the test caused (supervisord deaths); no
    process of the stack is left anywhere on the host.
    """
    assert result.code == 0, result.describe()
    assert_no_traceback(result)
    texts = result.init_texts()
    assert graceful_stops(life) == [], result.describe()
    records = life.records()
    last_dockerd = [
        pid for _at, pid, name, what in records if name == life.stack.markers["dockerd"]
    ]
    assert last_dockerd, records
    final = [what for _at, pid, name, what in records if pid == last_dockerd[-1]]
    assert final[-2:] == ["term", "exit"], (final, result.describe())
    assert "service dockerd: ready -> stopping (shutdown)" in texts, result.describe()
    assert not any("dockerd: still running; killing" in t for t in texts), result.describe()
    assert not any("dockerd: leftover processes" in t for t in texts), result.describe()
    assert "sending TERM to the remaining processes" not in texts, result.describe()
    assert texts[-1].startswith("shutdown complete in "), result.describe()
    if life.witnessed:
        assert witness_report(life) == []
    errors = [e for e in result.errors() if not e.startswith(allowed_errors)]
    assert errors == [], result.describe()
    warnings = [w for w in result.warnings() if not w.startswith(allowed_warnings)]
    assert warnings == [], result.describe()
    wait_until(lambda: no_marker_left(life.stack), 10, "the stack's processes to be gone")


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at `path` (made if missing), unmounted afterwards whatever happened."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def _wait_dead(host_pid: int) -> None:
    """Until a SIGKILLed process has exited (a zombie, or reaped already)."""
    stat = Path(f"/proc/{host_pid}/stat")

    def dead() -> bool:
        try:
            return stat.read_text().rpartition(")")[2].split()[0] in ("Z", "X")
        except OSError:
            return True

    wait_until(dead, 10, f"pid {host_pid} to die of its SIGKILL")
