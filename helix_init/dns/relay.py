"""DNS relay service: runs at every level as root (port 53), between inner containers and this
level's own resolver.

It forwards DNS over UDP and TCP byte for byte from one address of this level
that inner containers reach (see helix_init.dns.plan for which one) to the
nameservers this level uses, and never answers anything itself except SERVFAIL.

Choices, and why:

- One fresh, connected upstream UDP socket per query rather than a pooled socket
  with ID remapping. The kernel gives every query a random source port, so a
  spoofed answer must guess port and ID; there is no ID table to collide or
  leak; a connected socket accepts datagrams from the upstream only and turns
  ICMP port unreachable into ECONNREFUSED, so a dead upstream fails at once
  instead of after the timeout. The cost, one socket per query in flight, is
  bounded by `max_inflight`.
- One deadline per query (`timeout`), shared by the upstreams in order: each
  try gets the time left divided by the upstreams left, and a refused or broken
  try moves to the next upstream at once.
- When every upstream failed, the client gets SERVFAIL built from its query
  (same ID, opcode, RD, CD and question; QR, RA and RCODE=2 set) rather than
  silence: a stub resolver waits its whole timeout (glibc: 5 s, twice) for an
  answer that never comes, while SERVFAIL lets it give up or try its next
  server at once. Nothing is cached, so the next query tries the upstream again.
- Answers, truncated ones included, go back exactly as received; a client that
  sees TC retries over TCP, which is relayed too.
- Flood: at most `max_inflight` queries are forwarded at a time over both
  transports; a UDP query beyond that is dropped, a TCP one closes its
  connection (a stream cannot skip a message). TCP connections are capped at
  `max_connections`, each has an idle timeout and at most 8 queries in flight.
- No amplification: the sockets are bound to the listen address only, never
  0.0.0.0, so only traffic sent to that address is answered; an answer is the
  upstream's own answer to that query, or a SERVFAIL no longer than the query.
- Malformed input (shorter than a header, or a response rather than a query) is
  dropped and counted as an error; over TCP it also closes the connection.

Counters, written as JSON to `--stats` (atomically, at most once a second, only
when changed): queries (messages received), errors (malformed input, and
upstream tries refused or answered wrongly), timeouts (upstream tries that ran
out of time, even when the next upstream then answered), dropped (beyond the
caps), servfail (queries answered with SERVFAIL).

Exit codes (helix_init.exitcodes): 0 after SIGTERM/SIGINT, 64 bad command line,
78 the address cannot be bound (not on this level without --freebind, or taken).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn, cast

from helix_init.dns.plan import format_endpoint, parse_endpoint
from helix_init.exitcodes import Exit

Endpoint = tuple[str, int]

HEADER_LEN = 12
MAX_MESSAGE = 65535
TCP_PIPELINE = 8  # queries in flight per TCP connection; the reader waits beyond that
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)  # Linux: bind an address not (yet) up
LOG_INTERVAL = 10.0  # seconds between two error lines of the same kind


class BindError(Exception):
    """The listen address cannot be bound; the message is one line for the operator."""


class _BadReply(Exception):
    """An upstream answered something that is not the answer to our query."""


@dataclass
class Counters:
    queries: int = 0
    errors: int = 0
    timeouts: int = 0
    dropped: int = 0
    servfail: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class _RateLimitedLog:
    """At most one line per kind every `interval` seconds; the next says how many were skipped."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self._interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def error(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last, skipped = self._last.get(kind, (-math.inf, 0))
        if now - last < self._interval:
            self._last[kind] = (last, skipped + 1)
            return
        more = f" (and {skipped} more like it)" if skipped else ""
        _log(f"error: {message}{more}")
        self._last[kind] = (now, 0)


def _log(line: str) -> None:
    print(line, flush=True)


def is_query(message: bytes) -> bool:
    """A whole header, and the QR bit clear."""
    return len(message) >= HEADER_LEN and not message[2] & 0x80


def servfail(query: bytes) -> bytes:
    """SERVFAIL for `query`: its ID, opcode, RD, CD and question; QR, RA, RCODE=2 set."""
    flags = int.from_bytes(query[2:4], "big") & 0x7910 | 0x8000 | 0x0080 | 2
    question, count = _questions(query)
    return query[:2] + flags.to_bytes(2, "big") + count.to_bytes(2, "big") + bytes(6) + question


def _questions(query: bytes) -> tuple[bytes, int]:
    """The question section, copied as is, and how many whole questions it holds."""
    wanted = min(int.from_bytes(query[4:6], "big"), 16)
    pos, count = HEADER_LEN, 0
    while count < wanted:
        end = _name_end(query, pos)
        if end is None or end + 4 > len(query):
            break
        pos, count = end + 4, count + 1
    return query[HEADER_LEN:pos], count


