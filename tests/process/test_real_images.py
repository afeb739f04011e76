"""The real Helix sandbox and GOW image patterns boot unchanged under helix-init (issue 13).

Fixtures: tests/fixtures/images (README there says what each reproduces).
Real: helix-init as PID 1, bash sourcing the scripts, useradd/userdel on a
private /etc, /home and /run/user, GOW's /opt/gow at its real path (a private
/opt). Stand-ins, because they cannot run here: dockerd (a slow flush on
TERM), the docker CLI (info, a slow pull); gosu's part is helix-init's own.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from tests.support.pid1 import BASE_PATH, HELIX_INIT, Finished, Pid1, init_status, wait_until

pytestmark = pytest.mark.process

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "tests" / "fixtures" / "images"
ENTRYPOINT = str(REPO / "images" / "entrypoint.sh")
USER_STEP = REPO / "cont-init.d" / "05-helix-user"
PATH = f"{IMAGES / 'bin'}:{HELIX_INIT.parent}:{BASE_PATH}"
# Dockerfile.sandbox's ENV, as the image sets it.
SANDBOX_ENV = {
    "PUID": "0",
    "PGID": "0",
    "UMASK": "000",
    "UNAME": "root",
    "HOME": "/root",
    "XDG_RUNTIME_DIR": "/run/user/sandbox",
    "HELIX_API_URL": "",
    "RUNNER_TOKEN": "",
    "HYDRA_ENABLED": "true",
}
# GOW's base image ENV (images/base/build/Dockerfile), with the operator's ids.
GOW_ENV = {"PUID": "1234", "PGID": "1234", "UMASK": "000", "UNAME": "retro", "HOME": "/home/retro"}


def _image(pid1: Pid1, name: str) -> Path:
    """Lay out image `name`: /opt (private), its cont-init.d beside the built-in user step."""
    pid1.private_accounts()
    opt = pid1.private_opt()
    shutil.copytree(IMAGES / name / "opt", opt, dirs_exist_ok=True)
    shutil.copytree(IMAGES / name / "cont-init.d", pid1.cont_init, dirs_exist_ok=True)
    shutil.copy(USER_STEP, pid1.cont_init / USER_STEP.name)
    pid1.env.update(PATH=PATH)
    return opt


def _sandbox(pid1: Pid1) -> dict[str, str]:
    _image(pid1, "helix-sandbox")
    (pid1.path("run-user") / "sandbox").mkdir(parents=True)  # the image's VOLUME
    state, root = pid1.path("dockerd-state"), pid1.path("sandbox-root")
    state.mkdir()
    root.mkdir()
    return {
        **SANDBOX_ENV,
        "SANDBOX_ROOT": str(root),
        "DOCKERD_STATE": str(state),
        "STARTUP_MARKER": str(pid1.path("startup-ran")),
        "HELIX_INIT_START": "gow",
    }


def _no_kill(result: Finished) -> None:
    assert not any("sending KILL" in w for w in result.warnings()), result.describe()


def test_the_root_sandbox_with_its_own_user_script_boots_and_flushes_dockerd(
    pid1: Pid1,
) -> None:
    env = _sandbox(pid1)
    state = Path(env["DOCKERD_STATE"])
    check = pid1.command("check", env=env)
    assert check.code == 0, check.describe()  # PUID=0 PGID=0 UNAME=root is accepted

    running = pid1.start(env=env)  # no CMD: GOW's startup-app.sh, as UNAME=root
    running.wait_for_file(pid1.path("startup-ran"), 30)
    status = init_status(pid1.run_dir)
    table = pid1.command("status", env=env).stdout
    running.signal(signal.SIGTERM)
    result = running.wait(60)

    assert result.code == 0, result.describe()
    assert pid1.path("startup-ran").read_text() == "root\n"
    assert "sandbox ready as root (HOME=/root XDG_RUNTIME_DIR=/run/user/sandbox)" in result.lines
    # The built-in step and the image's own script both leave root alone.
    assert result.texts("05-helix-user") == [
        "UNAME=root: the container runs as root; no user to set up"
    ]
    user_lines = result.texts("10-setup_user.sh")
    assert any(t.endswith("running as root: no user to configure") for t in user_lines)
    assert not result.has("step 05-helix-user exported")
    # The dockerd loop is adopted, listed under its step ...
    left = status["adopted"]["40-start-dockerd.sh"]
    names = [p["name"] for p in left]
    assert "dockerd" in names and "tee" in names and "sed" in names, left
    assert any("--config-file" in p["command"] for p in left if p["name"] == "dockerd")
    assert "step 40-start-dockerd.sh left running (adopted; TERM and a grace at shutdown):" in (
        table
    ), table
    # ... and stopped with dockerd's own shutdown-timeout as its grace: it flushed (6 s).
    assert (state / "flushed").exists(), result.describe()
    assert result.has("up to 25s (dockerd's shutdown-timeout 15s + 10s), no KILL before"), (
        result.describe()
    )
    ended = [t for t in result.init_texts() if "dockerd (pid" in t and "ended" in t]
    assert ended and float(ended[0].rsplit(" ended ", 1)[1].split("s")[0]) >= 6.0, ended
    assert len((state / "starts").read_text().split()) == 1  # the loop never restarted it
    _no_kill(result)


def test_a_foreground_pull_outlasts_the_program_step_timeout_with_a_heartbeat(
    pid1: Pid1,
) -> None:
    env = _sandbox(pid1)
    pull = 3.5
    env.update(
        HELIX_INIT_STEP_TIMEOUT="1",  # the short clock: program steps get 1 s here
        HELIX_INIT_SH_STEP_TIMEOUT="",  # *.sh: the default, none
        HELIX_INIT_STEP_HEARTBEAT="1",
        DOCKER_PULL_SECONDS=str(pull),
        DOCKERD_FLUSH_SECONDS="1",
    )
    (pid1.cont_init / USER_STEP.name).unlink()  # the only program step: the one below
    pid1.step("90-program", "#!/bin/sh\nsleep 5\n")  # a program step keeps its timeout

    result = pid1.run(env=env, timeout=60)

    assert result.code == 79, result.describe()  # 90-program timed out; 40 did not

    steps = [t for t in result.init_texts() if t.startswith("step 40-start-dockerd.sh")]
    beats = [t for t in steps if "still running after" in t]
    prefix = "step 40-start-dockerd.sh: still running after "
    seconds = [int(t.removeprefix(prefix).rstrip("s")) for t in beats]
    # One line per heartbeat (1 s here), naming the step and its run time so far.
    assert len(seconds) >= 2 and seconds == sorted(set(seconds)) and seconds[0] >= 1, steps
    done = [t for t in steps if t.startswith("step 40-start-dockerd.sh: exit code 0 in ")]
    assert done and float(done[0].split(" in ")[1].rstrip("s")) >= pull, steps
    assert "helix-ubuntu pulled" in result.texts("40-start-dockerd.sh")
    assert result.has("step 90-program: timed out after 1."), result.describe()
    _no_kill(result)


def test_gow_no_argument_start_runs_the_startup_script_as_uname_with_gosu_semantics(
    pid1: Pid1,
) -> None:
    _image(pid1, "gow")
    env = dict(GOW_ENV)

    # The images' /entrypoint.sh sees /opt/gow: GOW's start contract, no setting needed.
    result = pid1.run(env=env, program=ENTRYPOINT, timeout=60)

    assert result.code == 0, result.describe()
    started = [line for line in result.lines if line.startswith("startup ")]
    etc_group = (pid1.path("etc-upper") / "group").read_text()
    gowdev = next(line for line in etc_group.splitlines() if line.startswith("gowdev:"))
    gid = gowdev.split(":")[2]
    assert started == [
        f"startup uid=1234 gid=1234 groups=1234 {gid} user=retro HOME=/home/retro USER=retro args=0"
    ], result.describe()
    assert result.has("CMD started: /opt/gow/startup.sh as retro")
    # Both user steps ran; the image's own script (later) has the last word on the account.
    assert any("user retro uid=1234 gid=1234" in t for t in result.texts("10-setup_user.sh"))
    passwd = (pid1.path("etc-upper") / "passwd").read_text()
    (entry,) = [line for line in passwd.splitlines() if line.startswith("retro:")]
    assert entry.split(":")[2:4] == ["1234", "1234"] and entry.split(":")[5] == "/home/retro"
    home = pid1.path("home") / "retro"
    assert (home.stat().st_uid, home.stat().st_gid) == (1234, 1234)
    runtime = pid1.path("run-user") / "1234"  # exported and made by the built-in step
    assert (runtime.stat().st_uid, runtime.stat().st_mode & 0o777) == (1234, 0o700)


def test_gow_arguments_run_as_bash_dash_c_as_root_exactly(pid1: Pid1) -> None:
    _image(pid1, "gow")

    result = pid1.run(
        'echo "script=$0|$1|$(id -un)"; exit 5', "zero", "one two", env=GOW_ENV,
        program=ENTRYPOINT,
    )  # fmt: skip

    assert result.code == 5, result.describe()
    assert "script=zero|one two|root" in result.lines
    assert not any(line.startswith("startup ") for line in result.lines)


def test_gow_contract_by_setting_and_without_a_startup_script(pid1: Pid1) -> None:
    # helix-init's own images have no /opt/gow: the entrypoint keeps plain argv ...
    plain = pid1.run("sh", "-c", "echo plain $0", "x", env={"PATH": PATH}, program=ENTRYPOINT)
    assert "plain x" in plain.lines, plain.describe()
    # ... and HELIX_INIT_START=gow without a startup script runs no CMD, saying so.
    running = pid1.start(env={"HELIX_INIT_START": "gow", "HELIX_INIT_GOW_STARTUP": ""})
    wait_until(lambda: "running without a CMD" in running.output(), 20, "the no-CMD line",
               running.alive)  # fmt: skip
    running.signal(signal.SIGTERM)
    idle = running.wait(20)
    assert idle.code == 0, idle.describe()
    flag = pid1.run("--gow", 'echo "gow $0 $(id -un)"', "x", env={"PATH": PATH})
    assert "gow x root" in flag.lines, flag.describe()  # `helix-init --gow`: the same contract
    bad = pid1.run("true", env={"HELIX_INIT_START": "gw"})
    assert bad.code == 78
    assert "HELIX_INIT_START: must be one of cmd, gow, got 'gw'" in bad.stderr


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"UNAME": "root", "PUID": "1000"}, "UNAME: root's ids are never changed: got PUID=1000"),
        ({"PUID": "1k"}, "PUID: must be a number from 0 to 4294967294, got '1k'"),
    ],
)
def test_bad_root_sandbox_values_are_one_line_and_exit_78(
    pid1: Pid1, env: dict[str, str], line: str
) -> None:
    marker = pid1.path("ran")
    pid1.step("01-marker.sh", f'touch "{marker}"\n')

    result = pid1.run("true", env=env)

    assert result.code == 78, result.describe()
    assert [e for e in result.errors() if e.startswith(line)] and len(result.errors()) == 2
    assert not marker.exists()


def test_a_second_start_of_a_gow_image_ends_in_the_same_state(pid1: Pid1) -> None:
    """GOW's script deletes and remakes the user at every start; the built-in step copes."""
    _image(pid1, "gow")
    for _ in range(2):
        result = pid1.run("id -un retro; id -u retro", env=GOW_ENV, program=ENTRYPOINT, timeout=60)
        assert result.code == 0, result.describe()
        assert result.lines[-2:] == ["retro", "1234"] or [
            line for line in result.lines if line in ("retro", "1234")
        ] == ["retro", "1234"], result.describe()
    assert "retro:" not in Path("/etc/passwd").read_text()  # the host's accounts: untouched
