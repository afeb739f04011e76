"""Example service: runs for --after seconds, then exits with --code (a crashing daemon).

    python3 crasher.py [--after 0.1] [--code 3] [--record FILE] [--name NAME]

Each start is appended to --record as "EPOCH NAME start", so a test can count
how many times the init started it. Standard library only: run it with `python3 -I`.
"""

import argparse
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--after", type=float, default=0.1)
    p.add_argument("--code", type=int, default=3)
    p.add_argument("--record")
    p.add_argument("--name", default="crasher")
    args = p.parse_args()
    if args.record:
        fd = os.open(args.record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, f"{time.time():.6f} {args.name} start\n".encode())
        os.close(fd)
    print(f"{args.name}: up; crashing with code {args.code} in {args.after:g}s", flush=True)
    time.sleep(args.after)
    print(f"{args.name}: crashing now", flush=True)
    return args.code


if __name__ == "__main__":
    sys.exit(main())
