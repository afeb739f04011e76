"""Every benchmark figure in one run, side by side with its anchors, as one table.

    .venv/bin/python bench/run.py [--quick] [--idle 60] [--only PART,...] [--out PREFIX]

Runs as root (PID namespaces, network namespaces, Docker). Each part is one of
the bench scripts, run as `python -m bench.MODULE ... --json FILE` from the
repository, one after the other (two cores: nothing in parallel), its own
output going to stderr as progress. The scripts only measure and write JSON;
this file alone turns it into rows (FIGURES says where each row's numbers are):

  pid1       bench.pid1          helix-init, tini, dumb-init as PID 1: RSS, exec -> CMD
  pid1_rss   bench.pid1_rss      s6-svscan, supervisord (no programs) as PID 1: RSS
  boot       bench.boot          `helix-init -- true`, idle RSS (vs the bare interpreter),
                                 TERM 30 ms after exec (vs tini), the service wrapper's
                                 CPU per start (vs fork+exec), a process-tier breakdown
  services   bench.services      5 services: stack RSS/PSS, boot, READY, restart after
                                 kill -9, idle CPU, log throughput (vs supervisord, s6)
  backoff    bench.backoff       delays under a crash loop (vs supervisord, s6)
  shutdown   bench.shutdown      TERM -> PID 1 exit with 5 services (vs supervisord)
  reaping    bench.reaping       10,000 orphans of the CMD reaped (vs tini, dumb-init)
  dns        bench.dns_relay     relay latency and rate vs direct (3 runs)
  bridge     bench.bridge_guard  bridge repair, netlink events vs polling
  environ    bench.environ       a service's environment, 2,400 vs 24,000 entries (linear?)
  s6         bench.s6_tree       s6-overlay v3 tree boot, longrun restart (vs Debian's s6)
  nest       bench.nest          nested Docker: level-1 boot, nest boot, docker stop
                                 (vs the plain shell entrypoint; uses DOCKER_HOST, or
                                 the engine scripts/nest.py finds or starts)

Prints one Markdown table (figure | helix-init | anchor(s) | ratio to anchor;
median (min–max) over the repeats of each part) and writes it to PREFIX.md,
with every sample of every part in PREFIX.json (default bench/results/all;
with --quick, bench/results/quick). About 6 minutes in full on a 2-core
machine (the nested Docker figures are 2-3 of them); --quick is a smoke run
for CI (few repeats, 5 s idle window, no nested Docker) of about a minute.
`--only pid1` formats one part. Not part of the test command. A part that
fails is shown as failed, the others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PYTHON = sys.executable  # the venv's python: the scripts find helix-init beside it


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] run.py: {text}", file=sys.stderr, flush=True)


# -- the parts -----------------------------------------------------------------------------
@dataclass
class Part:
    name: str
    module: str  # bench.MODULE, run with `python -m` from the repository
    full: list[str]
    quick: list[str] | None  # None: skipped by --quick
    repeat: int = 1  # whole-script runs (dns: each run gives one median and one rate)
    quick_repeat: int = 1
    limit: float = 300.0  # seconds before the part is interrupted


def parts(idle: float) -> list[Part]:
    return [
        Part("pid1", "pid1", ["--runs", "10"], ["--runs", "3"]),
        Part("pid1_rss", "pid1_rss", ["--runs", "5"], ["--runs", "2"]),
        Part("boot", "boot", ["--runs", "10"], ["--runs", "3"]),
        Part(
            "services",
            "services",
            ["--runs", "8", "--idle", f"{idle:g}", "--lines", "500000", "--log-runs", "3"],
            ["--runs", "3", "--idle", f"{idle:g}", "--lines", "100000", "--log-runs", "1"],
            limit=600 + idle,
        ),
        Part("backoff", "backoff", ["--crashes", "8"], ["--crashes", "4"]),
        Part("shutdown", "shutdown", ["--runs", "5"], ["--runs", "2"]),
        Part(
            "reaping",
            "reaping",
            ["--orphans", "10000", "--runs", "3"],
            ["--orphans", "2000", "--runs", "1"],
        ),
        Part("dns", "dns_relay", ["--queries", "10000"], ["--queries", "2000"], repeat=3),
        Part("bridge", "bridge_guard", ["--deletions", "30"], ["--deletions", "10"]),
        Part("environ", "environ", ["--repeats", "5"], ["--repeats", "2"]),
        Part(
            "s6", "s6_tree", ["--runs", "5", "--restarts", "5"], ["--runs", "1", "--restarts", "2"]
        ),
        Part("nest", "nest", ["--runs", "3"], None, limit=900),
    ]


def run_part(part: Part, quick: bool, tmp: Path) -> list[dict[str, Any]] | dict[str, str]:
    """The JSON of each run of the part, or {"error": why}."""
    args = part.quick if quick else part.full
    assert args is not None
    runs = []
    for i in range(part.quick_repeat if quick else part.repeat):
        out = tmp / f"{part.name}-{i}.json"
        argv = [PYTHON, "-m", f"bench.{part.module}", *args, "--json", str(out)]
        progress(f"{part.name}: {' '.join(argv[1:])}")
        proc = subprocess.Popen(argv, stdout=sys.stderr, start_new_session=True, cwd=REPO)
        try:
            code = proc.wait(part.limit)
        except subprocess.TimeoutExpired:
            # SIGINT, not KILL: the scripts' finally blocks take their namespaces down.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return {"error": f"interrupted after {part.limit:g}s"}
        if code != 0 or not out.exists():
            return {"error": f"exit {code}" + ("" if out.exists() else ", no JSON written")}
        runs.append(json.loads(out.read_text()))
    return runs


# -- formatting ----------------------------------------------------------------------------
Stats = dict[str, Any]


def agg(values: list[float]) -> Stats:
    ordered = sorted(values)
    n = len(ordered)
    median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    return {"median": median, "min": ordered[0], "max": ordered[-1], "samples": values}


def fmt(value: float, spec: str) -> str:
    return format(value, spec)


def cell(s: Stats | None, spec: str, unit: str = "") -> str:
    if s is None:
        return "—"
    unit = f" {unit}" if unit else ""
    if len(s.get("samples", [0, 0])) == 1 or s["min"] == s["max"]:
        return f"{fmt(s['median'], spec)}{unit}"
    return f"{fmt(s['median'], spec)}{unit} ({fmt(s['min'], spec)}–{fmt(s['max'], spec)})"


def times(r: float) -> str:
    if r >= 10:
        return f"{r:.0f}×"
    if r >= 0.1:
        return f"{r:.2f}×"
    return f"{r:.3f}×"


def ratio(a: Stats | None, b: Stats | None) -> str:
    if a is None or b is None or not b["median"]:
        return "—"
    return times(a["median"] / b["median"])


@dataclass
class Row:
    figure: str
    helix: str
    anchors: list[tuple[str, str]]  # (anchor name, its cell)
    ratios: list[tuple[str, str]]  # (anchor name, helix-init ÷ anchor)
    note: str = ""

    def markdown(self) -> str:
        anchors = "; ".join(f"{n}: {c}" for n, c in self.anchors) or "—"
        ratios = "; ".join(f"{r} {n}" for n, r in self.ratios) or "—"
        figure = f"{self.figure} ({self.note})" if self.note else self.figure
        return f"| {figure} | {self.helix} | {anchors} | {ratios} |"


def side_by_side(
    figure: str,
    helix: Stats | None,
    anchors: dict[str, Stats | None],
    spec: str,
    unit: str = "",
    note: str = "",
) -> Row:
    present = {n: s for n, s in anchors.items() if s is not None}
    return Row(
        figure,
        cell(helix, spec, unit),
        [(n, cell(s, spec, unit)) for n, s in present.items()],
        [(n, ratio(helix, s)) for n, s in present.items()],
        note,
    )


def failed(figure: str, why: str) -> Row:
    return Row(figure, f"failed: {why}", [], [])


# -- the figures: where each row's numbers are in the parts' JSON --------------------------
Runs = dict[str, list[dict[str, Any]]]  # part name -> the JSON of each of its runs


def value(runs: Runs, where: str) -> Stats | None:
    """`PART:a.b.c` in the JSON of every run of PART: Stats as written, or a list of samples
    (one run), or one number per run (aggregated over the runs); None where it is missing."""
    part, _, path = where.partition(":")
    numbers: list[float] = []
    for run in runs.get(part, []):
        node: Any = run
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and "median" in node:
            return node
        if isinstance(node, list):
            return agg(node)
        if isinstance(node, (int, float)):
            numbers.append(node)
    return agg(numbers) if numbers else None


@dataclass(frozen=True)
class Figure:
    """One row: the helix-init value, its anchors (label, where), and how to print them."""

    title: Callable[[Runs], str]
    helix: str
    anchors: tuple[tuple[str, str], ...]
    spec: str
    unit: str
    finish: Callable[[Row, Runs], None] | None = None  # adds what a plain row cannot say

    @property
    def part(self) -> str:
        return self.helix.partition(":")[0]

    def row(self, runs: Runs) -> Row:
        anchors = {label: value(runs, where) for label, where in self.anchors}
        row = side_by_side(self.title(runs), value(runs, self.helix), anchors, self.spec, self.unit)
        if self.finish is not None:
            self.finish(row, runs)
        return row


def fixed(text: str) -> Callable[[Runs], str]:
    return lambda runs: text


def first(runs: Runs, part: str) -> dict[str, Any]:
    return runs[part][0]


def stacks(
    part: str, key: str, *names: str, label: dict[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """(label, where) for each stack NAME at key.format(NAME) in PART's JSON."""
    return tuple(((label or {}).get(n, n), f"{part}:{key.format(n)}") for n in names)


