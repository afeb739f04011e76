"""Example service: a server that becomes ready after a delay (tcp, unix or http).

    python3 server.py --kind tcp --listen 127.0.0.1:8080 [--delay 0.5] [--record FILE]
                      [--name NAME] [--hang-file PATH] [--hold-file PATH] [--term-delay S]

Listens only after --delay seconds, and not while --hold-file exists, so a
readiness probe has something to wait for, for as long as a test needs. Each
event (start, listening, term, exit, hung) is appended to --record as
"EPOCH NAME EVENT", one write per line, so several services can share a file.
With --kind http it answers every request "200 OK" (a tiny HTTP server of ours,
for http probes). When --hang-file appears, the server removes it and stops
answering (it keeps running and keeps its socket open): a hung daemon for
health checks to find. SIGTERM ends it after --term-delay seconds.
Standard library only: run it with `python3 -I`.
"""

import argparse
import os
import selectors
import signal
import socket
import sys
import time


def record(path: str | None, name: str, event: str) -> None:
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{time.time():.6f} {name} {event}\n".encode())
        finally:
            os.close(fd)


def listen(kind: str, address: str) -> socket.socket:
    if kind == "unix":
        if os.path.exists(address):
            os.unlink(address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address)
    else:
        host, _, port = address.rpartition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or "127.0.0.1", int(port)))
    sock.listen(64)
    return sock


def answer(conn: socket.socket, kind: str) -> None:
    conn.settimeout(1.0)
    try:
        if kind == "http":
            conn.recv(4096)  # the request; its content does not matter here
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        else:
            conn.sendall(b"ok\n")
    except OSError:
        pass
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=("tcp", "unix", "http"), default="tcp")
    p.add_argument("--listen", required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--record")
    p.add_argument("--name", default="server")
    p.add_argument("--hang-file")
    p.add_argument("--hold-file")
    p.add_argument("--term-delay", type=float, default=0.0)
    args = p.parse_args()

    def on_term(_sig: int, _frame: object) -> None:
        record(args.record, args.name, "term")
        time.sleep(args.term_delay)
        record(args.record, args.name, "exit")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    record(args.record, args.name, "start")
    print(f"{args.name}: starting, listening in {args.delay:g}s", flush=True)
    time.sleep(args.delay)
    while args.hold_file and os.path.exists(args.hold_file):
        time.sleep(0.02)
    sock = listen(args.kind, args.listen)
    record(args.record, args.name, "listening")
    print(f"{args.name}: listening on {args.kind} {args.listen}", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    while True:
        if args.hang_file and os.path.exists(args.hang_file):
            os.unlink(args.hang_file)
            record(args.record, args.name, "hung")
            print(f"{args.name}: no longer answering", flush=True)
            while True:
                time.sleep(3600)
        if selector.select(timeout=0.05):
            conn, _ = sock.accept()
            answer(conn, args.kind)


if __name__ == "__main__":
    sys.exit(main())
