"""The process tier's harness: the real helix-init as PID 1 of a new PID namespace.

Runs as root: `unshare --pid --fork --mount-proc helix-init ...`. Each test
gets its own cont-init.d, cont-finish.d, run and log folders under tmp_path,
pointed at by HELIX_INIT_* variables, and a clean environment (the `pid1`
fixture of tests/process/conftest.py makes one `Pid1` per test).

Why signals go to the init's host pid and only after a marker: `unshare --fork`
makes the init a child of unshare (found through /proc/PID/task/*/children),
and a namespace's PID 1 only receives the signals it has installed a handler
for; a signal sent before the init is observably ready (the CMD wrote a
marker) could be dropped. Nothing here sleeps for readiness: every wait is a
process exit with a timeout or a poll for a condition with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELIX_INIT = Path(sys.prefix) / "bin" / "helix-init"
PYTHON = os.path.realpath(sys.executable)  # the real interpreter, not a pyenv shim
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[[^\]]+\] ")
_LOG_SOURCE = re.compile(r"^\S+ \[([^\]]+)\] (.*)$", re.DOTALL)
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
POLL = 0.01


REPO = Path(__file__).resolve().parents[2]
IMAGES_LAUNCHER = REPO / "images" / "helix-init"
IMAGES_PYTHON = "/usr/bin/python3"  # what the launcher's first line runs in the images
IMAGES_PACKAGES = "/usr/lib/python3/dist-packages"  # where the images install helix_init


def image_launcher(folder: Path) -> Path:
    """The images' launcher (images/helix-init) as written, run by this venv's interpreter
    over this checkout's helix_init: only the interpreter and the packages' folder differ."""
    packages = folder / "dist-packages"
    packages.mkdir()
    (packages / "helix_init").symlink_to(REPO / "helix_init")
    first, rest = IMAGES_LAUNCHER.read_text().split("\n", 1)
    assert IMAGES_PYTHON in first, (
        f"{IMAGES_LAUNCHER}: its first line no longer runs {IMAGES_PYTHON}"
    )
    launcher = folder / "helix-init-image"
    launcher.write_text(
        first.replace(IMAGES_PYTHON, PYTHON) + "\n" + rest.replace(IMAGES_PACKAGES, str(packages))
    )
    launcher.chmod(0o755)
    return launcher


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
    poll: float = POLL,
) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds or once `alive()` is false."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not alive():
            if condition():
                return
            raise AssertionError(f"gave up waiting for {what}: the process ended")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


@dataclass(frozen=True)
class Finished:
    """A finished helix-init run: exit code, output and how long it took."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def texts(self, source: str) -> list[str]:
        """The text of every log line whose [source] is `source` (e.g. a step name)."""
        found = []
        for line in self.lines:
            m = _LOG_SOURCE.match(line)
            if LOG_LINE.match(line) and m and m.group(1) == source:
                found.append(m.group(2))
        return found

    def init_texts(self) -> list[str]:
        return self.texts("helix-init")

    def errors(self) -> list[str]:
        return [t.removeprefix("ERROR: ") for t in self.init_texts() if t.startswith("ERROR: ")]

    def warnings(self) -> list[str]:
        return [t.removeprefix("WARNING: ") for t in self.init_texts() if t.startswith("WARNING: ")]

    def has(self, fragment: str) -> bool:
        return any(fragment in t for t in self.init_texts())

    def describe(self) -> str:
        tail = "\n".join(self.lines[-60:])
        return f"exit {self.code} after {self.seconds:.2f}s\n--- stdout (tail)\n{tail}\n" + (
            f"--- stderr\n{self.stderr[-4000:]}"
        )


