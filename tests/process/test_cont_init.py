"""cont-init.d: order, sourced-script semantics, carried exports, timeouts, failure policy."""

from __future__ import annotations

import json
import signal

import pytest

from tests.support.pid1 import PYTHON, Pid1

pytestmark = pytest.mark.process

STEP_FAILED = 79
SHOW_ENV = "FOO=${FOO-unset} BEFORE=${BEFORE-unset} AFTER=${AFTER-unset}"


def test_steps_run_one_by_one_in_byte_order_of_their_names(pid1: Pid1) -> None:
    order = pid1.path("order")
    for name in ("a-lower.sh", "10-ten.sh", "9-nine.sh", "01-one.sh", "B-upper.sh"):
        pid1.step(name, f'echo {name} >> "{order}"\n')
    pid1.step(".hidden.sh", f'echo hidden >> "{order}"\n')
    pid1.step("README.md", "not a step\n", mode=0o644)

    result = pid1.run("true")

    assert result.code == 0, result.describe()
    assert order.read_text().split() == [
        "01-one.sh",
        "10-ten.sh",
        "9-nine.sh",
        "B-upper.sh",
        "a-lower.sh",
    ]


def test_exit_0_at_the_top_of_a_sourced_script_does_not_end_the_init(pid1: Pid1) -> None:
    pid1.step("10-exits.sh", "export BEFORE=1\nexit 0\nexport AFTER=1\n", mode=0o644)
    pid1.step("20-next.sh", f'echo "step20 {SHOW_ENV}"\n')

    result = pid1.run("sh", "-c", f'echo "cmd {SHOW_ENV}"')

    assert result.code == 0, result.describe()
    assert result.texts("20-next.sh") == ["step20 FOO=unset BEFORE=1 AFTER=unset"]
    assert "cmd FOO=unset BEFORE=1 AFTER=unset" in result.lines
    assert result.has("step 10-exits.sh: exit code 0")


def test_top_level_return_ends_only_the_script(pid1: Pid1) -> None:
    pid1.step(
        "10-returns.sh",
        'export BEFORE=1\nif [ -z "$SKIP" ]; then return; fi\necho not reached\nexport AFTER=1\n',
    )

    result = pid1.run("sh", "-c", f'echo "cmd {SHOW_ENV}"')

    assert result.code == 0, result.describe()
    assert result.texts("10-returns.sh") == []
    assert "cmd FOO=unset BEFORE=1 AFTER=unset" in result.lines


def test_export_in_step_10_reaches_step_20_and_the_cmd(pid1: Pid1) -> None:
    pid1.step("10-export.sh", "export FOO=1\nBAR=not-exported\n")
    pid1.step("20-sourced.sh", 'echo "sh FOO=$FOO BAR=${BAR-unset}"\n')
    pid1.step("30-program", f'#!{PYTHON}\nimport os\nprint("py FOO=" + os.environ["FOO"])\n')

    result = pid1.run("sh", "-c", 'echo "cmd FOO=$FOO"')

    assert result.code == 0, result.describe()
    assert result.texts("20-sourced.sh") == ["sh FOO=1 BAR=unset"]
    assert result.texts("30-program") == ["py FOO=1"]
    assert "cmd FOO=1" in result.lines
    # The log names the step and the variable, never the value.
    assert result.has("step 10-export.sh exported FOO")


def test_unset_in_a_sourced_step_is_carried(pid1: Pid1) -> None:
    pid1.step("10-unset.sh", "unset FOO\n")

    result = pid1.run("sh", "-c", 'echo "cmd FOO=${FOO-unset}"', env={"FOO": "from-docker"})

    assert "cmd FOO=unset" in result.lines, result.describe()
    assert result.has("step 10-unset.sh exported -FOO")


def test_a_program_step_exports_through_the_env_file(pid1: Pid1) -> None:
    pid1.step(
        "10-program",
        f"#!{PYTHON}\nimport os\n"
        'with open(os.environ["HELIX_INIT_ENV_FILE"], "w") as f:\n'
        '    f.write("FOO=from-python\\n")\n',
    )

    result = pid1.run("sh", "-c", 'echo "cmd FOO=$FOO"')

    assert "cmd FOO=from-python" in result.lines, result.describe()


