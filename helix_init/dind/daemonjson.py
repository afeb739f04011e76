"""daemon.json for this level's dockerd, from the plan plus the operator's file; pure, one writer.

Choices worth knowing:
- "bridge": "helix0" and no "bip": dockerd rejects the two together, and takes
  the address netplan.ensure_bridge put on helix0 as the default network (see
  netplan). An operator file that sets "bip" without "bridge" gets docker0
  back, since keeping ours would make dockerd refuse to start.
- "mtu" covers the default bridge only. "default-network-opts" carries the
  MTU to user-defined networks (compose) from Docker 24.0 on. Docker 20.10
  accepts the key and ignores it (its validation flattens one level and
  "bridge" is a known flag; checked by starting 20.10.24 with it), so it is
  always written: harmless there, effective on newer engines.
- The operator's file (HELIX_DOCKERD_CONFIG) is merged last and wins: objects
  merge key by key, anything else is replaced whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helix_init.dind.netplan import BRIDGE_NAME, NetPlan
from helix_init.problems import ConfigError, Problem

SHUTDOWN_TIMEOUT = 15  # s dockerd gives its containers on stop; the init must wait longer
NVIDIA_RUNTIME = "nvidia-container-runtime"


@dataclass(frozen=True)
class DaemonInputs:
    storage_driver: str = "overlay2"
    net: NetPlan | None = None
    bridge_disabled: str | None = None  # the reason; dockerd then runs without iptables or bridge
    insecure_registries: Sequence[str] = ()
    nvidia: bool = False
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_opts: Sequence[str] = ()
    group: str = "docker"
    shutdown_timeout: int = SHUTDOWN_TIMEOUT


def render_daemon_json(
    inputs: DaemonInputs, operator: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The daemon.json object; the same inputs always give the same object."""
    config: dict[str, Any] = {
        "storage-driver": inputs.storage_driver,
        "group": inputs.group,
        "shutdown-timeout": inputs.shutdown_timeout,
    }
    if inputs.bridge_disabled:
        config["iptables"] = False
        config["bridge"] = "none"
    else:
        config["iptables"] = True
        config["bridge"] = BRIDGE_NAME
    if inputs.net is not None:
        config["default-address-pools"] = inputs.net.address_pools
        if inputs.net.mtu:
            config["mtu"] = inputs.net.mtu
            config["default-network-opts"] = {
                "bridge": {"com.docker.network.driver.mtu": str(inputs.net.mtu)}
            }
    if inputs.insecure_registries:
        config["insecure-registries"] = list(inputs.insecure_registries)
    if inputs.nvidia:
        config["runtimes"] = {"nvidia": {"path": NVIDIA_RUNTIME, "runtimeArgs": []}}
    for key, values in (
        ("dns", inputs.dns),
        ("dns-search", inputs.dns_search),
        ("dns-opts", inputs.dns_opts),
    ):
        if values:
            config[key] = list(values)
    if operator:
        if "bip" in operator and "bridge" not in operator and config["bridge"] == BRIDGE_NAME:
            del config["bridge"]
        config = merge(config, operator)
    return config


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """override on top of base: nested objects key by key, other values replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def nvidia_runtime_wanted(gpu_vendor: str | None, device: bool, runtime: bool) -> bool:
    """GPU_VENDOR decides when set (COMPAT: exactly when nvidia); else device and runtime."""
    if gpu_vendor:
        return gpu_vendor.strip().lower() == "nvidia"
    return device and runtime


def load_operator_config(path: Path) -> dict[str, Any]:
    """The operator's daemon.json fragment; errors name the file and the line and column."""
    try:
        # Bytes, not text: json finds the encoding (a UTF-8 BOM from a Windows
        # editor is fine, as it is for dockerd), and bytes that are no text at
        # all were a UnicodeDecodeError traceback instead of this one line.
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError([Problem(str(path), f"cannot read ({e.strerror})")]) from e
    try:
        value = json.loads(data)
    except json.JSONDecodeError as e:
        raise ConfigError(
            [Problem(str(path), f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]
        ) from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            [Problem(str(path), f"not UTF-8 text: {e.reason} at byte {e.start}")]
        ) from e
    if not isinstance(value, dict):
        raise ConfigError(
            [Problem(str(path), f"must hold a JSON object, not {type(value).__name__}")]
        )
    return value


def operator_config(path: Path | None) -> dict[str, Any] | None:
    """HELIX_DOCKERD_CONFIG's file (DindSettings.dockerd_config), None when unset."""
    return None if path is None else load_operator_config(path)


def to_text(config: Mapping[str, Any]) -> str:
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def write_daemon_json(config: Mapping[str, Any], path: Path) -> bool:
    """Write config to path atomically when it differs; True when the file changed."""
    text = to_text(config)
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True