def _all_running(row: Row, runs: Runs) -> None:
    running = value(runs, "services:results.boot_running_ms.helix-init")
    row.helix += f"; all 5 running: {cell(running, '.0f', 'ms')}"


def _exit_codes(row: Row, runs: Runs) -> None:
    res = first(runs, "shutdown")["results"]
    row.note = "exit codes " + ", ".join(f"{k} {v['exit_codes']}" for k, v in res.items())


def _how_stopped(row: Row, runs: Runs) -> None:
    nest = first(runs, "nest")["nest"]

    def how(d: dict[str, Any]) -> str:
        return f"exit {d['exit_code']}, dockerd got {'TERM' if d['dockerd_got_term'] else 'KILL'}"

    row.helix += f", {how(nest['helix'])}"
    row.anchors = [(n, f"{c}, {how(nest['baseline'])}") for n, c in row.anchors]


def _bridge_title(runs: Runs) -> str:
    data = first(runs, "bridge")
    kernel = agg(data["event"]["kernel_delete_ms"] + data["poll"]["kernel_delete_ms"])
    return (
        f"bridge guard (netlink events): bridge deleted → traffic across it again, "
        f"{data['deletions']} deletions; {kernel['median']:.0f} ms of it is the kernel's "
        "own deletion"
    )


