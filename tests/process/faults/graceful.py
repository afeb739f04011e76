"""A dockerd stand-in for the fault tests: on SIGTERM it says "got TERM", flushes, exits 0.

    python3 graceful.py --name MARKER --record FILE [--socket PATH] [--grace SECONDS]

Appends "EPOCH PID NAME EVENT" lines to --record (start, ready, term, exit), one
write each, so several copies can share the file and a test can tell a
graceful stop (term, then exit) from a KILL (term and no exit). With --socket
it listens there once started (a `unix` readiness probe), removing what a
killed predecessor left. SIGTERM ends it --grace seconds later, exit code 0.
Standard library only: run it with `python3 -I`.
"""

import argparse
import os
import signal
import socket
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--record", required=True)
    p.add_argument("--socket")
    p.add_argument("--grace", type=float, default=1.0)
    args = p.parse_args()

    def record(event: str) -> None:
        fd = os.open(args.record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{time.time():.6f} {os.getpid()} {args.name} {event}\n".encode())
        finally:
            os.close(fd)

    def say(text: str) -> None:
        # Like dockerd's logger: a write error is not fatal. When supervisord is
        # KILLed, our stdout pipe has no reader any more; services inherit
        # SIGPIPE ignored from it, so a write fails with EPIPE (Go's runtime
        # then does not exit either) and the flush must go on regardless.
        try:
            os.write(1, f"{args.name}: {text}\n".encode())
        except OSError:
            pass

    termed: list[float] = []

    def on_term(_sig: int, _frame: object) -> None:
        if not termed:
            termed.append(time.monotonic())
            record("term")
            say(f"got TERM; flushing for {args.grace:g}s")

    signal.signal(signal.SIGTERM, on_term)
    record("start")
    listener = None
    if args.socket:
        if os.path.lexists(args.socket):
            os.unlink(args.socket)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args.socket)
        listener.listen(16)
        listener.settimeout(0.05)
    record("ready")
    while not termed or time.monotonic() < termed[0] + args.grace:
        if listener is None:
            time.sleep(0.05)
            continue
        try:
            conn, _ = listener.accept()
            conn.close()
        except OSError:
            pass
    record("exit")
    say("flushed; exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
