"""The security check list, verified on a running init (as PID 1, real supervisord).

1. Only root controls the init: the control socket is root's and 0600,
   supervisord's is root's and 0700, each service's sd_notify socket 0600 (no
   one else can declare it ready); the run dir is never group/world-writable;
   this holds even when the init is started with umask 000.
2. A non-root user gets exit 77 and "permission denied" from every control
   command (status, health, start, stop, restart, logs), changes nothing, and
   can read none of the files that may hold secrets: launch files, env.json,
   supervisord.conf, the steps' env reports, the service logs (a service's
   raw output, which the init cannot mask, so its folder is root only).
3. Secrets appear in no process's argv, in no log file (but the raw log of a
   service that prints its own secret), not on stdout and not in
   `status --json`; a value exported by a cont-init step is named, never shown.
4. Nothing listens on TCP but what a service declares: helix-init and
   supervisord hold no TCP listener and no UDP socket.

Not here: the docker socket (root:docker, 0660) needs a real dockerd; the
system tier checks it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pid1 import (
    HELIX_INIT,
    PYTHON,
    Pid1,
    Running,
    init_status,
    ns_processes,
    wait_until,
)

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "services"
NO_PERMISSION = 77
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
TOKEN = "tok-3b81e9-runner-token-never-shown"
FILE_SECRET = "fil-77c0d2-file-secret-never-shown"
EXPORTED = "exp-5a5a19-exported-password-never-shown"
SECRETS = (TOKEN, FILE_SECRET, EXPORTED)
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def _leaks(data: bytes | str) -> list[str]:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return [s for s in SECRETS if s in text]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_nobody(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AS_NOBODY, *argv], env=env or {}, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A world-traversable folder for the run and log dirs: a refusal must come from their
    own modes, not from a 0700 folder on the way (pytest's tmp_path is 0700)."""
    parent = Path(tempfile.mkdtemp(prefix="helix-security-", dir="/tmp"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _service(pid1: Pid1, name: str, text: str) -> None:
    folder = pid1.root / "services.d"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text)


def _state(run_dir: Path, name: str) -> dict[str, object]:
    """The service's status; {} before the init has reached its services."""
    services = init_status(run_dir)["services"] or {"services": []}
    return next((s for s in services["services"] if s["name"] == name), {})


def _tcp_listeners(running: Running) -> dict[int, list[tuple[int, str]]]:
    """ns pid -> [(port, proto)] for every TCP listener and UDP socket of the namespace."""
    sockets: dict[str, tuple[int, str]] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if proto.startswith("udp") or fields[3] == LISTEN:
                sockets[fields[9]] = (port, proto)
    found: dict[int, list[tuple[int, str]]] = {}
    for proc in ns_processes(running):
        try:
            links = [os.readlink(f) for f in Path(f"/proc/{proc.host_pid}/fd").iterdir()]
        except OSError:
            continue
        for link in links:
            inode = link.removeprefix("socket:[").removesuffix("]")
            if link.startswith("socket:[") and inode in sockets:
                found.setdefault(proc.ns_pid, []).append(sockets[inode])
    return found


def test_the_security_check_list(pid1: Pid1, open_parent: Path) -> None:
    run_dir, log_dir = open_parent / "run", open_parent / "service-logs"
    pid1.env.update(
        HELIX_INIT_RUN_DIR=str(run_dir),
        HELIX_INIT_SERVICE_LOG_DIR=str(log_dir),
        HELIX_INIT_LOG_DIR=str(open_parent / "init-log"),
    )
    port = _free_port()
    hashes, held = pid1.path("hashes"), pid1.path("never")
    secret_file = pid1.path("file-secret")
    secret_file.write_text(FILE_SECRET + "\n")
    secret_file.chmod(0o600)
    pid1.step("10-export.sh", f"export DB_PASSWORD={EXPORTED}\n")
    server = [PYTHON, "-I", str(EXAMPLES / "server.py"), "--listen", f"127.0.0.1:{port}"]
    _service(
        pid1,
        "web",
        f"command = {json.dumps(server)}\n"
        f'ready = {{ tcp = "127.0.0.1:{port}", interval = 0.02 }}\n',
    )
    hasher = [PYTHON, "-I", str(EXAMPLES / "secret_hasher.py"), "--out", str(hashes)]
    _service(
        pid1,
        "agent",
        f"command = {json.dumps([*hasher, 'TOKEN', 'FILE_TOKEN'])}\n"
        'secrets.TOKEN = { env = "RUNNER_TOKEN" }\n'
        f'secrets.FILE_TOKEN = {{ file = "{secret_file}" }}\n'
        f'ready = {{ command = ["test", "-e", "{hashes}"], interval = 0.02 }}\n',
    )
    # A careless service that prints its own secret: masked on stdout; the raw
    # line stays in its own log file, which only root can read.
    _service(
        pid1,
        "chatty",
        'command = ["sh", "-c", "echo \\"my token is $TOKEN\\"; exec sleep 1000"]\n'
        'secrets.TOKEN = { env = "RUNNER_TOKEN" }\n',
    )
    # Never ready on its own: it waits for a file that never appears.
    notifier = [PYTHON, "-I", str(EXAMPLES / "notifier.py"), "--go-file", str(held)]
    _service(
        pid1,
        "notified",
        f"command = {json.dumps(notifier)}\nready = {{ notify = true, timeout = 0 }}\n",
    )

    old_umask = os.umask(0)  # the init's umask must not decide any of this
    try:
        running = pid1.start(env={"RUNNER_TOKEN": TOKEN})
    finally:
        os.umask(old_umask)

    def ready(name: str) -> bool:
        return (run_dir / "control.sock").exists() and _state(run_dir, name).get("state") == "ready"

    for name in ("web", "agent", "chatty"):
        wait_until(functools.partial(ready, name), 15, f"{name} to be ready", running.alive)
    notified = run_dir / "notify" / "notified.sock"
    wait_until(notified.exists, 15, "the notify socket", running.alive)
    chatty_log = log_dir / "chatty.log"
    wait_until(lambda: TOKEN.encode() in chatty_log.read_bytes(), 10, "chatty to print")
    web_before = _state(run_dir, "web")

    # 1. Modes and owners.
    for path, mode, kind in (
        (run_dir / "control.sock", 0o600, stat.S_ISSOCK),
        (run_dir / "supervisor.sock", 0o700, stat.S_ISSOCK),
        (notified, 0o600, stat.S_ISSOCK),
        (run_dir / "services", 0o700, stat.S_ISDIR),
        (run_dir / "steps", 0o700, stat.S_ISDIR),
        (log_dir, 0o700, stat.S_ISDIR),
        (run_dir / "env.json", 0o600, stat.S_ISREG),
        (run_dir / "supervisord.conf", 0o600, stat.S_ISREG),
        (run_dir / "services" / "agent.json", 0o600, stat.S_ISREG),
    ):
        st = path.lstat()
        assert kind(st.st_mode) and st.st_uid == 0, path
        assert stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))
    assert stat.S_IMODE(run_dir.stat().st_mode) & 0o022 == 0, oct(run_dir.stat().st_mode)

    # 2. A non-root user controls nothing and reads nothing.
    for argv in (
        ["status"],
        ["status", "--json"],
        ["health"],
        ["start", "web"],
        ["stop", "web"],
        ["restart", "web"],
        ["logs", "web"],
        ["logs", "-f", "chatty"],
    ):
        refused = _as_nobody(str(HELIX_INIT), *argv, env=pid1.env)
        assert refused.returncode == NO_PERMISSION, (argv, refused)
        assert "permission denied" in refused.stderr, (argv, refused.stderr)
        assert refused.stdout == "" and "Traceback" not in refused.stderr, (argv, refused)
    probe = (
        "import json, socket, sys\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        if path.endswith('.sock'):\n"
        "            kind = socket.SOCK_DGRAM if '/notify/' in path else socket.SOCK_STREAM\n"
        "            s = socket.socket(socket.AF_UNIX, kind)\n"
        "            if kind == socket.SOCK_DGRAM:\n"
        "                s.sendto(b'READY=1', path)\n"
        "            else:\n"
        "                s.connect(path)\n"
        "        else:\n"
        "            open(path, 'rb').read()\n"
        "        out[path] = 'allowed'\n"
        "    except OSError as exc:\n"
        "        out[path] = type(exc).__name__\n"
        "print(json.dumps(out))\n"
    )
    targets = [
        run_dir / "control.sock",
        run_dir / "supervisor.sock",
        notified,
        run_dir / "env.json",
        run_dir / "supervisord.conf",
        run_dir / "services" / "agent.json",
        run_dir / "steps" / "10-export.sh.env",
        chatty_log,
        log_dir / "supervisord.log",
    ]
    for target in targets:
        assert target.exists(), target
    tried = _as_nobody(PYTHON, "-I", "-c", probe, *map(str, targets))
    assert tried.returncode == 0, tried.stderr
    assert json.loads(tried.stdout) == {str(t): "PermissionError" for t in targets}
    assert _state(run_dir, "notified")["state"] == "starting"  # the READY=1 did not count
    web_after = _state(run_dir, "web")
    assert (web_after["state"], web_after["pid"]) == (web_before["state"], web_before["pid"])

    # 3. Secrets: no argv anywhere on the host, no status output.
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            assert not _leaks(cmdline), (entry.name, cmdline)
    for argv in (["status", "--json"], ["status"]):
        shown = pid1.command(*argv)
        assert shown.code == 0 and not _leaks(shown.stdout + shown.stderr), argv

    # 4. TCP: the declared port, held by the service; nothing by the init or supervisord.
    sockets = _tcp_listeners(running)
    web_pid = int(str(web_after["pid"]))
    assert sockets == {web_pid: [(port, "tcp")]}, sockets
    engine = init_status(run_dir)["services"]["engine"]["pid"]
    assert 1 not in sockets and engine not in sockets

    running.signal(signal.SIGTERM)
    result = running.wait(timeout=30)
    assert result.code == 0, result.describe()
    # 3, continued: stdout, stderr and every log file, the careless service's own excepted.
    assert not _leaks(result.stdout + result.stderr), result.describe()
    assert "[chatty] my token is ********" in result.stdout
    assert "step 10-export.sh exported DB_PASSWORD" in result.stdout
    logs = [p for p in open_parent.rglob("*") if p.is_file() and ".log" in p.name]
    assert {p.name for p in logs} >= {"init.log", "supervisord.log", "agent.log", "web.log"}
    # The init's own log holds cont-init output, which is not masked: root only,
    # even though this init ran under umask 000.
    (init_log,) = [p for p in logs if p.name == "init.log"]
    assert stat.S_IMODE(init_log.stat().st_mode) == 0o600, oct(init_log.stat().st_mode)
    for path in logs:
        if path != chatty_log:
            assert not _leaks(path.read_bytes()), path


def test_the_cmd_never_gets_a_variable_a_service_takes_a_secret_from(pid1: Pid1) -> None:
    """The desktop session (the CMD, as the desktop user) could read it in its own environ."""
    _service(
        pid1,
        "agent",
        'command = ["sleep", "1000"]\nsecrets.TOKEN = { env = "RUNNER_TOKEN" }\n',
    )
    seen = pid1.path("cmd-env")
    result = pid1.run("sh", "-c", f"env > {seen}", env={"RUNNER_TOKEN": TOKEN, "PLAIN": "kept"})
    assert result.code == 0, result.describe()
    lines = seen.read_text().splitlines()
    assert "PLAIN=kept" in lines
    assert not [line for line in lines if TOKEN in line or line.startswith("RUNNER_TOKEN=")]