class Running:
    """A helix-init started by the harness; its output goes to files (never a full pipe)."""

    def __init__(self, popen: subprocess.Popen[bytes], out: Path, err: Path, pid1: bool) -> None:
        self.popen = popen
        self._out = out
        self._err = err
        self._pid1 = pid1
        self._started = time.monotonic()
        self._init_pid: int | None = None if pid1 else popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def init_pid(self, timeout: float = 5.0, poll: float = POLL) -> int:
        """The init's pid as seen from here: unshare's only child."""
        if self._init_pid is None:
            found: list[int] = []

            def child_appeared() -> bool:
                found.extend(_children(self.popen.pid))
                return bool(found)

            wait_until(
                child_appeared, timeout, "the init to be forked by unshare", self.alive, poll
            )
            self._init_pid = found[0]
        return self._init_pid

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.init_pid(), sig)

    def wait_for_file(self, path: Path, timeout: float = 10.0) -> None:
        wait_until(path.exists, timeout, f"{path} to appear", self.alive)

    def wait(self, timeout: float = 30.0) -> Finished:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            message = f"helix-init still running after {timeout:g}s:\n{self.output()}"
            raise AssertionError(message) from None
        return Finished(
            code,
            self._out.read_bytes().decode("utf-8", "backslashreplace"),
            self._err.read_bytes().decode("utf-8", "backslashreplace"),
            time.monotonic() - self._started,
        )

    def output(self) -> str:
        return self._out.read_bytes().decode("utf-8", "backslashreplace")[-4000:]

    def kill(self) -> None:
        """Kill the init (and with it its whole PID namespace) and unshare."""
        if self.alive():
            for pid in (*_children(self.popen.pid), self.popen.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            pids.extend(int(p) for p in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return pids


class Pid1:
    """Builds the drop-in folders of one test and runs helix-init over them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cont_init = root / "cont-init.d"
        self.cont_finish = root / "cont-finish.d"
        self.run_dir = root / "run"
        self.log_dir = root / "log"
        for folder in (self.cont_init, self.cont_finish):
            folder.mkdir()
        self.env: dict[str, str] = {
            "PATH": BASE_PATH,
            "HOME": "/root",
            "LC_ALL": "C.UTF-8",
            "HELIX_INIT_CONT_INIT_DIR": str(self.cont_init),
            "HELIX_INIT_CONT_FINISH_DIR": str(self.cont_finish),
            "HELIX_INIT_SERVICES_DIR": str(root / "services.d"),
            "HELIX_INIT_RUN_DIR": str(self.run_dir),
            "HELIX_INIT_LOG_DIR": str(self.log_dir),
            "HELIX_INIT_SERVICE_LOG_DIR": str(root / "service-logs"),
            "HELIX_INIT_STEP_TIMEOUT": "20",  # no test step may hang a test for long
            "HELIX_INIT_SH_STEP_TIMEOUT": "20",  # (*.sh steps have none by default)
            # s6-overlay's runtime folders (written when a test sets S6_* or makes a tree)
            # stay in the test's folder, never the host's /run.
            "HELIX_INIT_S6_RC_DIR": str(root / "s6-overlay" / "s6-rc.d"),
            "HELIX_INIT_S6_ENV_DIR": str(root / "s6" / "container_environment"),
            "HELIX_INIT_S6_RESULTS_DIR": str(root / "s6-linux-init-container-results"),
            "HELIX_INIT_S6_BASEDIR": str(root / "s6" / "basedir"),
        }
        self._started: list[Running] = []
        self._mounts: list[str] = []  # private_accounts, private_opt: see _wrapper
        self._wrapper: list[str] = []  # runs between unshare and helix-init, then execs it

    def private_accounts(self) -> None:
        """Give the init's mount namespace its own /etc, /home and /run/user, kept across runs.

        /etc is an overlay over the host's (the upper layer under this test's
        folder), /home and /run/user binds of empty folders: the user step's
        useradd and usermod (and a GOW image's own user script) change only
        them, and a second run sees what the first made.
        """
        names = ("etc-upper", "etc-work", "home", "run-user")
        upper, work, home, run_user = (self.root / n for n in names)
        for folder in (upper, work, home, run_user):
            folder.mkdir(exist_ok=True)
        self._mount(
            f"mount -t overlay hx-etc -o lowerdir=/etc,upperdir={upper},workdir={work} /etc",
            f"mount --bind {home} /home",
            f"mkdir -p /run/user && mount --bind {run_user} /run/user",
        )

    def private_opt(self) -> Path:
        """Give the init's mount namespace its own /opt (a folder of this test, returned), so
        an image layout such as GOW's /opt/gow can be built at its real path."""
        opt = self.root / "opt"
        opt.mkdir(exist_ok=True)
        self._mount(f"mount --bind {opt} /opt")
        return opt

    def _mount(self, *commands: str) -> None:
        """Add mount commands to the wrapper (the init's own mount namespace)."""
        self._mounts += commands
        self._wrapper = ["sh", "-c", " && ".join([*self._mounts, 'exec "$@"']), "sh"]

    def path(self, name: str) -> Path:
        """A path in this test's folder, for markers and files shared with the init."""
        return self.root / name

    def step(self, name: str, text: str | bytes, mode: int = 0o755, folder: str = "init") -> Path:
        """Write a drop-in; folder "init" (cont-init.d) or "finish" (cont-finish.d)."""
        path = (self.cont_init if folder == "init" else self.cont_finish) / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        path.chmod(mode)
        return path

    def finish_step(self, name: str, text: str | bytes, mode: int = 0o755) -> Path:
        return self.step(name, text, mode, folder="finish")

    def idle_service(self) -> None:
        """services.d/idle.toml: one service that only sleeps, so that supervisord runs."""
        services = self.root / "services.d"
        services.mkdir(exist_ok=True)
        (services / "idle.toml").write_text('command = ["sleep", "1000"]\n')

    def start_running(self, env: Mapping[str, str] | None = None) -> Running:
        """Start helix-init with a CMD that stays until TERM; return once the CMD runs."""
        marker = self.path("cmd-running")
        running = self.start("sh", "-c", f'touch "{marker}"; sleep 60 & wait $!', env=env)
        running.wait_for_file(marker)
        return running

    def start(
        self,
        *cmd: str,
        env: Mapping[str, str] | None = None,
        pid1: bool = True,
        program: str = str(HELIX_INIT),
    ) -> Running:
        """Start helix-init with CMD `cmd`: as PID 1 of a new PID namespace unless pid1=False.

        `program`: what to run instead of the venv's helix-init (the images' /entrypoint.sh)."""
        n = len(self._started)
        out, err = self.root / f"stdout.{n}", self.root / f"stderr.{n}"
        assert pid1 or not self._wrapper, "private mounts need the init's own namespace"
        argv = [*self._wrapper, program, *cmd]
        if pid1:
            argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv]
        with open(out, "ab") as fout, open(err, "ab") as ferr:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fout,
                stderr=ferr,
                env={**self.env, **(env or {})},
                cwd=self.root,
                start_new_session=True,
                preexec_fn=_signals_as_docker_gives_them,
            )
        running = Running(popen, out, err, pid1)
        self._started.append(running)
        return running

    def run(
        self,
        *cmd: str,
        env: Mapping[str, str] | None = None,
        pid1: bool = True,
        timeout: float = 30.0,
        program: str = str(HELIX_INIT),
    ) -> Finished:
        """Run helix-init to its end; never a traceback, whatever the test does."""
        result = self.start(*cmd, env=env, pid1=pid1, program=program).wait(timeout)
        assert_no_traceback(result)
        return result

    def command(self, *args: str, env: Mapping[str, str] | None = None) -> Finished:
        """An operator command (`check`, `plan`, `health`), run as a plain process."""
        started = time.monotonic()
        proc = subprocess.run(
            [str(HELIX_INIT), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env={**self.env, **(env or {})},
            cwd=self.root,
            timeout=30,
        )
        result = Finished(
            proc.returncode,
            proc.stdout.decode("utf-8", "backslashreplace"),
            proc.stderr.decode("utf-8", "backslashreplace"),
            time.monotonic() - started,
        )
        assert_no_traceback(result)
        return result

    def close(self) -> None:
        for running in self._started:
            running.kill()


def assert_no_traceback(result: Finished) -> None:
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr, result.describe()


# --- inside the init's PID namespace (tests/process/faults, test_security) --------
# Every process of a running init's namespace, seen from the host: its pid here
# (to signal it) and there (what `status` reports), its parent, its state
# (zombies included, state "Z") and its argv; and the init's status, asked on
# its control socket as `helix-init status --json` would.


@dataclass(frozen=True)
class NsProc:
    host_pid: int
    ns_pid: int
    host_ppid: int
    state: str  # R, S, D, Z, ...
    argv: tuple[str, ...]

    def carries(self, marker: str) -> bool:
        return marker in self.argv


def _signals_as_docker_gives_them() -> None:
    """In the init's process, before its exec: every signal at its default, as Docker starts PID 1.

    A test run started under `nohup` (HUP ignored) or from a shell that ignores
    a signal would otherwise hand that ignore to every init here, which keeps
    it for its children as it must (tini's sigconf rule), and the signal
    tests would see HUP ignored in a step. The sigconf test sets its own
    ignore inside the command it starts.
    """
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGWINCH, signal.SIGALRM):  # fmt: skip
        signal.signal(sig, signal.SIG_DFL)


def pids_in_namespace(pid: int) -> Iterator[int]:
    """Host pids of every process (zombies too) in the PID namespace of `pid`; none once it
    has ended. Also what bench/ scans namespaces with."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return  # its namespace is gone
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry.name}/ns/pid") == ns:
                yield int(entry.name)
        except OSError:
            continue


def ns_processes(running: Running) -> list[NsProc]:
    """Every process (zombies too) in the PID namespace of `running`'s init."""
    found = []
    for pid in pids_in_namespace(running.init_pid()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        found.append(
            NsProc(
                host_pid=pid,
                ns_pid=int(fields["NSpid"].split()[-1]),
                host_ppid=int(fields["PPid"]),
                state=fields["State"].split()[0],
                argv=argv,
            )
        )
    return found


def init_status(run_dir: Path, timeout: float = 5.0) -> dict[str, Any]:
    """The init's `status --json` answer, asked on its control socket."""
    from helix_init import control

    answer = control.request(run_dir / "control.sock", {"cmd": "status"}, timeout)
    status: dict[str, Any] = answer["status"]
    return status
