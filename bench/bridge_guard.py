"""Bench, not a test: time from a bridge deletion to traffic flowing again, events vs polling.

    .venv/bin/python -m bench.bridge_guard [--deletions 50] [--json FILE]  (as root)

Three network namespaces made here (deleted at the end): "sandbox" holds the
bridge sandbox0 (10.213.0.1/24) with veth1 and veth2; their peers are in "a"
(10.213.0.11) and "b" (10.213.0.12, a UDP echo server). `helix-init
bridge-guard` runs in "sandbox", once per mode. Each round deletes the bridge
with one RTM_DELLINK (the clock starts as it is sent) and probes b from a with
a datagram every millisecond until the echo comes back. Rounds are spaced by a
random 50-250 ms so the deletions fall anywhere in a poll interval. Nothing
leaves the namespaces; every wait is bounded.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.common import write_json
from tests.support.netns import Netns, veth

HELIX_INIT = Path(sys.prefix) / "bin" / "helix-init"
BRIDGE, ADDRESS = "sandbox0", "10.213.0.1/24"
A_ADDR, B_ADDR, PORT = "10.213.0.11", "10.213.0.12", 7
CLONE_NEWNET = 0x40000000
RTM_DELLINK, NLM_F_REQUEST, NLM_F_ACK, IFLA_IFNAME = 17, 1, 4, 3
NLMSG_ERROR = 2
GIVE_UP = 5.0  # seconds per round before it counts as a failure
ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    f"s.bind(({B_ADDR!r}, {PORT}))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(64)\n"
    "    s.sendto(data, peer)\n"
)
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def inside(ns: Netns, make: Callable[[], T]) -> T:
    """make() with this thread in `ns`: sockets it opens stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            return make()
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def dellink_request(name: str, seq: int) -> bytes:
    attr_name = name.encode() + b"\0"
    attr = struct.pack("HH", 4 + len(attr_name), IFLA_IFNAME) + attr_name
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0) + attr
    return (
        struct.pack("IHHII", 16 + len(body), RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body
    )


def delete_bridge(rtnl: socket.socket, seq: int) -> None:
    rtnl.send(dellink_request(BRIDGE, seq))
    reply = rtnl.recv(4096)
    kind = struct.unpack_from("H", reply, 4)[0]
    code = struct.unpack_from("i", reply, 16)[0] if kind == NLMSG_ERROR else 0
    if code:
        raise OSError(-code, f"RTM_DELLINK {BRIDGE}")


def echo_back(probe: socket.socket, wait: float) -> bool:
    if not select.select([probe], [], [], wait)[0]:
        return False
    while select.select([probe], [], [], 0)[0]:  # drain late echoes of earlier probes
        try:
            probe.recv(64)
        except OSError:
            break
    return True


def ping(probe: socket.socket) -> None:
    try:
        probe.send(b"x")
    except OSError:
        pass  # no route / unreachable while the bridge is gone


def one_round(rtnl: socket.socket, probe: socket.socket, seq: int) -> tuple[float, float]:
    """Seconds from sending RTM_DELLINK to its ack (the kernel's part), and to the first echo."""
    started = time.perf_counter()
    delete_bridge(rtnl, seq)
    deleted = time.perf_counter() - started
    while time.perf_counter() - started < GIVE_UP:
        ping(probe)
        if echo_back(probe, 0.001):
            return deleted, time.perf_counter() - started
    raise SystemExit(f"round {seq}: no connectivity within {GIVE_UP:g}s")


def build() -> tuple[Netns, Netns, Netns]:
    sandbox, a, b = Netns("sandbox").create(), Netns("a").create(), Netns("b").create()
    sandbox.ip("link", "add", BRIDGE, "type", "bridge")
    sandbox.ip("addr", "add", ADDRESS, "dev", BRIDGE)
    sandbox.ip("link", "set", BRIDGE, "up")
    veth(sandbox, "veth1", a, "eth0")
    veth(sandbox, "veth2", b, "eth0")
    for name in ("veth1", "veth2"):
        sandbox.ip("link", "set", name, "master", BRIDGE)
    a.ip("addr", "add", f"{A_ADDR}/24", "dev", "eth0")
    b.ip("addr", "add", f"{B_ADDR}/24", "dev", "eth0")
    b.popen(sys.executable, "-c", ECHO)
    return sandbox, a, b


def start_guard(sandbox: Netns, mode: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HELIX_BRIDGE_GUARD": f"{BRIDGE}={ADDRESS}",
        "HELIX_BRIDGE_GUARD_MODE": mode,
    }
    with open(log, "wb") as out:
        proc = sandbox.popen(str(HELIX_INIT), "bridge-guard", env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 10
    while "guarding" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the guard did not start:\n{log.read_text()}")
        time.sleep(0.01)
    return proc


def measure(
    sandbox: Netns, a: Netns, mode: str, deletions: int, log: Path
) -> list[tuple[float, float]]:
    rtnl = inside(sandbox, lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
    probe = inside(a, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    probe.connect((B_ADDR, PORT))
    guard = start_guard(sandbox, mode, log)
    rng = random.Random(7)
    times: list[tuple[float, float]] = []
    try:
        for _ in range(200):  # connectivity first, bounded
            ping(probe)
            if echo_back(probe, 0.05):
                break
        else:
            raise SystemExit("no connectivity a -> b before the first deletion")
        for seq in range(1, deletions + 1):
            times.append(one_round(rtnl, probe, seq))
            time.sleep(rng.uniform(0.05, 0.25))
    finally:
        guard.terminate()
        guard.wait(10)
        rtnl.close()
        probe.close()
    repairs = log.read_text().count("recreated ")
    if repairs != deletions:
        raise SystemExit(f"{mode}: {repairs} repairs logged for {deletions} deletions")
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--deletions", type=int, default=50)
    parser.add_argument("--json", type=Path, help="write the samples here (default: stdout)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    made = build()
    sandbox, a, _ = made
    data: dict[str, dict[str, list[float]]] = {}
    try:
        for mode in ("event", "poll"):
            log = Path(f"/tmp/bench-bridge-guard-{os.getpid()}-{mode}.log")
            rounds = measure(sandbox, a, mode, args.deletions, log)
            log.unlink()
            kernel = [d * 1000 for d, _ in rounds]
            times = [t * 1000 for _, t in rounds]
            data[mode] = {"repair_ms": times, "kernel_delete_ms": kernel}
    finally:
        for ns in reversed(made):
            ns.delete()
    write_json(args.json, {"deletions": args.deletions, **data})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
