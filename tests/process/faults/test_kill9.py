"""kill -9 at random: 100 faults over the whole stack, and after each the stack heals.

A fixed seed (random.Random(1234)) picks, every 0.1-0.3 s, what to KILL: a
service (dockerd, web, worker), supervisord, the svcexec wrapper between
supervisord's fork and the service's exec, and at every boot possibly the
cont-init step still running. About one fault in three lands before the
stack has settled from the previous one (mid-restart).

Invariants, checked all along by the witness inside the namespace, and by
the test with bounded polling after the faults it lets settle:
- never two copies of a service; exactly one once settled, the one status names;
- no zombie outlives 2 s; none once settled;
- dockerd is never KILLed: every TERM it got was followed by its flush and exit;
- the init exits 0 on TERM, stopped everything in order (its final sweep
  found nothing to signal), and no process of the stack is left on the host.

More than 3 supervisord deaths within 60 s end a container (exit 82, see
test_supervisord_dying_a_fourth_time_...), so when the seed picks supervisord
a fourth time, the init is stopped and booted again on the same run dir:
every boot after the first starts over the state a running init left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
from faultkit import (
    ENGINE_KILLED,
    SLOW_STEP,
    Life,
    Stack,
    assert_clean_shutdown,
    graceful_stops,
    no_marker_left,
)

from tests.support.pid1 import PYTHON, NsProc, Pid1, wait_until

pytestmark = pytest.mark.process

SEED = 1234
ROUNDS = 100
ENGINE_DEATHS_PER_LIFE = 3  # the fourth within 60 s would end the container
TARGETS = ("dockerd", "web", "worker", "supervisord", "svcexec")
WEIGHTS = (25, 20, 20, 15, 20)
SETTLE_SHARE = 0.65  # faults after which the test waits for the stack to settle
KILLED_STEP = f"cont-init step {SLOW_STEP} failed (killed by signal SIGKILL); continuing"


def _boot(stack: Stack, rng: random.Random, log: list[str]) -> tuple[Life, int]:
    """Boot, maybe killing the cont-init step mid-run; returns the life and faults made."""
    life = stack.boot()
    faults = 0
    step = life.find("step")
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.0, 0.1))  # a random moment of the step's run
        assert life.kill(step)
        log.append(f"life {len(stack.lives)}: killed the cont-init step")
        faults = 1
    life.go.touch()
    life.wait_settled()
    return life, faults


def _end(life: Life) -> None:
    life.wait_settled()
    result = life.stop()
    assert_clean_shutdown(life, result, (KILLED_STEP,))


def test_a_hundred_random_kills_leave_exactly_one_copy_of_everything(pid1: Pid1) -> None:
    rng = random.Random(SEED)
    stack = Stack(pid1)
    log: list[str] = []
    caught_wrappers = 0
    started = time.monotonic()
    life, rounds = _boot(stack, rng, log)
    while rounds < ROUNDS:
        target = rng.choices(TARGETS, WEIGHTS)[0]
        if target == "supervisord" and life.engine_kills == ENGINE_DEATHS_PER_LIFE:
            _end(life)
            life, faults = _boot(stack, rng, log)
            rounds += faults
            continue
        time.sleep(rng.uniform(0.1, 0.3))  # the fault's random moment, not a readiness wait
        if target == "svcexec":
            # Make supervisord fork a wrapper (a worker or web restart), and KILL it mid-start.
            assert life.kill(life.find(rng.choice(("worker", "web"))))
            caught = life.catch_svcexec()
            caught_wrappers += caught
            log.append(f"round {rounds}: svcexec {'caught' if caught else 'missed'}")
        else:
            assert life.kill(life.find(target)), target
            life.engine_kills += target == "supervisord"
            log.append(f"round {rounds}: killed {target}")
        rounds += 1
        if rng.random() < SETTLE_SHARE:
            life.wait_settled()
    _end(life)

    took = time.monotonic() - started
    print(f"{ROUNDS} faults in {took:.1f}s over {len(stack.lives)} boots; "
          f"svcexec caught {caught_wrappers} times")  # fmt: skip
    assert len(stack.lives) >= 2  # the seed makes it boot over a used run dir, too
    assert caught_wrappers >= 1, log


def test_the_checks_are_not_blind_to_a_second_copy_or_an_unreaped_zombie(pid1: Pid1) -> None:
    stack = Stack(pid1)
    life = stack.boot(go=True)
    life.wait_settled()

    # By hand, inside the namespace: a second worker, and a zombie whose parent never reaps.
    enter = ["nsenter", "--target", str(life.running.init_pid()), "--pid", "--"]
    intruders = [
        subprocess.Popen(
            [*enter, PYTHON, "-I", "-c", "import time; time.sleep(60)", stack.markers["worker"]],
            start_new_session=True,
        ),
        subprocess.Popen([*enter, "sh", "-c", "sleep 0 & exec sleep 60"], start_new_session=True),
    ]
    try:

        def seen() -> list[str]:
            return life.witness.read_text().splitlines()

        wait_until(lambda: any(s.startswith("TWO ") for s in seen()), 10, "the witness to see two")
        wait_until(lambda: any(s.startswith("ZOMBIE ") for s in seen()), 10, "it to see a zombie")
        with pytest.raises(AssertionError, match="worker: status pid"):
            life.wait_settled(timeout=1)
    finally:
        for intruder in intruders:
            os.killpg(intruder.pid, signal.SIGKILL)
            intruder.wait()
    life.wait_settled()
    result = life.stop()
    assert result.code == 0, result.describe()


def test_supervisord_dying_a_fourth_time_within_a_minute_ends_the_container_82(
    pid1: Pid1,
) -> None:
    stack = Stack(pid1)
    life = stack.boot(go=True)
    life.wait_settled()

    for death in range(1, 5):
        assert life.kill(life.find("supervisord"))
        if death < 4:
            life.wait_settled()
    result = life.running.wait(timeout=30)

    assert result.code == 82, result.describe()
    assert "stopping the container: supervisord died 4 times (exit 82)" in result.errors()
    # Each death stopped dockerd gracefully before anything else happened.
    assert graceful_stops(life) == []
    terms = [what for _at, _pid, name, what in life.records() if name == stack.markers["dockerd"]]
    assert terms.count("term") == terms.count("exit") == 4, terms
    assert "sending TERM to the remaining processes" not in result.init_texts()
    wait_until(lambda: no_marker_left(stack), 10, "the stack's processes to be gone")


def test_a_required_step_killed_mid_run_stops_the_boot_79_before_any_service(
    pid1: Pid1,
) -> None:
    stack = Stack(pid1)
    step = pid1.cont_init / SLOW_STEP
    step.write_text(step.read_text().replace("# helix-init: optional\n", ""))
    life = stack.boot()

    assert life.kill(life.find("step"))
    result = life.running.wait(timeout=20)

    assert result.code == 79, result.describe()
    assert result.errors()[:2] == [
        f"cont-init step {SLOW_STEP} failed: killed by signal SIGKILL",
        f"stopping the container: required step {SLOW_STEP} failed (exit 79)",
    ]
    assert life.records() == []  # no service ever started
    assert not life.witness.exists()  # nor the CMD
    assert not any(t.startswith("service ") for t in result.init_texts()), result.describe()


def test_supervisord_killed_while_it_starts_again_is_one_more_death_not_the_end(
    pid1: Pid1,
) -> None:
    stack = Stack(pid1)
    life = stack.boot(go=True)
    life.wait_settled()
    first = life.find("supervisord")

    assert life.kill(first)
    # Its successor, KILLed the moment it appears (long before its RPC answers).
    successor: list[NsProc] = []

    def restarting() -> bool:
        engine = life.engine()
        successor[:] = [engine] if engine and engine.ns_pid != first.ns_pid else []
        return bool(successor)

    wait_until(restarting, 15, "a new supervisord", life.running.alive)
    assert life.kill(successor[0])
    life.wait_settled()

    assert life.status()["services"]["engine"]["restarts"] == 2
    result = life.stop()
    again = "supervisord did not come back: supervisord exited with code -9"
    assert result.errors().count(again) == 1, result.describe()
    assert result.errors().count(ENGINE_KILLED) == 1, result.describe()
    assert_clean_shutdown(life, result, allowed_errors=(ENGINE_KILLED, again))
