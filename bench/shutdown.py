"""Bench, not a test: TERM to PID 1 -> PID 1 gone, with 5 services, helix-init beside supervisord.

    .venv/bin/python -m bench.shutdown [--runs 10] [--json FILE]   (as root)

Each stack runs as PID 1 of a new PID namespace with the same 5 services (a
shell that stamps its start and execs `sleep`, which dies on TERM), runs
interleaved:

  helix-init   over services.d drop-ins, default stop settings (TERM, 10 s grace)
  supervisord  plain supervisord from the venv: autostart, startsecs=0,
               stopasgroup/killasgroup, default stopwaitsecs (10 s)

Once all 5 services have stamped their start (helix-init: and READY was
reported), and SETTLE seconds later, SIGTERM goes to PID 1 through a pidfd and
the clock stops when PID 1 has exited (the pidfd turns readable). The exit code
of PID 1 is recorded too (unshare passes it on).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

SERVICES = 5
SETTLE = 0.5  # seconds all services have run before TERM


def start(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], list[Path]]:
    work = common.fresh(work)
    script = work / "service.sh"
    script.write_text(common.SERVICE_SH)
    names = [f"svc{i}" for i in range(SERVICES)]
    stamp_files = [work / f"{n}.stamps" for n in names]
    argvs = {n: ["/bin/sh", str(script), str(s)] for n, s in zip(names, stamp_files, strict=True)}
    if kind == "helix-init":
        argv, env = common.helix_stack(
            work, {n: f"command = {json.dumps(a)}\n" for n, a in argvs.items()}
        )
    else:
        programs = {
            n: {
                "command": common.quoted(a),
                "autostart": "true",
                "autorestart": "true",
                "startsecs": "0",
                "redirect_stderr": "true",
                "stdout_logfile": str(work / f"{n}.log"),
                "stdout_logfile_maxbytes": "0",
                "stopasgroup": "true",
                "killasgroup": "true",
            }
            for n, a in argvs.items()
        }
        argv, env = common.supervisord_stack(work, programs)
    return common.start_ns(argv, env, work), stamp_files


def run_once(kind: str, work: Path) -> dict[str, Any]:
    proc, stamp_files = start(kind, work)
    try:
        common.wait_until(lambda: all(common.stamps(s) for s in stamp_files), "5 services", proc)
        if kind == "helix-init":
            ready = work / "run" / "ready"
            common.wait_until(lambda: ready.exists() and ready.read_text().strip() != "", "READY")
        time.sleep(SETTLE)
        pid1 = common.wait_init_pid(proc)
        took = common.signal_and_time(pid1, signal.SIGTERM, common.DEADLINE)
        if took is None:
            raise RuntimeError(f"{kind}: still running {common.DEADLINE:g}s after TERM")
        code = proc.wait(10)
    finally:
        common.kill_ns(proc)
    return {"ms": took * 1000, "exit_code": code}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the results here")
    opts = parser.parse_args()
    common.require_root("shutdown.py")
    kinds = ["helix-init", "supervisord"]
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="helix-shutdown-bench.") as tmp:
        for i in range(opts.runs):
            for kind in kinds:
                common.progress(f"shutdown: {kind}, run {i + 1}/{opts.runs}")
                samples[kind].append(run_once(kind, Path(tmp) / kind))
    results: dict[str, dict[str, Any]] = {
        k: {
            "ms": common.stats([s["ms"] for s in runs]),
            "exit_codes": sorted({s["exit_code"] for s in runs}),
        }
        for k, runs in samples.items()
    }
    common.write_json(
        opts.json,
        {
            "settings": {"runs": opts.runs, "services": SERVICES, "settle_s": SETTLE},
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
