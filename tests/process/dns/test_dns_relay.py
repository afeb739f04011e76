"""The DNS relay as a real process, in a network namespace of the test's own, in front of the
fake DNS server on that namespace's loopback. Nothing leaves the namespace."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helix_init.dns.relay import is_query, servfail
from tests.support import fakedns

REPO = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"
    ),
]

RELAY = "10.253.53.1"  # the relay's own address, on a veth whose peer is in the namespace too
OTHER = "10.253.53.2"  # another address of the namespace, where nothing may answer
LATE = "10.253.53.9"  # added only after the relay binds it with --freebind
UPSTREAM = ("127.0.0.1", 5300)
UPSTREAM_TEXT = "127.0.0.1:5300"
ZONE = {
    "a.test": ["10.1.2.3"],
    "two.test": ["10.1.2.4", "10.1.2.5"],
    "big.test": [f"10.2.{i // 250}.{i % 250 + 1}" for i in range(100)],  # > 512 bytes
    **{f"n{i}.test": [f"10.3.0.{i + 1}"] for i in range(50)},
}
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class Netns:
    """A network namespace made for this module; `call` runs a function inside it."""

    def __init__(self) -> None:
        self.name = f"helix-dns-{uuid.uuid4().hex[:8]}"

    def create(self) -> None:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        for argv in (
            ["link", "set", "lo", "up"],
            ["link", "add", "dns0", "type", "veth", "peer", "name", "dns1"],
            ["addr", "add", f"{RELAY}/24", "dev", "dns0"],
            ["addr", "add", f"{OTHER}/24", "dev", "dns0"],
            ["link", "set", "dns0", "up"],
            ["link", "set", "dns1", "up"],
        ):
            self.ip(*argv)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)

    def ip(self, *argv: str) -> None:
        subprocess.run(["ip", "-n", self.name, *argv], check=True)

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], cwd=REPO, **kwargs)

    def call(self, fn: Callable[..., T], *args: Any, limit: float = 120.0) -> T:
        """Run fn(*args) in a thread moved into the namespace (setns moves one thread only);
        sockets it creates stay in the namespace."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                finally:
                    os.close(fd)
                box["value"] = fn(*args)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(limit)
        assert not thread.is_alive(), f"{fn.__name__} still running after {limit} s"
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]


