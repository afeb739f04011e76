"""procgroup.escaped_sessions: which sessions a step's setsid'd daemons made (pure, no /proc)."""

from __future__ import annotations

import os

from helix_init.procgroup import escaped_sessions, live_processes

ME = 1
STEP = 40  # the step's own session (its leader's pid)


def test_a_setsid_daemon_handed_to_pid1_is_found_and_nothing_else() -> None:
    procs = [
        (40, ME, 40, 40),  # the step (a child we spawned), still in its own session
        (41, 40, 40, 40),  # `sleep &`: stays in the step's session (adopted by sid already)
        (50, ME, 50, 50),  # setsid'd daemon whose parent exited: handed to us
        (51, 50, 50, 50),  # its child
        (60, ME, 60, 60),  # supervisord, started beside cont-init: ours
        (70, ME, 70, 70),  # a daemon an earlier step left: already known
        (80, 79, 80, 80),  # a session whose leader's parent is alive elsewhere: not ours to take
    ]
    assert escaped_sessions(procs, ME, ours={40, 60}, known={STEP, 70}) == [50]


def test_a_double_fork_daemon_counts_once_by_session() -> None:
    procs = [(90, ME, 90, 90), (91, ME, 90, 90)]  # two of a session both handed to us
    assert escaped_sessions(procs, ME, ours=set(), known={STEP}) == [90]


def test_the_scan_sees_this_process_with_its_parent_and_session() -> None:
    me = os.getpid()
    assert (me, os.getppid(), os.getpgrp(), os.getsid(0)) in list(live_processes())
