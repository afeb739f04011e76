"""Bench, not a test: RSS of s6-svscan and of supervisord as PID 1, beside bench/pid1.py's inits.

    .venv/bin/python -m bench.pid1_rss [--runs 5] [--json FILE]   (as root)

bench/pid1.py measures helix-init, tini and dumb-init as PID 1 of a new PID
namespace with a CMD. Neither of these two runs a CMD, so each runs alone as
PID 1 of the same kind of namespace, runs interleaved:

  s6-svscan    over an empty scan directory; booted once it has made its
               control fifo (SCAN/.s6-svscan/control)
  supervisord  from the venv, with no programs; booted once its XML-RPC socket
               accepts a connection

SETTLE seconds after boot, VmRSS of PID 1 is read from /proc.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import common

SETTLE = 0.3


def accepts(path: Path) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(path))
            except OSError:
                return False
        return True

    return check


def start(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], Callable[[], bool]]:
    work = common.fresh(work)
    if kind == "s6-svscan":
        scan = work / "scan"
        scan.mkdir()
        proc = common.start_ns(["s6-svscan", str(scan)], common.base_env(), work)
        return proc, (scan / ".s6-svscan" / "control").exists
    argv, env = common.supervisord_stack(work, {})
    return common.start_ns(argv, env, work), accepts(work / "supervisor.sock")


def run_once(kind: str, work: Path) -> float:
    proc, booted = start(kind, work)
    try:
        common.wait_until(booted, f"{kind} to boot", proc)
        time.sleep(SETTLE)
        return common.vm_rss_kib(common.wait_init_pid(proc)) / 1024
    finally:
        common.kill_ns(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    opts = parser.parse_args()
    common.require_root("pid1_rss.py")
    kinds = ["supervisord"]
    if shutil.which("s6-svscan"):
        kinds.insert(0, "s6-svscan")
    else:
        common.progress("pid1_rss: s6-svscan not found (apt-get install s6); skipped")
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="helix-pid1-rss-bench.") as tmp:
        for i in range(opts.runs):
            for kind in kinds:
                common.progress(f"pid1_rss: {kind}, run {i + 1}/{opts.runs}")
                samples[kind].append(run_once(kind, Path(tmp) / kind))
    results = {k: {"rss_mib": common.stats(v)} for k, v in samples.items()}
    common.write_json(
        opts.json, {"settings": {"runs": opts.runs, "settle_s": SETTLE}, "results": results}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
