"""Bench, not a test: what helix-init's service stack costs beside plain supervisord and s6.

    .venv/bin/python -m bench.services [--runs 10] [--idle 60] [--lines 500000]
                                       [--log-runs 3] [--json FILE]

Runs as root. Every stack runs as PID 1 of a PID namespace of its own
(`unshare --pid --fork --mount-proc`), with the same service programs, runs
interleaved so drift hits every stack alike:

  helix-init   the real init over services.d drop-ins (its supervisord from the venv,
               started lean as the init starts it: services/engineexec.py)
  supervisord  plain `python -m supervisor.supervisord` from the venv: autostart,
               autorestart, startsecs=0 (no helix-init in front)
  s6           Debian's s6-svscan/s6-supervise (skipped, saying so, when missing)

What is measured:

  restart   kill -9 of a running service -> the replacement's first command
            (the program starts with `date +%s%N >> STAMPS`, then execs sleep).
            helix-init runs with backoff initial = 1 ms and reset_after = 0, so
            the number is its machinery, not a chosen delay. Each kill comes
            SETTLE s after the service started. s6-supervise (2.11) waits 1 s
            after every death before it starts the service again: its column is
            that policy, not its speed. Plain supervisord notices the death on
            the next turn of its 1 s loop (it reaps after deciding what to
            start); helix-init's RPC calls wake that loop.
  boot      exec of the stack -> all 5 services running (their stamps); for
            helix-init also -> READY (the time written into /run/helix-init/ready).
  rss       the whole stack with 5 idle services: every process of the namespace
            except the services themselves (helix-init: PID 1, supervisord and any
            svcexec leftover); VmRSS and PSS (smaps_rollup) summed.
  idle cpu  on-CPU time (/proc/PID/schedstat, ns) of the same processes over
            --idle seconds, cut into 5 slices for median/min/max; the stacks idle
            side by side. The issue asks for 60 s (the default); shorter is noisier.
  logs      a flood of --lines 13-byte lines from examples/services/flooder.py:
            lines/s from its first line to its last line in the service's log
            file, and for helix-init also in its stdout mirror (`[flooder] ...`),
            against the same program writing straight to a file. No rotation.
            s6 is left out here: it captures nothing without an s6-log pipeline.

Writes every sample as JSON (to --json FILE, else stdout); bench/run.py
turns it into rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import helix_env, write_json
from tests.support.pid1 import pids_in_namespace

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin"
HELIX_INIT = VENV_BIN / "helix-init"
PYTHON = os.path.realpath(sys.executable)
FLOODER = REPO / "examples" / "services" / "flooder.py"
DEADLINE = 60.0
POLL = 0.001
SERVICES = 5
SETTLE = 0.2  # a service runs this long before it is killed
SERVICE_SH = '#!/bin/sh\ndate +%s%N >> "$1"\nexec sleep 100000\n'
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


def wait_until(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the stack ended first (exit {proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: gave up after {DEADLINE:g}s")
        time.sleep(POLL)


def stamps(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


# -- processes of a namespace ---------------------------------------------------------
@dataclass
class Proc:
    pid: int
    argv: list[str]


def namespace_procs(unshare_pid: int) -> list[Proc]:
    """Every live process in the PID namespace whose PID 1 is unshare's child."""
    children = []
    for task in Path(f"/proc/{unshare_pid}/task").glob("*"):
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    if not children:
        return []
    found = []
    for pid in pids_in_namespace(children[0]):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[0] != "Z":
            found.append(Proc(pid, [a.decode() for a in raw.split(b"\0") if a]))
    return found


def is_service(proc: Proc) -> bool:
    return proc.argv[:1] == ["sleep"] or any("flooder.py" in a for a in proc.argv)


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) of one process in KiB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    return rss, pss


def cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


