"""Operator commands beside a running init: check, plan, status, health, logs, env, start/stop.

Runs as a short-lived process (docker exec, a HEALTHCHECK, a Kubernetes probe).
check and plan read the drop-ins only; status, health and the control verbs
ask the init over its root-only control socket; logs reads the per-service files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from helix_init import control, rundir
from helix_init.boot import BootPlan, make_plan
from helix_init.exitcodes import Exit
from helix_init.problems import ConfigError
from helix_init.services import lint
from helix_init.settings import Settings
from helix_init.steprunner import step_timeout

CONTROL_TIMEOUT = 5.0
STOP_TIMEOUT = 600.0  # `stop dockerd` returns only once dockerd has exited


def run(name: str, args: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog=f"helix-init {name}")
    if name in ("status", "env"):
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    if name == "env":
        parser.add_argument("service")
    elif name == "logs":
        parser.add_argument("-f", "--follow", action="store_true")
        parser.add_argument("-n", "--lines", type=int, default=50)
        parser.add_argument("service")
    elif name in ("start", "stop", "restart"):
        parser.add_argument("service")
    opts = parser.parse_args(args)
    try:
        if name == "check":
            return check(settings)
        if name == "plan":
            return plan(settings)
        if name == "status":
            return status(settings, opts.json)
        if name == "health":
            return health(settings)
        if name == "logs":
            return logs(settings, opts.service, opts.lines, opts.follow)
        if name == "env":
            return environment(settings, opts.service, opts.json)
        return act(settings, name, opts.service)
    except control.NoPermission as exc:
        print(f"helix-init {name}: {exc}; run it as root", file=sys.stderr)
        return Exit.NO_PERMISSION
    except control.ControlError as exc:
        print(f"helix-init {name}: {exc}", file=sys.stderr)
        return Exit.NOT_READY if name == "health" else Exit.USAGE


def _plan_or_problems(settings: Settings) -> BootPlan | None:
    try:
        return make_plan(settings, [])
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s); the container would not start", file=sys.stderr)
        return None


def check(settings: Settings) -> int:
    boot_plan = _plan_or_problems(settings)
    if boot_plan is None:
        return Exit.CONFIG
    for warning in lint.warnings(boot_plan.services, settings.environ):
        print(warning)
    enabled = len(boot_plan.services.enabled)
    print(
        f"ok: {len(boot_plan.cont_init)} cont-init step(s), "
        f"{len(boot_plan.cont_finish)} cont-finish step(s), "
        f"{enabled} service(s) enabled of {len(boot_plan.services.services)}"
    )
    return Exit.OK


def plan(settings: Settings) -> int:
    boot_plan = _plan_or_problems(settings)
    if boot_plan is None:
        return Exit.CONFIG
    print(f"cont-init ({settings.cont_init_dir}):")
    if settings.step_prelude:
        print(f"  prelude before each *.sh step: {', '.join(map(str, settings.step_prelude))}")
    for step in boot_plan.cont_init:
        extra = " optional" if step.optional else ""
        timeout = step_timeout(step, settings.step_timeout, settings.sh_step_timeout)
        limit = f"timeout {timeout:g}s" if timeout else "no timeout"
        print(f"  {step.name}  [{step.kind}{extra}, {limit}]")
    for line in boot_plan.s6.describe() if boot_plan.s6 else ():  # an s6-overlay v3 tree
        print(line)
    print(f"services ({settings.services_dir}), started level by level:")
    for i, level in enumerate(boot_plan.services.start_levels, 1):
        for name in level:
            spec = boot_plan.services.get(name)
            needs = f" requires {', '.join(spec.requires)}" if spec.requires else ""
            ready = f", ready by {spec.ready.kind}" if spec.ready else ""
            later = ", enabled_if checked again after cont-init" if spec.enabled_if else ""
            print(f"  {i}. {name}{needs}{ready}, restart {spec.restart}{later}")
    for spec in boot_plan.services.services:
        if spec.enabled:
            continue
        if spec.enabled_if is not None:  # a step may still switch it on (daemon.json -> dockerd)
            print(f"  -  {spec.name} off until cont-init says otherwise: {spec.disabled_reason}")
        else:
            print(f"  -  {spec.name} disabled: {spec.disabled_reason}")
    pending = boot_plan.services.pending
    print(f"decided after cont-init (resolved again once the steps ran): {len(pending)}")
    for p in pending:
        print(f"  {p.service}: {p.decision}, waits on {p.waits_on} (now {p.now})")
    print(f"cont-finish ({settings.cont_finish_dir}):")
    for step in boot_plan.cont_finish:
        print(f"  {step.name}  [{step.kind}]")
    return Exit.OK


def _ask(settings: Settings, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    return control.request(settings.sock_path, payload, timeout)


def status(settings: Settings, as_json: bool) -> int:
    answer = _ask(settings, {"cmd": "status"}, CONTROL_TIMEOUT)
    st = answer["status"]
    docker = _docker_facts(settings)
    if docker is not None:
        st["docker"] = docker
    dns = _dns_status(settings)
    if dns is not None:
        st["dns"] = dns
    engine = _engine_status(st)
    if engine is not None:
        st["engine"] = engine
    if as_json:
        print(json.dumps(st, indent=2))
        return Exit.OK
    print(f"stage: {st['stage']}   ready: {'yes' if st['ready'] else 'no'}   init pid: {st['pid']}")
    if st.get("timeline"):
        from helix_init.timeline import summary

        print(summary(st["timeline"]))
    services = st.get("services") or {}
    header = ("SERVICE", "STATE", "READY", "PID", "UPTIME", "RESTARTS", "CPU", "RSS", "FDS")
    rows = [(*header, "LAST EXIT / NOTE")]
    for s in services.get("services", []):
        note = s["reason"] if s["state"] != "ready" else (s["last_exit"] or "")
        if s["next_retry_in"] is not None:
            note = f"retry in {s['next_retry_in']:.1f}s; {s['last_exit']}"
        rows.append(
            (
                s["name"],
                s["state"],
                "yes" if s["ready"] else "no",
                str(s["pid"] or "-"),
                _duration(s["uptime"]),
                str(s["restarts"]),
                *_usage_cells(s.get("usage")),
                note,
            )
        )
    for s in services.get("disabled", []):
        rows.append((s["name"], "disabled", *("-",) * 7, s["reason"]))
    widths = [max(len(r[i]) for r in rows) for i in range(9)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[9])
    if docker is not None and not docker["can_run_dockerd"]:
        print(f"docker: not at this level: {docker['why_not']}")
    if dns is not None:
        line = f"dns: {dns['mode']}, upstreams {', '.join(dns['upstreams'])}"
        if dns["mode"] == "relay":
            counters = dns.get("relay") or {}
            line += f"; relay on {dns['relay_address']}:53, " + (
                ", ".join(f"{k} {v}" for k, v in counters.items()) or "no queries yet"
            )
        print(line)
    if engine is not None:
        from helix_init.dockerinfo import EngineInfo

        print(f"engine: {engine['error']}" if "error" in engine else EngineInfo(**engine).line())
    for name, step in sorted(st.get("exports", {}).items()):
        print(f"export {name} (from step {step})")
    for step, procs in st.get("adopted", {}).items():
        print(f"step {step} left running (adopted; TERM and a grace at shutdown):")
        for p in procs:
            print(f"  {p['pid']:>7}  {p['command']}")
    return Exit.OK


def _usage_cells(usage: dict[str, Any] | None) -> tuple[str, str, str]:
    """CPU time, RSS and open fds of a service's processes, summed (services/usage.py)."""
    if not usage:
        return ("-", "-", "-")
    rss = usage["rss_bytes"] / (1 << 20)
    return (f"{usage['cpu_seconds']:.1f}s", f"{rss:.1f}M", str(usage["fds"]))


