"""Unit: where service cgroups go (fake mountinfo and cgroupfs trees), and descendants."""

from pathlib import Path

from helix_init.services.cgroup import (
    Proc,
    ServiceCgroup,
    cgroup2_mounts,
    descendants,
    find_base,
    own_cgroup2_path,
)

V2 = "30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
V2_RO = "30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
HYBRID = (
    "31 25 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"
    "32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
)
V1 = "32 25 0:28 / /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"


def fake_tree(root: Path, *cgroups: str) -> None:
    for cg in cgroups:
        folder = root / cg.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cgroup.procs").write_text("")


def test_cgroup2_mounts_are_the_read_write_ones() -> None:
    assert cgroup2_mounts(V2) == [Path("/sys/fs/cgroup")]
    assert cgroup2_mounts(V2_RO) == []
    assert cgroup2_mounts(HYBRID) == [Path("/sys/fs/cgroup/unified")]
    assert cgroup2_mounts(V1) == []


def test_own_path() -> None:
    assert own_cgroup2_path("0::/init\n") == "/init"
    assert own_cgroup2_path("4:memory:/x\n0::/\n") == "/"
    assert own_cgroup2_path("4:memory:/x\n") is None


def test_in_a_container_after_delegation_the_services_go_under_the_inits_cgroup(
    tmp_path: Path,
) -> None:
    # The cgroups step moved every process to /init (moby hack/dind); ours go below it,
    # so the root keeps no process and its controllers stay delegated to dockerd.
    fake_tree(tmp_path, "/", "/init")
    mountinfo = V2.replace("/sys/fs/cgroup", str(tmp_path))
    base = find_base(mountinfo, "0::/init\n", "77", writable=lambda p: True)
    assert base == tmp_path / "init" / "helix-services.77"


def test_on_a_hybrid_host_the_unified_hierarchy_is_used(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    fake_tree(unified, "/", "/system.slice/ci.scope")
    mountinfo = HYBRID.replace("/sys/fs/cgroup", str(tmp_path))
    base = find_base(mountinfo, "0::/system.slice/ci.scope\n", "9", writable=lambda p: True)
    assert base == unified / "system.slice" / "ci.scope" / "helix-services.9"


def test_no_base_where_nothing_is_writable(tmp_path: Path) -> None:
    fake_tree(tmp_path, "/")
    mountinfo = V2.replace("/sys/fs/cgroup", str(tmp_path))
    assert find_base(mountinfo, "0::/\n", "1", writable=lambda p: False) is None
    assert find_base(V1, "4:memory:/\n", "1") is None
    assert find_base(V2_RO.replace("/sys/fs/cgroup", str(tmp_path)), "0::/\n", "1") is None


def test_our_own_cgroup_missing_from_the_mount_means_no_base(tmp_path: Path) -> None:
    # /proc/self/cgroup names a path this mount does not show (another cgroup namespace).
    fake_tree(tmp_path, "/")
    mountinfo = V2.replace("/sys/fs/cgroup", str(tmp_path))
    assert find_base(mountinfo, "0::/elsewhere\n", "1", writable=lambda p: True) is None


def test_a_service_cgroup_on_the_fake_tree(tmp_path: Path) -> None:
    # A plain folder is not cgroupfs: mkdir makes no cgroup.procs, so create() says no.
    cg = ServiceCgroup(tmp_path / "helix-services.1" / "web")
    assert cg.create() is False
    (cg.path / "cgroup.procs").write_text("12\n13\n")
    assert cg.create() is True
    assert cg.pids() == [12, 13]
    cg.remove()  # not empty: a real cgroup with members cannot be removed either
    assert cg.path.exists()


def p(pid: int, ppid: int, *, zombie: bool = False) -> Proc:
    return Proc(pid, ppid, pid, pid, zombie, 100 + pid)


def test_descendants_follow_the_tree_and_skip_zombies() -> None:
    procs = [p(1, 0), p(10, 1), p(11, 10), p(12, 11), p(13, 11, zombie=True), p(20, 1)]
    assert descendants([10], procs) == {10, 11, 12}
    assert descendants([11, 20], procs) == {11, 12, 20}
    assert descendants([99], procs) == set()
