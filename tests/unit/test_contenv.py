"""Exports: what steps carry to later steps and the CMD, traceably and without shell noise."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from helix_init.contenv import Exports, is_secret_name, mask, parse_env_file


def env0(**variables: str) -> str:
    return "".join(f"{k}={v}\0" for k, v in variables.items())


def test_a_new_variable_is_carried_with_its_step() -> None:
    exports = Exports({"PATH": "/bin"})
    before = exports.current()

    changed = exports.apply("10-a.sh", before, env0(PATH="/bin", FOO="1"), full=True)

    assert changed == ["FOO"]
    assert exports.carried == {"FOO": ("1", "10-a.sh")}
    assert exports.current() == {"PATH": "/bin", "FOO": "1"}


def test_a_later_step_overrides_and_unsets() -> None:
    exports = Exports({"KEEP": "k", "GONE": "g"})
    exports.apply("10-a.sh", exports.current(), env0(KEEP="k", GONE="g", FOO="1"), full=True)

    changed = exports.apply("20-b.sh", exports.current(), env0(KEEP="k", FOO="2"), full=True)

    assert changed == ["FOO", "-GONE"]
    assert exports.current() == {"KEEP": "k", "FOO": "2"}
    assert exports.carried["GONE"] == (None, "20-b.sh")


def test_shell_noise_is_nobodys_export() -> None:
    exports = Exports({"PWD": "/", "SHLVL": "0"})
    reported = env0(SHLVL="1", _="/usr/bin/env", PWD="/tmp", OLDPWD="/", HELIX_INIT_ENV_FILE="x")

    assert exports.apply("10-a.sh", exports.current(), reported, full=True) == []
    assert exports.current() == {"PWD": "/", "SHLVL": "0"}


def test_a_program_reports_sets_only() -> None:
    exports = Exports({"KEEP": "k"})

    changed = exports.apply("10-prog", exports.current(), "FOO=1\nBAR=a=b\n", full=False)

    assert sorted(changed) == ["BAR", "FOO"]
    assert exports.current() == {"KEEP": "k", "FOO": "1", "BAR": "a=b"}


def test_an_unchanged_value_is_not_an_export() -> None:
    exports = Exports({"FOO": "1"})
    assert exports.apply("10-a", exports.current(), "FOO=1\n", full=False) == []
    assert exports.carried == {}


def test_only_carried_selects_none_all_or_some() -> None:
    exports = Exports({"BASE": "b"})
    exports.apply("10-a", exports.current(), "FOO=1\nBAR=2\n", full=False)

    assert exports.only_carried(False) == {"BASE": "b"}
    assert exports.only_carried(True) == {"BASE": "b", "FOO": "1", "BAR": "2"}
    assert exports.only_carried(("BAR", "MISSING")) == {"BASE": "b", "BAR": "2"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("A=1\0B=two words\0", {"A": "1", "B": "two words"}),
        ("A=line1\nline2\0B=2\0", {"A": "line1\nline2", "B": "2"}),  # NUL wins over newline
        ("A=1\nB=\nC\n=nameless\n", {"A": "1", "B": ""}),
        ("A=1\nA=2\n", {"A": "2"}),
    ],
)
def test_parse_env_file(text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(text) == expected


def test_save_writes_names_values_and_steps_for_root_only(tmp_path: Path) -> None:
    exports = Exports({})
    exports.apply("10-a", {}, "FOO=1\n", full=False)
    exports.apply("20-b.sh", exports.current(), env0(), full=True)
    path = tmp_path / "env.json"

    exports.save(path)

    assert json.loads(path.read_text()) == {"FOO": {"value": None, "step": "20-b.sh"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("RUNNER_TOKEN", True),
        ("USER_API_TOKEN", True),
        ("db_password", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("OPENAI_API_KEY", True),
        ("HELIX_API_URL", False),
        ("PATH", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret
    assert mask(name, "value") == ("********" if secret else "value")


def test_an_empty_secret_is_shown_empty() -> None:
    assert mask("RUNNER_TOKEN", "") == ""
