"""Example service: floods its output with --lines numbered lines, then idles.

    python3 flooder.py --lines 200000 [--done FILE]

Line i reads "flood 000042 xxxx..." (fixed width, so the byte count is known);
when all are written, --done is created holding the count. It then sleeps, so
restart = "always" never floods twice. Standard library only: `python3 -I`.
"""

import argparse
import os
import sys
import time

BATCH = 1000


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lines", type=int, required=True)
    p.add_argument("--done")
    args = p.parse_args()
    out = sys.stdout.buffer
    pad = "x" * 40
    for start in range(0, args.lines, BATCH):
        stop = min(start + BATCH, args.lines)
        out.write("".join(f"flood {i:06d} {pad}\n" for i in range(start, stop)).encode())
    out.flush()
    if args.done:
        tmp = args.done + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{args.lines}\n")
        os.replace(tmp, args.done)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
