"""Preflight facts about this level for facts.json, and whether it can run dockerd; reads only.

Runs first, before any step changes anything, so that a level that cannot run
dockerd says exactly why in one line instead of failing in dockerd's log
minutes later. observe() does the reading (procfs, sysfs, statfs, uname, no
subprocess); preflight_facts() turns it into the dict, with no I/O.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from helix_init.dind import DindError
from helix_init.dind.cgroups import CGROUP_ROOT, cgroup_mounts
from helix_init.dind.storage import (
    DATA_ROOT,
    Mount,
    choose_storage_driver,
    detect_fs_type,
    parse_mountinfo,
)
from helix_init.hostinfo import is_gvisor
from helix_init.settings.dind import DindSettings

FULL_UID_MAP = (0, 0, 4294967295)
PRIVILEGE_HINT = (
    "run this level with --privileged (or --cap-add ALL --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined --security-opt systempaths=unconfined)"
)

# Bit n of CapEff is capability n (linux/capability.h).
CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip


def decode_capabilities(cap_hex: str) -> list[str]:
    """CapEff's hex mask as CAP_* names; bits this table does not know as cap_N."""
    mask = int(cap_hex, 16)
    return [
        f"CAP_{CAP_NAMES[bit]}" if bit < len(CAP_NAMES) else f"cap_{bit}"
        for bit in range(mask.bit_length())
        if mask >> bit & 1
    ]


def status_field(proc_status: str, name: str) -> str:
    for line in proc_status.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return ""


def in_user_namespace(uid_map: str) -> bool:
    """True unless uid_map is the initial namespace's full identity map."""
    lines = [tuple(int(f) for f in line.split()) for line in uid_map.splitlines() if line.strip()]
    return lines != [FULL_UID_MAP]


class CgroupFacts(TypedDict):
    version: str  # v2, hybrid, v1 or none
    writable: bool
    read_only: list[str]


class StorageFacts(TypedDict):
    path: str
    fs_type: str
    driver: str | None  # None: no driver can work here (why_not says why)
    warning: str | None


class NetworkFacts(TypedDict):
    default_interface: str | None
    mtu: int | None  # None: no uplink found


class KernelFacts(TypedDict):
    release: str
    version: str


class Facts(TypedDict):
    """facts.json: what the preflight found, read by the later steps and `helix-init status`."""

    pid1: bool
    euid: int
    cgroup: CgroupFacts
    capabilities: list[str]
    gvisor: bool
    kernel: KernelFacts
    user_namespace: bool
    storage: StorageFacts
    network: NetworkFacts
    depth: int
    can_run_dockerd: bool
    why_not: str | None
    warnings: list[str]


def cgroup_layout(mounts: Sequence[Mount], root: Path = CGROUP_ROOT) -> CgroupFacts:
    """v2 (cgroup2 at root), hybrid (v1 + a cgroup2 below), v1, or none; and what is read-only."""
    under = cgroup_mounts(mounts, root)
    if any(m.fstype == "cgroup2" and Path(m.mount_point) == root for m in under):
        version = "v2"
    elif any(m.fstype == "cgroup" for m in under):
        version = "hybrid" if any(m.fstype == "cgroup2" for m in under) else "v1"
    else:
        version = "none"
    read_only = sorted({m.mount_point for m in under if m.read_only})
    return {"version": version, "writable": bool(under) and not read_only, "read_only": read_only}


def default_route_interface(proc_net_route: str) -> str | None:
    """The interface of the default route with the lowest metric, from /proc/net/route."""
    best: tuple[int, str] | None = None
    for line in proc_net_route.splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or f[1] != "00000000" or f[7] != "00000000" or not int(f[3], 16) & 1:
            continue
        if best is None or int(f[6]) < best[0]:
            best = (int(f[6]), f[0])
    return best[1] if best else None


