"""A service's environment is the container's, plus what it declares and the exports it takes.

Read where it matters: /proc/PID/environ of each running service (real
supervisord, real svcexec), compared with what the test put in. And what an
operator reads: `helix-init env SERVICE`, origins named, the secret masked.
"""

from __future__ import annotations

import pytest
from svcharness import Services, exec_environ, host_pid

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

TOKEN = "rt-41c9-runner-token-do-not-print"
USER_TOKEN = "ut-77d0-user-token-do-not-print"
CONTAINER = {
    "RUNNER_TOKEN": TOKEN,
    "USER_API_TOKEN": USER_TOKEN,  # not declared as any service's secret: passed through
    "HELIX_API_URL": "http://api.test:8080",
    "KEPT": "yes",
    # COMPAT: everything else passes through untouched
    "NVIDIA_VISIBLE_DEVICES": "all",
    "LD_LIBRARY_PATH": "/usr/local/nvidia/lib64",
}
SLEEP = 'command = ["sleep", "1000"]\n'


def test_each_service_gets_exactly_the_container_env_its_declarations_and_exports(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    pid1.step("10-exports.sh", "export FROM_STEP=1 OTHER_STEP=2\nunset KEPT_UNSET\n")
    svc.add(
        "all",
        SLEEP
        + 'environment = { GREETING = "hi ${FROM_STEP}", AUTH = "Bearer ${USER_API_TOKEN}" }\n',
    )
    svc.add("some", SLEEP + 'inherit_exports = ["OTHER_STEP"]\n')
    svc.add("none", SLEEP + "inherit_exports = false\n")
    svc.add(
        "agent",
        SLEEP
        + 'secrets.RUNNER_TOKEN = { env = "RUNNER_TOKEN" }\nrequired_env = ["HELIX_API_URL"]\n',
    )
    env = {**CONTAINER, "KEPT_UNSET": "gone-after-step-10"}
    running = pid1.start(env=env)
    running.wait_for_file(svc.ready_file)

    container = {**pid1.env, **env}
    del container["RUNNER_TOKEN"]  # a secret's source is for its own service only
    without_unset = {k: v for k, v in container.items() if k != "KEPT_UNSET"}
    expected = {
        "all": {
            **without_unset,
            **{"FROM_STEP": "1", "OTHER_STEP": "2", "GREETING": "hi 1"},
            "AUTH": f"Bearer {USER_TOKEN}",
        },
        "some": {**container, "OTHER_STEP": "2"},
        "none": container,
        "agent": {**without_unset, "FROM_STEP": "1", "OTHER_STEP": "2", "RUNNER_TOKEN": TOKEN},
    }
    for name, wanted in expected.items():
        pid = host_pid(running, svc.service(name)["pid"])
        assert exec_environ(pid, b"sleep") == wanted, name

    shown = pid1.command("env", "agent")
    assert shown.code == 0, shown.describe()
    lines = shown.stdout.splitlines()
    assert "RUNNER_TOKEN=********  # secret from $RUNNER_TOKEN" in lines
    assert "FROM_STEP=1  # step 10-exports.sh" in lines
    assert "HELIX_API_URL=http://api.test:8080" in lines  # the container's own: no origin
    assert TOKEN not in shown.stdout + shown.stderr
    shown_all = pid1.command("env", "all").stdout
    assert "GREETING=hi 1  # service file" in shown_all.splitlines()
    # A value that holds a secret is masked as a whole; so is a secret-named one.
    assert "AUTH=********  # service file" in shown_all.splitlines()
    assert "USER_API_TOKEN=********" in shown_all.splitlines()
    assert USER_TOKEN not in shown_all
    # A service that refused the exports shows the container's value as the container's.
    assert "KEPT_UNSET=gone-after-step-10" in pid1.command("env", "none").stdout.splitlines()


def test_a_service_lacking_a_required_variable_fails_naming_it_and_never_starts(
    pid1: Pid1,
) -> None:
    svc = Services(pid1)
    marker = pid1.path("started")
    svc.add(
        "agent",
        f'command = ["touch", "{marker}"]\nrequired_env = ["HELIX_API_URL", "HELIX_SESSION_ID"]\n'
        'secrets.RUNNER_TOKEN = { env = "RUNNER_TOKEN" }\n',
    )
    svc.add("other", SLEEP)
    running = pid1.start(env={"HELIX_SESSION_ID": "ses_1"})

    failed = svc.wait_service(running, "agent", lambda s: s["state"] == "failed", "failed")

    assert "missing required variable(s): HELIX_API_URL, RUNNER_TOKEN" in str(failed), failed
    assert not marker.exists()
    assert svc.wait_ready(running, "other")["state"] == "ready"
    shown = pid1.command("env", "agent")
    assert "# missing: HELIX_API_URL (the service is not started without it)" in shown.stdout


def test_env_for_an_unknown_or_disabled_service_says_which(pid1: Pid1) -> None:
    svc = Services(pid1)
    svc.add("dockerd", SLEEP)
    svc.add("off", SLEEP + 'enabled_if = { env_set = "NEVER_SET" }\n')
    running = pid1.start()
    running.wait_for_file(svc.ready_file)

    unknown = pid1.command("env", "dockrd")
    disabled = pid1.command("env", "off")

    assert unknown.code == 64
    assert (
        unknown.stderr.strip()
        == "helix-init env: no enabled service 'dockrd' (did you mean 'dockerd'?)"
    )
    assert disabled.code == 64
    assert disabled.stderr.startswith("helix-init env: service off is disabled (")


def test_finish_sees_the_services_environment_without_its_secrets(pid1: Pid1) -> None:
    svc = Services(pid1)
    seen = pid1.path("finish-env")
    svc.add(
        "once",
        'command = ["true"]\nrestart = "never"\n'
        'environment = { DECLARED = "yes" }\n'
        'secrets.RUNNER_TOKEN = { env = "RUNNER_TOKEN" }\n'
        f'finish = ["sh", "-c", "env > {seen}.tmp && mv {seen}.tmp {seen}"]\n',
    )
    running = pid1.start("sleep", "60", env={"RUNNER_TOKEN": TOKEN})
    running.wait_for_file(seen)

    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env["DECLARED"] == "yes"
    assert "RUNNER_TOKEN" not in env
    assert TOKEN not in seen.read_text()
