"""Example service: floods its output with --lines numbered lines, then idles.

    python3 flooder.py --lines 200000 [--done FILE] [--width N] [--start-stamp FILE]

Line i reads "flood 000042" (--width pads it with x's; fixed width, so the byte
count is known); when all are written, --done is created holding the count. It
then sleeps, so restart = "always" never floods twice. --start-stamp gets the wall-clock time in
ns just before the first line (bench/services.py times the flood from there).
Standard library only: `python3 -I`.
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
    p.add_argument("--width", type=int, default=12)
    p.add_argument("--start-stamp")
    args = p.parse_args()
    if args.start_stamp:
        with open(args.start_stamp, "w") as f:
            f.write(f"{time.time_ns()}\n")
    out = sys.stdout.buffer
    pad = " " + "x" * (args.width - 13) if args.width > 13 else ""
    for start in range(0, args.lines, BATCH):
        stop = min(start + BATCH, args.lines)
        out.write("".join(f"flood {i:06d}{pad}\n" for i in range(start, stop)).encode())
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
