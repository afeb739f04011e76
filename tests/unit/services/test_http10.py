"""The one HTTP/1.0 client: the bytes it sends, the status it reads, a real unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helix_init.services import http10


def test_the_request_is_plain_http_1_0_with_a_length_for_a_body() -> None:
    assert http10.request("GET", "/_ping", "docker") == (
        b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
    )
    assert http10.request("POST", "/RPC2", body=b"<x/>", Content_Type="text/xml") == (
        b"POST /RPC2 HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
        b"Content-Length: 4\r\n\r\n<x/>"
    )


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.0 200 OK\r\n", 200),
        (b"HTTP/1.1 503 Service Unavailable\r\nX: y\r\n\r\nbody", 503),
        (b"SSH-2.0-OpenSSH_9.2\r\n", None),
        (b"", None),
    ],
)
def test_the_status_is_read_from_the_first_line(answer: bytes, status: int | None) -> None:
    assert http10.status_of(answer) == status


def test_an_exchange_over_a_unix_socket_and_one_with_nobody_listening(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nOK")
        await writer.drain()
        writer.close()

    async def main() -> tuple[bytes, bytes]:
        server = await asyncio.start_unix_server(serve, str(sock))
        async with server:
            request = http10.request("GET", "/_ping", "docker")
            whole = await http10.exchange(request, unix_path=str(sock))
            first = await http10.exchange(request, unix_path=str(sock), status_only=True)
        return whole, first

    whole, first = asyncio.run(main())
    assert whole == b"HTTP/1.0 200 OK\r\n\r\nOK"
    assert first == b"HTTP/1.0 200 OK\r\n"
    assert seen == [b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"] * 2
    with pytest.raises(http10.Unreachable):
        asyncio.run(http10.exchange(b"GET / HTTP/1.0\r\n\r\n", unix_path=str(tmp_path / "none")))