def test_a_step_reads_eof_from_stdin_and_its_output_is_prefixed(pid1: Pid1) -> None:
    pid1.step("10-reader.sh", 'cat; echo "stdin ended"\n')

    result = pid1.run("true", timeout=15)

    assert result.texts("10-reader.sh") == ["stdin ended"], result.describe()


def test_a_hanging_step_is_killed_with_its_child_at_its_timeout(pid1: Pid1) -> None:
    child_pid = pid1.path("child.pid")
    cmd_ran = pid1.path("cmd-ran")
    # The forked child ignores TERM, so only the KILL to the step's whole
    # process group can end it.
    pid1.step(
        "10-hang.sh",
        "# helix-init: timeout=1\n"
        f'sh -c \'trap "" TERM; exec sleep 60\' &\necho $! > "{child_pid}"\n'
        "echo hanging now\nsleep 60\n",
    )
    # cont-finish runs inside the namespace before the final sweep: the
    # child must already be gone (or an unreaped zombie) by then.
    pid1.finish_step(
        "10-probe.sh",
        f'p=$(cat "{child_pid}")\n'
        'if [ -d /proc/$p ] && ! grep -q " Z " /proc/$p/stat; then echo "child alive"; '
        'else echo "child gone"; fi\n',
    )

    result = pid1.run("touch", str(cmd_ran))

    assert result.code == STEP_FAILED, result.describe()
    assert result.texts("10-probe.sh") == ["child gone"], result.describe()
    assert not cmd_ran.exists()
    assert result.seconds < 1 + 2 + 3  # timeout, TERM→KILL, slack
    errors = result.errors()
    assert errors[:3] == [
        "cont-init step 10-hang.sh failed: timed out after 1.0s (its process group was killed)",
        "last output lines of 10-hang.sh:",
        "  | hanging now",
    ], result.describe()
    assert errors[-1] == (
        f"stopping the container: required step 10-hang.sh failed (exit {STEP_FAILED})"
    )


def test_a_failing_required_step_stops_the_container_naming_it(pid1: Pid1) -> None:
    later = pid1.path("later-ran")
    finished = pid1.path("finish-ran")
    pid1.step("10-fails.sh", "echo first line\necho 'the reason' >&2\nexit 5\n")
    pid1.step("20-later.sh", f'touch "{later}"\n')
    pid1.finish_step("10-finish.sh", f'touch "{finished}"\n')

    result = pid1.run("true")

    assert result.code == STEP_FAILED, result.describe()
    assert result.errors() == [
        "cont-init step 10-fails.sh failed: exit code 5",
        "last output lines of 10-fails.sh:",
        "  | first line",
        "  | the reason",
        f"stopping the container: required step 10-fails.sh failed (exit {STEP_FAILED})",
    ]
    assert not later.exists()
    assert finished.exists()  # cont-finish runs whatever ended the container


def test_a_failing_optional_step_only_warns(pid1: Pid1) -> None:
    pid1.step("10-optional.sh", "# helix-init: optional\nexit 4\n")
    pid1.step("20-after.sh", "echo after\n")

    result = pid1.run("sh", "-c", "echo cmd ran")

    assert result.code == 0, result.describe()
    assert result.warnings() == ["cont-init step 10-optional.sh failed (exit code 4); continuing"]
    assert result.errors() == []
    assert result.texts("20-after.sh") == ["after"]
    assert "cmd ran" in result.lines


@pytest.mark.parametrize(
    "variable", ["HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS", "S6_BEHAVIOUR_IF_STAGE2_FAILS"]
)
def test_behaviour_1_continues_after_a_failure_with_a_warning(pid1: Pid1, variable: str) -> None:
    pid1.step("10-fails.sh", "exit 2\n")
    pid1.step("20-after.sh", "echo after\n")

    result = pid1.run("sh", "-c", "echo cmd ran", env={variable: "1"})

    assert result.code == 0, result.describe()
    assert result.warnings() == ["cont-init step 10-fails.sh failed (exit code 2); continuing"]
    assert "cmd ran" in result.lines