def udp_exchange(addr: tuple[str, int], query: bytes, timeout: float = 1.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(addr)
        sock.send(query)
        try:
            return sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return None


def tcp_exchange(addr: tuple[str, int], *queries: bytes, timeout: float = 3.0) -> list[bytes]:
    """Send all queries on one connection (pipelined), read as many answers, by ID order."""
    with socket.create_connection(addr, timeout=timeout) as sock:
        sock.sendall(b"".join(len(q).to_bytes(2, "big") + q for q in queries))
        answers = []
        for _ in queries:
            length = int.from_bytes(_recv_exactly(sock, 2), "big")
            answers.append(_recv_exactly(sock, length))
    return sorted(answers, key=lambda a: [q[:2] for q in queries].index(a[:2]))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def tcp_closed_after(addr: tuple[str, int], payload: bytes, timeout: float = 3.0) -> bool:
    with socket.create_connection(addr, timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


def tcp_refused(addr: tuple[str, int]) -> bool:
    try:
        socket.create_connection(addr, timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_until(check: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll `check` until true or `limit` seconds pass (then fail naming `what`)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"not {what} within {limit} s")


class Upstream:
    """The fake DNS server as a process in the namespace; stop/start to take it down."""

    def __init__(self, netns: Netns) -> None:
        self.netns = netns
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = self.netns.popen(
            [
                sys.executable,
                str(REPO / "tests/support/fakedns.py"),
                "--listen",
                UPSTREAM_TEXT,
                "--zone",
                json.dumps(ZONE),
                "--truncate",
            ],
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 10.0)
        assert ready and self.proc.stdout.readline().startswith(b"ready"), "fake DNS not ready"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Relay:
    """`python -m helix_init.dns.relay` in the namespace, stdout to a file."""

    def __init__(
        self, netns: Netns, workdir: Path, listen: str, *extra: str, upstreams: tuple[str, ...] = ()
    ) -> None:
        self.stats = workdir / "stats.json"
        self.stdout = workdir / "stdout.txt"
        self.stderr = workdir / "stderr.txt"
        self.listen = listen
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = netns.popen(
                [
                    sys.executable,
                    "-m",
                    "helix_init.dns.relay",
                    "--listen",
                    listen,
                    *(f"--upstream={u}" for u in upstreams or [UPSTREAM_TEXT]),
                    "--stats",
                    str(self.stats),
                    *extra,
                ],
                stdout=out,
                stderr=err,
            )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=10)

    def counters(self) -> dict[str, int]:
        try:
            return json.loads(self.stats.read_text())  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError):
            return {}


def answered(netns: Netns, addr: tuple[str, int], timeout: float = 0.2) -> bool:
    reply = netns.call(udp_exchange, addr, fakedns.build_query("a.test", qid=7), timeout)
    return reply is not None and fakedns.parse_reply(reply).addresses == ["10.1.2.3"]


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    ns = Netns()
    try:
        ns.create()
        yield ns
    finally:
        ns.delete()


@pytest.fixture(scope="module")
def upstream(netns: Netns) -> Iterator[Upstream]:
    server = Upstream(netns)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def relay(
    netns: Netns, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Relay]:
    process = Relay(netns, tmp_path_factory.mktemp("relay"), RELAY)
    try:
        wait_until(lambda: answered(netns, (RELAY, 53)), "answering")
        yield process
    finally:
        code = process.stop()
    assert code == 0
    assert process.stderr.read_text() == ""


QUERIES = [
    fakedns.build_query("a.test", qid=0x4242),
    fakedns.build_query("two.test", qid=0x0001),
    fakedns.build_query("missing.test", qid=0xBEEF),  # NXDOMAIN
    fakedns.build_query("two.test", qtype=28, qid=0x7777),  # AAAA: NODATA
]


@pytest.mark.parametrize("query", QUERIES, ids=["A", "two-A", "NXDOMAIN", "NODATA"])
def test_udp_answer_is_byte_identical_to_a_direct_query(
    netns: Netns, relay: Relay, query: bytes
) -> None:
    direct = netns.call(udp_exchange, UPSTREAM, query)
    relayed = netns.call(udp_exchange, (RELAY, 53), query)
    assert direct is not None
    assert relayed == direct


def test_tcp_answers_are_byte_identical_to_direct_ones_pipelined(
    netns: Netns, relay: Relay
) -> None:
    direct = netns.call(tcp_exchange, UPSTREAM, *QUERIES)
    relayed = netns.call(tcp_exchange, (RELAY, 53), *QUERIES)
    assert relayed == direct
    assert fakedns.parse_reply(relayed[0]).addresses == ["10.1.2.3"]
    assert fakedns.parse_reply(relayed[2]).rcode == fakedns.NXDOMAIN


def test_truncated_udp_answer_is_passed_back_and_tcp_gets_the_whole_answer(
    netns: Netns, relay: Relay
) -> None:
    query = fakedns.build_query("big.test", qid=0x0B16)
    relayed = netns.call(udp_exchange, (RELAY, 53), query)
    assert relayed is not None
    assert relayed == netns.call(udp_exchange, UPSTREAM, query)
    assert fakedns.parse_reply(relayed).tc
    [whole] = netns.call(tcp_exchange, (RELAY, 53), query)
    assert whole == netns.call(tcp_exchange, UPSTREAM, query)[0]
    assert len(fakedns.parse_reply(whole).addresses) == 100


def test_1000_concurrent_udp_queries_are_all_answered(netns: Netns, relay: Relay) -> None:
    async def one(index: int, slots: asyncio.Semaphore) -> bool:
        name = f"n{index % 50}.test"
        query = fakedns.build_query(name, qid=index)
        async with slots:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.connect((RELAY, 53))
                await loop.sock_sendall(sock, query)
                try:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5.0)
                except TimeoutError:
                    return False
        parsed = fakedns.parse_reply(reply)
        return parsed.id == index and parsed.addresses == ZONE[name]

    async def flood() -> list[bool]:
        slots = asyncio.Semaphore(200)
        return await asyncio.gather(*(one(i, slots) for i in range(1000)))

    results = netns.call(asyncio.run, flood())
    assert sum(results) == 1000
    assert relay.proc.poll() is None


