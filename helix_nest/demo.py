"""The demo (README Quickstart): the whole mission on one engine, five levels deep.

    .venv/bin/python -m helix_nest.demo      (scripts/demo runs it)

Builds the images, puts up sandbox → desktop → sandbox → desktop with the
control plane beside level 1, and shows: each level's `helix-init status`;
the control plane's connected runners and, through each desktop's tunnel,
its desktop-bridge's /health; a user container at level 5 resolving and
reaching the level-0 control plane by name; the compositor at level 2 KILLed
and the bridge coming back; `docker stop` of the nest, its time and exit
code; where the time went. Exit 3 when there is no engine and none can be
started (scripts/demo then runs the PID-namespace demo).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from helix_nest import images
from helix_nest.build import Nest, build_nest, remove_nest
from helix_nest.engine import Engine, engine
from helix_nest.level import Level
from helix_nest.plane import API_FQDN, API_PORT
from helix_nest.proc import NestError

WATCHED = ("compositor", "desktop-bridge")


def say(text: str = "") -> None:
    print(text, flush=True)


def show_levels(nest: Nest) -> None:
    for up in nest.levels:
        level = up.level
        say(f"\n== level {level.depth}: {up.plan.kind} {level.name} — helix-init status")
        table = level.exec(["helix-init", "status"]).stdout.splitlines()
        say("\n".join(line for line in table if not line.startswith("export ")))


def show_control_plane(nest: Nest) -> None:
    say(f"\n== the control plane ({nest.plane.name} at level 0): connected RevDial runners")
    for runner in nest.plane.runners():
        say(f"   {runner}")
    for up in nest.levels:
        if up.plan.kind == "desktop":
            status, body = nest.plane.through_tunnel(up.plan.runner_id, "/health")
            answer = body.strip().splitlines()[-1] if body.strip() else ""
            say(f"   through {up.plan.runner_id}'s tunnel, desktop-bridge /health: "
                f"{status} {answer}")  # fmt: skip


def show_level5(nest: Nest) -> None:
    deepest = nest.all[-1]
    script = (
        f"echo hello from level {deepest.depth + 1}, a busybox container in {deepest.name}; "
        f"nslookup -type=a {API_FQDN} | sed -n '/^Name:/,$p' | grep Address | head -1"
        f" | sed 's/^Address:* */  {API_FQDN} (level 0) is /'; "
        f"wget -qO- http://{API_FQDN}:{API_PORT}/api/v1/runners | sed 's/^/  its runners: /'"
    )
    out = deepest.docker("run", "--rm", "--pull", "never", images.BUSYBOX_IMAGE, "sh", "-c", script)
    say(f"\n== level {deepest.depth + 1}: a user container in {deepest.name}")
    say(out.stdout.rstrip())


def kill_compositor(level: Level) -> None:
    """KILL level's compositor; print the two services' states as they change until ready."""
    before = level.services()
    pid = before["compositor"]["pid"]
    say(f"\n== level {level.depth}: kill -KILL the compositor (pid {pid})")
    level.exec(["kill", "-KILL", str(pid)])
    started = time.monotonic()
    seen: dict[str, tuple[Any, ...]] = {}
    while time.monotonic() - started < 90:
        now = level.services()
        for name in WATCHED:
            s = now[name]
            state = (s["state"], s["pid"], s["restarts"])
            if seen.get(name) != state:
                seen[name] = state
                why = f"  (last exit: {s['last_exit']})" if s.get("last_exit") else ""
                say(f"   +{time.monotonic() - started:4.1f}s  {name:15} {s['state']:9} "
                    f"pid {s['pid'] or '-':<6} restarts {s['restarts']}{why}")  # fmt: skip
        restarted = all(now[n]["restarts"] > before[n]["restarts"] for n in WATCHED)
        if restarted and all(now[n]["state"] == "ready" for n in WATCHED):
            say(f"   both ready again {time.monotonic() - started:.1f}s after the KILL")
            return
        time.sleep(0.2)
    raise NestError("the compositor and desktop-bridge were not ready again within 90s")


def stop_nest(nest: Nest) -> float:
    l1 = nest.levels[0].level
    say(f"\n== docker stop {l1.name} (the whole nest, {len(nest.levels)} engines)")
    started = time.monotonic()
    nest.host.docker("stop", "-t", "120", l1.name, timeout=300)
    took = time.monotonic() - started
    code = nest.host.docker("inspect", "-f", "{{.State.ExitCode}}", l1.name).stdout.strip()
    logs = nest.host.docker("logs", "--tail", "3", l1.name, check=False)
    say(f"   took {took:.1f}s, exit code {code}")
    for line in (logs.stdout + logs.stderr).splitlines()[-1:]:
        say(f"   {line}")
    return took


def where_the_time_went(rows: list[tuple[str, str, str, str]]) -> None:
    say("\n== where the time went (seconds)")
    say(f"   {'':36} {'images':>7} {'boot':>6} {'agent':>6}")
    for name, load, boot, agent in rows:
        say(f"   {name:36} {load:>7} {boot:>6} {agent:>6}")


def demo(eng: Engine) -> None:
    t0 = time.monotonic()
    say(f"Docker engine: {eng.host}" + (" (private dockerd started)" if eng.process else ""))
    say("building images (local base, no registry pulls)...")
    images.build_images(eng)
    built = time.monotonic()
    remove_nest(eng)
    nest = build_nest(eng, log=lambda text: say(f"  {text}"))
    up = time.monotonic()
    say(f"nest up in {up - built:.1f}s")
    show_levels(nest)
    show_control_plane(nest)
    show_level5(nest)
    kill_compositor(nest.all[2])
    checks = time.monotonic()
    stopped = stop_nest(nest)
    rows = [("images built (cache reused)", "", f"{built - t0:.1f}", "")]
    for level in nest.levels:
        rows.append((
            f"level {level.depth} {level.plan.kind} {level.level.name}",
            f"{level.load_s:.1f}" if level.depth > 1 else "-",
            f"{level.boot_s:.1f}", f"{level.agent_s:.1f}",
        ))  # fmt: skip
    levels_s = sum(n.load_s + n.boot_s + n.agent_s for n in nest.levels)
    rows.append(("control plane, busybox loads", "", f"{up - built - levels_s:.1f}", ""))
    rows.append(("status, tunnels, compositor restart", "", f"{checks - up:.1f}", ""))
    rows.append(("docker stop of the nest", "", f"{stopped:.1f}", ""))
    rows.append(("whole demo", "", f"{time.monotonic() - t0:.1f}", ""))
    where_the_time_went(rows)
    remove_nest(eng)


def main() -> int:
    try:
        eng = engine()
    except NestError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 3  # scripts/demo falls back to the PID-namespace demo
    try:
        demo(eng)
        return 0
    except NestError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        eng.stop()


if __name__ == "__main__":
    raise SystemExit(main())