@dataclass(frozen=True)
class Observations:
    """Everything preflight_facts needs, read in one place."""

    pid: int
    euid: int
    proc_status: str
    mountinfo: str
    uid_map: str
    uname_release: str
    uname_version: str
    data_root: Path
    data_root_fs: str
    default_interface: str | None
    mtu: int | None
    fuse_device: bool
    fuse_binary: bool


def observe(
    data_root: Path = DATA_ROOT,
    proc: Path = Path("/proc"),
    sys_class_net: Path = Path("/sys/class/net"),
    which: Callable[[str], str | None] = shutil.which,
) -> Observations:
    mountinfo = (proc / "self" / "mountinfo").read_text()
    iface = default_route_interface(_read(proc / "net" / "route"))
    mtu_text = _read(sys_class_net / iface / "mtu").strip() if iface else ""
    uname = os.uname()
    return Observations(
        pid=os.getpid(),
        euid=os.geteuid(),
        proc_status=(proc / "self" / "status").read_text(),
        mountinfo=mountinfo,
        uid_map=_read(proc / "self" / "uid_map"),
        uname_release=uname.release,
        uname_version=uname.version,
        data_root=data_root,
        data_root_fs=detect_fs_type(data_root, mountinfo),
        default_interface=iface,
        mtu=int(mtu_text) if mtu_text.isdigit() else None,
        fuse_device=Path("/dev/fuse").exists(),
        fuse_binary=which("fuse-overlayfs") is not None,
    )


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def preflight_facts(
    obs: Observations, settings: DindSettings, init_pid: str | None = None
) -> Facts:
    """The facts.json object; `init_pid` is the init's pid as it told its steps."""
    caps = decode_capabilities(status_field(obs.proc_status, "CapEff") or "0")
    cgroup = cgroup_layout(parse_mountinfo(obs.mountinfo))
    gvisor = is_gvisor(obs.uname_release, obs.uname_version)
    userns = in_user_namespace(obs.uid_map) if obs.uid_map else False
    blocker: str | None = None
    driver: str | None = None
    warning: str | None = None
    try:
        choice = choose_storage_driver(
            obs.data_root_fs,
            settings.storage_fallback,
            fuse_device=obs.fuse_device,
            fuse_binary=obs.fuse_binary,
            data_root=obs.data_root,
        )
        driver, warning = choice.driver, choice.warning
    except DindError as e:
        blocker = str(e)
    storage: StorageFacts = {
        "path": str(obs.data_root),
        "fs_type": obs.data_root_fs,
        "driver": driver,
        "warning": warning,
    }
    if obs.euid != 0:
        blocker = f"dockerd needs root; this level runs as uid {obs.euid}"
    elif "CAP_SYS_ADMIN" not in caps:
        blocker = f"CAP_SYS_ADMIN is missing: {PRIVILEGE_HINT}"
    elif cgroup["version"] == "none":
        blocker = f"no cgroup filesystem is mounted at {CGROUP_ROOT}"
    warnings = [
        text
        for cond, text in (
            (gvisor, "gVisor: dockerd will run without iptables and bridge"),
            ("CAP_NET_ADMIN" not in caps, "CAP_NET_ADMIN is missing: no bridge networking"),
            (userns, "in a user namespace: some mounts and devices may be refused"),
            (bool(warning), str(warning)),
        )
        if cond
    ]
    return {
        # Steps run as children of the init; the init tells them its own pid.
        "pid1": (init_pid or str(obs.pid)) == "1",
        "euid": obs.euid,
        "cgroup": cgroup,
        "capabilities": caps,
        "gvisor": gvisor,
        "kernel": {"release": obs.uname_release, "version": obs.uname_version},
        "user_namespace": userns,
        "storage": storage,
        "network": {"default_interface": obs.default_interface, "mtu": obs.mtu},
        "depth": settings.depth,
        "can_run_dockerd": blocker is None,
        "why_not": blocker,
        "warnings": warnings,
    }
