"""Bench, not a test: an s6-overlay v3 tree under helix-init beside Debian's s6 doing the same work.

    .venv/bin/python -m bench.s6_tree [--runs 5] [--restarts 5] [--json OUT]   (as root)

Runs as root; each stack is PID 1 of a PID namespace of its own. The tree:
15 oneshots in three chains of five (each `up` names a script that appends
its name to a file) and 3 longruns (`exec sleep`), all in the `user` bundle,
and a CMD that stamps the time. Measured, runs interleaved:

  boot      exec of the stack -> the CMD's stamp.
            helix-init: the tree in HELIX_INIT_S6_RC_DIR, read, checked and run
            (oneshots in dependency order, longruns under supervisord, the CMD
            once they are up).
            s6: a sh PID 1 runs the same 15 up scripts in the same order by a
            loop, starts s6-svscan on a scan dir with the 3 longruns, waits with
            s6-svwait -u until they are up, then runs the CMD (no s6-rc: Debian
            does not ship a compiled database here, and this is the work s6-rc
            would drive).
  restart   kill -9 of a longrun that has run 1.2 s (so s6-supervise restarts it
            at once) -> its replacement running; and the CPU time the stack
            (every process of the namespace but the services and the CMD: PID 1,
            supervisord / s6-svscan, s6-supervise; their reaped children
            included) used from the kill to the replacement, per restart (clock
            ticks are 10 ms, so one mean over a run's restarts is one sample).
            helix-init waits its backoff (0.5 s, the default for a tree's
            longruns) before the restart: that is policy; the CPU figure is the
            machinery.

Prints one Markdown table with medians (min–max) and helix-init ÷ s6; --json
writes every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from bench.common import (
    HELIX_INIT,
    fresh,
    helix_env,
    kill_ns,
    progress,
    start_ns,
    stats,
    wait_init_pid,
    wait_until,
)
from tests.support.pid1 import pids_in_namespace

CHAINS, LENGTH, LONGRUNS = 3, 5, 3
TICK = os.sysconf("SC_CLK_TCK")
CMD_SLEEP = "99999"


def oneshot_names() -> list[str]:
    return [f"init-{c}-{i}" for c in range(CHAINS) for i in range(LENGTH)]


def run_order() -> list[str]:
    """Dependency order: each chain in turn (helix-init's order, ties by name)."""
    return oneshot_names()


def write_tree(work: Path) -> Path:
    rc = work / "s6-rc.d"
    scripts = work / "scripts"
    scripts.mkdir(parents=True)
    user = rc / "user" / "contents.d"
    user.mkdir(parents=True)
    (rc / "user" / "type").write_text("bundle\n")
    for c in range(CHAINS):
        for i in range(LENGTH):
            name = f"init-{c}-{i}"
            folder = rc / name
            (folder / "dependencies.d").mkdir(parents=True)
            (folder / "type").write_text("oneshot\n")
            script = scripts / name
            script.write_text(f'#!/bin/sh\necho {name} >> "{work}/order"\n')
            script.chmod(0o755)
            (folder / "up").write_text(f"{script}\n")
            if i:
                (folder / "dependencies.d" / f"init-{c}-{i - 1}").touch()
            (user / name).touch()
    for n in range(LONGRUNS):
        folder = rc / f"svc-{n}"
        (folder / "dependencies.d").mkdir(parents=True)
        (folder / "type").write_text("longrun\n")
        (folder / "run").write_text(f"#!/bin/sh\nexec sleep {100001 + n}\n")
        (folder / "run").chmod(0o755)
        for c in range(CHAINS):
            (folder / "dependencies.d" / f"init-{c}-{LENGTH - 1}").touch()
        (user / f"svc-{n}").touch()
    return rc


def helix_stack(work: Path) -> tuple[list[str], dict[str, str]]:
    rc = write_tree(work)
    env = helix_env(work)
    env["HELIX_INIT_S6_RC_DIR"] = str(rc)
    env["HELIX_INIT_S6_ENV_DIR"] = str(work / "container_environment")
    env["HELIX_INIT_S6_RESULTS_DIR"] = str(work / "results")
    env["HELIX_INIT_S6_BASEDIR"] = str(work / "basedir")
    cmd = f"date +%s%N > {work}/marker; exec sleep {CMD_SLEEP}"
    return [str(HELIX_INIT), "sh", "-c", cmd], env


def s6_stack(work: Path) -> tuple[list[str], dict[str, str]]:
    write_tree(work)  # the same up scripts
    scan = work / "scan"
    for n in range(LONGRUNS):
        folder = scan / f"svc-{n}"
        folder.mkdir(parents=True)
        (folder / "run").write_text(f"#!/bin/sh\nexec sleep {100001 + n}\n")
        (folder / "run").chmod(0o755)
    ups = " ".join(str(work / "scripts" / n) for n in run_order())
    svcs = " ".join(str(scan / f"svc-{n}") for n in range(LONGRUNS))
    script = (
        f'for u in {ups}; do "$u" || exit 1; done\n'
        f"s6-svscan {scan} &\n"
        f'for s in {svcs}; do until s6-svwait -u -t 1000 "$s" 2>/dev/null; do sleep 0.002; done;'
        " done\n"
        f"date +%s%N > {work}/marker\n"
        f"exec sleep {CMD_SLEEP}\n"
    )
    path = work / "stage2.sh"
    path.write_text(script)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    return ["/bin/sh", str(path)], env


def ns_procs(init: int) -> list[tuple[int, list[str], int]]:
    """(pid, argv, cpu ticks incl. reaped children) of every process in init's PID namespace."""
    os.readlink(f"/proc/{init}/ns/pid")  # OSError once init is gone, not an empty list
    found = []
    for pid in pids_in_namespace(init):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        found.append((pid, argv, ticks))
    return found


def stack_cpu(init: int) -> float:
    return sum(t for _, argv, t in ns_procs(init) if argv[0] != "sleep") / TICK


def service_pid(init: int, n: int) -> int | None:
    for pid, argv, _ in ns_procs(init):
        if argv[:2] == ["sleep", str(100001 + n)]:
            return pid
    return None


def one_run(kind: str, work: Path, restarts: int) -> dict[str, Any]:
    argv, env = helix_stack(work) if kind == "helix-init" else s6_stack(work)
    started = time.time_ns()
    proc = start_ns(argv, env, work)
    try:
        marker = work / "marker"
        wait_until(lambda: marker.exists() and marker.read_text().strip() != "", "the CMD", proc)
        boot = (int(marker.read_text()) - started) / 1e9
        order = (work / "order").read_text().split()
        assert sorted(order) == sorted(oneshot_names()), order
        init = wait_init_pid(proc)
        latencies, cpu = [], []
        for _ in range(restarts):
            pid: list[int | None] = [None]

            def running(p: list[int | None] = pid) -> bool:
                p[0] = service_pid(init, 0)
                return p[0] is not None

            wait_until(running, "svc-0 running", proc)
            time.sleep(1.2)  # s6-supervise restarts at once after a run of 1 s or more
            old = pid[0]
            assert old is not None
            before = stack_cpu(init)
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            new: list[int | None] = [None]

            def replaced(p: list[int | None] = new, old: int = old) -> bool:
                p[0] = service_pid(init, 0)
                return p[0] is not None and p[0] != old

            wait_until(replaced, "svc-0 restarted", proc, poll=0.0005)
            latencies.append(time.perf_counter() - t0)
            cpu.append(stack_cpu(init) - before)
        # Clock ticks are 10 ms: one mean per run over all its restarts, not one per restart.
        return {
            "boot_ms": boot * 1e3,
            "restart_ms": [t * 1e3 for t in latencies],
            "restart_cpu_ms": [sum(cpu) / len(cpu) * 1e3],
        }
    finally:
        kill_ns(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds = ["helix-init"] + (["s6"] if shutil.which("s6-svscan") else [])
    if len(kinds) == 1:
        progress("s6-svscan not found: the s6 column is skipped")
    samples: dict[str, dict[str, list[float]]] = {
        k: {"boot_ms": [], "restart_ms": [], "restart_cpu_ms": []} for k in kinds
    }
    base = Path(os.environ.get("TMPDIR", "/tmp")) / f"hx-bench-s6-{os.getpid()}"
    try:
        for run in range(args.runs):
            for kind in kinds:
                progress(f"run {run + 1}/{args.runs}: {kind}")
                got = one_run(kind, fresh(base / kind), args.restarts)
                samples[kind]["boot_ms"].append(got["boot_ms"])
                samples[kind]["restart_ms"] += got["restart_ms"]
                samples[kind]["restart_cpu_ms"] += got["restart_cpu_ms"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = {k: {f: stats(v) for f, v in figs.items()} for k, figs in samples.items()}
    print("| figure | helix-init | s6 | ratio |\n|---|---|---|---|")
    for figure in ("boot_ms", "restart_ms", "restart_cpu_ms"):
        h, s6 = result["helix-init"][figure], result.get("s6", {}).get(figure)
        cells = [
            f"{x['median']:.1f} ({x['min']:.1f}–{x['max']:.1f})" if x else "—" for x in (h, s6)
        ]
        ratio = f"{h['median'] / s6['median']:.2f}×" if s6 and s6["median"] else "—"
        print(f"| {figure} | {cells[0]} | {cells[1]} | {ratio} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