def _name_end(message: bytes, pos: int) -> int | None:
    """Offset just past the name at `pos`, or None if it runs off the end."""
    while pos < len(message):
        length = message[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:  # compression pointer: the name ends here
            return pos + 2 if pos + 2 <= len(message) else None
        pos += 1 + length
    return None


@dataclass(frozen=True)
class _Upstream:
    shown: str
    family: socket.AddressFamily
    sockaddr: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]


_Ask = Callable[[_Upstream, bytes], Awaitable[bytes]]


def _resolve(endpoint: Endpoint) -> _Upstream:
    host, port = endpoint
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST
    )[0]
    return _Upstream(format_endpoint(host, port), family, sockaddr)


class _Relay:
    """Forwarding shared by both transports; owns the counters and the in-flight count."""

    def __init__(self, upstreams: list[_Upstream], timeout: float, max_inflight: int) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.max_inflight = max_inflight
        self.inflight = 0
        self.counters = Counters()
        self.log = _RateLimitedLog()

    def admit(self, message: bytes, peer: str) -> bool:
        """Count a received message; True if it is a query and there is room for it."""
        self.counters.queries += 1
        if not is_query(message):
            self.counters.errors += 1
            what = f"dropped a malformed message ({len(message)} bytes) from {peer}"
            self.log.error("malformed", what)
            return False
        if self.inflight >= self.max_inflight:
            self.counters.dropped += 1
            self.log.error("dropped", f"dropped a query from {peer}: {self.max_inflight} in flight")
            return False
        return True

    async def forward(self, query: bytes, ask: _Ask) -> bytes:
        """The first upstream answer to `query`, or SERVFAIL; never raises for upstream trouble."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for index, upstream in enumerate(self.upstreams):
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left / (len(self.upstreams) - index)):
                    return await ask(upstream, query)
            except TimeoutError:
                self.counters.timeouts += 1
                self.log.error(f"timeout {upstream.shown}", f"upstream {upstream.shown} timed out")
            except (OSError, _BadReply) as exc:
                self.counters.errors += 1
                self.log.error(f"failed {upstream.shown}", f"upstream {upstream.shown}: {exc}")
        self.counters.servfail += 1
        return servfail(query)


async def _ask_udp(upstream: _Upstream, query: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(upstream.family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(upstream.sockaddr)
        await loop.sock_sendall(sock, query)
        while True:  # ends with the answer or the caller's timeout
            reply = await loop.sock_recv(sock, MAX_MESSAGE)
            if _answers(query, reply):
                return reply


async def _ask_tcp(upstream: _Upstream, query: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(upstream.family, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, upstream.sockaddr)
        await loop.sock_sendall(sock, len(query).to_bytes(2, "big") + query)
        length = int.from_bytes(await _recv_exactly(sock, 2), "big")
        reply = await _recv_exactly(sock, length)
        if not _answers(query, reply):
            raise _BadReply("answer does not match the query")
        return reply


async def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise _BadReply("upstream closed the connection mid-answer")
        data += chunk
    return bytes(data)


def _answers(query: bytes, reply: bytes) -> bool:
    return len(reply) >= HEADER_LEN and reply[:2] == query[:2] and bool(reply[2] & 0x80)


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.relay.admit(data, str(addr[0])):
            return
        self.relay.inflight += 1
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def error_received(self, exc: Exception) -> None:
        self.relay.log.error("udp", f"udp listener: {exc}")

    async def _answer(self, query: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            reply = await self.relay.forward(query, _ask_udp)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(reply, addr)
        finally:
            self.relay.inflight -= 1


class _TcpListener:
    def __init__(self, relay: _Relay, max_connections: int, idle_timeout: float) -> None:
        self.relay = relay
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername", ("?",))[0])
        if self.connections >= self.max_connections:
            self.relay.counters.dropped += 1
            self.relay.log.error("tcp full", f"refused a TCP connection from {peer}: full")
            writer.close()
            return
        self.connections += 1
        pending: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(TCP_PIPELINE)
        write_lock = asyncio.Lock()
        try:
            while (query := await self._read_message(reader)) is not None:
                if not self.relay.admit(query, peer):
                    break
                await slots.acquire()
                self.relay.inflight += 1
                task = asyncio.get_running_loop().create_task(
                    self._answer(query, writer, write_lock, slots)
                )
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            if pending:  # each ends within the query timeout plus one write timeout
                await asyncio.wait(set(pending))
            self.connections -= 1
            writer.close()

    async def _read_message(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next length-framed message, or None when the client is gone or idle."""
        try:
            async with asyncio.timeout(self.idle_timeout):
                length = int.from_bytes(await reader.readexactly(2), "big")
                return await reader.readexactly(length)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return None

    async def _answer(
        self,
        query: bytes,
        writer: asyncio.StreamWriter,
        write_lock: asyncio.Lock,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            reply = await self.relay.forward(query, _ask_tcp)
            async with write_lock, asyncio.timeout(self.relay.timeout):
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (TimeoutError, ConnectionError):
            writer.transport.abort()  # a client that does not read loses its connection
        finally:
            self.relay.inflight -= 1
            slots.release()


def _bind(listen: Endpoint, kind: socket.SocketKind, freebind: bool) -> socket.socket:
    host, port = listen
    shown = f"{format_endpoint(host, port)}/{'udp' if kind == socket.SOCK_DGRAM else 'tcp'}"
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            host, port, type=kind, flags=socket.AI_NUMERICHOST
        )[0]
    except socket.gaierror as exc:
        raise BindError(f"cannot listen on {shown}: {exc.strerror}") from None
    sock = socket.socket(family, kind)
    try:
        if freebind:
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart over TIME_WAIT
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # absorb bursts
        sock.bind(sockaddr)
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {shown}: {exc.strerror or exc}") from None
    return sock


