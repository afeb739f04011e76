"""Signals PID 1 must never lose: held (blocked) from the entry point's first statement on.

The kernel discards a signal sent to a namespace's PID 1 while it has no
handler for it, so before this the imports (~150 ms) were a window in which
`docker stop` right after `docker run` was lost and ended in KILL after its
timeout. A blocked signal is queued instead, even for PID 1: `hold()` blocks
every signal the init acts on or forwards, first thing, and `release()`
hands the queued ones to the handlers once they exist and restores the mask.

The signal sets follow tini: TERM and INT stop the container; every other
asynchronous signal is forwarded to the CMD (PIPE is not: the init's own
writes raise it; CHLD is the reaper's). A signal the caller had ignored (a
shell's `trap '' HUP` before `exec helix-init`) stays ignored for every child
(see `Held.ignored`), as it would under a shell entrypoint or tini. PIPE and
XFSZ cannot be told: the interpreter ignores both before any of our code runs,
and subprocess resets them for children (restore_signals).
"""

from __future__ import annotations

# _signal, the builtin module under `signal`: importing `signal` itself loads
# enum (~15 ms, as long as the interpreter's own start), and this module is
# what the entry point imports before it can hold anything. Only name() needs
# the enum, and imports it when called. No `typing` either, for the same reason.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
else:
    import _signal as signal

STOP = (signal.SIGTERM, signal.SIGINT)
_NAMED = (
    "SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGWINCH SIGCONT SIGALRM SIGURG SIGXCPU SIGXFSZ "
    "SIGVTALRM SIGPROF SIGIO SIGPWR SIGSYS SIGTSTP"
)
FORWARDED: tuple[int, ...] = tuple(
    [int(getattr(signal, name)) for name in _NAMED.split() if hasattr(signal, name)]
    + list(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
)
HELD: frozenset[int] = frozenset(int(s) for s in STOP) | frozenset(FORWARDED)
# Ignored by the interpreter itself at startup: an ignore of these is not the caller's.
_SET_BY_PYTHON = frozenset({int(signal.SIGPIPE), int(signal.SIGXFSZ)})


class Held:
    """What `hold()` found: the caller's mask and the signals the caller had ignored."""

    __slots__ = ("ignored", "mask")  # not a dataclass: this module must import in no time

    def __init__(self, mask: frozenset[int], ignored: tuple[int, ...]) -> None:
        self.mask = mask
        self.ignored = ignored


def hold() -> Held:
    """Block every signal the init acts on; call first, before any import that takes time."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    ignored = tuple(
        sig for sig in sorted(HELD - _SET_BY_PYTHON) if signal.getsignal(sig) == signal.SIG_IGN
    )
    return Held(frozenset(int(s) for s in before), ignored)


def release(held: Held, dispatch: Callable[[int], None] | None = None) -> None:
    """Restore the caller's mask, less the held signals (no child may inherit them blocked).

    With `dispatch`, the signals that arrived while held are taken here and
    passed to it, in order, before anything else runs; without it they are
    delivered as usual once unblocked (an operator command: TERM ends it).
    """
    if dispatch is not None:
        while True:
            info = signal.sigtimedwait(HELD, 0)
            if info is None:
                break
            dispatch(info.si_signo)
    signal.pthread_sigmask(signal.SIG_SETMASK, held.mask - HELD)


def name(sig: int) -> str:
    """SIGTERM, SIGRTMIN+3: a signal's name for the log."""
    import signal as named  # the enum; by now (a log line) it is loaded anyway

    try:
        return named.Signals(sig).name
    except ValueError:
        return f"SIGRTMIN+{sig - signal.SIGRTMIN}"


def keep_ignored(signals: tuple[int, ...]) -> Callable[[], None] | None:
    """A child's pre-exec step re-ignoring what the caller had ignored; None when nothing was."""
    if not signals:
        return None

    def ignore() -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)

    return ignore
