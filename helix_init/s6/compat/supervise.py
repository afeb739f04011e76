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
  timeout-kill, kept here as s6-supervise keeps it: MS after SIG came from a
  stop (supervisord's, or the init's), the run is KILLed, and its finish runs
  with 256 and 9. supervisord's own KILL comes only after the kill and the
  finish's time (helix-init sets its stopwaitsecs so): were it first, it
  would end this process too, and no finish would run.
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


def wait_run(child: int, watched: set[int], down_signal: int, kill_after_ms: int) -> int:
    """The run's wait status. The watched signals (blocked) are taken one at a time and
    passed on; the first down-signal from a stop, sent by supervisord (this process's
    parent) or the init (pid 1), KILLs the run kill_after_ms later, as s6-supervise's
    timeout-kill: not a `s6-svc -t`, nor the run's own signal to its group. The run is
    reaped only here, so until then its pid is its own: the KILL cannot reach another."""
    deadline: float | None = None
    while True:
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == child:
            return status
        if deadline is None:
            info = signal.sigwaitinfo(watched)
        else:
            got = signal.sigtimedwait(watched, max(0.0, deadline - time.monotonic()))
            if got is None:  # timeout-kill
                _pass_on(child, signal.SIGKILL)
                deadline, kill_after_ms = None, 0
                continue
            info = got
        if info.si_signo == signal.SIGCHLD:
            continue
        _pass_on(child, info.si_signo)
        stop = info.si_signo == down_signal and info.si_pid in (os.getppid(), 1)
        if stop and kill_after_ms > 0 and deadline is None:
            deadline = time.monotonic() + kill_after_ms / 1000


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
    # Blocked from before the fork: none can end this process before the run is
    # watched, and each is taken with its sender (wait_run).
    watched = {getattr(signal, name) for name in FORWARD} | {signal.SIGCHLD, down_signal}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    child = os.fork()
    if child == 0:
        for name in FORWARD:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)
        os._exit(run_exec(args))
    if notify is not None:
        os.close(notify)
    status = wait_run(child, watched, down_signal, kill_after_ms)
    if os.WIFSIGNALED(status):
        code, sig = 256, os.WTERMSIG(status)
    else:
        code, sig = os.waitstatus_to_exitcode(status), 0
    for name in FORWARD:
        signal.signal(
            getattr(signal, name), signal.SIG_IGN if name != "SIGCONT" else signal.SIG_DFL
        )
    signal.pthread_sigmask(signal.SIG_UNBLOCK, watched)  # the finish inherits no blocked one
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
