"""Bench, not a test: a lean, fast PID 1 (issue 18) against the anchors it must stay near.

    .venv/bin/python -m bench.boot [--runs 10] [--json FILE]

Runs as root. Every figure is helix-init beside an anchor run interleaved with
it (drift hits both alike), each as PID 1 of a new PID namespace:

  true        `helix-init -- true`, exec of unshare -> its exit; anchor: the same
              interpreter spawning `true` (`python -c 'subprocess.call(["true"])'`)
              and tini. Target: <= 1.5x the interpreter.
  rss         VmRSS of PID 1 once booted and idle (empty drop-in folders, the CMD
              blocked on a fifo); anchor: the same interpreter, idle. Target: <= 1.4x.
  early_term  TERM to PID 1 30 ms after exec (`helix-init -- sleep 20`): exit time
              and how many TERMs were lost (a lost one waits out the 20 s; cut at 5 s);
              anchor: tini.
  wrapper     CPU (user+sys) of one service start's wrapper, exec -> the service's
              exec (`true`), and of `true` itself: the launch script under
              `env -i /bin/sh` (render.py, what supervisord runs now) and svcexec.py
              under `python -I -S` (before); anchor: a plain fork+exec of `true`
              (what s6-supervise spends). Target: <= 10 ms.
  engine      supervisord's own start, spawn -> its first answer to getState on its
              socket, and its VmRSS then (no programs, the conf the init writes beside
              cont-init): as the init starts it (services/engineexec.py: `-I -S`, the
              init's sys.path, no OpenSSL, pkg_resources on demand); anchor: plain
              `python -m supervisor.supervisord` from the venv. Outside any namespace.
  breakdown   `helix-init status --json`'s timeline of a process-tier boot (a
              built-in step forked, a *.sh step, one service): where the time goes
              without Docker. The level-1 figures need an engine: bench/nest.py.

The interpreter is the venv's python (a link to the real binary, TESTBED.md);
helix-init runs through its console script, and for `true` and early_term also
through the images' launcher (images/helix-init: coreutils' env blocks the
stop signals before `python3 -S` starts, the first statement holds the rest
before `site`), pointed at this checkout instead of dist-packages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    HELIX_INIT,
    PYTHON,
    REPO,
    UNSHARE,
    VENV_BIN,
    fresh,
    helix_env,
    init_pid,
    progress,
    require_root,
    stats,
    vm_rss_kib,
    wait_until,
    write_json,
)
from tests.support.pid1 import image_launcher

SPAWN_TRUE = "import subprocess, sys; sys.exit(subprocess.call(['true']))"
IDLE = "import signal, sys; open(sys.argv[1], 'w').close(); signal.pause()"  # marker, idle
LOST_AFTER = 5.0
SVCEXEC = REPO / "helix_init" / "services" / "svcexec.py"


def exec_to_exit(argv: list[str], env: dict[str, str], work: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*UNSHARE, *argv], env=env, cwd=work, stdin=subprocess.DEVNULL, capture_output=True
    )
    took = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return took


def _in_namespace(*argv: str, env: dict[str, str], work: Path) -> subprocess.Popen[bytes]:
    """`argv` as PID 1 of a new PID namespace (UNSHARE), quiet, in `work`."""
    return subprocess.Popen(
        [*UNSHARE, *argv],
        env=env,
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def idle_rss(argv: list[str], env: dict[str, str], work: Path, own_marker: bool) -> float:
    """MiB of PID 1, idle: once the CMD (or, own_marker, PID 1 itself) has written its marker."""
    marker = work / "idle"
    marker.unlink(missing_ok=True)
    cmd = [] if own_marker else ["sh", "-c", f'touch "{marker}"; exec sleep 100000']
    proc = _in_namespace(*argv, *([str(marker)] if own_marker else cmd), env=env, work=work)
    try:
        wait_until(marker.exists, "PID 1 (or its CMD) to start", proc)
        pid = init_pid(proc.pid)
        assert pid is not None
        wait_until(lambda: _sleeping(pid), "PID 1 to go idle", proc)
        return vm_rss_kib(pid) / 1024
    finally:
        proc.kill()
        proc.wait()


def _sleeping(pid: int) -> bool:
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "S"


def early_term(argv: list[str], env: dict[str, str], work: Path) -> tuple[float, str]:
    """Seconds from TERM (30 ms after exec) to PID 1's exit (LOST_AFTER when it was lost),
    and where PID 1 was when TERM came: "handled", "held" or "before" (neither yet: the
    interpreter had not reached the entry point's first statement)."""
    proc = _in_namespace(*argv, "sleep", "20", env=env, work=work)
    try:
        found: list[int] = []

        def execed() -> bool:
            pid = init_pid(proc.pid)
            if pid is None:
                return False
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if words[0].endswith(b"unshare"):
                return False  # not yet: unshare's child before its exec
            found.append(pid)
            return True

        wait_until(execed, "the init's exec", proc)
        time.sleep(0.03)  # the scenario: `docker stop` right after `docker run`
        where = _term_state(found[0])
        sent = time.perf_counter()
        os.kill(found[0], signal.SIGTERM)
        try:
            proc.wait(LOST_AFTER)
        except subprocess.TimeoutExpired:
            return LOST_AFTER, where
        return time.perf_counter() - sent, where
    finally:
        proc.kill()
        proc.wait()


def _term_state(pid: int) -> str:
    fields = dict(
        line.split(":\t", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":\t" in line
    )
    bit = 1 << (signal.SIGTERM - 1)
    if int(fields["SigCgt"], 16) & bit:
        return "handled"
    return "held" if int(fields["SigBlk"], 16) & bit else "before"


def wrapper_cpu_ms(argv: list[str]) -> float:
    """CPU of argv up to its exec of `true` and of `true` itself (children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


GET_STATE = (
    b"<?xml version='1.0'?><methodCall><methodName>supervisor.getState</methodName>"
    b"<params></params></methodCall>"
)


def _answers(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(2)
        conn.connect(str(sock))
        head = f"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: {len(GET_STATE)}"
        conn.sendall(head.encode() + b"\r\n\r\n" + GET_STATE)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return b"RUNNING" in data


def engine_start(work: Path, lean: bool) -> tuple[float, float]:
    """ms from supervisord's spawn to its first answer, and its MiB of VmRSS then."""
    from helix_init.services.engine import Engine, supervisord_argv
    from helix_init.services.render import EnginePaths, supervisord_conf

    fresh(work)
    paths = EnginePaths(work / "run", work / "logs")
    paths.run_dir.mkdir()
    paths.log_dir.mkdir()
    paths.conf.write_text(supervisord_conf(paths, [], 0, 0))
    if lean:  # sys.executable and sys.path as the init's own (its console script's dir first)
        argv = supervisord_argv(paths.conf, [str(VENV_BIN), *sys.path[1:]])
    else:  # as bench.services and bench.pid1_rss start plain supervisord
        argv = [
            str(VENV_BIN / "python"),
            "-m",
            "supervisor.supervisord",
            "-n",
            "-c",
            str(paths.conf),
        ]
    env = Engine.environment(os.environ)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def answered() -> bool:
            try:
                return paths.socket.exists() and _answers(paths.socket)
            except OSError:
                return False

        wait_until(answered, "supervisord's first answer", proc)
        took = (time.perf_counter() - started) * 1000
        return took, vm_rss_kib(proc.pid) / 1024
    finally:
        proc.terminate()
        proc.wait(30)


def breakdown(work: Path) -> dict[str, Any]:
    """The timeline of one process-tier boot, read while its CMD runs."""
    fresh(work)
    env = helix_env(work)
    for sub in ("cont-init.d", "services.d"):
        (work / sub).mkdir()
    user = work / "cont-init.d" / "05-user"
    user.write_text(f"#!/bin/sh\nexec {HELIX_INIT} step user\n")
    user.chmod(0o755)
    (work / "cont-init.d" / "10-hello.sh").write_text("echo hello\n")
    (work / "services.d" / "idle.toml").write_text('command = ["sleep", "100000"]\n')
    marker = work / "cmd-running"
    proc = _in_namespace(
        str(HELIX_INIT), "sh", "-c", f'touch "{marker}"; exec sleep 100000', env=env, work=work
    )
    try:
        wait_until(marker.exists, "the CMD", proc)
        done = subprocess.run(
            [str(HELIX_INIT), "status", "--json"], env=env, capture_output=True, check=True
        )
        timeline: dict[str, Any] = json.loads(done.stdout)["timeline"]
        return timeline
    finally:
        pid = init_pid(proc.pid)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write every sample here (JSON)")
    opts = parser.parse_args()
    require_root("boot")
    tini = shutil.which("tini")
    samples: dict[str, dict[str, list[float]]] = {}
    term_states: list[str] = []  # where helix-init was when each early TERM came
    image_states: list[str] = []  # the same, started by the images' launcher

    def add(figure: str, who: str, value: float) -> None:
        samples.setdefault(figure, {}).setdefault(who, []).append(value)

    with tempfile.TemporaryDirectory(prefix="helix-init-bench-boot.") as tmp:
        work = Path(tmp)
        env = helix_env(work)
        helix = [str(HELIX_INIT)]
        launch = work / "launch.json"
        launch.write_text(
            json.dumps(
                {
                    "name": "bench",
                    "argv": ["true"],
                    "env": {"PATH": os.environ.get("PATH", os.defpath)},
                    "secret_files": {},
                    "uid": None,
                    "gid": None,
                    "groups": [],
                    "cwd": None,
                }
            )
        )
        from helix_init.services.render import Launch

        script = work / "launch.sh"
        path = os.environ.get("PATH", os.defpath)
        script.write_text(Launch("bench", ("true",), {"PATH": path}, {}).script(launch))
        image = [str(image_launcher(work))]
        exec_to_exit([*helix, "true"], env, work)  # warm the page cache; not counted
        for i in range(opts.runs):
            progress(f"boot.py: round {i + 1} of {opts.runs}")
            add("true_ms", "helix-init", exec_to_exit([*helix, "--", "true"], env, work))
            add("true_ms", "interpreter", exec_to_exit([PYTHON, "-c", SPAWN_TRUE], env, work))
            add("true_ms", "image launcher", exec_to_exit([*image, "--", "true"], env, work))
            if tini:
                add("true_ms", "tini", exec_to_exit([tini, "--", "true"], env, work))
            add("rss_mib", "helix-init", idle_rss(helix, env, work, own_marker=False))
            add(
                "rss_mib", "interpreter", idle_rss([PYTHON, "-c", IDLE], env, work, own_marker=True)
            )
            took, where = early_term(helix, env, work)
            add("early_term_s", "helix-init", took)
            term_states.append(where)
            took, where = early_term(image, env, work)
            add("early_term_s", "image launcher", took)
            image_states.append(where)
            if tini:
                add("early_term_s", "tini", early_term([tini, "--"], env, work)[0])
            svcexec = [PYTHON, "-I", "-S", str(SVCEXEC), str(launch)]
            add("wrapper_cpu_ms", "svcexec", wrapper_cpu_ms(svcexec))
            chain = ["/usr/bin/env", "-i", "/bin/sh", str(script)]
            add("wrapper_cpu_ms", "launch script", wrapper_cpu_ms(chain))
            add("wrapper_cpu_ms", "fork+exec", wrapper_cpu_ms(["true"]))
            for who, lean in (("helix-init", True), ("supervisord", False)):
                took, rss = engine_start(work / "engine", lean)
                add("engine_start_ms", who, took)
                add("engine_rss_mib", who, rss)
        timeline = breakdown(work / "breakdown")

    results = {fig: {who: stats(v) for who, v in by.items()} for fig, by in samples.items()}
    lost = {
        who: sum(v >= LOST_AFTER for v in vals) for who, vals in samples["early_term_s"].items()
    }
    data = {
        "settings": {"runs": opts.runs, "lost_after_s": LOST_AFTER, "python": PYTHON},
        "results": results,
        "early_term_lost": lost,
        "early_term_found": {w: term_states.count(w) for w in ("before", "held", "handled")},
        "early_term_found_image": {w: image_states.count(w) for w in ("before", "held", "handled")},
        "breakdown": timeline,
    }
    write_json(opts.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
