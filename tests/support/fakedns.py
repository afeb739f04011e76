"""A small DNS server for tests and benches (stdlib only, no I/O beyond its own sockets).

It answers A queries for the names in a zone dict with a fixed TTL, NODATA for
other types of a known name, NXDOMAIN otherwise, over UDP and TCP. With
`truncate`, a UDP answer longer than 512 bytes goes out as TC=1 with the
question only, so the client retries over TCP. Every answer is a pure function
of the query bytes, so two queries with the same bytes get the same bytes back.

Run it as a process (`python fakedns.py --listen 127.0.0.1:5300 --zone JSON`):
it prints `ready HOST:PORT` once both sockets are bound and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import socket
import struct
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

A, NS = 1, 2
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
UDP_LIMIT = 512


def encode_name(name: str) -> bytes:
    labels = [label for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\0"


def build_query(name: str, qtype: int = A, qid: int = 0x1234, rd: bool = True) -> bytes:
    flags = 0x0100 if rd else 0
    return (
        struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", qtype, 1)
    )


@dataclass(frozen=True)
class Reply:
    id: int
    qr: bool
    tc: bool
    rcode: int
    question: str
    addresses: list[str] = field(default_factory=list)


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name at `pos` (following pointers, bounded) and the offset just past it."""
    labels, end, hops = [], None, 0
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            end = pos + 2 if end is None else end
            pos = struct.unpack("!H", data[pos : pos + 2])[0] & 0x3FFF
            hops += 1
            if hops > 16:
                raise ValueError("pointer loop")
            continue
        if length == 0:
            return ".".join(labels), (pos + 1 if end is None else end)
        labels.append(data[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length


def parse_reply(data: bytes) -> Reply:
    """Header, first question and the A records of a response (ValueError/IndexError if bad)."""
    qid, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    pos, question = 12, ""
    for index in range(qdcount):
        name, pos = _read_name(data, pos)
        question = name if index == 0 else question
        pos += 4
    addresses = []
    for _ in range(ancount):
        _, pos = _read_name(data, pos)
        rtype, _, _, rdlength = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == A and rdlength == 4:
            addresses.append(str(ipaddress.IPv4Address(data[pos : pos + 4])))
        pos += rdlength
    return Reply(
        id=qid,
        qr=bool(flags & 0x8000),
        tc=bool(flags & 0x0200),
        rcode=flags & 0xF,
        question=question,
        addresses=addresses,
    )


def answer(
    query: bytes, zone: Mapping[str, Sequence[str]], ttl: int = 60, udp_limit: int | None = None
) -> bytes | None:
    """The response to `query`, or None for something that is not a one-question query."""
    if len(query) < 12 or query[2] & 0x80:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        return None
    try:
        name, end = _read_name(query, 12)
        qtype, _ = struct.unpack("!HH", query[end : end + 4])
    except (IndexError, ValueError, struct.error):
        return None
    question = query[12 : end + 4]
    records = zone.get(name.lower().rstrip("."))
    rcode = NXDOMAIN if records is None else NOERROR
    rrs = [] if records is None or qtype != A else list(records)
    out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode  # QR AA RD RA
    body = b"".join(
        struct.pack("!HHHIH", 0xC00C, A, 1, ttl, 4) + ipaddress.IPv4Address(ip).packed for ip in rrs
    )
    reply = struct.pack("!HHHHHH", qid, out_flags, 1, len(rrs), 0, 0) + question + body
    if udp_limit is not None and len(reply) > udp_limit:
        reply = struct.pack("!HHHHHH", qid, out_flags | 0x0200, 1, 0, 0, 0) + question
    return reply


class FakeDns:
    """UDP and TCP on one address, each in a daemon thread; stop() ends both within 0.2 s."""

    def __init__(
        self, zone: Mapping[str, Sequence[str]], ttl: int = 60, truncate: bool = False
    ) -> None:
        self.zone = {name.lower().rstrip("."): list(ips) for name, ips in zone.items()}
        self.ttl = ttl
        self.udp_limit = UDP_LIMIT if truncate else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._udp = socket.socket(family, socket.SOCK_DGRAM)
        self._udp.bind((host, port))
        self._tcp = socket.socket(family, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind((host, port))
        self._tcp.listen(64)
        for sock in (self._udp, self._tcp):
            sock.settimeout(0.2)
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._udp.close()
        self._tcp.close()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = answer(query, self.zone, self.ttl, self.udp_limit)
            if reply is not None:
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            try:
                while not self._stop.is_set():
                    head = _recv_exactly(conn, 2)
                    query = _recv_exactly(conn, struct.unpack("!H", head)[0])
                    reply = answer(query, self.zone, self.ttl)
                    if reply is None:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, EOFError):
                return


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:5300", metavar="ADDR:PORT")
    parser.add_argument("--zone", default="{}", help='JSON: {"name": ["1.2.3.4", ...]}')
    parser.add_argument("--ttl", type=int, default=60)
    parser.add_argument("--truncate", action="store_true")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    server = FakeDns(json.loads(args.zone), args.ttl, args.truncate)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start(host.strip("[]"), int(port))
    print(f"ready {args.listen}", flush=True)
    while not done.wait(1.0):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
