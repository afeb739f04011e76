"""The shipped revdial-agent and desktop-bridge services, driven by stand-ins of the real binaries.

Mocks, on purpose: the real revdial-client and desktop-bridge (a GPU video
streamer) cannot exist on this machine; examples/standins/ has stand-ins with
the same command-line contract. Everything else is real: helix-init as PID 1,
supervisord, the shipped services.d files and the `revdial` cont-init step.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.pid1 import HELIX_INIT, Pid1, ns_processes, wait_until

REPO = Path(__file__).resolve().parents[2]
STANDINS = REPO / "examples" / "standins"
TOKEN = "tok-3f9a1c77e2b54d0e"  # what must never show up outside the agent's environment

pytestmark = pytest.mark.process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControlPlane:
    """The stand-in control plane on loopback, outside the init's PID namespace."""

    def __init__(self, root: Path, port: int) -> None:
        self.registry = root / "registry"
        self.token_file = root / "expected-token"
        self.token_file.write_text(TOKEN)
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.registry.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(STANDINS / "control-plane"), "--listen", f"127.0.0.1:{self.port}",
             "--token-file", str(self.token_file), "--registry", str(self.registry)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.registry.exists, 10, "the control plane to listen")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def runners(self) -> list[str]:
        try:
            return self.registry.read_text().split()
        except FileNotFoundError:
            return []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def status(pid1: Pid1) -> dict[str, object]:
    done = pid1.command("status", "--json")
    assert done.code == 0, done.describe()
    data: dict[str, object] = json.loads(done.stdout)
    return data


def service(pid1: Pid1, name: str) -> dict[str, object]:
    services = status(pid1)["services"]
    assert isinstance(services, dict)
    return next(s for s in services["services"] if s["name"] == name)


def install_shipped(pid1: Pid1, *names: str, edits: dict[str, str] | None = None) -> None:
    folder = pid1.path("services.d")
    folder.mkdir(exist_ok=True)
    for name in names:
        source = REPO / "services.d" / name
        if not source.exists():
            source = REPO / "images" / "desktop" / "services.d" / name
        text = source.read_text()
        for old, new in (edits or {}).items():
            assert old in text, f"{name} no longer contains {old!r}"
            text = text.replace(old, new)
        (folder / name).write_text(text)


def _agent_env(pid1: Pid1, plane: ControlPlane, **extra: str) -> dict[str, str]:
    install_shipped(pid1, "revdial-agent.toml")
    for step in ("02-helix-hide-proc", "50-helix-revdial"):
        shutil.copy(REPO / "cont-init.d" / step, pid1.cont_init / step)
    return {
        "PATH": f"{STANDINS}:{HELIX_INIT.parent}:{pid1.env['PATH']}",
        "HELIX_API_URL": f"http://127.0.0.1:{plane.port}",
        "HELIX_SESSION_ID": "ses_demo42",
        "RUNNER_TOKEN": TOKEN,
        **extra,
    }


def _state(pid1: Pid1, name: str) -> object:
    """A service's state, None while the init has no services yet."""
    return service(pid1, name)["state"] if status(pid1)["services"] else None


def _as_user_in_the_level(pid1: Pid1, running: object, uid: int, script: str) -> str:
    """Run `script` inside the init's PID and mount namespaces (its /proc) as `uid`."""
    init_pid = running.init_pid()  # type: ignore[attr-defined]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELIX_INIT_")}
    env.update((k, v) for k, v in pid1.env.items() if k.startswith("HELIX_INIT_"))
    done = subprocess.run(
        ["nsenter", "-t", str(init_pid), "-p", "-m", "--",
         "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sh", "-c", script],
        capture_output=True, timeout=30, env=env,
    )  # fmt: skip
    return (done.stdout + done.stderr).decode(errors="replace")


READ_EVERYTHING = (
    "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ /proc/[0-9]*/status 2>/dev/null | tr '\\0' ' ';"
    " ps axww -o pid,user,args; ls /proc;"
    f" {HELIX_INIT} status --json; {HELIX_INIT} env revdial-agent;"
    ' cat "$HELIX_INIT_SERVICE_LOG_DIR"/* "$HELIX_INIT_LOG_DIR"/* 2>&1'
)


