"""The CMD of the signal burst test: counts the signals the init forwards to it.

    python3 counter.py OUT

Creates OUT.ready once its handlers are in place; on SIGTERM writes
{"SIGHUP": n, "SIGUSR1": n, "SIGUSR2": n, "SIGWINCH": n} to OUT and exits 0.
Standard library only: run it with `python3 -I`.
"""

import json
import signal
import sys
import time

COUNTED = ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH")


def main() -> int:
    out = sys.argv[1]
    counts = dict.fromkeys(COUNTED, 0)
    stop: list[int] = []

    def count(sig: int, _frame: object) -> None:
        counts[signal.Signals(sig).name] += 1

    for name in COUNTED:
        signal.signal(getattr(signal, name), count)
    signal.signal(signal.SIGTERM, lambda sig, _frame: stop.append(sig))
    open(out + ".ready", "w").close()
    while not stop:
        time.sleep(0.02)
    with open(out, "w") as f:
        json.dump(counts, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
