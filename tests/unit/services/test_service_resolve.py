"""Plan, then act: reading services.d is files -> specs; resolving adds the environment and
the accounts, once before cont-init (what waits for it is pending) and once after."""

from __future__ import annotations

from pathlib import Path

import pytest

from helix_init.problems import ConfigError
from helix_init.services.resolve import Kind, resolve
from helix_init.services.spec import Pending, read_services


class FakeAccounts:
    def __init__(self, users: set[str], groups: set[str]) -> None:
        self.known = {"user": users, "group": groups}
        self.asked: list[tuple[Kind, str]] = []

    def has(self, kind: Kind, account: str) -> bool:
        self.asked.append((kind, account))
        return account in self.known[kind]


DAEMON_JSON = "/run/helix-init/docker/daemon.json"


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    (tmp_path / "dockerd.toml").write_text(
        f'command = ["dockerd"]\nenabled_if = {{ path_exists = "{DAEMON_JSON}" }}\n'
    )
    (tmp_path / "agent.toml").write_text(
        'command = ["agent"]\nrequires = ["dockerd"]\nuser = "${UNAME}"\ngroup = "docker"\n'
        'enabled_if = { env_set = "HELIX_API_URL" }\n'
    )
    return tmp_path


def test_reading_takes_the_files_as_written(specs: Path) -> None:
    dockerd, agent = sorted(read_services(specs), key=lambda s: s.name != "dockerd")
    assert (agent.user, agent.group, agent.enabled) == ("${UNAME}", "docker", True)
    assert dockerd.enabled and dockerd.enabled_if is not None  # evaluated only by resolve


def test_before_cont_init_a_step_may_still_decide_and_that_is_said(specs: Path) -> None:
    accounts = FakeAccounts(users=set(), groups={"docker"})
    env = {"UNAME": "retro", "HELIX_API_URL": "http://api"}
    plan = resolve(
        read_services(specs), env, accounts=accounts, exists=lambda _p: False, before_cont_init=True
    )
    assert plan.enabled == ("agent",)  # dockerd's daemon.json is written by a step
    assert plan.get("agent").user == "retro"
    assert plan.pending == (
        Pending("agent", "enabled_if", "variable HELIX_API_URL", "on"),
        Pending("agent", "user retro", "the user step (PUID, PGID, UNAME)", "not there yet"),
        Pending(
            "dockerd",
            "enabled_if",
            f"path {DAEMON_JSON}",
            f"off: enabled_if.path_exists: {DAEMON_JSON} does not exist",
        ),
    )


def test_after_cont_init_it_is_decided_and_the_accounts_must_exist(specs: Path) -> None:
    env = {"UNAME": "retro", "HELIX_API_URL": "http://api"}
    made = FakeAccounts(users={"retro"}, groups={"docker"})
    plan = resolve(read_services(specs), env, accounts=made, exists=lambda p: p == DAEMON_JSON)
    assert (plan.enabled, plan.start_levels, plan.pending) == (
        ("agent", "dockerd"),
        (("dockerd",), ("agent",)),
        (),
    )
    with pytest.raises(ConfigError, match=r"agent.toml: user: unknown user 'retro'"):
        resolve(read_services(specs), env, accounts=FakeAccounts(set(), {"docker"}))
    with pytest.raises(ConfigError, match=r"user: '\$\{UNAME\}' is empty here"):
        resolve(read_services(specs), {}, accounts=made)
