"""`helix-init status`'s engine line: the real docker SDK against a fake Engine API.

The fake answers the two calls the SDK makes (GET /v1.41/version, /v1.41/info)
with the fields of a real Docker 20.10 answer, on a unix socket; anything else
is 404.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from helix_init.dockerinfo import EngineInfo, engine_info

VERSION = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12"}
INFO = {"Driver": "overlay2", "Containers": 3, "ContainersRunning": 2, "Images": 5}


ANSWERS = {"/v1.41/version": VERSION, "/v1.41/info": INFO}


class _Engine(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ANSWERS.get(self.path)
        self.send_response(200 if body is not None else 404)
        data = json.dumps(body if body is not None else {"message": "page not found"}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:  # a unix socket has no client address
        return "engine-client"

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Path]:
    sock = tmp_path / "docker.sock"
    server = _Server(str(sock), _Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sock
    finally:
        server.shutdown()
        server.server_close()


def test_the_engines_version_storage_containers_and_images(engine: Path) -> None:
    info = engine_info(f"unix://{engine}")

    assert info == EngineInfo("20.10.24+dfsg1", "1.41", "overlay2", 2, 3, 5)
    assert isinstance(info, EngineInfo)
    assert info.line() == (
        "engine: Docker 20.10.24+dfsg1 (API 1.41), storage overlay2, "
        "2 container(s) running of 3, 5 image(s)"
    )


def test_no_engine_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    why = engine_info(f"unix://{tmp_path / 'none.sock'}")

    assert isinstance(why, str)
    assert why.startswith(f"cannot ask the engine at unix://{tmp_path / 'none.sock'}: ")
    assert "\n" not in why
