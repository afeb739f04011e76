# helix-init s6-compat entry point: s6-svc, s6-svwait (stdlib only, never imports helix_init)
"""s6-svc and s6-svwait on helix-init's control socket (root only, like s6's control fifos).

A service directory argument names the service by its last component:
`/run/service/svc-cron`, `/etc/s6-overlay/s6-rc.d/svc-cron` and `.` (in a
run or finish script, whose working directory is its own folder) all mean
svc-cron. The socket is $HELIX_INIT_RUN_DIR/control.sock (default
/run/helix-init).

s6-svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T ms] [-s sig|-abqhkti12pcy] [-udrDUx] dir...
  -u start (restarted when it ends), -d stop (stays down), -r restart,
  -t -k -h -i -q -1 -2 -a -b -p -c -y and -s SIG signal the service's process,
  -x is accepted and does nothing (helix-init owns the supervisor), -o and -O
  are refused (helix-init has no run-once mode). -w waits for the state
  (up, Up and ready, down, Down, restarted, Restarted and ready), -T bounds the
  wait in milliseconds. Exit 0; 99 timed out; 100 bad usage, or no such
  service under a running helix-init; 111 the init cannot be reached.
s6-svwait [-u|-U|-d|-D|-r|-R] [-a|-o] [-t ms] dir...: wait for the state
  on all (-a, default) or one (-o) of them; exit 0, 99 timed out, 100, 111.
"""

import getopt
import json
import os
import signal
import socket
import sys
import time
from typing import Any

SIGNALS = {"a": "SIGALRM", "b": "SIGABRT", "q": "SIGQUIT", "h": "SIGHUP", "k": "SIGKILL",
           "t": "SIGTERM", "i": "SIGINT", "1": "SIGUSR1", "2": "SIGUSR2", "p": "SIGSTOP",
           "c": "SIGCONT", "y": "SIGWINCH"}  # fmt: skip
POLL = 0.02


class Unreachable(Exception):
    pass


def request(payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    run_dir = os.environ.get("HELIX_INIT_RUN_DIR") or "/run/helix-init"
    path = os.path.join(run_dir, "control.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        answer: dict[str, Any] = json.loads(data)
        return answer
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise Unreachable(f"helix-init control socket {path}: {why}") from None
    finally:
        sock.close()


def services() -> dict[str, dict[str, Any]]:
    answer = request({"cmd": "status"})
    found = {}
    for svc in ((answer.get("status") or {}).get("services") or {}).get("services") or []:
        found[svc["name"]] = svc
    return found


def name_of(folder: str) -> str:
    return os.path.basename(os.path.abspath(folder).rstrip("/")) or folder


UP = ("starting", "ready", "stopping")  # helix-init states in which the process runs


def reached(svc: dict[str, Any] | None, want: str, before: int | None) -> bool:
    if svc is None:
        return False
    up = svc.get("state") in UP and svc.get("pid") is not None
    ready = up and bool(svc.get("ready"))
    restarted = up and svc.get("pid") != before
    return {
        "u": up, "U": ready, "d": not up, "D": not up, "r": restarted, "R": restarted and ready,
    }.get(want, False)  # fmt: skip


def wait(
    names: list[str], want: str, timeout_ms: int, need_all: bool, before: dict[str, Any]
) -> int:
    deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
    while True:
        found = services()
        hits = [reached(found.get(n), want, before.get(n)) for n in names]
        if all(hits) if need_all else any(hits):
            return 0
        if deadline is not None and time.monotonic() > deadline:
            return 99
        time.sleep(POLL)


def fail(prog: str, why: str, code: int) -> int:
    print(f"{prog}: fatal: {why}", file=sys.stderr)
    return code


def signal_number(value: str) -> int:
    name = value.upper()
    if name.isdigit():
        return int(name)
    return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])


def number(opt: str, value: str) -> int:
    """A millisecond or count option's value; ValueError "-T x" when it is not a number."""
    if not value.isdigit():
        raise ValueError(f"{opt} {value}")
    return int(value)


def options(args: list[str], spec: str) -> tuple[list[tuple[str, str]], list[str]]:
    """getopt as s6's programs parse (options first); a bad one is "bad option -X"."""
    try:
        return getopt.getopt(args, spec)
    except getopt.GetoptError as exc:
        raise ValueError(f"-{exc.opt}") from None


def svc(args: list[str]) -> int:
    prog = "s6-svc"
    actions: list[str] = []
    sigs: list[int] = []
    want: str | None = None
    timeout = 0
    try:
        opts, rest = options(args, "w:T:s:" + "".join(SIGNALS) + "udrDUxoO")
        for opt, value in opts:
            c = opt[1]
            if c == "w":
                if len(value) != 1 or value not in "uUdDrR":
                    raise ValueError(f"-w{value}")
                want = value
            elif c == "T":
                timeout = number(opt, value)
            elif c == "s":
                sigs.append(signal_number(value))
            elif c in SIGNALS:
                sigs.append(int(signal.Signals[SIGNALS[c]]))
            elif c in "oO":
                return fail(prog, f"-{c} (run once) is not supported by helix-init", 100)
            else:
                actions.append(c)
    except (ValueError, KeyError) as exc:
        return fail(prog, f"usage: bad option {exc}", 100)
    names = [name_of(d) for d in rest]
    if not names:
        return fail(
            prog,
            "usage: s6-svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T ms] [-abqhkti12pcy] "
            "[-udrDUx] servicedir...",
            100,
        )
    try:
        found = services()
        for name in names:
            if name not in found:
                return fail(
                    prog, f"unable to control {name}: no such service under helix-init", 100
                )
        before = {n: found[n].get("pid") for n in names}
        for name in names:
            for sig in sigs:
                pid = found[name].get("pid")
                if pid:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            for action in actions:
                cmd = {"u": "start", "U": "start", "d": "stop", "D": "stop", "r": "restart"}
                if action in cmd:
                    answer = request({"cmd": cmd[action], "service": name}, timeout=120)
                    if not answer.get("ok"):
                        return fail(prog, f"{name}: {answer.get('error')}", 111)
        return wait(names, want, timeout, True, before) if want else 0
    except Unreachable as exc:
        return fail(prog, str(exc), 111)


def svwait(args: list[str]) -> int:
    prog = "s6-svwait"
    want, need_all, timeout = "u", True, 0
    try:
        opts, rest = options(args, "uUdDrRaot:")
        for opt, value in opts:
            c = opt[1]
            if c in "uUdDrR":
                want = c
            elif c in "ao":
                need_all = c == "a"
            else:
                timeout = number(opt, value)
    except ValueError as exc:
        return fail(prog, f"usage: bad option {exc}", 100)
    names = [name_of(d) for d in rest]
    if not names:
        return 0
    try:
        found = services()
        missing = [n for n in names if n not in found]
        if missing:
            return fail(prog, f"no such service under helix-init: {', '.join(missing)}", 100)
        return wait(names, want, timeout, need_all, {n: found[n].get("pid") for n in names})
    except Unreachable as exc:
        return fail(prog, str(exc), 111)


if __name__ == "__main__":
    _main = svwait if os.path.basename(sys.argv[0]) == "s6-svwait" else svc
    sys.exit(_main(sys.argv[1:]))
