# helix-init s6 run shim (stdlib only): what s6-supervise does around one run of a longrun
"""python -IS supervise.py [--notify N] [--finish PATH --timeout-finish MS
                          [--kill-after MS --down-signal SIG]]
                          [--stdin FIFO] [--stdout FIFO] DIR -- RUN...

Started by svcexec in the service's folder DIR, for s6 service folders (v3
longruns, services.d/NAME/):

- `--notify N` (the folder's notification-fd): fd N of the run is a pipe; a
  detached helper reads it and, at the first newline, sends READY=1 to the
  service's NOTIFY_SOCKET (helix-init's readiness), which the run never sees.
- `--finish PATH`: this process stays the run's parent, as s6-supervise is:
  it passes the stop signals on, and when the run ends it runs PATH with
  s6's arguments (the exit code, or 256 and the signal number; then 0 or the
  signal, and DIR), killed after --timeout-finish ms (default 5000). A finish
  that exits 125 means "do not restart": the service is stopped through
  helix-init's control socket, as `s6-svc -d` would. It then ends as the run
  did (same exit code, or killed by the same signal).
- `--kill-after MS --down-signal SIG` (with --finish): the folder's
  timeout-kill, kept here as s6-supervise keeps it: MS after SIG (the
  down-signal supervisord stops the service with) came, the run is KILLed,
  and its finish runs with 256 and 9. supervisord's own KILL comes only
  after the kill and the finish's time (helix-init sets its stopwaitsecs so):
  were it first, it would end this process too, and no finish would run.
- `--stdin FIFO`, `--stdout FIFO`: a logger pipeline (producer-for and
  consumer-for). The run's stdin or stdout is the FIFO (made when missing,
  root only), opened read-write so neither side ever sees EOF or EPIPE when
  the other restarts, and lines written meanwhile wait in the pipe: what
  s6-rc's fd holder does.
Without --finish it execs the run directly: no extra process.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

FORWARD = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH",
           "SIGALRM", "SIGCONT", "SIGABRT", "SIGPWR")  # fmt: skip


def relay(read_fd: int, target: str) -> None:
    data = b""
    while b"\n" not in data:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            return
        data += chunk
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"READY=1", target)
    finally:
        sock.close()


def notification_pipe(fd: int) -> None:
    """fd `fd` becomes the write end; a child process relays the first newline.

    The child stays one of the service's processes for the whole run (helix-init
    accepts READY=1 only from those, and may check the sender after the message
    came): it is never detached, and after relaying (or at EOF) it waits to be
    stopped with the service rather than exit, so it never lingers as a zombie
    of a daemon that does not reap children it did not start.
    """
    target = os.environ.pop("NOTIFY_SOCKET", None)
    r, w = os.pipe()
    if os.fork() == 0:
        try:
            os.close(w)
            if target:
                relay(r, target)
            os.close(r)
            for name in FORWARD:
                signal.signal(getattr(signal, name), signal.SIG_DFL)
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(r)
    if w != fd:
        os.dup2(w, fd, inheritable=True)
        os.close(w)
    else:
        os.set_inheritable(fd, True)


def fifo_onto(path: str, fd: int) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    opened = os.open(path, os.O_RDWR)
    os.dup2(opened, fd, inheritable=True)
    os.close(opened)


def request_stop(name: str, holder: int) -> None:
    """Once this process is gone, ask helix-init to stop the service (finish exited 125)."""
    if os.fork() != 0:
        return
    try:
        os.setsid()  # out of the service's group: its stop must not wait for us
        if os.fork() != 0:
            os._exit(0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(holder):
            time.sleep(0.01)
        run_dir = os.environ.get("HELIX_INIT_RUN_DIR") or "/run/helix-init"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect(os.path.join(run_dir, "control.sock"))
        sock.sendall(json.dumps({"cmd": "stop", "service": name}).encode() + b"\n")
        sock.recv(4096)
    except OSError:
        pass
    finally:
        os._exit(0)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_timer(child: int, down_signal: int, after_ms: int) -> None:
    """KILL the run `after_ms` after the first `down_signal` (s6-supervise's timeout-kill)."""
    import threading  # only for a finish with a kill timeout: a shim is a start's cost

    try:  # by pidfd: the KILL must never reach a process that later got the run's pid
        pidfd: int | None = os.pidfd_open(child)
    except (AttributeError, OSError):  # before Linux 5.3: the pid, as s6-supervise does
        pidfd = None

    def kill() -> None:
        try:
            if pidfd is None:
                os.kill(child, signal.SIGKILL)
            else:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:  # it ended (and was reaped) meanwhile
            pass

    armed: list[threading.Timer] = []
    forward = signal.getsignal(down_signal)

    def on_down(sig: int, frame: FrameType | None) -> None:
        if not armed:
            armed.append(threading.Timer(after_ms / 1000, kill))
            armed[0].daemon = True
            armed[0].start()
        if callable(forward):
            forward(sig, frame)
        else:
            _pass_on(child, sig)

    signal.signal(down_signal, on_down)


def main(args: list[str]) -> int:
    notify, finish, timeout_ms = None, None, 5000
    kill_after_ms, down_signal = 0, signal.SIGTERM
    fifos: list[tuple[str, int]] = []
    try:
        while args and args[0].startswith("--") and args[0] != "--":
            opt = args.pop(0)
            if opt == "--notify":
                notify = int(args.pop(0))
            elif opt == "--finish":
                finish = args.pop(0)
            elif opt == "--timeout-finish":
                timeout_ms = int(args.pop(0))
            elif opt == "--kill-after":
                kill_after_ms = int(args.pop(0))
            elif opt == "--down-signal":
                down_signal = getattr(signal, "SIG" + args.pop(0))
            elif opt in ("--stdin", "--stdout"):
                fifos.append((args.pop(0), 0 if opt == "--stdin" else 1))
            else:
                raise ValueError(opt)
        folder = args.pop(0)
        if args.pop(0) != "--" or not args:
            raise ValueError("no run")
    except (IndexError, ValueError, AttributeError) as exc:
        print(f"helix-init: supervise.py: bad arguments ({exc})", file=sys.stderr)
        return 100
    try:
        for path, fd in fifos:
            fifo_onto(path, fd)
    except OSError as exc:
        print(f"helix-init: cannot open the pipeline FIFO {exc.filename}: {exc.strerror}",
              file=sys.stderr)  # fmt: skip
        return 111
    if notify is not None:
        notification_pipe(notify)
    else:
        os.environ.pop("NOTIFY_SOCKET", None)
    if finish is None:
        return run_exec(args)
    child = os.fork()
    if child == 0:
        for name in FORWARD:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        os._exit(run_exec(args))
    if notify is not None:
        os.close(notify)
    for name in FORWARD:
        signal.signal(getattr(signal, name), lambda sig, _f: _pass_on(child, sig))
    if kill_after_ms > 0:
        kill_timer(child, down_signal, kill_after_ms)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            status = 0
            break
    if os.WIFSIGNALED(status):
        code, sig = 256, os.WTERMSIG(status)
    else:
        code, sig = os.waitstatus_to_exitcode(status), 0
    for name in FORWARD:
        signal.signal(
            getattr(signal, name), signal.SIG_IGN if name != "SIGCONT" else signal.SIG_DFL
        )
    finish_code = run_finish(finish, [str(code), str(sig), folder], timeout_ms)
    if finish_code == 125:
        request_stop(os.path.basename(folder.rstrip("/")), os.getpid())
    if sig:
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # (those two have no handler to reset)
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        time.sleep(1)
    return code if code < 256 else 1


def _pass_on(child: int, sig: int) -> None:
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass


def run_exec(argv: list[str]) -> int:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"helix-init: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return 0


def run_finish(finish: str, args: list[str], timeout_ms: int) -> int | None:
    argv = [finish, *args]
    if not os.access(finish, os.X_OK):
        argv = ["/bin/sh", finish, *args]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"helix-init: cannot run {finish}: {exc.strerror}", file=sys.stderr)
        return None
    try:
        return proc.wait(timeout=timeout_ms / 1000 if timeout_ms else None)
    except subprocess.TimeoutExpired:
        print(f"helix-init: {finish} still running after {timeout_ms} ms; killed", file=sys.stderr)
        proc.kill()
        proc.wait()
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