def test_upstream_down_gives_a_quick_servfail_and_the_relay_recovers(
    netns: Netns, upstream: Upstream, relay: Relay
) -> None:
    query = fakedns.build_query("a.test", qid=0x0D0D)
    upstream.stop()
    try:
        started = time.monotonic()
        reply = netns.call(udp_exchange, (RELAY, 53), query, 3.0)
        assert time.monotonic() - started < 3.0
        assert reply is not None  # the relay answers SERVFAIL rather than leave the client waiting
        parsed = fakedns.parse_reply(reply)
        assert (parsed.id, parsed.qr, parsed.rcode) == (0x0D0D, True, fakedns.SERVFAIL)
        assert parsed.question == "a.test"
        [over_tcp] = netns.call(tcp_exchange, (RELAY, 53), query)
        assert fakedns.parse_reply(over_tcp).rcode == fakedns.SERVFAIL
        assert relay.proc.poll() is None
    finally:
        upstream.start()
    wait_until(lambda: answered(netns, (RELAY, 53)), "answering again")


def test_malformed_packets_are_dropped_and_counted(netns: Netns, relay: Relay) -> None:
    wait_until(lambda: "errors" in relay.counters(), "writing counters")
    errors_before = relay.counters()["errors"]
    a_response = fakedns.answer(fakedns.build_query("a.test"), ZONE)
    assert a_response is not None
    for junk in (b"", b"\x00\x01\x02", bytes(11), a_response):
        assert netns.call(udp_exchange, (RELAY, 53), junk, 0.3) is None
    assert netns.call(tcp_closed_after, (RELAY, 53), b"\x00\x03abc")
    assert answered(netns, (RELAY, 53))
    assert relay.proc.poll() is None
    wait_until(lambda: relay.counters()["errors"] >= errors_before + 5, "counting errors", 5.0)
    assert relay.counters()["queries"] > 0


def test_only_its_own_address_is_answered(netns: Netns, relay: Relay) -> None:
    assert not answered(netns, (OTHER, 53))
    assert netns.call(tcp_refused, (OTHER, 53))
    assert answered(netns, (RELAY, 53))


def test_freebind_binds_before_the_address_exists(
    netns: Netns, upstream: Upstream, tmp_path: Path
) -> None:
    late = Relay(netns, tmp_path, LATE, "--freebind")
    try:
        wait_until(
            lambda: late.stdout.read_bytes() != b"" or late.proc.poll() is not None, "started"
        )
        assert late.proc.poll() is None, late.stderr.read_text()
        netns.ip("addr", "add", f"{LATE}/32", "dev", "dns0")
        wait_until(lambda: answered(netns, (LATE, 53)), "answering on the new address")
    finally:
        code = late.stop()
        netns.ip("addr", "del", f"{LATE}/32", "dev", "dns0")
    assert code == 0
    assert late.stdout.read_text().splitlines()[0] == f"relaying {LATE} -> 127.0.0.1:5300 (udp+tcp)"


def test_bind_failure_is_one_line_and_non_zero(netns: Netns, tmp_path: Path) -> None:
    failed = Relay(netns, tmp_path, "10.253.53.10:53")
    assert failed.proc.wait(timeout=10) == 78
    assert failed.stderr.read_text().splitlines() == [
        "helix-dns-relay: cannot listen on 10.253.53.10/udp: Cannot assign requested address"
    ]


def test_bad_command_line_exits_64(netns: Netns, tmp_path: Path) -> None:
    wildcard = Relay(netns, tmp_path, "0.0.0.0")
    assert wildcard.proc.wait(timeout=10) == 64
    assert "wildcard" in wildcard.stderr.read_text()
    assert "Traceback" not in wildcard.stderr.read_text()