def test_the_real_revdial_client_flags_reconnect_on_their_own_and_hide_the_token(
    pid1: Pid1,
) -> None:
    plane = ControlPlane(pid1.root, free_port())
    plane.start()
    pid1.env.update(_agent_env(pid1, plane))
    running = pid1.start("sleep", "120")
    try:
        wait_until(lambda: plane.runners() == ["sandbox-ses_demo42"], 20, "the agent to connect",
                   alive=running.alive)  # fmt: skip
        first = service(pid1, "revdial-agent")
        # The real flags, in order; the token only at exec (status shows the placeholder).
        agents = [p for p in ns_processes(running) if any("revdial-client" in a for a in p.argv)]
        (agent_cmdline,) = [" ".join(p.argv) for p in agents]
        url = f"http://127.0.0.1:{plane.port}/api/v1/revdial"
        assert f"-server {url} -runner-id sandbox-ses_demo42 -token {TOKEN} -local " in (
            agent_cmdline
        ), agent_cmdline
        # The control plane goes away: the client retries on its own, is never restarted.
        plane.stop()
        wait_until(lambda: "RevDial connection error" in running.output(), 20,
                   "the client to notice the outage", alive=running.alive)  # fmt: skip
        plane.start()
        wait_until(lambda: plane.runners() == ["sandbox-ses_demo42"], 20,
                   "the agent to reconnect by itself", alive=running.alive)  # fmt: skip
        agent = service(pid1, "revdial-agent")
        assert agent["state"] == "ready"
        assert agent["restarts"] == 0 and agent["pid"] == first["pid"], agent
        # Root in the level sees the token in argv (so the reads below can find it) ...
        assert TOKEN in _as_user_in_the_level(pid1, running, 0, READ_EVERYTHING)
        # ... a non-root user (the desktop user, a user's container) cannot, by any route.
        seen = _as_user_in_the_level(pid1, running, 65534, READ_EVERYTHING)
        assert TOKEN not in seen, seen
        assert "revdial-client" not in seen and "supervisord" not in seen, seen
        status_text = json.dumps(status(pid1))
        assert TOKEN not in status_text
        assert "${REVDIAL_RUNNER_TOKEN}" in status_text or TOKEN not in status_text
        assert TOKEN not in running.output()
        for log in pid1.root.rglob("*.log*"):
            assert TOKEN.encode() not in log.read_bytes(), log
        assert TOKEN.encode() not in (pid1.root / "stderr.0").read_bytes()
        # The hide-proc step said what it did.
        assert "/proc remounted with hidepid=invisible" in running.output()
    finally:
        plane.stop()
        running.signal(signal.SIGTERM)
        result = running.wait(30)
    assert result.code == 0, result.describe()
    assert "RevDial client stopped" in "\n".join(result.texts("revdial-agent")), result.describe()


def test_without_hidden_proc_the_agent_refuses_to_put_its_token_in_argv(pid1: Pid1) -> None:
    plane = ControlPlane(pid1.root, free_port())
    plane.start()
    pid1.env.update(_agent_env(pid1, plane, HELIX_HIDE_PROC="0"))
    running = pid1.start("sleep", "120")
    try:
        running.wait_for_file(pid1.run_dir / "control.sock", 20)
        wait_until(lambda: _state(pid1, "revdial-agent") == "failed", 20,
                   "the agent to be refused", alive=running.alive)  # fmt: skip
        assert plane.runners() == []
        for proc in Path("/proc").glob("[0-9]*"):
            assert TOKEN not in _cmdline(proc)
        out = running.output()
        assert "HELIX_HIDE_PROC=0: /proc left as it is" in out
        assert "does not hide root's processes (hidepid)" in out, out
    finally:
        plane.stop()
        running.signal(signal.SIGTERM)
        result = running.wait(30)
    assert result.code == 0, result.describe()


def test_desktop_bridge_waits_for_the_session_socket_without_blocking_the_session(
    pid1: Pid1,
) -> None:
    # Outside tmp_path, whose parents are root-only: the bridge runs as nobody.
    runtime = Path(tempfile.mkdtemp(prefix="helix-xdg-"))
    os.chmod(runtime, 0o777)
    # The shipped file, with what differs on this machine: the stand-in's path
    # instead of /usr/local/bin/desktop-bridge. Its `user = "${UNAME}"` runs it
    # as `nobody` here (no `retro` on this machine).
    install_shipped(pid1, "desktop-bridge.toml", edits={
        "/usr/local/bin/desktop-bridge": str(STANDINS / "desktop-bridge"),
    })  # fmt: skip
    pid1.env.update(
        PATH=f"{STANDINS}:{pid1.env['PATH']}", XDG_RUNTIME_DIR=str(runtime), UNAME="nobody"
    )
    marker = pid1.path("session-started")
    # The CMD is the desktop session: it starts before the bridge is ready
    # (before_cmd = false), then its compositor (the stand-in, as the bridge's
    # user) makes the Wayland socket, a second later.
    session = (
        f"touch {marker}; sleep 1; exec setpriv --reuid=nobody --regid=nogroup --clear-groups"
        f" {STANDINS / 'compositor'}"
    )
    running = pid1.start("sh", "-c", session)
    try:
        running.wait_for_file(marker, 20)
        assert service(pid1, "desktop-bridge")["state"] in ("waiting", "starting")
        wait_until(lambda: service(pid1, "desktop-bridge")["state"] == "ready", 30,
                   "the bridge to become ready", alive=running.alive)  # fmt: skip
        assert pid1.command("health").code == 0
        # status shows namespace pids; find the bridge from here by its command line.
        nobody = pwd.getpwnam("nobody").pw_uid
        uids = [
            proc.stat().st_uid
            for proc in Path("/proc").glob("[0-9]*")
            if str(STANDINS / "desktop-bridge") in _cmdline(proc)
        ]
        assert uids == [nobody], uids
    finally:
        running.signal(signal.SIGTERM)
        result = running.wait(30)
        shutil.rmtree(runtime, ignore_errors=True)
    assert result.code == 0, result.describe()
    assert "desktop-bridge: streaming" in result.stdout


