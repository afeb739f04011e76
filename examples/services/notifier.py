"""Example service: tells the init it is ready with sd_notify, like dockerd does.

    python3 notifier.py [--delay 0.3] [--go-file PATH] [--record FILE] [--name NAME]

Sends READY=1 (and a STATUS=) as one datagram to the unix socket named by
$NOTIFY_SOCKET (a plain socket, no library), after --delay seconds and, when
--go-file is given, only once that file exists. Standard library only: `python3 -I`.
"""

import argparse
import os
import socket
import sys
import time


def record(path: str | None, name: str, event: str) -> None:
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, f"{time.time():.6f} {name} {event}\n".encode())
        os.close(fd)


def sd_notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--delay", type=float, default=0.3)
    p.add_argument("--go-file")
    p.add_argument("--record")
    p.add_argument("--name", default="notifier")
    args = p.parse_args()
    record(args.record, args.name, "start")
    time.sleep(args.delay)
    while args.go_file and not os.path.exists(args.go_file):
        time.sleep(0.02)
    sd_notify("READY=1\nSTATUS=serving")
    record(args.record, args.name, "notified")
    print(f"{args.name}: sent READY=1", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
