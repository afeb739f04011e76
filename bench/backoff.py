"""Bench, not a test: restart delays under a crash loop, helix-init beside supervisord and s6.

    .venv/bin/python -m bench.backoff [--crashes 8] [--json FILE]   (as root)

One service that stamps its start (ns) and exits 1 at once, as the only service
of a stack that is PID 1 of a new PID namespace:

  helix-init   backoff = { initial = 0.1, max = 1.6 } (jitter and reset_after at
               their defaults, ±20 % and 60 s): the delays it chose (its own log
               line "restarting in X s") and the observed gaps between starts,
               for --crashes consecutive crashes
  supervisord  defaults (startsecs=1, startretries=3): BACKOFF 1, 2, 3 s, then
               FATAL and no more starts; the run ends when its log says FATAL.
               It reaps after its loop has decided on state changes, so a crash
               noticed a tick late looks like a run of startsecs (RUNNING), and
               the 1, 2, 3 count starts over; how often is in "entered_running"
  s6           s6-supervise (2.11): at least 1 s between starts, for ever

The gap between two starts is the chosen delay plus the stack's own work (notice
the exit, spawn again) plus the program's start; it is the figure a user sees.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

CRASH_SH = '#!/bin/sh\ndate +%s%N >> "$1"\nexit 1\n'  # $1: the stamp file
CHOSE = re.compile(r"restarting in ([0-9.]+)s")
INITIAL, MAXIMUM = 0.1, 1.6


def crash_argv(work: Path) -> list[str]:
    script = work / "crash.sh"
    script.write_text(CRASH_SH)
    return ["/bin/sh", str(script), str(work / "stamps")]


def gaps(stamped: list[int]) -> list[float]:
    return [(b - a) / 1e9 for a, b in itertools.pairwise(stamped)]


def helix(work: Path, crashes: int) -> dict[str, Any]:
    work = common.fresh(work)
    stamp_file = work / "stamps"
    body = (
        f"command = {json.dumps(crash_argv(work))}\n"
        f"backoff = {{ initial = {INITIAL}, max = {MAXIMUM} }}\n"
    )
    argv, env = common.helix_stack(work, {"crash": body})
    proc = common.start_ns(argv, env, work)
    out = work / "stdout"
    try:
        common.wait_until(
            lambda: (
                len(common.stamps(stamp_file)) > crashes
                and len(CHOSE.findall(out.read_text())) >= crashes
            ),
            f"{crashes} crashes",
            proc,
            poll=0.01,
        )
    finally:
        common.kill_ns(proc)
    chosen = [float(x) for x in CHOSE.findall(out.read_text())[:crashes]]
    nominal = [min(MAXIMUM, INITIAL * 2**i) for i in range(crashes)]
    return {
        "nominal_s": nominal,
        "chosen_s": chosen,
        "observed_gaps_s": gaps(common.stamps(stamp_file)[: crashes + 1]),
        "gave_up": False,
    }


def supervisord(work: Path, crashes: int) -> dict[str, Any]:
    work = common.fresh(work)
    stamp_file = work / "stamps"
    program = {
        "command": common.quoted(crash_argv(work)),
        "autostart": "true",
        "autorestart": "true",
        "stdout_logfile": str(work / "crash.log"),
    }
    argv, env = common.supervisord_stack(work, {"crash": program}, loglevel="info")
    proc = common.start_ns(argv, env, work)
    log = work / "supervisord.log"
    try:
        common.wait_until(
            lambda: log.exists() and "entered FATAL state" in log.read_text(),
            "FATAL",
            proc,
            limit=30,
            poll=0.01,
        )
        fatal = time.time_ns()
    finally:
        common.kill_ns(proc)
    starts = common.stamps(stamp_file)
    return {
        "nominal_s": [1.0, 2.0, 3.0],
        "chosen_s": None,
        "observed_gaps_s": gaps(starts),  # all of them, up to FATAL
        "gave_up": True,
        "starts": len(starts),
        "fatal_after_last_start_s": (fatal - starts[-1]) / 1e9,
        # A crash it reaped only after its 1 s loop tick counts as a run of
        # startsecs: RUNNING, and BACKOFF starts again at 1 s.
        "entered_running": log.read_text().count("entered RUNNING state"),
    }


def s6(work: Path, crashes: int) -> dict[str, Any]:
    work = common.fresh(work)
    stamp_file = work / "stamps"
    service = work / "scan" / "crash"
    service.mkdir(parents=True)
    run = service / "run"
    run.write_text("#!/bin/sh\nexec " + " ".join(crash_argv(work)) + "\n")
    run.chmod(0o755)
    proc = common.start_ns(["s6-svscan", str(work / "scan")], common.base_env(), work)
    try:
        common.wait_until(
            lambda: len(common.stamps(stamp_file)) > crashes, f"{crashes} crashes", proc, poll=0.01
        )
    finally:
        common.kill_ns(proc)
    return {
        "nominal_s": [1.0] * crashes,
        "chosen_s": None,
        "observed_gaps_s": gaps(common.stamps(stamp_file)[: crashes + 1]),
        "gave_up": False,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the results here")
    opts = parser.parse_args()
    common.require_root("backoff.py")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="helix-backoff-bench.") as tmp:
        common.progress(f"backoff: helix-init, {opts.crashes} crashes")
        results["helix-init"] = helix(Path(tmp) / "helix", opts.crashes)
        common.progress("backoff: supervisord, until FATAL")
        results["supervisord"] = supervisord(Path(tmp) / "sd", opts.crashes)
        if shutil.which("s6-svscan"):
            common.progress(f"backoff: s6, {opts.crashes} crashes")
            results["s6"] = s6(Path(tmp) / "s6", opts.crashes)
    common.write_json(
        opts.json,
        {
            "settings": {"crashes": opts.crashes, "initial": INITIAL, "max": MAXIMUM},
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
