"""sigmask: held signals are queued, handed to the dispatcher in order, and never left blocked.

Each case runs in an interpreter of its own: holding signals in the test
process would change pytest's own mask.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from helix_init import sigmask
from tests.support.pid1 import IMAGES_LAUNCHER, IMAGES_PYTHON


def _run(code: str) -> str:
    prelude = "import os, signal\nfrom helix_init import sigmask\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_sets_are_tinis_less_what_the_init_raises_itself() -> None:
    for sig in ("SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT", "SIGALRM"):
        assert getattr(signal, sig) in sigmask.FORWARDED, sig
    for sig in ("SIGURG", "SIGXCPU", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSYS"):
        assert getattr(signal, sig) in sigmask.FORWARDED, sig
    assert signal.SIGRTMIN + 3 in sigmask.FORWARDED
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM):
        assert sig not in sigmask.FORWARDED
    assert set(sigmask.STOP) == {signal.SIGTERM, signal.SIGINT}


def test_signals_sent_while_held_reach_the_dispatcher_in_order_then_nothing_stays_blocked() -> None:
    out = _run(
        "held = sigmask.hold()\n"
        "os.kill(os.getpid(), signal.SIGUSR2)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"  # would end us if not held
        "got = []\n"
        "sigmask.release(held, got.append)\n"
        "print(got, sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n"
    )
    assert out == f"[{int(signal.SIGUSR2)}, {int(signal.SIGTERM)}] []"


def test_the_callers_mask_is_kept_except_for_the_held_signals() -> None:
    out = _run(
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGPIPE])\n"
        "sigmask.release(sigmask.hold())\n"
        "print(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n"
    )
    assert out == f"[{int(signal.SIGPIPE)}]"


def test_the_callers_ignores_are_found_but_not_the_interpreters_own() -> None:
    out = _run("signal.signal(signal.SIGHUP, signal.SIG_IGN)\nprint(sigmask.hold().ignored)\n")
    assert out == f"({int(signal.SIGHUP)},)"  # not PIPE, not XFSZ: Python ignores those itself


def test_names_cover_real_time_signals() -> None:
    assert sigmask.name(signal.SIGTERM) == "SIGTERM"
    assert sigmask.name(signal.SIGRTMIN + 3) == "SIGRTMIN+3"


def test_the_images_launcher_blocks_the_stop_signals_before_the_interpreter_starts() -> None:
    """Its first line is coreutils' env blocking signals, then exec'ing the interpreter; a
    blocked mask survives exec, so they are queued while python3 starts, not discarded."""
    first = IMAGES_LAUNCHER.read_text().split("\n", 1)[0]
    assert len(first.encode()) < 128, "kernels before Linux 5.1 cut the #! line at 128 bytes"
    interpreter, _, argument = first.removeprefix("#!").partition(" ")
    assert interpreter == "/usr/bin/env"
    option, command = argument.removeprefix("-S ").split(" ", 1)
    assert command == f"{IMAGES_PYTHON} -S"
    names = option.removeprefix("--block-signal=").split(",")
    blocked = {signal.Signals[f"SIG{n}"] for n in names}
    issue = {"TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "WINCH"}
    assert {signal.Signals[f"SIG{n}"] for n in issue} <= blocked
    assert blocked <= sigmask.HELD  # release() unblocks exactly the held ones for children

    # What the kernel runs for the line (everything after env is one argument), here
    # with this venv's interpreter reporting the mask it started with.
    code = "print(next(l for l in open('/proc/self/status') if l.startswith('SigBlk')))"
    line = argument.replace(IMAGES_PYTHON, sys.executable)
    done = subprocess.run([interpreter, line, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    mask = int(done.stdout.split()[1], 16)
    assert {s for s in signal.Signals if mask & (1 << (s - 1))} == blocked
