"""Bench, not a test: how fast PID 1 reaps a CMD's 10,000 orphans, helix-init beside tini.

    .venv/bin/python -m bench.reaping [--orphans 10000] [--runs 3] [--json FILE]   (as root)

Each init runs as PID 1 of a new PID namespace with the same CMD (runs
interleaved). The CMD (python -I -S, stdlib only) makes a pipe, starts shells
that fork `--orphans` children in all, each blocked reading that pipe, and lets
the shells exit: every child is now an orphan of PID 1. The CMD then closes the
pipe's write end, so all of them exit at once, and polls its own /proc (every
2 ms, one listdir) until none of them is left, zombie or not. That time is the
figure: it includes the kernel's work of ending 10,000 processes on this
machine, the same for every init; the differences are the inits' reaping. The
CMD writes its numbers to a file and exits 0; the init must then exit 0 too.

Safe by construction: the orphans only read a pipe (EOF ends them), and
--kill-child takes the namespace down if the bench dies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import common

# The CMD. argv: ORPHANS OUT. Fork through dash (fast, no exec per child), in
# batches of 1000 so no shell keeps a huge job table.
ORPHAN_MAKER = r"""
import json, os, subprocess, sys, time
n, out = int(sys.argv[1]), sys.argv[2]
def pids():
    return {e for e in os.listdir("/proc") if e.isdigit()}
before = pids()
r, w = os.pipe()
began = time.monotonic()
left = n
while left:
    batch = min(1000, left)
    subprocess.run(
        ["/bin/sh", "-c",
         'exec 3<&0 0</dev/null; i=0; while [ $i -lt "$1" ]; do read _ <&3 & i=$((i+1)); done',
         "sh", str(batch)],
        stdin=r, check=True)
    left -= batch
os.close(r)
forked = time.monotonic() - began
orphans = len(pids() - before)
t0 = time.monotonic()
os.close(w)
scans = 0
while pids() - before:
    scans += 1
    time.sleep(0.002)
reaped = time.monotonic() - t0
with open(out + ".tmp", "w") as f:
    json.dump({"orphans": orphans, "forked_s": forked, "reaped_s": reaped, "scans": scans}, f)
os.rename(out + ".tmp", out)
"""


def inits() -> dict[str, list[str]]:
    found = {"helix-init": [str(common.HELIX_INIT)]}
    for name, argv in (("tini", ["tini", "--"]), ("dumb-init", ["dumb-init"])):
        if shutil.which(argv[0]):
            found[name] = argv
        else:
            common.progress(f"reaping: {name} not found; skipped")
    return found


def run_once(argv: list[str], orphans: int, work: Path) -> dict[str, Any]:
    work = common.fresh(work)
    out = work / "result.json"
    cmd = [common.PYTHON, "-I", "-S", "-c", ORPHAN_MAKER, str(orphans), str(out)]
    proc = common.start_ns([*argv, *cmd], common.helix_env(work), work)
    try:
        code = proc.wait(common.DEADLINE + orphans / 100)
    finally:
        common.kill_ns(proc)
    if code != 0 or not out.exists():
        tail = (work / "stdout").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{argv[0]}: exit {code}, no result:\n{tail}")
    result: dict[str, Any] = json.loads(out.read_text())
    if result["orphans"] != orphans:
        raise RuntimeError(f"{argv[0]}: {result['orphans']} orphans seen, {orphans} made")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orphans", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    opts = parser.parse_args()
    common.require_root("reaping.py")
    table = inits()
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in table}
    with tempfile.TemporaryDirectory(prefix="helix-reaping-bench.") as tmp:
        for i in range(opts.runs):
            for name, argv in table.items():
                common.progress(f"reaping: {name}, run {i + 1}/{opts.runs}")
                samples[name].append(run_once(argv, opts.orphans, Path(tmp) / name))
    results = {
        name: {
            "reaped_ms": common.stats([r["reaped_s"] * 1000 for r in runs]),
            "forked_s": common.stats([r["forked_s"] for r in runs]),
        }
        for name, runs in samples.items()
    }
    common.write_json(
        opts.json, {"settings": {"orphans": opts.orphans, "runs": opts.runs}, "results": results}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