def _engine_status(st: dict[str, Any]) -> dict[str, Any] | None:
    """This level's engine through the docker SDK, only once the dockerd service is ready."""
    services = (st.get("services") or {}).get("services", [])
    if not any(s["name"] == "dockerd" and s["ready"] for s in services):
        return None
    from helix_init.dockerinfo import engine_info

    info = engine_info()
    if isinstance(info, str):
        return {"error": info}
    return info.to_json()


def _docker_facts(settings: Settings) -> dict[str, Any] | None:
    """Whether this level runs dockerd and, if not, why (the preflight's facts.json).

    The dockerd service's own disabled reason only says daemon.json is missing;
    the cause an operator needs (say, /var/lib/docker on overlayfs, and the fix)
    is the preflight's.
    """
    try:
        facts = json.loads((settings.run_dir / rundir.FACTS).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict):
        return None
    return {"can_run_dockerd": bool(facts.get("can_run_dockerd")), "why_not": facts.get("why_not")}


def _dns_status(settings: Settings) -> dict[str, Any] | None:
    """The DNS plan the network step made (dns.json) and the relay's counters, if any."""
    from helix_init.dns.plan import DnsPlan

    try:
        plan = DnsPlan.from_json((settings.run_dir / rundir.DNS).read_text())
    except (OSError, ConfigError):
        return None
    status: dict[str, Any] = {
        "mode": plan.mode,
        "upstreams": list(plan.upstreams),
        "inner_containers_use": list(plan.dns),
        "relay_address": plan.relay_listen,
        "reason": plan.reason,
    }
    try:
        counters = json.loads((settings.run_dir / rundir.RELAY_STATS).read_text())
    except (OSError, ValueError):
        counters = None
    if isinstance(counters, dict):
        status["relay"] = counters
    return status


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def health(settings: Settings) -> int:
    """Exit 0 when every required service is ready (Docker HEALTHCHECK, Kubernetes probes).

    Without the services' usage: the images' HEALTHCHECK asks every 10 s, and
    each answer with it was a psutil walk of every service's processes, and
    the first loaded psutil into PID 1 for good (~1.3 MiB of its RSS).
    """
    st = _ask(settings, {"cmd": "status", "usage": False}, CONTROL_TIMEOUT)["status"]
    if st["ready"]:
        print("ready")
        return Exit.OK
    waiting = [
        f"{s['name']} ({s['state']})"
        for s in (st.get("services") or {}).get("services", [])
        if not s["ready"]
    ]
    print(f"not ready: stage {st['stage']}" + (f"; {', '.join(waiting)}" if waiting else ""))
    return Exit.NOT_READY


