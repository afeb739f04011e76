"""Bench, not a test: building a service's environment, 2,400 vs 24,000 entries (linear?).

    .venv/bin/python -m bench.environ [--repeats 5] [--json FILE]

helix-init's service_env() over a service whose `environment` table has N
entries, each `${VAR}`-expanded, beside the anchor of the same work done by
hand (one dict, one expand per entry). Linear time shows as a ratio of about
10 between N = 24,000 and N = 2,400, and as a ratio near 1 to the anchor; the
quadratic builder it replaces took ~20 s at 24,000 (a ratio in the thousands).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench.common import write_json
from helix_init.contenv import Exports, expand
from helix_init.services.environ import service_env
from helix_init.services.spec import ServiceSpec

BASE = {f"C{i}": "container" for i in range(100)}


def table(n: int) -> dict[str, str]:
    return {f"V{i:05d}": f"v-${{C{i % 100}}}" for i in range(n)}


def helix(n: int) -> float:
    spec = ServiceSpec("svc", ("true",), "/s", environment=MappingProxyType(table(n)))
    started = time.perf_counter()
    service_env(spec, Exports(dict(BASE)), frozenset(), BASE)
    return time.perf_counter() - started


def anchor(n: int) -> float:
    entries = table(n)
    started = time.perf_counter()
    env = dict(BASE)
    for name, value in entries.items():
        env[name] = expand(value, env)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here (default: stdout)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for n in (2_400, 24_000):
        h = statistics.median(helix(n) for _ in range(args.repeats))
        a = statistics.median(anchor(n) for _ in range(args.repeats))
        results[str(n)] = {"helix_s": h, "anchor_s": a, "ratio_to_anchor": h / a}
    growth = results["24000"]["helix_s"] / results["2400"]["helix_s"]
    results["growth_2400_to_24000"] = growth
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
