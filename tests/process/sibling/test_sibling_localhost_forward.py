"""`helix-init step localhost-forward` in a "desktop" namespace beside a "sibling" namespace.

The sibling plays the per-session dockerd's side: an HTTP server on the
gateway address 10.200.1.1 (as a published port would be). The desktop
reaches it over a veth as eth1, like Hydra's injected interface. Nothing
leaves the two namespaces the test made.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.pid1 import BASE_PATH, HELIX_INIT, Pid1, Running, wait_until

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        shutil.which("ip") is None
        or shutil.which("iptables") is None
        or shutil.which("curl") is None,
        reason="needs iproute2, iptables and curl",
    ),
]

REPO = Path(__file__).resolve().parents[3]
GATEWAY = "10.200.1.1"
DESKTOP_ADDR = "10.200.1.254/24"
PUBLISHED = 8082  # `docker run -p 8082:80 nginx` on the sibling dockerd
KEPT = 9876  # a port the desktop serves itself on 127.0.0.1


def serve(ns: Any, root: Path, who: str, bind: str, port: int) -> None:
    """python -m http.server in `ns`, answering /whoami with `who`."""
    folder = root / f"www-{who}-{port}"
    folder.mkdir()
    (folder / "whoami").write_text(who)
    ns.popen(
        sys.executable, "-m", "http.server", str(port), "--bind", bind, "--directory", str(folder),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: fetch(ns, f"http://{bind}:{port}/whoami") == who, 10, f"{who} to serve")


def fetch(ns: Any, url: str) -> str | None:
    done = ns.run("curl", "-s", "--max-time", "2", url, timeout=10)
    return done.stdout if done.returncode == 0 else None


def nat_rules(ns: Any) -> list[str]:
    return ns.run("iptables", "-t", "nat", "-S").stdout.splitlines()


def count(rules: list[str], target: str) -> int:
    return sum(1 for rule in rules if f"-j {target}" in rule)


def route_localnet(ns: Any, iface: str) -> str:
    return ns.run("cat", f"/proc/sys/net/ipv4/conf/{iface}/route_localnet").stdout.strip()


@pytest.fixture
def pair(netns: Callable[[str], Any], tmp_path: Path) -> tuple[Any, Any]:
    """(desktop, sibling): eth1 10.200.1.254/24 <-> hydra1 10.200.1.1/24, HTTP on the gateway."""
    from tests.support.netns import veth

    desktop, sibling = netns("desktop"), netns("sibling")
    veth(desktop, "eth1", sibling, "hydra1")
    desktop.ip("addr", "add", DESKTOP_ADDR, "dev", "eth1")
    sibling.ip("addr", "add", f"{GATEWAY}/24", "dev", "hydra1")
    serve(sibling, tmp_path, "sibling", GATEWAY, PUBLISHED)
    serve(sibling, tmp_path, "sibling", GATEWAY, KEPT)
    serve(desktop, tmp_path, "desktop", "127.0.0.1", KEPT)
    return desktop, sibling


def step(ns: Any, tmp_path: Path, name: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": BASE_PATH, "LC_ALL": "C.UTF-8", "HELIX_INIT_RUN_DIR": str(tmp_path / "run")}
    return ns.run(str(HELIX_INIT), "step", name, env={**base, **env})


FORWARD = {"HELIX_LOCALHOST_FORWARD": GATEWAY, "HELIX_LOCALHOST_FORWARD_KEEP_PORTS": str(KEPT)}


def test_localhost_reaches_the_gateway_once_per_rule_and_undo_removes_them(
    pair: tuple[Any, Any], tmp_path: Path
) -> None:
    desktop, _ = pair
    url = f"http://127.0.0.1:{PUBLISHED}/whoami"
    assert fetch(desktop, url) is None  # nothing listens on the desktop's loopback
    before = nat_rules(desktop)

    outputs = []
    for _ in range(3):
        done = step(desktop, tmp_path, "localhost-forward", **FORWARD)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert f"gateway {GATEWAY} via eth1; masquerading 10.200.1.0/24" in outputs[0]
    assert "sysctl net.ipv4.conf.all.route_localnet=1" in outputs[0]
    assert "sysctl net.ipv4.conf.eth1.route_localnet=1" in outputs[0]
    assert "3 rule(s) added, 0 already present" in outputs[0]
    assert "0 rule(s) added, 3 already present" in outputs[2]
    assert "sysctl" not in outputs[2]

    assert fetch(desktop, url) == "sibling"
    assert fetch(desktop, f"http://127.0.0.1:{KEPT}/whoami") == "desktop"  # kept local
    assert fetch(desktop, f"http://127.0.0.2:{KEPT}/whoami") is None  # only 127.0.0.1 moves
    rules = nat_rules(desktop)
    assert count(rules, "DNAT") == 1 and count(rules, "MASQUERADE") == 1, rules
    assert count(rules, "RETURN") == 1, rules
    assert (route_localnet(desktop, "all"), route_localnet(desktop, "eth1")) == ("1", "1")

    done = step(desktop, tmp_path, "localhost-forward-undo")
    assert done.returncode == 0, done.stderr
    assert "removed 3 localhost forwarding rule(s)" in done.stdout
    assert nat_rules(desktop) == before
    assert (route_localnet(desktop, "all"), route_localnet(desktop, "eth1")) == ("0", "0")
    assert fetch(desktop, url) is None
    again = step(desktop, tmp_path, "localhost-forward-undo")
    assert again.returncode == 0 and again.stdout == ""


def test_nameserver_is_prepended_once_and_taken_out_by_the_undo(
    pair: tuple[Any, Any], tmp_path: Path
) -> None:
    desktop, _ = pair
    host_resolv = Path("/etc/resolv.conf").read_bytes()
    desktop.etc.mkdir(parents=True)
    resolv = desktop.etc / "resolv.conf"  # `ip netns exec` mounts it over /etc/resolv.conf
    original = "nameserver 192.0.2.53\noptions ndots:0\n"
    resolv.write_text(original)
    for _ in range(3):
        done = step(
            desktop, tmp_path, "localhost-forward", HELIX_LOCALHOST_FORWARD_DNS="1", **FORWARD
        )
        assert done.returncode == 0, done.stderr
    assert resolv.read_text() == f"nameserver {GATEWAY}\n{original}"
    done = step(desktop, tmp_path, "localhost-forward-undo")
    assert done.returncode == 0, done.stderr
    assert resolv.read_text() == original
    assert Path("/etc/resolv.conf").read_bytes() == host_resolv


def test_unset_is_a_silent_no_op(pair: tuple[Any, Any], tmp_path: Path) -> None:
    desktop, _ = pair
    before = nat_rules(desktop)
    done = step(desktop, tmp_path, "localhost-forward")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert nat_rules(desktop) == before
    assert route_localnet(desktop, "all") == "0"


def test_shipped_drop_ins_under_pid1_forward_for_the_cmd_and_undo_at_shutdown(
    pair: tuple[Any, Any], pid1: Pid1
) -> None:
    """The real boot: cont-init.d/25-* before the CMD, cont-finish.d/25-* after it."""
    desktop, _ = pair
    shutil.copy(REPO / "cont-init.d" / "25-helix-localhost-forward", pid1.cont_init)
    shutil.copy(REPO / "cont-finish.d" / "25-helix-localhost-forward-undo", pid1.cont_finish)
    answer = pid1.path("answer")
    env = {
        **pid1.env,
        **FORWARD,
        "PATH": f"{Path(sys.prefix) / 'bin'}:{BASE_PATH}",
    }
    out, err = pid1.path("stdout.ns"), pid1.path("stderr.ns")
    cmd = f"curl -s --max-time 5 -o {answer} http://127.0.0.1:{PUBLISHED}/whoami"
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", str(HELIX_INIT),
            "sh", "-c", cmd]  # fmt: skip
    with open(out, "ab") as fout, open(err, "ab") as ferr:
        popen = desktop.popen(*argv, env=env, stdout=fout, stderr=ferr, cwd=pid1.root,
                              start_new_session=True)  # fmt: skip
    running = Running(popen, out, err, True)
    try:
        result = running.wait(60)
    finally:
        running.kill()
    assert result.code == 0, result.describe()
    assert answer.read_text() == "sibling"
    assert any("rule(s) added" in t for t in result.texts("25-helix-localhost-forward"))
    assert any(
        "removed 3 localhost forwarding rule(s)" in t
        for t in result.texts("25-helix-localhost-forward-undo")
    ), result.describe()
    assert count(nat_rules(desktop), "DNAT") == 0
    assert fetch(desktop, f"http://127.0.0.1:{PUBLISHED}/whoami") is None