def hung_upstream(port: int) -> socket.socket:
    """A UDP socket on the namespace's loopback that never reads: an upstream that hangs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    return sock


def test_a_hung_upstream_times_out_and_the_next_one_answers(
    netns: Netns, upstream: Upstream, tmp_path: Path
) -> None:
    hung = netns.call(hung_upstream, 5301)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    only_hung = Relay(
        netns, tmp_path / "a", f"{RELAY}:5353", "--timeout=0.5", upstreams=("127.0.0.1:5301",)
    )
    both = Relay(
        netns,
        tmp_path / "b",
        f"{RELAY}:5354",
        "--timeout=1",
        upstreams=("127.0.0.1:5301", UPSTREAM_TEXT),
    )
    try:
        # the hung one gets half of the 1 s budget, then the fake server answers
        wait_until(lambda: answered(netns, (RELAY, 5354), 2.0), "answering via the second")
        started = time.monotonic()
        reply = netns.call(udp_exchange, (RELAY, 5353), fakedns.build_query("a.test", qid=9), 3.0)
        assert 0.4 < time.monotonic() - started < 1.5
        assert reply is not None and fakedns.parse_reply(reply).rcode == fakedns.SERVFAIL
        wait_until(lambda: only_hung.counters().get("timeouts") == 1, "counting the timeout", 3.0)
        wait_until(lambda: both.counters().get("timeouts", 0) >= 1, "counting its timeout", 3.0)
        assert both.counters()["servfail"] == 0
    finally:
        only_hung.stop()
        both.stop()
        hung.close()


def burst(addr: tuple[str, int], queries: list[bytes], listen_for: float) -> list[bytes]:
    """Send all queries at once from one socket; every reply that arrives in `listen_for` s."""
    replies = []
    deadline = time.monotonic() + listen_for
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(addr)
        for query in queries:
            sock.send(query)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                replies.append(sock.recv(65535))
            except TimeoutError:
                break
    return replies


def test_queries_beyond_the_in_flight_cap_are_dropped(
    netns: Netns, upstream: Upstream, tmp_path: Path
) -> None:
    hung = netns.call(hung_upstream, 5302)
    capped = Relay(
        netns,
        tmp_path,
        f"{RELAY}:5355",
        "--timeout=1",
        "--max-inflight=2",
        upstreams=("127.0.0.1:5302",),
    )
    try:
        wait_until(lambda: capped.counters() != {}, "started")
        queries = [fakedns.build_query("a.test", qid=100 + i) for i in range(10)]
        replies = netns.call(burst, (RELAY, 5355), queries, 2.0)
        assert sorted(fakedns.parse_reply(r).rcode for r in replies) == [fakedns.SERVFAIL] * 2
        wait_until(lambda: capped.counters().get("dropped") == 8, "counting the drops", 3.0)
        # the cap frees up: the next query is forwarded again (and fails again)
        assert len(netns.call(burst, (RELAY, 5355), queries[:1], 2.0)) == 1
    finally:
        capped.stop()
        hung.close()


def test_servfail_keeps_id_opcode_flags_and_question() -> None:
    query = fakedns.build_query("a.test", qid=0xABCD) + bytes(11)  # plus an EDNS-sized tail
    query = query[:10] + b"\x00\x01" + query[12:]  # ARCOUNT=1: the OPT record is not echoed
    reply = servfail(query)
    parsed = fakedns.parse_reply(reply)
    assert (parsed.id, parsed.qr, parsed.tc, parsed.rcode) == (0xABCD, True, False, 2)
    assert parsed.question == "a.test"
    assert reply[2:4] == b"\x81\x82"  # QR, RD kept, RA, SERVFAIL
    assert reply[6:12] == bytes(6)
    assert len(reply) <= len(query)
    assert servfail(query[:15]) == query[:2] + b"\x81\x82" + bytes(8)  # cut question: none


def test_is_query() -> None:
    assert is_query(fakedns.build_query("a.test"))
    assert not is_query(bytes(11))
    answer = fakedns.answer(fakedns.build_query("a.test"), ZONE)
    assert answer is not None and not is_query(answer)
