"""Example service: proves it got its secrets without ever showing them.

    python3 secret_hasher.py --out FILE VAR [VAR...]

Writes "VAR sha256-of-its-value" per variable to --out (0600), then idles.
It prints only the variable names and the hashes' length, never a value.
Standard library only: run it with `python3 -I`.
"""

import argparse
import hashlib
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("names", nargs="+")
    args = p.parse_args()
    lines = []
    for name in args.names:
        value = os.environ.get(name)
        digest = hashlib.sha256(value.encode()).hexdigest() if value is not None else "missing"
        lines.append(f"{name} {digest}\n")
    tmp = args.out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(lines)
    os.replace(tmp, args.out)
    print(f"hashed {len(lines)} secret(s): {', '.join(args.names)}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