# -- the stacks ---------------------------------------------------------------------------
@dataclass
class Stack:
    """One way to supervise the same programs; `start` returns the running namespace."""

    name: str
    work: Path
    proc: subprocess.Popen[bytes] | None = None
    began: int = 0  # time.time_ns() just before the exec of the stack
    stdout: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stdout = self.work / "stdout"

    def start(self, services: dict[str, list[str]]) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def log_file(self, name: str) -> Path:
        raise NotImplementedError

    def _popen(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.stdout, "wb") as out:
            self.began = time.time_ns()
            self.proc = subprocess.Popen(
                [*UNSHARE, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.work,
                start_new_session=True,
            )
        return self.proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # --kill-child takes the namespace with it
            self.proc.wait(DEADLINE)
        self.proc = None

    def fresh(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)


class Helix(Stack):
    def start(self, services: dict[str, list[str]]) -> subprocess.Popen[bytes]:
        self.fresh()
        folder = self.work / "services.d"
        folder.mkdir()
        for name, argv in services.items():
            (folder / f"{name}.toml").write_text(
                f"command = {json.dumps(argv)}\n"
                "backoff = { initial = 0.001, jitter = 0, reset_after = 0 }\n"
            )
        env = helix_env(self.work)
        env["HELIX_INIT_SERVICE_LOG_MAXBYTES"] = "0"  # no rotation: same as the others
        return self._popen([str(HELIX_INIT)], env)

    def log_file(self, name: str) -> Path:
        return self.work / "service-logs" / f"{name}.log"

    @property
    def ready_file(self) -> Path:
        return self.work / "run" / "ready"


class Supervisord(Stack):
    def start(self, services: dict[str, list[str]]) -> subprocess.Popen[bytes]:
        self.fresh()
        conf = [
            "[supervisord]",
            "nodaemon=true",
            f"logfile={self.work / 'supervisord.log'}",
            f"pidfile={self.work / 'supervisord.pid'}",
            "loglevel=warn",
            "[unix_http_server]",
            f"file={self.work / 'supervisor.sock'}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        ]
        for name, argv in services.items():
            conf += [
                f"[program:{name}]",
                "command=" + " ".join(f'"{a}"' for a in argv),
                "autostart=true",
                "autorestart=true",
                "startsecs=0",
                "redirect_stderr=true",
                f"stdout_logfile={self.log_file(name)}",
                "stdout_logfile_maxbytes=0",
                "stopasgroup=true",
                "killasgroup=true",
            ]
        path = self.work / "supervisord.conf"
        path.write_text("\n".join(conf) + "\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        return self._popen(
            [str(VENV_BIN / "python"), "-m", "supervisor.supervisord", "-n", "-c", str(path)], env
        )

    def log_file(self, name: str) -> Path:
        return self.work / f"{name}.log"


class S6(Stack):
    def start(self, services: dict[str, list[str]]) -> subprocess.Popen[bytes]:
        self.fresh()
        scan = self.work / "scan"
        for name, argv in services.items():
            folder = scan / name
            folder.mkdir(parents=True)
            run = folder / "run"
            run.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in argv) + "\n")
            run.chmod(0o755)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        return self._popen(["s6-svscan", str(scan)], env)


# -- measurements -----------------------------------------------------------------------
def service_argv(work: Path, name: str) -> list[str]:
    script = work.parent / "service.sh"
    if not script.exists():
        script.write_text(SERVICE_SH)
    return ["/bin/sh", str(script), str(work.parent / f"{work.name}-{name}.stamps")]


def stamp_file(stack: Stack, name: str) -> Path:
    return stack.work.parent / f"{stack.work.name}-{name}.stamps"


def _count_is(path: Path, n: int) -> Callable[[], bool]:
    return lambda: len(stamps(path)) == n


def restart_ms(stack: Stack, runs: int) -> list[float]:
    stamped = stamp_file(stack, "victim")
    stamped.unlink(missing_ok=True)
    proc = stack.start({"victim": service_argv(stack.work, "victim")})

    def victim() -> list[Proc]:
        return [p for p in namespace_procs(proc.pid) if p.argv[:1] == ["sleep"]]

    samples = []
    try:
        for i in range(runs):
            wait_until(_count_is(stamped, i + 1), "the service to start", proc)
            started = stamps(stamped)[-1]
            wait_until(lambda: bool(victim()), "the service to exec sleep", proc)
            pause = started / 1e9 + SETTLE - time.time()
            if pause > 0:
                time.sleep(pause)  # not a readiness wait: the same uptime in every stack
            killed = time.time_ns()
            os.kill(victim()[0].pid, signal.SIGKILL)
            wait_until(_count_is(stamped, i + 2), "the replacement", proc)
            samples.append((stamps(stamped)[-1] - killed) / 1e6)
    finally:
        stack.stop()
    return samples


