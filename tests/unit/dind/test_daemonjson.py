"""daemon.json rendering: from the plan, the operator's file merged in, written once."""

from __future__ import annotations

import json
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from helix_init.dind.daemonjson import (
    DaemonInputs,
    load_operator_config,
    nvidia_runtime_wanted,
    operator_config,
    render_daemon_json,
    write_daemon_json,
)
from helix_init.dind.netplan import NetPlan
from helix_init.problems import ConfigError
from helix_init.settings.dind import registries_from_env

PLAN = NetPlan(
    network=IPv4Network("10.213.0.0/16"),
    bip=IPv4Interface("10.213.0.1/24"),
    mtu=1450,
    reserved_for_children=(IPv4Network("10.213.0.0/16"),),
)


def test_rendered_from_the_plan() -> None:
    config = render_daemon_json(
        DaemonInputs(
            net=PLAN,
            insecure_registries=["registry:5000"],
            dns=["10.213.0.1"],
            dns_search=["helix.local"],
            dns_opts=["ndots:1"],
        )
    )
    assert config == {
        "storage-driver": "overlay2",
        "group": "docker",
        "shutdown-timeout": 15,
        "iptables": True,
        "bridge": "helix0",
        "default-address-pools": [{"base": "10.213.0.0/16", "size": 24}],
        "mtu": 1450,
        "default-network-opts": {"bridge": {"com.docker.network.driver.mtu": "1450"}},
        "insecure-registries": ["registry:5000"],
        "dns": ["10.213.0.1"],
        "dns-search": ["helix.local"],
        "dns-opts": ["ndots:1"],
    }
    assert "bip" not in config  # dockerd refuses bip together with bridge


def test_no_usable_network_turns_iptables_and_the_bridge_off() -> None:
    config = render_daemon_json(DaemonInputs(storage_driver="vfs", bridge_disabled="gVisor"))
    assert (config["iptables"], config["bridge"], config["storage-driver"]) == (
        False,
        "none",
        "vfs",
    )
    assert "mtu" not in config and "default-address-pools" not in config


def test_nvidia_runtime() -> None:
    config = render_daemon_json(DaemonInputs(nvidia=True))
    assert config["runtimes"] == {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}
    assert "runtimes" not in render_daemon_json(DaemonInputs())


@pytest.mark.parametrize(
    ("vendor", "device", "runtime", "wanted"),
    [
        ("nvidia", False, False, True),
        ("NVIDIA", True, True, True),
        ("amd", True, True, False),
        (None, True, True, True),
        (None, True, False, False),
        ("", False, True, False),
    ],
)
def test_when_the_nvidia_runtime_is_configured(
    vendor: str | None, device: bool, runtime: bool, wanted: bool
) -> None:
    assert nvidia_runtime_wanted(vendor, device, runtime) is wanted


def test_operator_keys_win_and_objects_merge() -> None:
    operator = {
        "storage-driver": "vfs",
        "log-driver": "local",
        "default-address-pools": [{"base": "10.99.0.0/16", "size": 26}],
        "default-network-opts": {"bridge": {"com.docker.network.bridge.enable_icc": "false"}},
        "runtimes": {"sysbox": {"path": "/usr/bin/sysbox-runc"}},
    }
    config = render_daemon_json(DaemonInputs(net=PLAN, nvidia=True), operator)
    assert config["storage-driver"] == "vfs"
    assert config["log-driver"] == "local"
    assert config["default-address-pools"] == [{"base": "10.99.0.0/16", "size": 26}]
    assert config["default-network-opts"] == {
        "bridge": {
            "com.docker.network.driver.mtu": "1450",
            "com.docker.network.bridge.enable_icc": "false",
        }
    }
    assert set(config["runtimes"]) == {"nvidia", "sysbox"}


def test_operator_bip_brings_back_the_default_bridge() -> None:
    config = render_daemon_json(DaemonInputs(net=PLAN), {"bip": "192.168.5.1/24"})
    assert config["bip"] == "192.168.5.1/24" and "bridge" not in config
    both = render_daemon_json(DaemonInputs(net=PLAN), {"bip": "1.2.3.1/24", "bridge": "br9"})
    assert both["bridge"] == "br9"


def test_operator_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}\n')
    assert operator_config(path) == {"debug": True}
    assert operator_config(None) is None


def test_bad_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{\n  "debug": true,\n  "mtu": 1400,\n}\n')
    with pytest.raises(ConfigError) as e:
        load_operator_config(path)
    (problem,) = e.value.problems
    assert problem.where == str(path)
    assert problem.what.startswith("invalid JSON at line 4, column 1:")


def test_not_an_object_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('["debug"]')
    with pytest.raises(ConfigError, match="must hold a JSON object, not list"):
        load_operator_config(path)


def test_missing_operator_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read"):
        load_operator_config(tmp_path / "missing.json")


def test_rendering_and_writing_twice_changes_nothing(tmp_path: Path) -> None:
    inputs = DaemonInputs(net=PLAN, insecure_registries=["r:5000"])
    first = render_daemon_json(inputs, {"debug": True})
    second = render_daemon_json(inputs, {"debug": True})
    assert first == second
    path = tmp_path / "etc" / "docker" / "daemon.json"
    assert write_daemon_json(first, path) is True
    mtime = path.stat().st_mtime_ns
    assert write_daemon_json(second, path) is False
    assert path.stat().st_mtime_ns == mtime
    assert json.loads(path.read_text()) == first
    assert [p.name for p in path.parent.iterdir()] == ["daemon.json"]


def test_registries_from_the_environment() -> None:
    env = {"HELIX_REGISTRY": "http://registry:5000/, 10.0.0.5:5000"}
    assert registries_from_env(env) == ["registry:5000", "10.0.0.5:5000"]
    assert registries_from_env({}) == []


def test_bytes_that_are_not_utf8_are_one_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_bytes(b'{"data-root": "/var/lib/d\xf6cker"}')
    with pytest.raises(ConfigError) as e:
        load_operator_config(path)
    (problem,) = e.value.problems
    assert problem.what == "not UTF-8 text: invalid start byte at byte 25"


def test_a_utf8_bom_is_accepted_as_dockerd_does(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_bytes(b'\xef\xbb\xbf{"debug": true}\n')
    assert load_operator_config(path) == {"debug": True}