def test_a_killed_compositor_takes_the_bridge_down_and_both_come_back(pid1: Pid1) -> None:
    """The stand-in layer's compositor service and the shipped bridge, as in the desktop image.

    KILL leaves the compositor's socket file behind: the bridge loses its
    Wayland connection and exits, and its restart waits until the restarted
    compositor accepts connections on that socket again.
    """
    runtime = Path(tempfile.mkdtemp(prefix="helix-xdg-"))
    os.chmod(runtime, 0o777)
    install_shipped(pid1, "desktop-bridge.toml", edits={
        "/usr/local/bin/desktop-bridge": str(STANDINS / "desktop-bridge"),
    })  # fmt: skip
    compositor = (STANDINS / "services.d" / "compositor.toml").read_text()
    (pid1.path("services.d") / "compositor.toml").write_text(
        compositor.replace('["compositor",', f'["{STANDINS / "compositor"}",')
    )
    pid1.env.update(
        PATH=f"{STANDINS}:{pid1.env['PATH']}", XDG_RUNTIME_DIR=str(runtime), UNAME="nobody"
    )
    running = pid1.start("sleep", "120")
    try:
        running.wait_for_file(pid1.run_dir / "control.sock", 20)
        for name in ("compositor", "desktop-bridge"):
            wait_until(lambda n=name: _state(pid1, n) == "ready", 30,  # type: ignore[misc]
                       f"{name} to be ready", alive=running.alive)  # fmt: skip
        (pid,) = [
            int(proc.name)
            for proc in Path("/proc").glob("[0-9]*")
            if str(STANDINS / "compositor") in _cmdline(proc)
        ]
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: all(
                service(pid1, n)["state"] == "ready" and service(pid1, n)["restarts"] == 1
                for n in ("compositor", "desktop-bridge")
            ),
            30, "both services ready again after one restart each", alive=running.alive,
        )  # fmt: skip
        assert pid1.command("health").code == 0
        assert (runtime / "wayland-0").is_socket()
    finally:
        running.signal(signal.SIGTERM)
        result = running.wait(30)
        shutil.rmtree(runtime, ignore_errors=True)
    assert result.code == 0, result.describe()
    assert "desktop-bridge: lost the compositor at" in result.stdout
    assert result.stdout.count("compositor: Wayland display wayland-0") == 2, result.stdout
    # a TERMed compositor cleans up after itself, as libwayland does
    assert "compositor: display closed" in result.stdout


def test_helix_disable_desktop_leaves_the_bridge_off_and_says_why(pid1: Pid1) -> None:
    install_shipped(pid1, "desktop-bridge.toml", edits={
        "/usr/local/bin/desktop-bridge": str(STANDINS / "desktop-bridge"),
    })  # fmt: skip
    pid1.env.update(UNAME="nobody", HELIX_DISABLE_DESKTOP="1")
    running = pid1.start("sleep", "120")
    try:
        running.wait_for_file(pid1.run_dir / "control.sock", 20)
        services = status(pid1)["services"]
        assert isinstance(services, dict)
        assert services["services"] == []
        assert [d["name"] for d in services["disabled"]] == ["desktop-bridge"]
        assert "HELIX_DISABLE_DESKTOP" in services["disabled"][0]["reason"]
    finally:
        running.signal(signal.SIGTERM)
        result = running.wait(30)
    assert result.code == 0, result.describe()


def test_the_control_plane_reaches_the_agents_local_address_through_its_tunnel(
    pid1: Pid1,
) -> None:
    """RevDial's point: the API dials back to the level's local service (conn-ready, data WS)."""
    plane = ControlPlane(pid1.root, free_port())
    plane.start()
    www = pid1.path("www")
    www.mkdir()
    (www / "hello").write_text("hello through RevDial\n")
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www),
         str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pid1.env.update(_agent_env(pid1, plane, HELIX_REVDIAL_LOCAL_ADDR=f"127.0.0.1:{port}"))
    running = pid1.start("sleep", "120")
    try:
        wait_until(lambda: plane.runners() == ["sandbox-ses_demo42"], 20, "the agent to connect",
                   alive=running.alive)  # fmt: skip
        proxy = f"http://127.0.0.1:{plane.port}/api/v1/runners/sandbox-ses_demo42/proxy"
        wait_until(lambda: _get(f"{proxy}/hello")[0] == 200, 10, "the local server")
        for _ in range(3):  # one data connection per dial, the control connection kept
            assert _get(f"{proxy}/hello") == (200, "hello through RevDial\n")
        assert _get(f"{proxy}/missing")[0] == 404  # the local server's own answer
        assert plane.runners() == ["sandbox-ses_demo42"]
        assert service(pid1, "revdial-agent")["restarts"] == 0
    finally:
        web.terminate()
        web.wait(10)
        plane.stop()
        running.signal(signal.SIGTERM)
        result = running.wait(30)
    assert result.code == 0, result.describe()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""