def _dns_runs(runs: Runs) -> str:
    return f"{len(runs['dns'])} run(s) of {first(runs, 'dns')['queries']:,} queries"


def _early_term(row: Row, runs: Runs) -> None:
    data = first(runs, "boot")
    lost, found, n = data["early_term_lost"], data["early_term_found"], data["settings"]["runs"]
    image = data["early_term_found_image"]
    row.helix += (
        f"; lost {lost['helix-init']} of {n} (TERM came: {found['before']} before the entry "
        f"point's first statement, {found['held']} while held, {found['handled']} once handled;"
        f" through the images' launcher: lost {lost['image launcher']}, {image['before']} "
        f"before, {image['held']} held, {image['handled']} handled)"
    )
    row.note = f"a lost TERM counts as {data['settings']['lost_after_s']:g} s"


def _breakdown(row: Row, runs: Runs) -> None:
    _timeline(row, first(runs, "boot")["breakdown"])


def _l1_breakdown(row: Row, runs: Runs) -> None:
    _timeline(row, first(runs, "nest")["l1_breakdown"])


def _timeline(row: Row, timeline: dict[str, Any]) -> None:
    stages = ", ".join(
        f"{s['stage']} {s.get('seconds', s.get('seconds_so_far', 0.0)):.2f}s"
        for s in timeline.get("stages", [])
    )
    steps = ", ".join(f"{s['step']} {s['seconds']:.2f}s" for s in timeline.get("steps", []))
    row.helix = f"{stages}; steps: {steps}"
    if engine := timeline.get("engine"):
        row.helix += f"; supervisord spawn → first answer {engine['seconds']:.2f}s"


