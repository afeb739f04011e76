"""Preflight facts: decoders, the one-line reason a level cannot run dockerd, and this machine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from helix_init.dind.facts import (
    Observations,
    cgroup_layout,
    decode_capabilities,
    default_route_interface,
    in_user_namespace,
    observe,
    preflight_facts,
)
from helix_init.dind.storage import parse_mountinfo
from helix_init.hostinfo import is_gvisor
from helix_init.problems import ConfigError
from helix_init.settings.dind import DindSettings, depth_from_env

DOCKER_DEFAULT_CAPS = "00000000a80425fb"
ALL_CAPS = "000001ffffffffff"

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_RO = "30 23 0:27 / /sys/fs/cgroup ro,nosuid,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
ROOT_EXT4 = "20 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"


def test_docker_default_capabilities_decode() -> None:
    assert decode_capabilities(DOCKER_DEFAULT_CAPS) == [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
        "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
    ]  # fmt: skip


def test_all_capabilities_and_unknown_bits() -> None:
    caps = decode_capabilities(ALL_CAPS)
    assert len(caps) == 41 and caps[-1] == "CAP_CHECKPOINT_RESTORE"
    assert decode_capabilities("0000060000000000") == ["cap_41", "cap_42"]
    assert decode_capabilities("0") == []


@pytest.mark.parametrize(
    ("release", "version", "gvisor"),
    [
        ("4.4.0", "#1 SMP Sun Jan 10 15:06:54 PST 2016", True),
        ("5.10.0", "#1 SMP Sun Jan 10 15:06:54 PST 2016", True),
        ("4.4.0", "#1 SMP", True),
        ("6.1.0-gvisor", "#1", True),
        ("4.4.0-210-generic", "#242-Ubuntu SMP", False),
        ("6.18.44-fc-v669", "#1 SMP PREEMPT_DYNAMIC @0", False),
    ],
)
def test_gvisor_is_recognised_by_its_fake_kernel(release: str, version: str, gvisor: bool) -> None:
    assert is_gvisor(release, version) is gvisor


@pytest.mark.parametrize(
    ("uid_map", "userns"),
    [
        ("         0          0 4294967295\n", False),
        ("         0     100000      65536\n", True),
        ("         0          0      65536\n", True),
        ("0 0 1000\n1000 1000 4294966295\n", True),
    ],
)
def test_user_namespace_is_anything_but_the_full_identity_map(uid_map: str, userns: bool) -> None:
    assert in_user_namespace(uid_map) is userns


@pytest.mark.parametrize(
    ("mountinfo", "version", "writable", "read_only"),
    [
        (HYBRID, "hybrid", True, []),
        (HYBRID.replace("/unified rw,", "/unified ro,"), "hybrid", False,
         ["/sys/fs/cgroup/unified"]),
        ("\n".join(HYBRID.splitlines()[:3]), "v1", True, []),
        (V2_RO, "v2", False, ["/sys/fs/cgroup"]),
        (V2_RO.replace(" ro,", " rw,"), "v2", True, []),
        (ROOT_EXT4, "none", False, []),
    ],
)  # fmt: skip
def test_cgroup_layout(mountinfo: str, version: str, writable: bool, read_only: list[str]) -> None:
    layout = cgroup_layout(parse_mountinfo(mountinfo))
    assert layout == {"version": version, "writable": writable, "read_only": read_only}


ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t010200C0\t0003\t0\t0\t200\t00000000\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth2\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_default_route_is_the_lowest_metric_up_one() -> None:
    assert default_route_interface(ROUTES) == "eth0"
    assert default_route_interface(ROUTES.splitlines()[0]) is None


def test_depth_setting() -> None:
    assert depth_from_env({}, 2) == 2
    assert depth_from_env({"HELIX_DOCKER_DEPTH": "3"}, 1) == 3
    with pytest.raises(ConfigError, match="HELIX_DOCKER_DEPTH"):
        depth_from_env({"HELIX_DOCKER_DEPTH": "-1"}, 1)


PRIVILEGED = Observations(
    pid=1,
    euid=0,
    proc_status=f"Name:\thelix-init\nCapEff:\t{ALL_CAPS}\n",
    mountinfo=ROOT_EXT4 + HYBRID,
    uid_map="0 0 4294967295\n",
    uname_release="6.1.0",
    uname_version="#1 SMP",
    data_root=Path("/var/lib/docker"),
    data_root_fs="ext4",
    default_interface="eth0",
    mtu=1450,
    fuse_device=False,
    fuse_binary=False,
)


def test_a_privileged_level_on_a_volume_can_run_dockerd() -> None:
    facts = preflight_facts(PRIVILEGED, DindSettings.from_env({"HELIX_DOCKER_DEPTH": "2"}))
    assert facts["can_run_dockerd"] is True and facts["why_not"] is None
    assert facts["pid1"] is True and facts["depth"] == 2 and facts["gvisor"] is False
    assert facts["storage"] == {
        "path": "/var/lib/docker", "fs_type": "ext4", "driver": "overlay2", "warning": None,
    }  # fmt: skip
    assert facts["network"] == {"default_interface": "eth0", "mtu": 1450}
    assert facts["cgroup"]["version"] == "hybrid"
    assert facts["warnings"] == []
    json.dumps(facts)  # facts.json


@pytest.mark.parametrize(
    ("changes", "env", "why"),
    [
        ({"data_root_fs": "overlay"}, {}, "-v NAME:/var/lib/docker"),
        ({"data_root_fs": "overlay"}, {"HELIX_STORAGE_FALLBACK": "fuse-overlayfs"},
         "needs /dev/fuse"),
        ({"proc_status": f"CapEff:\t{DOCKER_DEFAULT_CAPS}\n"}, {}, "CAP_SYS_ADMIN is missing"),
        ({"euid": 1000}, {}, "dockerd needs root; this level runs as uid 1000"),
        ({"mountinfo": ROOT_EXT4}, {}, "no cgroup filesystem is mounted at /sys/fs/cgroup"),
    ],
)  # fmt: skip
def test_why_a_level_cannot_run_dockerd_in_one_line(
    changes: dict[str, object], env: dict[str, str], why: str
) -> None:
    facts = preflight_facts(dataclasses.replace(PRIVILEGED, **changes), DindSettings.from_env(env))  # type: ignore[arg-type]
    assert facts["can_run_dockerd"] is False
    assert why in facts["why_not"] and "\n" not in facts["why_not"]


def test_fallback_storage_and_gvisor_are_warnings_not_blockers() -> None:
    obs = dataclasses.replace(
        PRIVILEGED, data_root_fs="overlay", uname_release="4.4.0", uid_map="0 1000 65536\n"
    )
    facts = preflight_facts(obs, DindSettings.from_env({"HELIX_STORAGE_FALLBACK": "vfs"}))
    assert facts["can_run_dockerd"] is True
    assert facts["storage"]["driver"] == "vfs" and facts["gvisor"] and facts["user_namespace"]
    assert len(facts["warnings"]) == 3


def test_this_machine() -> None:
    facts = preflight_facts(observe(), DindSettings())
    json.dumps(facts)
    assert facts["cgroup"]["version"] in ("v1", "v2", "hybrid", "none")
    assert isinstance(facts["can_run_dockerd"], bool)