def _all_started(stack: Stack, names: list[str]) -> Callable[[], bool]:
    return lambda: all(stamps(stamp_file(stack, n)) for n in names)


@dataclass
class Boot:
    running_ms: float
    ready_ms: float | None


def boot_once(stack: Stack) -> Boot:
    names = [f"svc{i}" for i in range(SERVICES)]
    for name in names:
        stamp_file(stack, name).unlink(missing_ok=True)
    services = {name: service_argv(stack.work, name) for name in names}
    proc = stack.start(services)
    began = stack.began
    try:
        wait_until(_all_started(stack, names), "5 services", proc)
        running = max(stamps(stamp_file(stack, n))[0] for n in names)
        ready = None
        if isinstance(stack, Helix):
            wait_until(stack.ready_file.exists, "READY", proc)
            wait_until(lambda: stack.ready_file.read_text().strip() != "", "READY", proc)
            ready = (float(stack.ready_file.read_text()) * 1e9 - began) / 1e6
    finally:
        stack.stop()
    return Boot((running - began) / 1e6, ready)


@dataclass
class Idle:
    rss_kib: int
    pss_kib: int
    processes: list[str]
    cpu_percent: list[float]


def idle(stacks: list[Stack], seconds: float, slices: int = 5) -> dict[str, Idle]:
    names = [f"svc{i}" for i in range(SERVICES)]
    procs = {}
    for stack in stacks:
        for name in names:
            stamp_file(stack, name).unlink(missing_ok=True)
        procs[stack.name] = stack.start({n: service_argv(stack.work, n) for n in names})
    results: dict[str, Idle] = {}
    try:
        for stack in stacks:
            wait_until(_all_started(stack, names), "5 services", procs[stack.name])
        time.sleep(1.0)  # let start-up work settle before measuring idleness
        members = {
            s.name: [p for p in namespace_procs(procs[s.name].pid) if not is_service(p)]
            for s in stacks
        }
        cpu: dict[str, list[float]] = {s.name: [] for s in stacks}
        step = seconds / slices
        before = {n: sum(cpu_ns(p.pid) for p in ps) for n, ps in members.items()}
        for _ in range(slices):
            t0 = time.monotonic()
            time.sleep(step)
            elapsed = time.monotonic() - t0
            now = {n: sum(cpu_ns(p.pid) for p in ps) for n, ps in members.items()}
            for n in members:
                cpu[n].append((now[n] - before[n]) / 1e9 / elapsed * 100)
            before = now
        for n, ps in members.items():
            sizes = [rss_kib(p.pid) for p in ps]
            results[n] = Idle(
                sum(r for r, _ in sizes),
                sum(p for _, p in sizes),
                [" ".join(p.argv)[:80] for p in ps],
                cpu[n],
            )
    finally:
        for stack in stacks:
            stack.stop()
    return results


