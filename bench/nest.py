"""Nested Docker figures: helix-init images against the plain shell entrypoint they replace.

Measured side by side on the same engine, same base, same capability set
(the level-1 runs by turns, helix-init then the baseline):

- level-1 boot-to-ready: `docker run` of a sandbox until its Engine API answers
  (`docker info` at that level succeeds), and helix-init's own account of
  where that time went (`helix-init status --json`'s timeline, read right
  then, last run): `l1_breakdown`;
- nest boot: `docker run` of level 1 until a busybox container at level 5 has
  printed its line (levels 2, 3 and 4 started from inside: sandbox, desktop,
  sandbox, desktop for helix-init), minus the time spent loading images into
  the levels (the two nests load different images); each level's own share
  is in the JSON (`levels_s`);
- nest stop: `docker stop -t 30` of level 1, its exit code, and whether level
  1's dockerd got TERM (and exited) or was KILLed with the container.

The baseline is the pattern the current Helix images use: a shell entrypoint
that starts `dockerd &` and execs the CMD (`sleep infinity`). On this host it
also needs the cgroup remount (TESTBED.md), which it gets, or it could not run
Docker at all. Both nests wait for the same thing at every level (the
level's Engine API answers) and run without a control plane (no RevDial
agent), so the figures compare the inits, not the stand-ins.
Usage: `.venv/bin/python -m bench.nest [--runs N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import helix_nest as nest
from bench.common import write_json
from helix_nest.build import LEVELS
from helix_nest.engine import WORK

BASELINE_IMAGE = "helix-baseline:test"
BASELINE_ENTRYPOINT = r"""
for m in $(awk '$9 == "cgroup" && $6 ~ /^ro/ {print $5}' /proc/self/mountinfo); do
  mount -o remount,rw,bind "$m" "$m"
done
rm -f /var/run/docker.pid
dockerd > /var/log/dockerd.log 2>&1 &
exec "$@"
"""


def build_baseline(eng: nest.Engine) -> None:
    dockerfile = (
        f"FROM {nest.SANDBOX_IMAGE}\n"
        "COPY entrypoint.sh /baseline-entrypoint.sh\n"
        'ENTRYPOINT ["/bin/sh", "/baseline-entrypoint.sh"]\n'
        'CMD ["sleep", "infinity"]\n'
    )
    ctx = WORK / "baseline"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "entrypoint.sh").write_text(BASELINE_ENTRYPOINT)
    eng.docker("build", "-q", "-t", BASELINE_IMAGE, str(ctx), timeout=600)


def wait_engine(level: nest.Level, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if level.docker("info", check=False, timeout=30).returncode == 0:
            return
        time.sleep(0.1)
    raise nest.NestError(f"level {level.depth} engine not up in {timeout:g}s")


def run_level(parent: nest.Level, name: str, image: str, network: str) -> nest.Level:
    parent.docker("network", "inspect", network, check=False).returncode == 0 or parent.docker(
        "network", "create", network
    )
    parent.docker(
        "run", "-d", "--pull", "never", "--name", name, "--network", network, *nest.CAPS,
        "-v", f"{name}-docker:/var/lib/docker", "-e", f"HELIX_DOCKER_DEPTH={parent.depth + 1}",
        image,
    )  # fmt: skip
    level = parent.inside(name)
    wait_engine(level)
    return level


def remove(host: nest.Level, name: str) -> None:
    host.docker("rm", "-f", name, check=False, timeout=180)
    host.docker("volume", "rm", "-f", f"{name}-docker", check=False)


def boot_to_ready(eng: nest.Engine, runs: int) -> tuple[list[float], list[float], dict[str, Any]]:
    """`docker run` -> Engine API of helix-init's sandbox and of the baseline, run by turns
    (drift under other load hits both alike); and the last helix-init run's boot timeline."""
    host = nest.Level.host(eng)
    times: dict[str, list[float]] = {nest.SANDBOX_IMAGE: [], BASELINE_IMAGE: []}
    timeline: dict[str, Any] = {}
    for i in range(runs):
        for image, found in times.items():
            name = f"bench-l1-{i}"
            remove(host, name)
            started = time.monotonic()
            run_level(host, name, image, "bench-net")
            found.append(time.monotonic() - started)
            if image != BASELINE_IMAGE:  # where the level's boot went, as `status --json` says
                status = host.docker("exec", name, "helix-init", "status", "--json", check=False)
                if status.returncode == 0:
                    timeline = json.loads(status.stdout).get("timeline", {})
            remove(host, name)
    return times[nest.SANDBOX_IMAGE], times[BASELINE_IMAGE], timeline


def nest_boot_and_stop(eng: nest.Engine, images: list[str]) -> dict[str, object]:
    """Levels 1-4 of `images` (one per level), a busybox line at level 5; then docker stop."""
    host = nest.Level.host(eng)
    prefix = "bench-h" if images[0] == nest.SANDBOX_IMAGE else "bench-b"
    remove(host, f"{prefix}1")
    loading = 0.0  # image loads differ in size between the two nests: not counted
    levels_s: list[float] = []

    started = time.monotonic()
    level = host
    for depth, image in enumerate(images, start=1):
        if depth > 1:
            t = time.monotonic()
            level.load(*dict.fromkeys([*images[depth - 1 :], nest.BUSYBOX_IMAGE]))
            loading += time.monotonic() - t
        t = time.monotonic()
        level = run_level(level, f"{prefix}{depth}", image, f"bench-net{depth}")
        levels_s.append(time.monotonic() - t)
    t = time.monotonic()
    level.load(nest.BUSYBOX_IMAGE)
    loading += time.monotonic() - t
    level.docker("run", "--rm", "--pull", "never", nest.BUSYBOX_IMAGE, "echo", "level 5")
    boot = time.monotonic() - started - loading
    t0 = time.monotonic()
    host.docker("stop", "-t", "30", f"{prefix}1", timeout=120)
    stop = time.monotonic() - t0
    code = int(host.docker("inspect", "-f", "{{.State.ExitCode}}", f"{prefix}1").stdout)
    logs = host.docker("logs", f"{prefix}1", check=False).stdout
    # helix-init logs dockerd's stop; the baseline's dockerd log is on the container fs.
    got_term = "service dockerd: ready -> stopping" in logs and "stopping -> stopped" in logs
    if prefix == "bench-b":
        dlog = host.docker("cp", f"{prefix}1:/var/log/dockerd.log", "-", check=False).stdout
        got_term = "Processing signal 'terminated'" in dlog
    remove(host, f"{prefix}1")
    return {
        "boot_s": boot, "stop_s": stop, "exit_code": code, "dockerd_got_term": got_term,
        "levels_s": levels_s, "loading_s": loading,
    }  # fmt: skip


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here (default: stdout)")
    args = parser.parse_args()
    eng = nest.engine()
    try:
        return measure(eng, args.runs, args.json)
    finally:
        eng.stop()  # only a dockerd this run started


def measure(eng: nest.Engine, runs: int, json_path: Path | None) -> int:
    nest.build_images(eng)
    build_baseline(eng)
    helix, base, timeline = boot_to_ready(eng, runs)
    helix_nest = nest_boot_and_stop(eng, [plan.image for plan in LEVELS])
    base_nest = nest_boot_and_stop(eng, [BASELINE_IMAGE] * len(LEVELS))
    result = {
        "l1_boot_to_ready_s": {"helix": stats(helix), "baseline": stats(base)},
        "l1_breakdown": timeline,  # read as soon as the Engine API answered
        "nest": {"helix": helix_nest, "baseline": base_nest},
    }
    write_json(json_path, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
