"""RevDial settings and the `revdial` step: the runner id by role, the overrides, a bad role."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helix_init.builtin.level import Level
from helix_init.builtin.revdial import name_revdial_runner
from helix_init.problems import ConfigError
from helix_init.settings.revdial import RevDial, api_url, revdial_from_env

API = {"HELIX_API_URL": "http://api.helix.test"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HELIX_SESSION_ID": "ses1"}, RevDial("sandbox", "sandbox-ses1", "127.0.0.1:9876")),
        (
            {"HELIX_REVDIAL_ROLE": "wolf", "WOLF_INSTANCE_ID": "w1"},
            RevDial("wolf", "wolf-w1", "unix:///var/run/wolf/wolf.sock"),
        ),
        (
            {"HELIX_REVDIAL_ROLE": "moonlight"},  # SANDBOX_INSTANCE_ID, default local
            RevDial("moonlight", "moonlight-local", "127.0.0.1:8080"),
        ),
        (
            {"HELIX_RUNNER_ID": "mine", "HELIX_REVDIAL_LOCAL_ADDR": "127.0.0.1:1"},
            RevDial("sandbox", "mine", "127.0.0.1:1"),
        ),
    ],
)
def test_the_runner_id_follows_the_role_and_the_overrides_win(
    env: dict[str, str], expected: RevDial
) -> None:
    assert revdial_from_env(env) == expected


def test_a_bad_role_or_a_missing_instance_names_its_variable() -> None:
    with pytest.raises(ConfigError, match=r"^HELIX_REVDIAL_ROLE: must be one of sandbox, wolf"):
        revdial_from_env({"HELIX_REVDIAL_ROLE": "desktop"})
    with pytest.raises(ConfigError, match=r"^HELIX_SESSION_ID: unset, and the RevDial role"):
        revdial_from_env({})


def test_the_step_exports_only_where_an_api_url_and_the_client_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exports = tmp_path / "env"
    base = {"HELIX_INIT_RUN_DIR": str(tmp_path), "HELIX_INIT_ENV_FILE": str(exports)}
    assert api_url(base) is None
    name_revdial_runner(Level({**base, "HELIX_REVDIAL_ROLE": "bad"}))  # no API: no agent
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    name_revdial_runner(Level({**base, **API}))
    assert "revdial-client is not installed" in capsys.readouterr().out
    assert not exports.exists()
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    name_revdial_runner(Level({**base, **API, "HELIX_SESSION_ID": "ses1"}))
    assert exports.read_text() == (
        "HELIX_RUNNER_ID=sandbox-ses1\0HELIX_REVDIAL_LOCAL_ADDR=127.0.0.1:9876\0"
    )


def test_the_api_url_and_runner_id_are_checked_before_anything_starts() -> None:
    from helix_init.settings.revdial import problems_from_env

    good = {"HELIX_API_URL": "http://api.helix.test:8080", "HELIX_SESSION_ID": "ses_1"}
    assert problems_from_env(good, has_client=True) == []
    assert problems_from_env({}, has_client=True) == []  # no API URL: no agent, nothing to check

    def said(env: dict[str, str], has_client: bool = True) -> list[tuple[str, str]]:
        return [(p.where, p.what) for p in problems_from_env(env, has_client)]

    for bad in ("api:8080", "ftp://api", "http://", "http://a b", "http://a\x00b"):
        assert said({"HELIX_API_URL": bad}, has_client=False) == [
            ("HELIX_API_URL", f"must be an http:// or https:// URL with a host, got {bad!r}")
        ]
    # the step's own rules, only where the step will name a runner (a client on PATH)
    assert said({**good, "HELIX_SESSION_ID": ""}, has_client=False) == []
    assert said({**good, "HELIX_SESSION_ID": ""})[0][0] == "HELIX_SESSION_ID"
    assert said({**good, "HELIX_SESSION_ID": "a b"}) == [
        (
            "HELIX_SESSION_ID",
            "makes the runner id 'sandbox-a b': no white space or control characters",
        )
    ]
    assert said({**good, "HELIX_RUNNER_ID": "x\ty"})[0][0] == "HELIX_RUNNER_ID"