def _tail_has(path: Path, marker: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            return marker in f.read()
    except OSError:
        return False


def flood_argv(lines: int, stamp: Path) -> list[str]:
    return [PYTHON, "-I", str(FLOODER), "--lines", str(lines), "--start-stamp", str(stamp)]


def flood(stack: Stack | None, lines: int, work: Path) -> dict[str, float]:
    """Lines per second into the log file (and helix-init's stdout), from the first line."""
    stamp = work / "flood-started"
    stamp.unlink(missing_ok=True)
    last = f"flood {lines - 1:06d}\n".encode()
    rates: dict[str, float] = {}
    if stack is None:
        out = work / "direct.log"
        with open(out, "wb") as f:
            proc = subprocess.Popen(flood_argv(lines, stamp), stdout=f, stdin=subprocess.DEVNULL)
        targets = {"file": out}
    else:
        proc = stack.start({"flooder": flood_argv(lines, stamp)})
        targets = {"file": stack.log_file("flooder")}
        if isinstance(stack, Helix):
            targets["stdout"] = stack.stdout
    try:
        pending = dict(targets)
        while pending:
            for what, path in list(pending.items()):
                if _tail_has(path, last):
                    done = time.time_ns()
                    rates[what] = lines / ((done - int(stamp.read_text())) / 1e9)
                    del pending[what]
            if proc.poll() is not None and pending:
                raise RuntimeError(f"flood: ended early (exit {proc.returncode})")
            time.sleep(POLL)
    finally:
        if stack is None:
            proc.kill()
            proc.wait()
        else:
            stack.stop()
    return rates


# -- report -------------------------------------------------------------------------------
def stats(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


def cell(s: dict[str, Any] | None, fmt: str) -> str:
    if s is None:
        return "—"
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None or not b["median"]:
        return "—"
    return f"{a['median'] / b['median']:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="restarts and boots per stack")
    parser.add_argument("--idle", type=float, default=60.0, help="idle CPU window, seconds")
    parser.add_argument("--lines", type=int, default=500_000, help="lines in a flood")
    parser.add_argument("--log-runs", type=int, default=3, help="floods per stack")
    parser.add_argument("--json", type=Path, help="write the results here (default: stdout)")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench.services needs root (unshare --pid)", file=sys.stderr)
        return 2

    notes: list[str] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="helix-services-bench.") as tmp:
        root = Path(tmp)
        stacks: list[Stack] = [
            Helix("helix-init", root / "helix"),
            Supervisord("supervisord", root / "sd"),
        ]
        if shutil.which("s6-svscan"):
            stacks.append(S6("s6", root / "s6"))
        else:
            notes.append("s6 not installed (apt-get install s6): its column is empty")
        names = [s.name for s in stacks]
        results: dict[str, dict[str, dict[str, Any] | None]] = {}

        def put(key: str, stack: str, values: list[float]) -> None:
            results.setdefault(key, {})[stack] = stats(values) if values else None

        restart: dict[str, list[float]] = {n: [] for n in names}
        for stack in stacks:  # one namespace per stack, --runs kills each
            restart[stack.name] = restart_ms(stack, opts.runs)
        boots: dict[str, list[Boot]] = {n: [] for n in names}
        boot_once(stacks[0])  # warm the page cache; not counted
        for _ in range(opts.runs):
            for stack in stacks:
                boots[stack.name].append(boot_once(stack))
        idle_results = idle(stacks, opts.idle)
        floods: dict[str, list[dict[str, float]]] = {n: [] for n in ["direct", *names[:2]]}
        for _ in range(opts.log_runs):
            floods["direct"].append(flood(None, opts.lines, root))
            for stack in stacks[:2]:
                floods[stack.name].append(flood(stack, opts.lines, root))

        for n in names:
            put("restart_ms", n, restart[n])
            put("boot_running_ms", n, [b.running_ms for b in boots[n]])
            put("boot_ready_ms", n, [b.ready_ms for b in boots[n] if b.ready_ms is not None])
            put("rss_mib", n, [idle_results[n].rss_kib / 1024])
            put("pss_mib", n, [idle_results[n].pss_kib / 1024])
            put("idle_cpu_percent", n, idle_results[n].cpu_percent)
        for n in names[:2]:
            put("log_file_lines_per_s", n, [f["file"] for f in floods[n]])
            put("log_stdout_lines_per_s", n, [f["stdout"] for f in floods[n] if "stdout" in f])
        put("log_direct_lines_per_s", "helix-init", [f["file"] for f in floods["direct"]])
        put("log_direct_lines_per_s", "supervisord", [f["file"] for f in floods["direct"]])

    write_json(
        opts.json,
        {
            "settings": {
                "runs": opts.runs,
                "idle_seconds": opts.idle,
                "lines": opts.lines,
                "log_runs": opts.log_runs,
                "services_for_boot_rss_cpu": SERVICES,
                "uptime_before_kill_s": SETTLE,
            },
            "machine": {
                "python": PYTHON,
                "python_version": platform.python_version(),
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
            },
            "stack_processes": {n: idle_results[n].processes for n in names},
            "results": results,
            "notes": notes,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
