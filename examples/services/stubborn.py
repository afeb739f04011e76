"""Example service: ignores SIGTERM, so only the KILL after its stop_timeout ends it.

    python3 stubborn.py [--record FILE] [--name NAME] [--ready-file PATH]

Every SIGTERM it receives is appended to --record as "EPOCH NAME term-ignored".
--ready-file is created once SIGTERM is ignored (for a `command` ready probe:
a TERM sent before that would still end it).
Standard library only: run it with `python3 -I`.
"""

import argparse
import os
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--record")
    p.add_argument("--name", default="stubborn")
    p.add_argument("--ready-file")
    args = p.parse_args()

    def on_term(_sig: int, _frame: object) -> None:
        print(f"{args.name}: got SIGTERM; ignoring it", flush=True)
        if args.record:
            fd = os.open(args.record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(fd, f"{time.time():.6f} {args.name} term-ignored\n".encode())
            os.close(fd)

    signal.signal(signal.SIGTERM, on_term)
    if args.ready_file:
        open(args.ready_file, "w").close()
    print(f"{args.name}: running; SIGTERM will not stop me", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
