"""S6_* variables: s6-overlay's meanings and defaults, only in an s6-overlay image."""

from __future__ import annotations

from pathlib import Path

import pytest

from helix_init.problems import ConfigError
from helix_init.s6.stage import plan
from helix_init.services.spec import ServicePlan
from helix_init.settings import Settings
from helix_init.settings import s6 as config

NO_TREE = {"HELIX_INIT_S6_RC_DIR": "/nonexistent/s6-rc.d"}


def test_not_an_s6_image_keeps_helix_init_defaults() -> None:
    s = Settings.from_env(NO_TREE)
    assert (s.behaviour_if_step_fails, s.kill_gracetime, s.verbosity) == (2, 3.0, 1)


def test_an_s6_image_gets_s6_overlay_defaults_and_milliseconds() -> None:
    s = Settings.from_env(
        {**NO_TREE, "S6_KILL_GRACETIME": "500", "S6_CMD_WAIT_FOR_SERVICES_MAXTIME": "12000"}
    )
    assert s.behaviour_if_step_fails == 0  # s6-overlay's default, silently different before
    assert (s.kill_gracetime, s.cmd_wait_for_services_maxtime) == (0.5, 12.0)
    assert s.step_timeout == 0  # no timeout for cont-init.d scripts, as in s6-overlay


def test_an_s6_rc_tree_alone_makes_it_an_s6_image(tmp_path: Path) -> None:
    (tmp_path / "s6-rc.d").mkdir()
    s = Settings.from_env({"HELIX_INIT_S6_RC_DIR": str(tmp_path / "s6-rc.d")})
    assert s.behaviour_if_step_fails == 0


def test_helix_init_variables_win() -> None:
    s = Settings.from_env(
        {**NO_TREE, "S6_KILL_GRACETIME": "500", "HELIX_INIT_KILL_GRACETIME": "7",
         "S6_BEHAVIOUR_IF_STAGE2_FAILS": "2", "S6_VERBOSITY": "4"}
    )  # fmt: skip
    assert (s.kill_gracetime, s.behaviour_if_step_fails, s.verbosity) == (7.0, 2, 2)


def test_a_bad_value_is_one_line_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({**NO_TREE, "S6_KILL_GRACETIME": "3s"})
    assert [str(p) for p in exc.value.problems] == [
        "S6_KILL_GRACETIME: must be milliseconds (a whole number), got '3s'"
    ]


def test_unsupported_variables_are_named_in_a_warning() -> None:
    assert config.refused({"S6_LOGGING": "1", "S6_CMD_RECEIVE_SIGNALS": "0"}) == [
        "S6_LOGGING=1 is not supported by helix-init (helix-init always logs to stdout and"
        " per-service files); ignored"
    ]


def test_plan_level_variables() -> None:
    env = {**NO_TREE, "S6_KILL_FINISH_MAXTIME": "2500", "S6_CMD_ARG0": "/entry --flag",
           "S6_STAGE2_HOOK": "/docker-mods"}  # fmt: skip
    s6, problems = plan(env, ServicePlan())
    assert problems == []
    assert s6.cmd(["bash"]) == ("/entry", "--flag", "bash") and s6.cmd([]) == ()
    assert s6.finish_maxtime == 2.5 and s6.services_gracetime == 3.0
    assert [step.argv for step in s6.cont_init([])] == [("/bin/sh", "-c", "/docker-mods")]