def environment(settings: Settings, service: str, as_json: bool) -> int:
    """What `service` gets at its next start: NAME=VALUE, with the origin of every variable
    that is not the container's own, secrets masked (the init masks them before answering)."""
    answer = _ask(settings, {"cmd": "env", "service": service}, CONTROL_TIMEOUT)
    if not answer.get("ok"):
        print(f"helix-init env: {answer.get('error')}", file=sys.stderr)
        return Exit.USAGE
    env = answer["env"]
    if as_json:
        print(json.dumps(env, indent=2))
        return Exit.OK
    for name, value, origin in env["variables"]:
        shown = f"{name}={value}"
        print(f"{shown}  # {origin}" if origin else shown)
    for name in env["missing"]:
        print(f"# missing: {name} (the service is not started without it)")
    return Exit.OK


def act(settings: Settings, verb: str, service: str) -> int:
    answer = _ask(settings, {"cmd": verb, "service": service}, STOP_TIMEOUT)
    if not answer.get("ok"):
        print(f"helix-init {verb}: {answer.get('error')}", file=sys.stderr)
        return Exit.USAGE
    print(answer.get("message", "ok"))
    return Exit.OK


def logs(settings: Settings, service: str, lines: int, follow: bool) -> int:
    path = settings.service_log_dir / f"{service}.log"
    # The folder is root only (boot makes it 0700: raw service output is not
    # masked); a non-root exists() raised PermissionError, a traceback.
    if not os.access(settings.service_log_dir, os.X_OK) and settings.service_log_dir.exists():
        where = settings.service_log_dir
        print(
            f"helix-init logs: permission denied: {where} is root only; run it as root",
            file=sys.stderr,
        )
        return Exit.NO_PERMISSION
    if not path.exists():
        known = sorted(p.stem for p in settings.service_log_dir.glob("*.log"))
        print(
            f"helix-init logs: no log {path} (logs: {', '.join(known) or 'none'})", file=sys.stderr
        )
        return Exit.USAGE
    try:
        with open(path, "rb") as f:
            tail = f.read()[-max(lines, 0) * 4096 :] if lines else b""
    except PermissionError:
        print(f"helix-init logs: permission denied: {path}", file=sys.stderr)
        return Exit.NO_PERMISSION
    for line in tail.splitlines()[-lines:] if lines else []:
        sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()
    if follow:
        _follow(path)
    return Exit.OK


def _follow(path: Path) -> None:
    """tail -F: keep printing, across rotations, until interrupted."""
    f = open(path, "rb")  # noqa: SIM115 - reopened on rotation
    f.seek(0, os.SEEK_END)
    inode = os.fstat(f.fileno()).st_ino
    try:
        while True:
            data = f.read()
            if data:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = open(path, "rb")  # noqa: SIM115
                inode = os.fstat(f.fileno()).st_ino
                continue
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        f.close()
