"""Bench, not a test: what helix-init costs as PID 1, beside tini and dumb-init.

    .venv/bin/python -m bench.pid1 [--runs 10] [--json FILE]

Runs as root (or maps to root in a user namespace). Each init is run as PID 1
of a new PID namespace (`unshare --pid --fork --mount-proc INIT CMD`) with the
same CMD, runs interleaved so drift hits every init alike. The CMD writes its
start time and then blocks on a fifo, so the init is idle and fully booted
while it is measured:

  RSS       VmRSS of the init process (/proc/PID/status) while the CMD runs
  start     from just before exec of unshare to the CMD's first command
            (`date +%s%N`); unshare, fork and the CMD's own start are in every
            row alike, so the differences are the inits'

helix-init runs with empty drop-in folders and through its console script,
whose interpreter is the venv's python: a link to the real binary, not the
pyenv shim script on PATH (TESTBED.md: 66 ms against 150 ms for `pass`).
A last run with PYTHONPROFILEIMPORTTIME=1 lists what PID 1 imported, and
/proc/PID/maps what it mapped, to show that docker and pyroute2 stay out of it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import helix_env, init_pid, stats, vm_rss_kib, write_json
from bench.common import wait_until as _wait_until

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin"
HELIX_INIT = VENV_BIN / "helix-init"
HEAVY = ("docker", "pyroute2")  # DESIGN.md: never imported by PID 1 at boot
# $1 start file, $2 fifo: record the start, then wait for the bench to release us.
CMD = ["sh", "-c", 'date +%s%N > "$1.tmp" && mv "$1.tmp" "$1" && read _ < "$2"', "cmd"]
DEADLINE = 20.0


@dataclass
class Sample:
    rss_kib: int
    start_ms: float
    maps: list[str] = field(default_factory=list)
    stderr: str = ""


def namespace_prefix() -> list[str]:
    prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    return prefix


def release(fifo: Path, proc: subprocess.Popen[bytes]) -> None:
    """Write a line into the fifo the CMD is reading (non-blocking open: never hang)."""
    fd = -1

    def opened() -> bool:
        nonlocal fd
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: the reader has not opened it yet
            return False
        return True

    wait_until(opened, "open the fifo", proc)
    os.write(fd, b"go\n")
    os.close(fd)


def run_once(argv: list[str], env: dict[str, str], work: Path, keep_maps: bool = False) -> Sample:
    start_file, fifo = work / "started", work / "go"
    start_file.unlink(missing_ok=True)
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    err_path = work / "stderr"
    with open(err_path, "wb") as err:
        before = time.time_ns()
        proc = subprocess.Popen(
            [*namespace_prefix(), *argv, *CMD, str(start_file), str(fifo)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=work,
        )
    try:
        wait_until(start_file.exists, "the CMD to start", proc)
        started = int(start_file.read_text())
        pid = init_pid(proc.pid)
        assert pid is not None
        rss = vm_rss_kib(pid)
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines() if keep_maps else []
        release(fifo, proc)
        code = proc.wait(DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        raise RuntimeError(f"{argv[0]} exited {code}: {err_path.read_text()[-2000:]}")
    return Sample(rss, (started - before) / 1e6, maps, err_path.read_text())


def wait_until(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    _wait_until(condition, what, proc, limit=DEADLINE)


def whole_process_ms(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        before = time.perf_counter()
        subprocess.run(argv, check=True)
        times.append((time.perf_counter() - before) * 1000)
    return statistics.median(times)


def import_report(sample: Sample) -> dict[str, Any]:
    """What PID 1 imported and mapped; heavy_ok is False if docker or pyroute2 is among them."""
    modules = []
    for line in sample.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                modules.append(name)
    heavy = sorted({m for m in modules if m.split(".")[0] in HEAVY})
    mapped = sorted({line.split()[-1] for line in sample.maps if any(h in line for h in HEAVY)})
    return {
        "modules": len(modules),
        "heavy_imported": heavy,
        "heavy_mapped": mapped,
        "top_level_packages": sorted({m.split(".")[0] for m in modules if not m.startswith("_")}),
        "heavy_ok": not heavy and not mapped,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the results here (default: stdout)")
    parser.add_argument(
        "--helix-init", default=str(HELIX_INIT), help="the helix-init program to measure"
    )
    opts = parser.parse_args()

    inits: dict[str, list[str]] = {"helix-init": [opts.helix_init]}
    for name, argv in (("tini", ["tini", "--"]), ("dumb-init", ["dumb-init"])):
        if shutil.which(argv[0]):
            inits[name] = argv
        else:
            print(f"({name} not found; skipped: scripts/setup-host installs it)", file=sys.stderr)

    samples: dict[str, list[Sample]] = {name: [] for name in inits}
    with tempfile.TemporaryDirectory(prefix="helix-init-bench.") as tmp:
        work = Path(tmp)
        env = helix_env(work)
        run_once(inits["helix-init"], env, work)  # warm the page cache; not counted
        for _ in range(opts.runs):
            for name, argv in inits.items():
                samples[name].append(run_once(argv, env, work))
        traced = run_once(
            inits["helix-init"], {**env, "PYTHONPROFILEIMPORTTIME": "1"}, work, keep_maps=True
        )
        python = os.path.realpath(VENV_BIN / "python")
        bare = whole_process_ms([python, "-c", "pass"], opts.runs)
        isolated = whole_process_ms([python, "-I", "-S", "-c", "pass"], opts.runs)

    imports = import_report(traced)
    write_json(
        opts.json,
        {
            "settings": {"runs": opts.runs},
            "results": {
                name: {
                    "rss_mib": stats([s.rss_kib / 1024 for s in runs]),
                    "start_ms": stats([s.start_ms for s in runs]),
                }
                for name, runs in samples.items()
            },
            "python": {"path": python, "pass_ms": bare, "isolated_pass_ms": isolated},
            "imports": imports,
            "heavy_imports_ok": imports["heavy_ok"],
        },
    )
    if not imports["heavy_ok"]:
        print("FAIL: PID 1 must not import docker or pyroute2 at boot (DESIGN.md)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