def test_behaviour_0_continues_silently(pid1: Pid1) -> None:
    pid1.step("10-fails.sh", "exit 2\n")

    result = pid1.run("sh", "-c", "echo cmd ran", env={"HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS": "0"})

    assert result.code == 0, result.describe()
    assert result.warnings() == [] and result.errors() == []
    assert "cmd ran" in result.lines


@pytest.mark.parametrize(
    "ending", ["kill -KILL $$", "exec true"], ids=["killed by a signal", "exec at the end"]
)
def test_a_step_that_reports_no_environment_unsets_nothing(pid1: Pid1, ending: str) -> None:
    # No EXIT trap runs in either case, so the step reports no environment.
    pid1.step("10-export.sh", "export FOO=1\n")
    pid1.step("20-silent.sh", f"# helix-init: optional\nexport BAR=2\n{ending}\n")
    pid1.step("30-show.sh", 'echo "FOO=${FOO-unset} BAR=${BAR-unset} HOME=${HOME-unset}"\n')

    result = pid1.run("sh", "-c", 'echo "cmd PATH=${PATH-unset}"')

    assert result.code == 0, result.describe()
    assert result.texts("30-show.sh") == ["FOO=1 BAR=unset HOME=/root"]
    assert f"cmd PATH={pid1.env['PATH']}" in result.lines
    assert result.has("step 20-silent.sh: no environment reported; nothing carried")


def test_a_step_that_leaves_a_background_process_does_not_hold_up_boot(pid1: Pid1) -> None:
    # Legacy scripts start daemons with `&`; the daemon keeps the output pipe.
    pid1.step("10-daemon.sh", "sleep 30 &\necho started a daemon\n")

    result = pid1.run("sh", "-c", "echo cmd ran", env={"HELIX_INIT_KILL_GRACETIME": "2"})

    assert result.code == 0, result.describe()
    assert result.has("step 10-daemon.sh: left processes running in its group")
    assert "cmd ran" in result.lines
    # Adopted: at shutdown it gets TERM from the init, named, before the final sweep.
    assert result.has("stopping what step 10-daemon.sh left running: TERM to sleep (pid")
    assert any(t.startswith("step 10-daemon.sh: sleep (pid") for t in result.init_texts())
    assert result.seconds < 5


def test_a_daemon_that_setsids_away_from_its_step_is_adopted_as_the_steps(pid1: Pid1) -> None:
    """`setsid`/`start-stop-daemon --background` leave the step's session: still the step's.

    Without adoption such a daemon met only the final sweep and its short KILL
    grace; adopted, it is listed under its step and gets TERM and a grace.
    """
    pidfile, termed = pid1.path("daemon.pid"), pid1.path("daemon-termed")
    marker = pid1.path("cmd-running")
    pid1.step(
        "10-daemonize.sh",
        f'setsid sh -c \'echo $$ > "{pidfile}"; trap "touch {termed}; exit 0" TERM;'
        " while :; do sleep 0.1; done' </dev/null >/dev/null 2>&1 &\n"
        f'while [ ! -s "{pidfile}" ]; do sleep 0.01; done\necho daemonized\n',
    )
    running = pid1.start("sh", "-c", f'touch "{marker}"; sleep 60')
    running.wait_for_file(marker)
    status = pid1.command("status", "--json")
    running.signal(signal.SIGTERM)
    result = running.wait(30)

    assert result.code == 0, result.describe()
    assert result.has("step 10-daemonize.sh: left a daemon running in a session of its own")
    assert status.code == 0, status.describe()
    left = json.loads(status.stdout)["adopted"]["10-daemonize.sh"]
    assert int(pidfile.read_text()) in [p["pid"] for p in left], left
    assert result.has("stopping what step 10-daemonize.sh left running: TERM to sh (pid")
    assert termed.exists(), result.describe()  # TERM from the adoption, not the sweep
    assert not result.has("the final sweep takes over"), result.describe()
