"""Settings.from_env: defaults, every HELIX_INIT_* variable, and one problem per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from helix_init.problems import ConfigError, Problem
from helix_init.settings import Settings


def test_defaults_keep_the_s6_folder_names() -> None:
    s = Settings.from_env({})
    assert s == Settings(environ={})
    assert s.cont_init_dir == Path("/etc/cont-init.d")
    assert s.cont_finish_dir == Path("/etc/cont-finish.d")
    assert s.services_dir == Path("/etc/services.d")
    assert s.service_log_dir == Path("/var/log/helix-services")
    assert s.ready_path == Path("/run/helix-init/ready")
    assert s.sock_path == Path("/run/helix-init/control.sock")
    assert s.behaviour_if_step_fails == 2
    assert s.cmd_user is None and s.cmd_shell is False


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("HELIX_INIT_CONT_INIT_DIR", "/x/init", "cont_init_dir", Path("/x/init")),
        ("HELIX_INIT_CONT_FINISH_DIR", "/x/fin", "cont_finish_dir", Path("/x/fin")),
        ("HELIX_INIT_SERVICES_DIR", "/x/svc", "services_dir", Path("/x/svc")),
        ("HELIX_INIT_RUN_DIR", "/x/run", "run_dir", Path("/x/run")),
        ("HELIX_INIT_LOG_DIR", "/x/log", "log_dir", Path("/x/log")),
        ("HELIX_INIT_SERVICE_LOG_DIR", "/x/slog", "service_log_dir", Path("/x/slog")),
        ("HELIX_INIT_STEP_TIMEOUT", "0", "step_timeout", 0.0),
        ("HELIX_INIT_FINISH_TIMEOUT", "2.5", "finish_timeout", 2.5),
        ("HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS", "1", "behaviour_if_step_fails", 1),
        ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "0", "behaviour_if_step_fails", 0),
        ("HELIX_INIT_CMD_USER", "nobody", "cmd_user", "nobody"),
        ("HELIX_INIT_CMD_USER", "", "cmd_user", None),
        ("HELIX_INIT_CMD_SHELL", "yes", "cmd_shell", True),
        ("HELIX_INIT_CMD_SHELL", " 0 ", "cmd_shell", False),
        ("HELIX_INIT_CMD_GRACETIME", "1", "cmd_gracetime", 1.0),
        ("HELIX_INIT_CMD_WAIT_FOR_SERVICES_MAXTIME", "60", "cmd_wait_for_services_maxtime", 60.0),
        ("HELIX_INIT_KILL_GRACETIME", "0.5", "kill_gracetime", 0.5),
        ("HELIX_INIT_SERVICE_LOG_MAXBYTES", "1024", "service_log_maxbytes", 1024),
        ("HELIX_INIT_SERVICE_LOG_BACKUPS", "0", "service_log_backups", 0),
        ("HELIX_INIT_VERBOSITY", "2", "verbosity", 2),
    ],
)
def test_each_variable(variable: str, value: str, field: str, expected: object) -> None:
    assert getattr(Settings.from_env({variable: value}), field) == expected


def test_the_helix_init_name_wins_over_the_s6_name() -> None:
    env = {"HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS": "2", "S6_BEHAVIOUR_IF_STAGE2_FAILS": "0"}
    assert Settings.from_env(env).behaviour_if_step_fails == 2


def test_the_environment_is_kept_for_the_children() -> None:
    env = {"PATH": "/bin", "GPU_VENDOR": "none"}
    assert Settings.from_env(env).environ == env


@pytest.mark.parametrize(
    ("variable", "value", "what"),
    [
        ("HELIX_INIT_RUN_DIR", "run", "must be an absolute path, got 'run'"),
        ("HELIX_INIT_STEP_TIMEOUT", "soon", "must be a number, got 'soon'"),
        ("HELIX_INIT_STEP_TIMEOUT", "-1", "must be 0 or more, got '-1'"),
        ("HELIX_INIT_CMD_GRACETIME", "nan", "must be 0 or more, got 'nan'"),
        ("HELIX_INIT_KILL_GRACETIME", "inf", "must be finite, at most 86400, got 'inf'"),
        ("HELIX_INIT_KILL_GRACETIME", "1e400", "must be finite, at most 86400, got '1e400'"),
        ("HELIX_INIT_STEP_TIMEOUT", "86401", "must be finite, at most 86400, got '86401'"),
        (
            "HELIX_INIT_SERVICE_LOG_MAXBYTES",
            "1e400",
            "must be finite, at most 1099511627776, got '1e400'",
        ),
        ("HELIX_INIT_BEHAVIOUR_IF_STEP_FAILS", "3", "must be one of (0, 1, 2), got '3'"),
        ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "stop", "must be one of (0, 1, 2), got 'stop'"),
        ("HELIX_INIT_SERVICE_LOG_BACKUPS", "1000", "must be one of 0..999, got '1000'"),
        ("HELIX_INIT_CMD_SHELL", "maybe", "must be 1 or 0, got 'maybe'"),
        ("HELIX_INIT_VERBOSITY", "9", "must be one of (0, 1, 2), got '9'"),
    ],
)
def test_a_bad_value_is_a_problem_naming_the_variable(variable: str, value: str, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.problems == [Problem(variable, what)]


def test_every_bad_value_is_reported_at_once() -> None:
    env = {
        "HELIX_INIT_LOG_DIR": "log",
        "HELIX_INIT_KILL_GRACETIME": "x",
        "HELIX_INIT_VERBOSITY": "",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert [p.where for p in caught.value.problems] == [
        "HELIX_INIT_LOG_DIR",
        "HELIX_INIT_KILL_GRACETIME",
    ]
