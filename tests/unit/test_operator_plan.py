"""`helix-init plan` says which service decisions wait for cont-init, and on what."""

from __future__ import annotations

from pathlib import Path

import pytest

from helix_init import operator
from helix_init.settings import Settings


def test_a_service_a_step_switches_on_is_shown_as_waiting_for_cont_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services = tmp_path / "services.d"
    services.mkdir()
    daemon_json = tmp_path / "run" / "docker" / "daemon.json"
    (services / "dockerd.toml").write_text(
        f'command = ["dockerd"]\nenabled_if = {{ path_exists = "{daemon_json}" }}\n'
    )
    (services / "web.toml").write_text('command = ["true"]\nuser = "${UNAME}"\n')
    settings = Settings.from_env(
        {
            "HELIX_INIT_CONT_INIT_DIR": str(tmp_path / "none"),
            "HELIX_INIT_CONT_FINISH_DIR": str(tmp_path / "none"),
            "HELIX_INIT_SERVICES_DIR": str(services),
            "HELIX_INIT_RUN_DIR": str(tmp_path / "run"),
            "UNAME": "hx-plan-test",  # made by the user step
        }
    )

    assert operator.plan(settings) == 0

    out = capsys.readouterr().out
    assert (
        f"  -  dockerd off until cont-init says otherwise: "
        f"enabled_if.path_exists: {daemon_json} does not exist"
    ) in out.splitlines()
    assert "  1. web, restart always" in out.splitlines()
    assert out.splitlines()[-4:-1] == [
        "decided after cont-init (resolved again once the steps ran): 2",
        f"  dockerd: enabled_if, waits on path {daemon_json} "
        f"(now off: enabled_if.path_exists: {daemon_json} does not exist)",
        "  web: user hx-plan-test, waits on the user step (PUID, PGID, UNAME) (now not there yet)",
    ]
