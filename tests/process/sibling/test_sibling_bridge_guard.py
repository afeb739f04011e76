"""`helix-init bridge-guard` as a real process, in a "sandbox" namespace the test made.

sandbox0 (10.213.0.1/24) carries veth1 and veth2, whose peers sit in the
namespaces "a" (10.213.0.11) and "b" (10.213.0.12, HTTP server). The sandbox
also has an eth0 and a vethb-x, both veths without a master, which the guard
must never attach. The test deletes the bridge the way a starting session
dockerd did (seed 001) and expects it back, with its address and both veths,
within a second, and traffic from a to b flowing again.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.pid1 import BASE_PATH, HELIX_INIT, Pid1, Running, wait_until

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        shutil.which("ip") is None or shutil.which("curl") is None,
        reason="needs iproute2 and curl",
    ),
]

REPO = Path(__file__).resolve().parents[3]
BRIDGE, ADDRESS = "sandbox0", "10.213.0.1/24"
A_ADDR, B_ADDR, PORT = "10.213.0.11", "10.213.0.12", 8080
GUARD_ENV = {"HELIX_BRIDGE_GUARD": f"{BRIDGE}={ADDRESS}"}
REPAIRED = f"recreated {BRIDGE} {ADDRESS}; re-attached veth1, veth2"


class World:
    """The three namespaces and how to look at them."""

    def __init__(self, sandbox: Any, a: Any, b: Any) -> None:
        self.sandbox, self.a, self.b = sandbox, a, b

    def repaired(self) -> bool:
        links = self.sandbox.links()
        if BRIDGE not in links or ADDRESS not in self.sandbox.addresses(BRIDGE):
            return False
        return all(links[v].get("master") == BRIDGE for v in ("veth1", "veth2"))

    def b_answers(self) -> bool:
        url = f"http://{B_ADDR}:{PORT}/whoami"
        done = self.a.run("curl", "-s", "--max-time", "1", url, timeout=10)
        return done.returncode == 0 and done.stdout == "b"

    def delete_and_time_the_repair(self, limit: float = 1.0) -> float:
        started = time.monotonic()
        self.sandbox.ip("link", "del", BRIDGE)
        wait_until(self.repaired, limit, f"{BRIDGE} back with {ADDRESS}, veth1 and veth2")
        return time.monotonic() - started

    def untouched(self) -> None:
        links = self.sandbox.links()
        assert "master" not in links["eth0"], links["eth0"]
        assert "master" not in links["vethb-x"], links["vethb-x"]


@pytest.fixture
def world(netns: Callable[[str], Any], tmp_path: Path) -> World:
    from tests.support.netns import veth

    sandbox, a, b = netns("sandbox"), netns("a"), netns("b")
    sandbox.ip("link", "add", BRIDGE, "type", "bridge")
    sandbox.ip("addr", "add", ADDRESS, "dev", BRIDGE)
    sandbox.ip("link", "set", BRIDGE, "up")
    veth(sandbox, "veth1", a, "eth0")
    veth(sandbox, "veth2", b, "eth0")
    veth(sandbox, "eth0", a, "up0")  # the sandbox's own uplink: a veth with no master
    veth(sandbox, "vethb-x", b, "hy0")  # a Hydra session veth
    for name in ("veth1", "veth2"):
        sandbox.ip("link", "set", name, "master", BRIDGE)
    a.ip("addr", "add", f"{A_ADDR}/24", "dev", "eth0")
    b.ip("addr", "add", f"{B_ADDR}/24", "dev", "eth0")
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "whoami").write_text("b")
    server = [sys.executable, "-m", "http.server", str(PORT), "--bind", B_ADDR]
    b.popen(
        *server, "--directory", str(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    w = World(sandbox, a, b)
    wait_until(w.b_answers, 10, "b to answer a over the bridge")
    return w


@pytest.fixture
def guard(
    world: World, tmp_path: Path
) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"guard.{len(started)}.log"
        with open(log, "wb") as out:
            proc = world.sandbox.popen(
                str(HELIX_INIT), "bridge-guard",
                env={"PATH": BASE_PATH, "LC_ALL": "C.UTF-8", **GUARD_ENV, **env},
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started.append(proc)
        wait_until(
            lambda: "guarding" in log.read_text(),
            10,
            "the guard to start",
            lambda: proc.poll() is None,
        )
        return proc, log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


MODES = [
    ({}, f"guarding {BRIDGE} {ADDRESS} by netlink link events"),
    ({"HELIX_BRIDGE_GUARD_MODE": "poll"}, "by polling every 0.2s (HELIX_BRIDGE_GUARD_MODE=poll)"),
]


@pytest.mark.parametrize(("env", "how"), MODES, ids=["events", "poll"])
def test_deleted_bridge_is_back_within_a_second_with_its_veths(
    world: World,
    guard: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    env: dict[str, str],
    how: str,
) -> None:
    proc, log = guard(**env)
    assert how in log.read_text()
    assert "never touching eth*, lo, vethb-*" in log.read_text()
    for round_ in range(3):  # repeatedly: the guard keeps guarding after a repair
        took = world.delete_and_time_the_repair()
        assert took < 1.0
        world.untouched()
        wait_until(world.b_answers, 5, f"traffic a -> b after repair {round_ + 1}")
        wait_until(lambda n=round_ + 1: log.read_text().count(REPAIRED) == n, 2, "the repair line")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    lines = log.read_text().splitlines()
    assert lines[1:] == [REPAIRED] * 3, lines


def test_guard_started_after_the_deletion_repairs_at_once(
    world: World, guard: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    world.sandbox.ip("link", "del", BRIDGE)
    assert not world.b_answers()
    _, log = guard()
    wait_until(world.repaired, 2, "the repair")
    world.untouched()
    wait_until(world.b_answers, 5, "traffic a -> b")
    assert REPAIRED in log.read_text()


def test_bad_config_is_one_line_and_exit_78(
    world: World, guard: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    env = {"PATH": BASE_PATH, "HELIX_BRIDGE_GUARD": "sandbox0=10.213.0.1/40"}
    done = world.sandbox.run(str(HELIX_INIT), "bridge-guard", env=env)
    assert done.returncode == 78
    assert done.stderr.splitlines() == [
        "bridge-guard: HELIX_BRIDGE_GUARD: '10.213.0.1/40' is not an IPv4 address/prefix"
        " (such as sandbox0=10.213.0.1/24)"
    ]


def test_shipped_service_under_pid1(world: World, pid1: Pid1) -> None:
    """services.d/bridge-guard.toml as shipped, helix-init PID 1 in the sandbox namespace."""
    services = pid1.path("services.d")
    services.mkdir()
    for name in ("bridge-guard.toml", "dockerd.toml", "dns-relay.toml"):  # requires dockerd
        shutil.copy(REPO / "services.d" / name, services)
    env = {**pid1.env, **GUARD_ENV, "PATH": f"{Path(sys.prefix) / 'bin'}:{BASE_PATH}"}
    out, err = pid1.path("stdout.ns"), pid1.path("stderr.ns")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", str(HELIX_INIT),
            "sleep", "120"]  # fmt: skip
    with open(out, "ab") as fout, open(err, "ab") as ferr:
        popen = world.sandbox.popen(*argv, env=env, stdout=fout, stderr=ferr, cwd=pid1.root,
                                    start_new_session=True)  # fmt: skip
    running = Running(popen, out, err, True)
    try:
        wait_until(
            lambda: pid1.command("health").code == 0, 20, "the init to be ready", running.alive
        )
        assert world.delete_and_time_the_repair() < 1.0
        world.untouched()
        wait_until(world.b_answers, 5, "traffic a -> b")
        wait_until(lambda: REPAIRED in running.output(), 5, "the repair line in the init's log")
        running.signal(signal.SIGTERM)
        result = running.wait(30)
    finally:
        running.kill()
    assert result.code == 0, result.describe()
    assert any(REPAIRED in t for t in result.texts("bridge-guard")), result.describe()
