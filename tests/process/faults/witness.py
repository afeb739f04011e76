"""The CMD of the fault tests: inside the init's PID namespace, watches for what must never be.

    FAULT_MARKERS="MARKER MARKER..." python3 witness.py OUT

The markers come in the environment: in argv, the witness (and the init,
whose argv holds the CMD's) would carry them too.

Scans /proc (the namespace's own) every few milliseconds and appends to OUT:
  "started"                       once it watches (the test's sign that stage 3 began)
  "TWO MARKER PID,PID..."         whenever more than one live process carries MARKER
  "ZOMBIE PID COMM SECONDS"       a zombie nobody reaped within ZOMBIE_MAX seconds
  "looked N"                      on SIGTERM, how many scans it made; then exit 0
A test fails on any TWO or ZOMBIE line. Standard library only: `python3 -I`.
"""

import os
import signal
import sys
import time

ZOMBIE_MAX = 2.0


def scan(markers: list[bytes]) -> tuple[dict[bytes, list[int]], dict[int, bytes]]:
    copies: dict[bytes, list[int]] = {m: [] for m in markers}
    zombies: dict[int, bytes] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        comm, _, rest = stat.rpartition(b")")
        if rest.split()[0] == b"Z":
            zombies[int(entry)] = comm.partition(b"(")[2]
            continue
        for marker in markers:
            if marker in argv:
                copies[marker].append(int(entry))
    return copies, zombies


def main() -> int:
    out_path, markers = sys.argv[1], [m.encode() for m in os.environ["FAULT_MARKERS"].split()]
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda sig, _frame: stop.append(sig))
    first_seen: dict[int, float] = {}
    reported: set[int] = set()
    looks = 0
    with open(out_path, "a", buffering=1) as out:
        out.write("started\n")
        while not stop:
            copies, zombies = scan(markers)
            looks += 1
            now = time.monotonic()
            for marker, pids in copies.items():
                if len(pids) > 1:
                    out.write(f"TWO {marker.decode()} {','.join(map(str, pids))}\n")
            for pid in list(first_seen):
                if pid not in zombies:
                    del first_seen[pid]
            for pid, comm in zombies.items():
                seen = first_seen.setdefault(pid, now)
                if now - seen > ZOMBIE_MAX and pid not in reported:
                    reported.add(pid)
                    out.write(f"ZOMBIE {pid} {comm.decode()} {now - seen:.1f}\n")
            time.sleep(0.002)
        out.write(f"looked {looks}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
