"""The `cgroups` step: cgroups dockerd can write to, and mounts that propagate; runs as root."""

from __future__ import annotations

from pathlib import Path

from helix_init.builtin.level import Level, run_command, say
from helix_init.dind import cgroups


def fix_cgroups(level: Level) -> None:
    """v1: remount read-only hierarchies rw; v2: move our processes down and delegate controllers.

    Incident: without --privileged, Docker mounts v1 hierarchies read-only and
    the nested dockerd fails with "mkdir /sys/fs/cgroup/cpuset/docker: read-only
    file system"; on v2, kind inside a desktop failed on missing controllers.
    """
    if not level.docker_wanted():
        return
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for point in cgroups.remount_cgroups_rw(
        lambda mount: cgroups.remount_rw(mount, run_command), mountinfo
    ):
        say(f"remounted {point} read-write")
    layout = level.facts()["cgroup"]
    if layout["version"] == "v2":
        if not cgroups.at_namespace_root(Path("/proc/self/cgroup").read_text()):
            say("cgroup v2 without a private cgroup namespace: not moving processes")
            return
        result = cgroups.delegate_cgroup_v2()
        moved = len(result.moved)
        say(f"cgroup v2: moved {moved} process(es); controllers {result.subtree_control}")
    # dockerd's mounts must propagate into its containers (moby hack/dind).
    try:
        cgroups.make_mounts_shared()
    except OSError as exc:
        say(f"warning: mount --make-rshared / failed: {exc.strerror}")