def figures(idle: float) -> list[Figure]:
    svc = ("supervisord", "s6")
    direct = ("program → file directly", "services:results.log_direct_lines_per_s.helix-init")
    return [
        Figure(
            fixed("PID-1 RSS after boot"),
            "pid1:results.helix-init.rss_mib",
            stacks("pid1", "results.{}.rss_mib", "tini", "dumb-init")
            + stacks(
                "pid1_rss",
                "results.{}.rss_mib",
                "s6-svscan",
                "supervisord",
                label={"supervisord": "supervisord (no programs)"},
            ),
            ".1f",
            "MiB",
        ),
        Figure(
            fixed("boot → CMD running (exec of the init → CMD's first command)"),
            "pid1:results.helix-init.start_ms",
            stacks("pid1", "results.{}.start_ms", "tini", "dumb-init"),
            ".1f",
            "ms",
        ),
        Figure(
            fixed(
                "`helix-init -- true`, exec → exit (interpreter: the same python spawning `true`)"
            ),
            "boot:results.true_ms.helix-init",
            stacks("boot", "results.true_ms.{}", "image launcher", "interpreter", "tini"),
            ".0f",
            "ms",
        ),
        Figure(
            fixed("PID-1 RSS, booted and idle, against the bare interpreter"),
            "boot:results.rss_mib.helix-init",
            stacks(
                "boot",
                "results.rss_mib.{}",
                "interpreter",
                label={"interpreter": "the same interpreter idle"},
            ),
            ".1f",
            "MiB",
        ),
        Figure(
            fixed("TERM 30 ms after exec → PID 1 exits (`helix-init -- sleep 20`)"),
            "boot:results.early_term_s.helix-init",
            stacks("boot", "results.early_term_s.{}", "image launcher", "tini"),
            ".3f",
            "s",
            _early_term,
        ),
        Figure(
            fixed("CPU per service start: the wrapper, exec → the service's exec"),
            "boot:results.wrapper_cpu_ms.launch script",
            stacks(
                "boot",
                "results.wrapper_cpu_ms.{}",
                "svcexec",
                "fork+exec",
                label={"fork+exec": "fork+exec (s6-supervise)", "svcexec": "svcexec.py (before)"},
            ),
            ".1f",
            "ms",
        ),
        Figure(
            fixed("supervisord's own start, spawn → first RPC answer (no programs)"),
            "boot:results.engine_start_ms.helix-init",
            stacks(
                "boot",
                "results.engine_start_ms.{}",
                "supervisord",
                label={"supervisord": "plain `python -m supervisor.supervisord`"},
            ),
            ".0f",
            "ms",
        ),
        Figure(
            fixed("supervisord's RSS once it answers (no programs)"),
            "boot:results.engine_rss_mib.helix-init",
            stacks(
                "boot",
                "results.engine_rss_mib.{}",
                "supervisord",
                label={"supervisord": "plain `python -m supervisor.supervisord`"},
            ),
            ".1f",
            "MiB",
        ),
        Figure(
            fixed("process-tier boot breakdown (one run; timeline of `status --json`)"),
            "boot:results.true_ms.helix-init",
            (),
            ".0f",
            "ms",
            _breakdown,
        ),
        Figure(
            fixed("whole-stack RSS, 5 idle services (PID 1 + supervisord + helpers; one sample)"),
            "services:results.rss_mib.helix-init",
            stacks("services", "results.rss_mib.{}", *svc),
            ".1f",
            "MiB",
        ),
        Figure(
            fixed("whole-stack PSS, same processes (shared pages split)"),
            "services:results.pss_mib.helix-init",
            stacks("services", "results.pss_mib.{}", *svc),
            ".1f",
            "MiB",
        ),
        Figure(
            fixed("boot → READY, 5 services (anchors: → all 5 running, autostart)"),
            "services:results.boot_ready_ms.helix-init",
            stacks("services", "results.boot_running_ms.{}", *svc),
            ".0f",
            "ms",
            _all_running,
        ),
        Figure(
            fixed("first restart after kill -9 → replacement running"),
            "services:results.restart_ms.helix-init",
            stacks("services", "results.restart_ms.{}", *svc),
            ".0f",
            "ms",
        ),
        Figure(
            fixed(f"idle CPU, 5 idle services, {idle:g} s in 5 slices"),
            "services:results.idle_cpu_percent.helix-init",
            stacks("services", "results.idle_cpu_percent.{}", *svc),
            ".3f",
            "% of a core",
        ),
        Figure(
            fixed("log flood → the service's log file"),
            "services:results.log_file_lines_per_s.helix-init",
            (direct, ("supervisord", "services:results.log_file_lines_per_s.supervisord")),
            ",.0f",
            "lines/s",
        ),
        Figure(
            fixed("log flood → stdout mirror (`[flooder] …`)"),
            "services:results.log_stdout_lines_per_s.helix-init",
            (direct,),
            ",.0f",
            "lines/s",
        ),
        Figure(
            fixed("shutdown, 5 services: TERM to PID 1 → PID 1 exited"),
            "shutdown:results.helix-init.ms",
            stacks("shutdown", "results.{}.ms", "supervisord"),
            ".0f",
            "ms",
            _exit_codes,
        ),
        Figure(
            lambda runs: (
                f"zombie reaping: {first(runs, 'reaping')['settings']['orphans']:,} orphans of "
                "the CMD exit at once → all reaped"
            ),
            "reaping:results.helix-init.reaped_ms",
            stacks("reaping", "results.{}.reaped_ms", "tini", "dumb-init"),
            ".0f",
            "ms",
        ),
        Figure(
            lambda runs: f"DNS via the relay, median latency ({_dns_runs(runs)})",
            "dns:relay.median_us",
            (("direct", "dns:direct.median_us"),),
            ".0f",
            "µs",
        ),
        Figure(
            fixed("DNS via the relay, p99 latency"),
            "dns:relay.p99_us",
            (("direct", "dns:direct.p99_us"),),
            ".0f",
            "µs",
        ),
        Figure(
            lambda runs: f"DNS via the relay, rate ({first(runs, 'dns')['concurrency']} clients)",
            "dns:relay.qps",
            (("direct", "dns:direct.qps"),),
            ",.0f",
            "queries/s",
        ),
        Figure(
            _bridge_title,
            "bridge:event.repair_ms",
            (("polling every 0.2 s", "bridge:poll.repair_ms"),),
            ".0f",
            "ms",
        ),
        *(
            Figure(
                fixed(f"a service's environment of {n:,} `${{VAR}}` entries built"),
                f"environ:{n}.helix_s",
                (("the same by hand (one dict, one expand each)", f"environ:{n}.anchor_s"),),
                ".3f",
                "s",
            )
            for n in (2_400, 24_000)
        ),
        *(
            Figure(
                fixed(title),
                f"s6:helix-init.{key}",
                (("Debian's s6 (sh loop + s6-svscan)", f"s6:s6.{key}"),),
                spec,
                unit,
            )
            for key, title, spec, unit in (
                (
                    "boot_ms",
                    "s6-overlay v3 tree, 15 oneshots + 3 longruns: exec → CMD",
                    ".0f",
                    "ms",
                ),
                (
                    "restart_ms",
                    "s6 longrun: kill -9 → replacement (helix-init: 0.5 s backoff)",
                    ".0f",
                    "ms",
                ),
                ("restart_cpu_ms", "s6 longrun: the stack's CPU per restart", ".1f", "ms CPU"),
            )
        ),
        Figure(
            fixed("nested: level-1 `docker run` → Engine API answers"),
            "nest:l1_boot_to_ready_s.helix",
            (("shell entrypoint (`dockerd &`)", "nest:l1_boot_to_ready_s.baseline"),),
            ".2f",
            "s",
        ),
        Figure(
            fixed("nested: level-1 boot breakdown (`status --json` once the Engine API answers)"),
            "nest:l1_boot_to_ready_s.helix",
            (),
            ".2f",
            "s",
            _l1_breakdown,
        ),
        Figure(
            fixed(
                "nested: `docker run` of level 1 → busybox line at level 5 (image loads excluded)"
            ),
            "nest:nest.helix.boot_s",
            (("shell entrypoint", "nest:nest.baseline.boot_s"),),
            ".1f",
            "s",
        ),
        Figure(
            fixed("nested: `docker stop -t 30` of level 1 (nest running)"),
            "nest:nest.helix.stop_s",
            (("shell entrypoint", "nest:nest.baseline.stop_s"),),
            ".1f",
            "s",
            _how_stopped,
        ),
    ]


