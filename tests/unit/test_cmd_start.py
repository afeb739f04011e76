"""cmd: GOW's start contract as argv and user, decided without starting anything."""

from __future__ import annotations

from pathlib import Path

from helix_init import cmd
from helix_init.settings import Settings

STARTUP = Path("/opt/gow/startup.sh")
SANDBOX_STARTUP = Path("/opt/gow/startup-app.sh")


def test_gow_runs_arguments_as_bash_dash_c_dollar_at_and_nothing_else() -> None:
    assert cmd.gow_argv(["echo $0", "zero", "one two"], STARTUP) == [
        "/bin/bash", "-c", "echo $0", "zero", "one two",
    ]  # fmt: skip
    assert cmd.gow_argv([], STARTUP) == [str(STARTUP)]
    assert cmd.gow_argv([], None) == []


def test_the_startup_script_is_the_setting_else_the_first_that_exists() -> None:
    assert cmd.gow_startup(Path("/x.sh"), lambda _p: False) == Path("/x.sh")
    assert cmd.gow_startup(None, lambda p: p == SANDBOX_STARTUP) == SANDBOX_STARTUP  # Helix
    assert cmd.gow_startup(None, lambda _p: True) == STARTUP
    assert cmd.gow_startup(None, lambda _p: False) is None


def test_who_runs_the_cmd() -> None:
    env = {"UNAME": "retro", "HELIX_INIT_CMD_USER": "retro"}  # as the user step exports it
    assert cmd.cmd_user("gow", True, None, env) == "retro"  # startup script: $UNAME
    assert cmd.cmd_user("gow", False, None, env) is None  # arguments: root, as GOW
    assert cmd.cmd_user("gow", True, None, {}) == "root"
    assert cmd.cmd_user("gow", False, "nobody", env) == "nobody"  # the operator's wins
    assert cmd.cmd_user("cmd", False, None, env) == "retro"
    assert cmd.cmd_user("cmd", False, None, {}) is None


def test_plan_argv_follows_the_setting() -> None:
    gow = Settings.from_env({"HELIX_INIT_START": "gow", "HELIX_INIT_GOW_STARTUP": "/s.sh"})
    assert cmd.plan_argv([], gow) == (["/s.sh"], True)
    assert cmd.plan_argv(["x"], gow) == (["/bin/bash", "-c", "x"], False)
    plain = Settings.from_env({})
    assert cmd.plan_argv(["x", "y"], plain) == (["x", "y"], False)
    assert Settings.from_env({"STARTUP_SCRIPT": "/h.sh"}).gow_startup == Path("/h.sh")
