"""Helpers shared by the benches (`from bench import common`); writes their JSON.

Not a bench itself. Every stack runs as PID 1 of a PID namespace of its own
(`unshare --pid --fork --mount-proc --kill-child`): when the bench dies, the
kernel takes the namespace and everything in it along.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin"
HELIX_INIT = VENV_BIN / "helix-init"
PYTHON = os.path.realpath(sys.executable)  # not the pyenv shim (TESTBED.md)
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
DEADLINE = 60.0
# A service: stamp its start (ns), then become an idle `sleep` that dies on TERM.
SERVICE_SH = '#!/bin/sh\ndate +%s%N >> "$1"\nexec sleep 100000\n'


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    limit: float = DEADLINE,
    poll: float = 0.001,
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the stack ended first (exit {proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: gave up after {limit:g}s")
        time.sleep(poll)


def stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": list(values),
    }


def stamps(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except (OSError, ValueError):
        return []


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def init_pid(unshare_pid: int) -> int | None:
    """The namespace's PID 1 (unshare's child), as seen from here."""
    for task in Path(f"/proc/{unshare_pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        if children:
            return int(children[0])
    return None


def wait_init_pid(proc: subprocess.Popen[bytes]) -> int:
    found: list[int] = []

    def seen() -> bool:
        pid = init_pid(proc.pid)
        if pid is not None:
            found.append(pid)
        return bool(found)

    wait_until(seen, "PID 1 of the namespace", proc)
    return found[0]


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}


def helix_env(work: Path) -> dict[str, str]:
    env = base_env()
    for var, sub in (
        ("CONT_INIT_DIR", "cont-init.d"),
        ("CONT_FINISH_DIR", "cont-finish.d"),
        ("SERVICES_DIR", "services.d"),
        ("RUN_DIR", "run"),
        ("LOG_DIR", "log"),
        ("SERVICE_LOG_DIR", "service-logs"),
    ):
        env[f"HELIX_INIT_{var}"] = str(work / sub)
    return env


def fresh(work: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def helix_stack(work: Path, services: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """argv and env of helix-init over services.d drop-ins; `services` maps name -> TOML body."""
    folder = work / "services.d"
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in services.items():
        (folder / f"{name}.toml").write_text(body)
    env = helix_env(work)
    env["HELIX_INIT_SERVICE_LOG_MAXBYTES"] = "0"
    return [str(HELIX_INIT)], env


def supervisord_stack(
    work: Path, programs: Mapping[str, Mapping[str, str]], loglevel: str = "warn"
) -> tuple[list[str], dict[str, str]]:
    """argv and env of plain supervisord (from the venv) with `programs` (name -> options)."""
    conf = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={work / 'supervisord.log'}",
        f"pidfile={work / 'supervisord.pid'}",
        f"loglevel={loglevel}",
        "[unix_http_server]",
        f"file={work / 'supervisor.sock'}",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for name, options in programs.items():
        conf.append(f"[program:{name}]")
        conf += [f"{key}={value}" for key, value in options.items()]
    path = work / "supervisord.conf"
    path.write_text("\n".join(conf) + "\n")
    argv = [str(VENV_BIN / "python"), "-m", "supervisor.supervisord", "-n", "-c", str(path)]
    return argv, base_env()


def quoted(argv: Sequence[str]) -> str:
    """argv as a supervisord `command=` value (shlex-quoted, % escaped for its expansion)."""
    return " ".join(shlex.quote(a) for a in argv).replace("%", "%%")


def start_ns(
    argv: Sequence[str], env: Mapping[str, str], work: Path, out: Path | None = None
) -> subprocess.Popen[bytes]:
    """Run argv as PID 1 of a new PID namespace; its stdout and stderr go to `out`."""
    with open(out or work / "stdout", "wb") as sink:
        return subprocess.Popen(
            [*UNSHARE, *argv],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=work,
            start_new_session=True,
        )


def kill_ns(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL unshare: --kill-child takes PID 1, and with it the whole namespace."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(DEADLINE)


def signal_and_time(pid: int, sig: signal.Signals, limit: float) -> float | None:
    """Send `sig` to `pid` and wait for its exit (pidfd): seconds taken, None after `limit`."""
    fd = os.pidfd_open(pid)
    try:
        started = time.perf_counter()
        signal.pidfd_send_signal(fd, sig)
        ready, _, _ = select.select([fd], [], [], limit)
        return time.perf_counter() - started if ready else None
    finally:
        os.close(fd)


def write_json(path: Path | None, data: Mapping[str, Any]) -> None:
    """A bench's only output: its JSON, to `path`, else to stdout (run.py formats it)."""
    text = json.dumps(data, indent=2) + "\n"
    if path is None:
        sys.stdout.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def require_root(name: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"bench.{name.removesuffix('.py')} needs root (unshare --pid)")
