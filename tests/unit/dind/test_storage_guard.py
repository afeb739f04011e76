"""Storage guard: filesystem detection (magic, mountinfo), driver choice, stale pid files."""

from __future__ import annotations

from pathlib import Path

import pytest

from helix_init.dind import DindError, storage
from helix_init.dind.storage import (
    choose_storage_driver,
    detect_fs_type,
    fs_name,
    fs_type_from_mountinfo,
    mount_containing,
    nearest_existing,
    parse_mountinfo,
    statfs_magic,
)
from helix_init.problems import ConfigError
from helix_init.settings.dind import fallback_from_env

DATA = Path("/var/lib/docker")


def mountinfo(*extra: str) -> str:
    lines = [
        "500 400 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c",
        "501 500 0:51 / /proc rw,nosuid - proc proc rw",
        "502 500 0:52 / /var/lib rw,relatime - tmpfs tmpfs rw",  # not a prefix match for /var/lib2
        *extra,
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("magic", "name"),
    [
        (0x794C7630, "overlay"),
        (0xEF53, "ext4"),
        (0x58465342, "xfs"),
        (0x01021994, "tmpfs"),
        (0x9123683E, "btrfs"),
        (0x9123683E - 2**32, "btrfs"),  # as a signed 32-bit f_type
        (0x12345678, "unknown(0x12345678)"),
    ],
)
def test_magic_numbers_map_to_mountinfo_names(magic: int, name: str) -> None:
    assert fs_name(magic) == name


@pytest.mark.parametrize(
    ("extra", "path", "fstype"),
    [
        ((), DATA, "tmpfs"),  # /var/lib is the longest prefix
        ((), Path("/srv/x"), "overlay"),  # only / holds it: the image's overlay
        (("503 500 8:1 /vol /var/lib/docker rw - ext4 /dev/sda1 rw",), DATA, "ext4"),
        (("503 500 8:1 /vol /var/lib/docker rw - ext4 /dev/sda1 rw",), DATA / "overlay2", "ext4"),
        (("503 500 0:60 / /var/lib/docker rw - tmpfs tmpfs rw",), DATA, "tmpfs"),
        (
            (
                "503 500 8:1 /v /var/lib/docker rw - ext4 /dev/sda1 rw",
                "504 503 0:61 / /var/lib/docker rw - overlay overlay rw",  # mounted on top
            ),
            DATA,
            "overlay",
        ),
        (("503 500 8:1 /v /var/lib/docker2 rw - xfs /dev/sdb rw",), DATA, "tmpfs"),
        (
            (r"503 500 8:1 /v /mnt/with\040space rw - xfs /dev/sdb rw",),
            Path("/mnt/with space/x"),
            "xfs",
        ),
    ],
)
def test_mountinfo_longest_prefix_gives_the_fstype(
    extra: tuple[str, ...], path: Path, fstype: str
) -> None:
    assert fs_type_from_mountinfo(path, mountinfo(*extra)) == fstype


def test_mountinfo_with_optional_fields_parses() -> None:
    line = "36 35 98:0 /mnt1 /mnt2 ro,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue"
    (mount,) = parse_mountinfo(line)
    assert (mount.mount_point, mount.fstype, mount.source, mount.read_only) == (
        "/mnt2",
        "ext3",
        "/dev/root",
        True,
    )
    assert mount_containing(Path("/elsewhere"), [mount]) is None


def test_statfs_reads_the_real_f_type() -> None:
    assert statfs_magic(Path("/proc")) == 0x9FA0  # PROC_SUPER_MAGIC
    with pytest.raises(FileNotFoundError):
        statfs_magic(Path("/no/such/path"))


def test_detection_falls_back_to_mountinfo_when_statfs_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(_: Path) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(storage, "statfs_magic", broken)
    info = mountinfo(f"503 500 8:1 / {tmp_path} rw - xfs /dev/sdb rw")
    assert detect_fs_type(tmp_path / "not" / "yet", info) == "xfs"


def test_detection_of_a_path_that_does_not_exist_yet_uses_its_parent(tmp_path: Path) -> None:
    assert nearest_existing(tmp_path / "a" / "b") == tmp_path
    assert detect_fs_type(tmp_path / "a") == detect_fs_type(tmp_path)


@pytest.mark.parametrize("fs", ["ext4", "xfs", "btrfs", "tmpfs", "unknown(0x1234)"])
def test_real_filesystems_get_overlay2(fs: str) -> None:
    choice = choose_storage_driver(fs, None, fuse_device=False, fuse_binary=False)
    assert (choice.driver, choice.warning) == ("overlay2", None)


def test_overlay_without_fallback_says_to_mount_a_volume() -> None:
    with pytest.raises(DindError) as e:
        choose_storage_driver("overlay", None, fuse_device=True, fuse_binary=True)
    assert "-v NAME:/var/lib/docker" in str(e.value)
    assert "HELIX_STORAGE_FALLBACK=fuse-overlayfs|vfs" in str(e.value)


def test_fuse_overlayfs_fallback_needs_the_device_and_the_binary() -> None:
    ok = choose_storage_driver("overlay", "fuse-overlayfs", fuse_device=True, fuse_binary=True)
    assert ok.driver == "fuse-overlayfs" and ok.warning and "fuse-overlayfs" in ok.warning
    with pytest.raises(DindError, match="needs /dev/fuse and fuse-overlayfs on PATH"):
        choose_storage_driver("overlay", "fuse-overlayfs", fuse_device=False, fuse_binary=False)
    with pytest.raises(DindError, match=r"needs fuse-overlayfs on PATH$"):
        choose_storage_driver("overlay", "fuse-overlayfs", fuse_device=True, fuse_binary=False)


def test_vfs_fallback_warns_loudly() -> None:
    choice = choose_storage_driver("overlay", "vfs", fuse_device=False, fuse_binary=False)
    assert choice.driver == "vfs"
    assert choice.warning and "full copy" in choice.warning and "-v NAME:" in choice.warning


def test_fallback_setting_is_validated() -> None:
    assert fallback_from_env({}) is None
    assert fallback_from_env({"HELIX_STORAGE_FALLBACK": "vfs"}) == "vfs"
    with pytest.raises(ConfigError, match="HELIX_STORAGE_FALLBACK: must be one of"):
        fallback_from_env({"HELIX_STORAGE_FALLBACK": "devicemapper"})