def _write_stats(path: Path, counters: dict[str, int]) -> None:
    """Replace `path` in one rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(counters) + "\n")
    os.replace(tmp, path)


async def _keep_stats(path: Path, relay: _Relay) -> None:
    """Write the counters at most once a second, only when they changed; runs until cancelled."""
    written: dict[str, int] | None = None
    try:
        while True:
            snapshot = relay.counters.snapshot()
            if snapshot != written:
                try:
                    _write_stats(path, snapshot)
                    written = snapshot
                except OSError as exc:
                    relay.log.error("stats", f"cannot write {path}: {exc}")
            await asyncio.sleep(1.0)
    finally:
        if relay.counters.snapshot() != written:
            with contextlib.suppress(OSError):
                _write_stats(path, relay.counters.snapshot())


async def serve(
    listen: Endpoint,
    upstreams: list[Endpoint],
    *,
    timeout: float = 2.0,
    max_inflight: int = 512,
    ready: Callable[[], None] | None = None,
    stats_path: Path | None = None,
    freebind: bool = False,
    max_connections: int = 128,
    idle_timeout: float = 10.0,
) -> None:
    """Relay until cancelled. Raises BindError before anything runs if `listen` cannot be bound;
    `ready` is called once both sockets are bound, which is when queries start being answered."""
    if not upstreams:
        raise ValueError("no upstream")
    relay = _Relay([_resolve(u) for u in upstreams], timeout, max_inflight)
    udp_sock = _bind(listen, socket.SOCK_DGRAM, freebind)
    try:
        tcp_sock = _bind(listen, socket.SOCK_STREAM, freebind)
    except BindError:
        udp_sock.close()
        raise
    loop = asyncio.get_running_loop()
    udp = _UdpListener(relay)
    tcp = _TcpListener(relay, max_connections, idle_timeout)
    transport, _ = await loop.create_datagram_endpoint(lambda: udp, sock=udp_sock)
    server = await asyncio.start_server(tcp.handle, sock=tcp_sock)
    stats = loop.create_task(_keep_stats(stats_path, relay)) if stats_path else None
    shown = ", ".join(u.shown for u in relay.upstreams)
    _log(f"relaying {format_endpoint(*listen)} -> {shown} (udp+tcp)")
    if ready is not None:
        ready()
    try:
        await server.serve_forever()
    finally:
        transport.close()
        server.close()
        for task in list(udp.tasks):
            task.cancel()
        if stats is not None:
            stats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stats
        _log(f"stopped; counters {json.dumps(relay.counters.snapshot())}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(Exit.USAGE)


def _endpoint(text: str) -> Endpoint:
    try:
        return parse_endpoint(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listen_endpoint(text: str) -> Endpoint:
    host, port = _endpoint(text)
    if ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified:
        raise argparse.ArgumentTypeError("a wildcard address would answer the whole network")
    return host, port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="helix-dns-relay", description="Relay DNS over UDP and TCP.")
    parser.add_argument("--listen", required=True, type=_listen_endpoint, metavar="ADDR[:PORT]")
    parser.add_argument(
        "--upstream", required=True, action="append", type=_endpoint, metavar="ADDR[:PORT]"
    )
    parser.add_argument("--timeout", type=_positive, default=2.0, metavar="SECONDS")
    parser.add_argument("--max-inflight", type=int, default=512, metavar="N")
    parser.add_argument("--stats", type=Path, metavar="FILE")
    parser.add_argument("--freebind", action="store_true", help="bind before the address is up")
    args = parser.parse_args(argv)
    if args.max_inflight < 1:
        parser.error("--max-inflight must be at least 1")
    return args


async def _run(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await serve(
            args.listen,
            args.upstream,
            timeout=args.timeout,
            max_inflight=args.max_inflight,
            stats_path=args.stats,
            freebind=args.freebind,
        )
    except asyncio.CancelledError:
        return Exit.OK
    except BindError as exc:
        print(f"helix-dns-relay: {exc}", file=sys.stderr, flush=True)
        return Exit.CONFIG
    return Exit.OK


def main(argv: list[str]) -> int:
    """`python -m helix_init.dns.relay --listen ADDR[:PORT] --upstream ADDR[:PORT] ...`"""
    return asyncio.run(_run(_parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
