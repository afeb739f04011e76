"""adopted: whom a step's leftovers are TERMed as, in which order, and with how much grace."""

from __future__ import annotations

import json

import pytest

from helix_init import adopted
from helix_init.adopted import Proc

# `( while true; do dockerd ...; sleep 2; done ) | tee -a LOG | sed ... &` after its
# step (session 100) ended: the loop subshell, dockerd and its containerd, tee, sed.
LOOP = Proc(101, 1, 100, "bash", ("/bin/bash", "/etc/cont-init.d/40-start-dockerd.sh"))
DOCKERD = Proc(105, 101, 100, "dockerd", ("dockerd", "--config-file", "/etc/docker/daemon.json"))
CONTAINERD = Proc(106, 105, 100, "containerd", ("containerd", "--config", "x.toml"))
TEE = Proc(102, 1, 100, "tee", ("tee", "-a", "/var/log/helix-services/dockerd.log"))
SED = Proc(103, 1, 100, "sed", ("sed", "-u", "s/^/[DOCKERD] /"))
LEFT = [LOOP, TEE, SED, DOCKERD, CONTAINERD]


def test_a_zombie_is_gone_and_a_live_entry_is_read() -> None:
    stat = b"105 (dockerd) S 101 105 100 0 -1 4194560"
    assert adopted.parse_stat(105, stat, b"dockerd\0--debug\0") == Proc(
        105, 101, 100, "dockerd", ("dockerd", "--debug")
    )
    assert adopted.parse_stat(7, b"7 (a) b) Z 1 7 7 0", b"") is None  # ")" in a name too


def test_the_loop_and_its_daemon_first_never_the_daemons_children_or_the_pipes() -> None:
    assert adopted.first_wave(LEFT) == [LOOP, DOCKERD]
    assert adopted.members([*LEFT, Proc(9, 1, 9, "other", ())], 100) == sorted(
        LEFT, key=lambda p: p.pid
    )


def test_dockerd_grace_is_its_own_shutdown_timeout_plus_its_exit() -> None:
    config = {"/etc/docker/daemon.json": json.dumps({"shutdown-timeout": 40})}
    assert adopted.grace(LEFT, 10, config.__getitem__) == (
        50.0,
        "dockerd's shutdown-timeout 40s + 10s",
    )
    flag = Proc(5, 1, 5, "dockerd", ("dockerd", "--shutdown-timeout=3"))
    assert adopted.grace([flag], 10, config.__getitem__)[0] == 13.0


def _missing(path: str) -> str:
    raise FileNotFoundError(path)


@pytest.mark.parametrize("text", ["{", "[]", '{"shutdown-timeout": "soon"}'])
def test_without_a_readable_value_dockerds_default_15s_holds(text: str) -> None:
    assert adopted.dockerd_shutdown_timeout(["dockerd"], lambda _p: text) == 15.0
    assert adopted.dockerd_shutdown_timeout(["dockerd"], _missing) == 15.0


def test_others_get_the_default_grace() -> None:
    assert adopted.grace([LOOP, TEE], 10, _missing) == (10, "HELIX_INIT_ADOPTED_GRACETIME 10s")


def test_secret_values_are_masked_in_listed_commands() -> None:
    hide = adopted.masker({"USER_API_TOKEN": "tok-123456", "HOME": "/root"})
    daemon = Proc(7, 1, 7, "settings-sync", ("settings-sync", "--token", "tok-123456"))
    assert adopted.describe([daemon], hide) == [
        {"pid": 7, "name": "settings-sync", "command": "settings-sync --token ********"}
    ]