def seq(values: list[float] | None) -> str:
    return "—" if not values else ", ".join(f"{v:.2f}" for v in values)


def backoff_row(runs: Runs) -> Row:
    """The one row that is sequences, not a value against values."""
    data = first(runs, "backoff")
    res, crashes = data["results"], data["settings"]["crashes"]
    h = res["helix-init"]
    helix_total = sum(h["observed_gaps_s"][:crashes])

    def versus(gaps: list[float], gave_up: bool) -> str:
        if len(gaps) < crashes:
            return f"never: {'FATAL' if gave_up else 'stopped'} after {len(gaps)} restarts"
        return f"{times(helix_total / sum(gaps[:crashes]))} the time to {crashes} restarts"

    anchors, ratios = [], []
    sd = res.get("supervisord")
    if sd:
        anchors.append(
            (
                "supervisord",
                f"{seq(sd['observed_gaps_s'])} s, then FATAL, no more starts (it took "
                f"{sd['entered_running']} quick crashes for RUNNING and began 1, 2, 3 again)",
            )
        )
        ratios.append(("supervisord", versus(sd["observed_gaps_s"], True)))
    s6 = res.get("s6")
    if s6:
        anchors.append(("s6-supervise", f"{seq(s6['observed_gaps_s'])} s, for ever"))
        ratios.append(("s6", versus(s6["observed_gaps_s"], False)))
    return Row(
        f"backoff under a crash loop, {crashes} consecutive crashes "
        f"(initial {data['settings']['initial']:g} s, max {data['settings']['max']:g} s, "
        "jitter ±20 %; restarts for ever by default)",
        f"chose {seq(h['chosen_s'])} s; observed start→start {seq(h['observed_gaps_s'])} s",
        anchors,
        ratios,
    )


def table_rows(raw: dict[str, Any], idle: float) -> tuple[list[Row], int]:
    """The rows in the order of the parts, a failed row per failed part; and the failures."""
    runs: Runs = {name: data for name, data in raw.items() if isinstance(data, list)}
    makers: dict[str, list[Callable[[Runs], Row]]] = {part.name: [] for part in parts(idle)}
    for figure in figures(idle):
        makers[figure.part].append(figure.row)
    makers["backoff"].append(backoff_row)
    rows: list[Row] = []
    failures = 0
    for name, make in makers.items():
        data = raw.get(name)
        if data is None or (isinstance(data, dict) and "skipped" in data):
            continue
        if isinstance(data, dict):
            failures += 1
            rows.append(failed(name, data["error"]))
            continue
        try:
            rows += [one(runs) for one in make]
        except (KeyError, TypeError, IndexError, ZeroDivisionError) as exc:
            failures += 1
            rows.append(failed(name, f"unexpected JSON ({exc!r})"))
    return rows, failures


# -- main ---------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_path": os.path.realpath(sys.executable),
        "loadavg_1min_at_start": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: few runs, no nest")
    parser.add_argument("--idle", type=float, help="idle CPU window, s (60; --quick: 5)")
    parser.add_argument("--only", help="comma-separated parts to run (default: all)")
    parser.add_argument("--out", type=Path, help="PREFIX of PREFIX.json and PREFIX.md")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/run.py needs root (PID and network namespaces)", file=sys.stderr)
        return 2
    idle = opts.idle if opts.idle is not None else (5.0 if opts.quick else 60.0)
    out = opts.out or RESULTS / ("quick" if opts.quick else "all")
    chosen = [p for p in parts(idle) if not opts.only or p.name in opts.only.split(",")]
    info = machine()
    began = time.monotonic()
    raw: dict[str, Any] = {}
    took: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="helix-bench-run.") as tmp:
        for part in chosen:
            if opts.quick and part.quick is None:
                progress(f"{part.name}: skipped by --quick")
                raw[part.name] = {"skipped": "--quick"}
                continue
            t0 = time.monotonic()
            raw[part.name] = run_part(part, opts.quick, Path(tmp))
            took[part.name] = time.monotonic() - t0
            progress(f"{part.name}: {took[part.name]:.0f} s")
    info["loadavg_1min_at_end"] = os.getloadavg()[0]
    info["wall_s"] = time.monotonic() - began

    rows, failures = table_rows(raw, idle)

    header = (
        f"{info['date_utc']}; {info['cpus']} CPUs, {info['memory_gib']} GiB, kernel "
        f"{info['kernel']}, Python {info['python']}; load average (1 min) "
        f"{info['loadavg_1min_at_start']:.2f} at start, {info['loadavg_1min_at_end']:.2f} at "
        f"end; {'--quick, ' if opts.quick else ''}{info['wall_s'] / 60:.1f} min. "
        "Cells: median (min–max) over the repeats; ratio = helix-init ÷ anchor "
        "(for rates, above 1 is better; for times and sizes, below 1)."
    )
    table = [
        header,
        "",
        "| figure | helix-init | anchor(s) | ratio to anchor |",
        "|---|---|---|---|",
        *(row.markdown() for row in rows),
    ]
    text = "\n".join(table) + "\n"
    print(text, end="")
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.md").write_text(text)
    Path(f"{out}.json").write_text(
        json.dumps(
            {
                "machine": info,
                "quick": opts.quick,
                "idle_seconds": idle,
                "part_seconds": took,
                "rows": [row.__dict__ for row in rows],
                "parts": raw,
            },
            indent=2,
        )
        + "\n"
    )
    progress(f"wrote {out}.md and {out}.json in {info['wall_s'] / 60:.1f} min")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
