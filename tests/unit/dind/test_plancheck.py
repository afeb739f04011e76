"""The DinD settings boot and `helix-init check` validate before anything starts (no processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helix_init.dind import plancheck
from helix_init.dind.plancheck import problems_from_env
from helix_init.settings import dind

CHECKED = (
    "HELIX_DOCKERD_CONFIG",
    "HELIX_DOCKER_DEPTH",
    "HELIX_DOCKER_DEPTH_DEFAULT",
    "HELIX_STORAGE_FALLBACK",
    "HELIX_DOCKER_GID",
    "HELIX_INIT_RESERVED_NETS",
    "HELIX_IPTABLES_BACKEND",
)


def test_the_settings_name_the_variables_the_steps_read() -> None:
    names = (
        dind.DOCKERD_CONFIG,
        dind.DEPTH,
        dind.DEPTH_DEFAULT,
        dind.STORAGE_FALLBACK,
        dind.DOCKER_GID,
        dind.RESERVED_NETS,
        dind.IPTABLES_BACKEND,
    )
    assert names == CHECKED


def test_unset_or_empty_or_good_values_are_no_problem(tmp_path: Path) -> None:
    good = tmp_path / "daemon.json"
    good.write_text('{"debug": true}\n')
    assert problems_from_env({}) == []
    assert problems_from_env(dict.fromkeys(CHECKED, "  ")) == []
    assert (
        problems_from_env(
            {
                "HELIX_DOCKERD_CONFIG": str(good),
                "HELIX_DOCKER_DEPTH": "2",
                "HELIX_STORAGE_FALLBACK": "vfs",
                "HELIX_DOCKER_GID": "998",
                "HELIX_INIT_RESERVED_NETS": "10.0.0.0/8, 192.168.0.0/16",
                "HELIX_IPTABLES_BACKEND": "nft",
            }
        )
        == []
    )


def test_every_bad_value_is_reported_naming_its_variable_or_file(tmp_path: Path) -> None:
    bad = tmp_path / "daemon.json"
    bad.write_bytes(b"[1]")
    problems = problems_from_env(
        {
            "HELIX_DOCKERD_CONFIG": str(bad),
            "HELIX_DOCKER_DEPTH": "deep",
            "HELIX_STORAGE_FALLBACK": "zfs",
            "HELIX_DOCKER_GID": "-5",
            "HELIX_INIT_RESERVED_NETS": "nope,fd00::/8",
            "HELIX_IPTABLES_BACKEND": "pf",
            "HELIX_DOCKER_DEPTH_DEFAULT": "two",
        }
    )
    assert [p.where for p in problems] == [
        str(bad),
        "HELIX_DOCKER_DEPTH_DEFAULT",
        "HELIX_DOCKER_DEPTH",
        "HELIX_STORAGE_FALLBACK",
        "HELIX_DOCKER_GID",
        "HELIX_INIT_RESERVED_NETS",
        "HELIX_INIT_RESERVED_NETS",
        "HELIX_IPTABLES_BACKEND",
    ]


def test_a_level_that_sets_none_imports_none_of_the_dind_modules() -> None:
    code = (
        "import sys; from helix_init.dind.plancheck import problems_from_env\n"
        "problems_from_env({})\n"
        "print(sorted(m for m in sys.modules if m.startswith('helix_init.dind.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['helix_init.dind.plancheck']"
    assert plancheck.__doc__ and "HELIX_DOCKERD_CONFIG must name a file" in plancheck.__doc__


def test_a_bad_upstream_resolver_is_refused_before_the_network_step_would() -> None:
    assert problems_from_env({"HELIX_DNS": "8.8.8.8, [fd00::53]:5353 10.0.0.1:53"}) == []
    found = [(p.where, p.what) for p in problems_from_env({"HELIX_DNS": "999.1.1.1,10.0.0.1:0"})]
    assert found == [
        ("HELIX_DNS", "not an IP address: '999.1.1.1'"),
        ("HELIX_DNS", "port out of range: '10.0.0.1:0'"),
    ]
    # DNS_UPSTREAM (today's images) is named when it is the one in use
    assert [p.where for p in problems_from_env({"DNS_UPSTREAM": "resolver"})] == ["DNS_UPSTREAM"]


def test_a_registry_with_white_space_or_a_control_character_is_refused() -> None:
    env = {"HELIX_REGISTRY": "http://reg.local:5000/, ok.test,bad host,x\x1by"}
    assert [p.what for p in problems_from_env(env)] == [
        "not a registry host[:port]: 'bad host'",
        "not a registry host[:port]: 'x\\x1by'",
    ]
    assert dind.registries_from_env({"HELIX_REGISTRY": "http://reg.local:5000/,ok.test"}) == [
        "reg.local:5000",
        "ok.test",
    ]
