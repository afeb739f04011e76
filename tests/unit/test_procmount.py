"""procmount: which /proc mount options hide root's command lines from other users."""

from __future__ import annotations

from helix_init import procmount

HOST = "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
HIDDEN = HOST + "103 80 0:43 / /proc rw,nosuid,relatime - proc proc rw,hidepid=invisible\n"
OLD_KERNEL = "30 1 0:5 / /proc rw - proc proc rw,hidepid=2\n"
SUBMOUNT = "40 30 0:6 / /proc/sys ro - proc proc rw\n"


def test_the_topmost_proc_mount_decides() -> None:
    assert procmount.hidepid(HOST) is None
    assert procmount.hidepid(HIDDEN) == "invisible"
    assert procmount.hides_other_users(HIDDEN)
    assert not procmount.hides_other_users(HOST)


def test_old_numeric_values_count_and_submounts_do_not() -> None:
    assert procmount.hides_other_users(OLD_KERNEL + SUBMOUNT)
    assert not procmount.hides_other_users("30 1 0:5 / /proc rw - proc proc rw,hidepid=0\n")
    assert not procmount.hides_other_users("30 1 0:5 / /proc rw - tmpfs none rw,hidepid=2\n")


def test_remount_asks_for_invisible() -> None:
    assert procmount.remount_argv() == ["mount", "-o", "remount,hidepid=invisible", "/proc"]


def test_the_per_mount_options_of_the_topmost_proc() -> None:
    assert procmount.proc_mount_options(HIDDEN) == frozenset({"rw", "nosuid", "relatime"})
    assert procmount.proc_mount_options(OLD_KERNEL + SUBMOUNT) == frozenset({"rw"})
    assert procmount.proc_mount_options("") is None


def test_the_step_remounts_once_and_never_outside_its_own_namespace() -> None:
    ran: list[list[str]] = []
    said: list[str] = []

    def run(value: str) -> tuple[int, str]:
        ran.append([value])
        return 0, ""

    procmount.hide_processes({"HELIX_INIT_PID": "4242"}, run, said.append)
    assert ran == [] and said == ["helix-init is not PID 1 (pid 4242): /proc left as it is"]
    procmount.hide_processes({"HELIX_HIDE_PROC": "0"}, run, said.append)
    assert ran == []
