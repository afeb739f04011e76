"""cgroup v2 delegation on a fake cgroupfs tree with the kernel's write semantics."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from helix_init.dind import DindError
from helix_init.dind.cgroups import at_namespace_root, delegate_cgroup_v2, evacuate_root_cgroup

ALL = "cpuset cpu io memory hugetlb pids rdma misc"


class FakeCgroupFS:
    """A tmp_path tree that acts like cgroupfs on write.

    Writing a pid to X/cgroup.procs moves it there from wherever it was (ESRCH
    for a dead one); writing "+ctrl" to cgroup.subtree_control enables it if
    the cgroup offers it and holds no processes (EBUSY otherwise).
    """

    def __init__(
        self,
        root: Path,
        pids: list[int],
        controllers: str = ALL,
        *,
        dead: frozenset[int] = frozenset(),
        forks: dict[int, int] | None = None,
        intruder: int | None = None,
        refuse: dict[str, int] | None = None,
        always_busy: frozenset[str] = frozenset(),
    ) -> None:
        self.root = root
        self.dead = dead
        self.forks = dict(forks or {})  # moving pid K makes pid V appear in root
        self.intruder = intruder  # appears in root at the first subtree_control write
        self.refuse = refuse or {}
        self.always_busy = always_busy
        self.writes: list[tuple[str, str]] = []
        root.mkdir(exist_ok=True)
        self._put(root / "cgroup.procs", [str(p) for p in pids])
        (root / "cgroup.controllers").write_text(controllers + "\n")
        (root / "cgroup.subtree_control").write_text("\n")

    # CgroupIO
    def read(self, path: Path) -> str:
        return path.read_text()

    def mkdir(self, path: Path) -> None:
        if path.exists():
            return
        path.mkdir()
        (path / "cgroup.procs").write_text("")
        (path / "cgroup.controllers").write_text(self.read(path.parent / "cgroup.subtree_control"))
        (path / "cgroup.subtree_control").write_text("\n")

    def write(self, path: Path, data: str) -> None:
        self.writes.append((str(path.relative_to(self.root)), data))
        if path.name == "cgroup.procs":
            self._move(path, int(data))
        elif path.name == "cgroup.subtree_control":
            self._enable(path, data)
        else:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    def _move(self, path: Path, pid: int) -> None:
        for procs in self.root.rglob("cgroup.procs"):
            self._put(procs, [p for p in self._get(procs) if p != str(pid)])
        if pid in self.dead:
            raise OSError(errno.ESRCH, os.strerror(errno.ESRCH))
        self._put(path, [*self._get(path), str(pid)])
        if pid in self.forks:
            self._add_to_root(self.forks.pop(pid))

    def _enable(self, path: Path, data: str) -> None:
        assert data.startswith("+") and " " not in data, data
        ctrl = data[1:]
        if self.intruder is not None:
            self._add_to_root(self.intruder)
            self.intruder = None
        if ctrl in self.refuse:
            raise OSError(self.refuse[ctrl], os.strerror(self.refuse[ctrl]))
        if ctrl in self.always_busy or self._get(path.parent / "cgroup.procs"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        if ctrl not in self.read(path.parent / "cgroup.controllers").split():
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        enabled = self.read(path).split()
        if ctrl not in enabled:
            path.write_text(" ".join([*enabled, ctrl]) + "\n")

    def _add_to_root(self, pid: int) -> None:
        procs = self.root / "cgroup.procs"
        self._put(procs, [*self._get(procs), str(pid)])

    @staticmethod
    def _get(path: Path) -> list[str]:
        return path.read_text().split()

    @staticmethod
    def _put(path: Path, pids: list[str]) -> None:
        path.write_text("".join(f"{p}\n" for p in pids))

    def procs(self, cgroup: str = "") -> list[int]:
        return [int(p) for p in self._get(self.root / cgroup / "cgroup.procs")]


def no_sleep(_: float) -> None:
    pass


def test_moves_every_process_then_enables_every_controller(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1, 5, 9], dead=frozenset({9}), forks={5: 7})
    result = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    assert fs.procs() == []
    assert fs.procs("init") == [1, 5, 7]
    assert result.moved == (1, 5, 7)
    assert set(result.subtree_control) == set(ALL.split())
    assert result.enabled == tuple(ALL.split())
    assert result.refused == ()
    enable_writes = [d for p, d in fs.writes if p == "cgroup.subtree_control"]
    assert enable_writes == [f"+{c}" for c in ALL.split()]  # one controller per write


def test_processes_appearing_during_the_move_are_moved_too(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1, 2], forks={1: 10, 2: 11, 10: 12})
    moved = evacuate_root_cgroup(fs.root, fs)
    assert sorted(moved) == [1, 2, 10, 11, 12]
    assert fs.procs() == []


def test_a_process_slipping_in_before_enabling_is_moved_on_ebusy(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1], intruder=33)
    result = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    assert 33 in result.moved and fs.procs() == []
    assert set(result.subtree_control) == set(ALL.split())


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1, 5])
    first = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    fs.writes.clear()
    second = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    assert fs.writes == []
    assert second.moved == () and second.enabled == ()
    assert second.subtree_control == first.subtree_control


def test_missing_memory_controller_offered_by_parent_is_an_error_naming_it(
    tmp_path: Path,
) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1], refuse={"memory": errno.EOPNOTSUPP})
    with pytest.raises(DindError, match=r"controller\(s\) memory offered in .*memory: "):
        delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)


def test_required_controller_busy_for_ever_is_an_error(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1], always_busy=frozenset({"io", "pids"}))
    with pytest.raises(DindError, match=r"io, pids offered .*io: Device or resource busy"):
        delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)


def test_optional_controller_refused_is_reported_not_fatal(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1], refuse={"rdma": errno.EOPNOTSUPP})
    result = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    assert "rdma" not in result.subtree_control
    assert result.refused == (f"rdma: {os.strerror(errno.EOPNOTSUPP)}",)


def test_controllers_the_parent_does_not_offer_are_not_required(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1], controllers="cpu pids")
    result = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    assert set(result.subtree_control) == {"cpu", "pids"}


def test_controller_less_hierarchy_only_moves_processes(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1, 2], controllers="")
    result = delegate_cgroup_v2(fs.root, fs, sleep=no_sleep)
    assert result.moved == (1, 2) and result.subtree_control == ()


def test_processes_that_never_stop_appearing_are_an_error(tmp_path: Path) -> None:
    forks = {n: n + 1 for n in range(1, 200)}
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1], forks=forks)
    with pytest.raises(DindError, match="keep appearing"):
        evacuate_root_cgroup(fs.root, fs, rounds=5)


def test_an_unmovable_process_is_an_error_naming_it(tmp_path: Path) -> None:
    fs = FakeCgroupFS(tmp_path / "cg", pids=[1, 2])

    def refuse_pid_2(path: Path, data: str) -> None:
        if data == "2":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        FakeCgroupFS.write(fs, path, data)

    fs.write = refuse_pid_2  # type: ignore[method-assign]
    with pytest.raises(DindError, match="cannot move pid 2"):
        evacuate_root_cgroup(fs.root, fs)


def test_delegation_only_at_the_root_of_a_private_cgroup_namespace() -> None:
    assert at_namespace_root("0::/\n")
    assert at_namespace_root("9:name=systemd:/\n4:memory:/x\n0::/\n")
    assert not at_namespace_root("0::/docker/abc\n")
    assert not at_namespace_root("4:memory:/\n")
