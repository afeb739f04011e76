"""Run a Python snippet over this checkout in new namespaces (unshare), and read its answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_unshared(flags: Sequence[str], script: str, *args: str) -> dict[str, Any]:
    """`unshare FLAGS python -c SCRIPT ARGS` with this checkout importable; the JSON object
    its last line of output holds (the snippet prints one). Fails the test on a non-zero exit."""
    proc = subprocess.run(
        ["unshare", *flags, sys.executable, "-c", script, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer
