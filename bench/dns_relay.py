"""Bench, not a test: what the DNS relay adds, against the fake DNS server on loopback.

    .venv/bin/python -m bench.dns_relay [--queries 10000] [--concurrency 64] [--json FILE]

Latency: sequential UDP queries, one socket, median and p99, direct to the fake
server vs through the relay. Throughput: queries per second with `concurrency`
clients. Both servers are separate processes on 127.0.0.1; nothing else is
contacted. Everything stops by itself (bounded query counts, per-query timeouts).
"""

from __future__ import annotations

import argparse
import asyncio
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import write_json
from tests.support import fakedns

REPO = Path(__file__).resolve().parents[1]

ZONE = '{"a.test": ["10.1.2.3"]}'


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


def wait_answering(addr: tuple[str, int], limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    query = fakedns.build_query("a.test", qid=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            sock.sendto(query, addr)
            try:
                if sock.recv(65535)[:2] == query[:2]:
                    return
            except OSError:
                time.sleep(0.05)
    raise SystemExit(f"{addr} not answering within {limit} s")


def latencies(addr: tuple[str, int], count: int) -> list[float]:
    """Seconds per query, sequential, one connected socket; lost queries count as 1 s."""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.connect(addr)
        for index in range(count):
            query = fakedns.build_query("a.test", qid=index & 0xFFFF)
            started = time.perf_counter()
            sock.send(query)
            try:
                while sock.recv(65535)[:2] != query[:2]:
                    pass
            except TimeoutError:
                out.append(1.0)
                continue
            out.append(time.perf_counter() - started)
    return out


async def throughput(addr: tuple[str, int], count: int, concurrency: int) -> tuple[float, int]:
    """(queries per second, queries lost) with `concurrency` clients, one socket each."""
    loop = asyncio.get_running_loop()
    lost = 0

    async def client(share: int, first_id: int) -> None:
        nonlocal lost
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.connect(addr)
            for index in range(share):
                query = fakedns.build_query("a.test", qid=(first_id + index) & 0xFFFF)
                await loop.sock_sendall(sock, query)
                try:
                    async with asyncio.timeout(1.0):
                        while (await loop.sock_recv(sock, 65535))[:2] != query[:2]:
                            pass
                except TimeoutError:
                    lost += 1

    share = count // concurrency
    started = time.perf_counter()
    await asyncio.gather(*(client(share, i * share) for i in range(concurrency)))
    return share * concurrency / (time.perf_counter() - started), lost


def start(argv: list[str], ready_line: bool) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE)
    if ready_line:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 10.0)
        if not ready or not proc.stdout.readline().startswith(b"ready"):
            proc.kill()
            raise SystemExit("fake DNS server did not start")
    return proc


def describe(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", type=Path, help="write the results here (default: stdout)")
    args = parser.parse_args(argv)
    upstream = ("127.0.0.1", free_port())
    relay = ("127.0.0.1", free_port())
    procs = [
        start(
            [
                sys.executable,
                str(REPO / "tests/support/fakedns.py"),
                "--listen",
                f"{upstream[0]}:{upstream[1]}",
                "--zone",
                ZONE,
            ],
            True,
        ),
        start(
            [
                sys.executable,
                "-m",
                "helix_init.dns.relay",
                "--listen",
                f"{relay[0]}:{relay[1]}",
                "--upstream",
                f"{upstream[0]}:{upstream[1]}",
            ],
            False,
        ),
    ]
    try:
        for addr in (upstream, relay):
            wait_answering(addr)
            latencies(addr, 200)  # warm up
        results = {}
        for name, addr in (("direct", upstream), ("relay", relay)):
            median, p99 = describe(latencies(addr, args.queries))
            qps, lost = asyncio.run(throughput(addr, args.queries, args.concurrency))
            results[name] = (median, p99, qps, lost)
        keys = ("median_us", "p99_us", "qps", "lost")
        data: dict[str, object] = {"queries": args.queries, "concurrency": args.concurrency}
        data.update({name: dict(zip(keys, row, strict=True)) for name, row in results.items()})
        write_json(args.json, data)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
