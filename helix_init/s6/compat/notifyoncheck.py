# helix-init s6-compat entry point: s6-notifyoncheck (stdlib only, never imports helix_init)
"""s6-notifyoncheck [-d] [-3 fd] [-s ms] [-T ms] [-t ms] [-w ms] [-n tries] [-c checkprog] prog...

As s6's: fork; the parent closes the notification fd and execs prog; the
child (a grandchild with -d, so prog never sees it exit) sleeps -s ms (10),
then runs ./data/check (or -c checkprog, split into words as execlineb
would) until it exits 0, every -w ms (1000), at most -n times (7; 0 = no
limit), each run bounded by -t ms and the whole by -T ms (0 = none). On
success it writes a newline to the notification fd (./notification-fd, or
-3 fd) and exits. Run it from a service's folder: under helix-init a v3
longrun runs in /etc/s6-overlay/s6-rc.d/NAME, with the fd of its
notification-fd file open. Exit 100 on bad usage or no notification fd.
"""

import getopt
import os
import shlex
import subprocess
import sys
import time
from typing import Any


def fail(why: str, code: int = 100) -> int:
    print(f"s6-notifyoncheck: fatal: {why}", file=sys.stderr)
    return code


def number(opt: str, value: str) -> int:
    """A millisecond or count option's value; ValueError "-T x" when it is not a number."""
    if not value.isdigit():
        raise ValueError(f"{opt} {value}")
    return int(value)


def parse(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The options (getopt, options first, as s6's) and prog; ValueError names a bad one."""
    opts: dict[str, Any] = {"d": False, "3": None, "s": 10, "T": 0, "t": 0, "w": 1000, "n": 7,
                            "c": None}  # fmt: skip
    try:
        given, prog = getopt.getopt(args, "d3:s:T:t:w:n:c:")
    except getopt.GetoptError as exc:
        raise ValueError(f"-{exc.opt}") from None
    for opt, value in given:
        c = opt[1]
        opts[c] = True if c == "d" else value if c == "c" else number(opt, value)
    return opts, prog


def check_loop(opts: dict[str, Any], fd: int) -> int:
    argv = shlex.split(opts["c"]) if opts["c"] else ["./data/check"]
    started = time.monotonic()
    time.sleep(opts["s"] / 1000)
    tries = 0
    while True:
        try:
            code = subprocess.run(
                argv, stdin=subprocess.DEVNULL, timeout=opts["t"] / 1000 or None
            ).returncode
        except (OSError, subprocess.TimeoutExpired):
            code = 1
        if code == 0:
            os.write(fd, b"\n")
            return 0
        tries += 1
        if opts["n"] and tries >= opts["n"]:
            return 1
        if opts["T"] and (time.monotonic() - started) * 1000 >= opts["T"]:
            return 99
        time.sleep(opts["w"] / 1000)


def main(args: list[str]) -> int:
    try:
        opts, prog = parse(args)
    except ValueError as exc:
        return fail(f"usage: bad option {exc}")
    if not prog:
        return fail(
            "usage: s6-notifyoncheck [-d] [-3 fd] [-s initialsleep] [-T globaltimeout] "
            "[-t localtimeout] [-w waitingtime] [-n tries] [-c checkprog] prog..."
        )
    fd = opts["3"]
    if fd is None:
        try:
            with open("notification-fd") as f:
                fd = int(f.read().strip())
        except (OSError, ValueError):
            return fail(
                "unable to read ./notification-fd: not in a service folder that "
                "declares readiness notification"
            )
    try:
        os.fstat(fd)
    except OSError:
        return fail(f"notification fd {fd} is not open")
    if not opts["c"] and not os.access("data/check", os.X_OK):
        return fail("./data/check is missing or not executable (or give -c checkprog)", 111)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if opts["d"] and os.fork() != 0:
                os._exit(0)
            code = check_loop(opts, fd)
        finally:
            os._exit(code)
    if opts["d"]:
        os.waitpid(pid, 0)
    os.close(fd)
    try:
        os.execvp(prog[0], prog)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        return fail(f"unable to exec {prog[0]}: {exc.strerror}", code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
