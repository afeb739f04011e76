"""The s6-rc.d parser and its conversion into helix-init's stages: files in, specs out."""

from __future__ import annotations

from pathlib import Path

import pytest

from helix_init.s6 import convert, upline
from helix_init.s6.tree import load_tree

ENV = {"PATH": "/usr/bin:/bin"}


def define(root: Path, name: str, kind: str | None, **files: str) -> Path:
    """A definition folder; `deps="a b"` and `contents="a b"` become .d entries."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    if kind is not None:
        (folder / "type").write_text(f"{kind}\n")
    for dep in files.pop("deps", "").split():
        (folder / "dependencies.d").mkdir(exist_ok=True)
        (folder / "dependencies.d" / dep).touch()
    for member in files.pop("contents", "").split():
        (folder / "contents.d").mkdir(exist_ok=True)
        (folder / "contents.d" / member).touch()
    for fname, text in files.items():
        path = folder / fname.replace("_", "-")
        path.write_text(text)
        if fname in ("run", "finish", "script"):
            path.chmod(0o755)
    return folder


def lsio_tree(root: Path) -> Path:
    """linuxserver's shape: init-* oneshots chained, a longrun after init-services."""
    rc = root / "s6-rc.d"
    script = define(rc, "init-adduser", "oneshot", script="#!/bin/sh\necho adduser\n")
    (rc / "init-adduser" / "up").write_text(f"{script / 'script'}\n")
    define(rc, "init-envfile", "oneshot", up="with-contenv /bin/true\n")
    define(rc, "init-os-end", "oneshot", deps="init-adduser init-envfile", up="# end\n")
    define(rc, "init-services", "oneshot", deps="init-os-end", up="# services may start\n")
    define(rc, "svc-app", "longrun", deps="init-services", run="#!/bin/sh\nexec sleep 9\n",
           notification_fd="3\n", down_signal="SIGHUP\n", timeout_kill="2500\n")  # fmt: skip
    define(rc, "svc-db", "longrun", deps="init-services", run="#!/bin/sh\nexec sleep 9\n")
    define(rc, "svc-web", "longrun", deps="svc-db", run="#!/bin/sh\nexec sleep 9\n")
    define(rc, "ci-check", "oneshot", deps="legacy-services", up="echo done\n")
    define(rc, "unused", "oneshot", up="/bin/false\n")
    define(rc, "user", None, contents="init-adduser init-envfile init-os-end svc-app svc-web")
    define(root / "user-bundles.d", "user2", "bundle", contents="ci-check")
    return rc


def test_oneshots_run_in_dependency_order_and_longruns_become_services(tmp_path: Path) -> None:
    rc = lsio_tree(tmp_path)
    tree, problems = load_tree(rc, tmp_path / "user-bundles.d")
    assert problems == []
    assert tree is not None
    # Every atom of user/user2 and what they need (not `unused`), dependencies first.
    assert sorted(tree.order) == sorted(
        ["init-adduser", "init-envfile", "init-os-end", "init-services", "svc-app", "svc-db",
         "svc-web", "ci-check"]
    )  # fmt: skip
    for before, after in [("init-adduser", "init-os-end"), ("init-envfile", "init-os-end"),
                          ("init-os-end", "init-services"), ("init-services", "svc-db"),
                          ("svc-db", "svc-web")]:  # fmt: skip
        assert tree.order.index(before) < tree.order.index(after)
    stages, problems = convert.stages(tree, ENV, legacy=("legacy-one",))
    assert problems == []
    assert [s.name for s in stages.early] == ["init-adduser", "init-envfile"]
    assert stages.early[0].argv == (str(rc / "init-adduser" / "script"),)
    assert stages.early[1].argv == ("with-contenv", "/bin/true") or stages.early[1].argv[-1:] == (
        "/bin/true",
    )
    assert stages.placeholders == ("init-os-end", "init-services")
    assert stages.early[0].timeout == 0  # no timeout-up: none, as in s6-rc
    assert [s.name for s in stages.late] == ["ci-check"]  # needs legacy-services
    app = {s.name: s for s in stages.longruns}["svc-app"]
    assert app.ready is not None and app.ready.kind == "notify"
    assert (app.stop_signal, app.stop_timeout, app.working_dir) == ("HUP", 2.5, str(rc / "svc-app"))
    assert {s.name: s.requires for s in stages.longruns} == {
        "svc-app": (), "svc-db": (), "svc-web": ("svc-db",),
    }  # fmt: skip


def test_a_longrun_with_a_finish_is_killed_by_its_shim_so_the_finish_still_runs(
    tmp_path: Path,
) -> None:
    """s6-supervise KILLs the run at timeout-kill and then runs ./finish (256, 9): the shim
    does the KILL itself, and supervisord's own KILL (which would end the shim too) waits
    past it and the finish's timeout-finish."""
    rc = tmp_path / "s6-rc.d"
    define(rc, "svc", "longrun", run="#!/bin/sh\nexec sleep 9\n", finish="#!/bin/sh\n",
           down_signal="SIGHUP\n", timeout_kill="2500\n", timeout_finish="3000\n")  # fmt: skip
    define(rc, "user", None, contents="svc")
    tree, problems = load_tree(rc, tmp_path / "user-bundles.d")
    assert tree is not None and problems == []
    stages, problems = convert.stages(tree, ENV, legacy=())
    (svc,) = stages.longruns
    argv = svc.command
    kill = argv[argv.index("--kill-after") :][:4]
    assert kill == ("--kill-after", "2500", "--down-signal", "HUP")
    assert argv.index("--kill-after") < argv.index("--")
    assert (svc.stop_signal, svc.stop_timeout) == ("HUP", 2.5 + 3.0 + 1.0)


def test_a_dependency_on_a_bundle_means_its_contents(tmp_path: Path) -> None:
    rc = tmp_path / "s6-rc.d"
    define(rc, "a", "longrun", run="#!/bin/sh\n")
    define(rc, "b", "longrun", run="#!/bin/sh\n")
    define(rc, "pair", "bundle", contents="a b")
    define(rc, "c", "longrun", deps="pair", run="#!/bin/sh\n")
    define(rc, "user", "bundle", contents="c")
    tree, problems = load_tree(rc, None)
    assert problems == [] and tree is not None
    stages, _ = convert.stages(tree, ENV, ())
    assert {s.name: s.requires for s in stages.longruns}["c"] == ("a", "b")


def test_legacy_services_dependency_requires_every_services_d_service(tmp_path: Path) -> None:
    rc = tmp_path / "s6-rc.d"
    define(rc, "after", "longrun", deps="legacy-services base", run="#!/bin/sh\n")
    define(rc, "user2", None, contents="after")
    tree, problems = load_tree(rc, None)
    assert problems == [] and tree is not None
    stages, _ = convert.stages(tree, ENV, ("dockerd", "dns-relay"))
    assert stages.longruns[0].requires == ("dockerd", "dns-relay")


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda rc: define(rc, "x", "daemon"),
         "x: unknown type 'daemon' (expected oneshot, longrun or bundle)"),
        (lambda rc: define(rc, "x", None), "x: no type file (oneshot, longrun or bundle)"),
        (lambda rc: define(rc, "x", "longrun"), "x: longrun without a run file"),
        (lambda rc: define(rc, "x", "oneshot"), "x: oneshot without an up file"),
        (lambda rc: define(rc, "x", "bundle", contents="ghost"),
         "x: bundle names missing service 'ghost'"),
        (lambda rc: define(rc, "x", "oneshot", deps="ghost", up="/bin/true"),
         "x: dependencies.d names unknown service 'ghost'"),
        (lambda rc: define(rc, "x", "oneshot", up="/bin/sh -c { true }"),
         "x/up: uses execline blocks ({ ... }), which need execlineb; put the commands in an"
         " executable script and write its path in this file"),
        (lambda rc: define(rc, "x", "oneshot", up="if { true } echo hi"),
         "x/up: uses the execline command 'if', which needs execlineb; put the commands in an"
         " executable script and write its path in this file"),
        (lambda rc: define(rc, "x", "longrun", run="#!/bin/sh\n", notification_fd="two"),
         "x/notification-fd: must be a file descriptor >= 3, got 'two'"),
        (lambda rc: define(rc, "x", "longrun", run="#!/bin/sh\n", producer_for="ghost"),
         "x: producer-for names 'ghost', which is not a longrun whose consumer-for names 'x'"),
        (lambda rc: define(rc, "base", "oneshot", up="/bin/true"),
         "base: service name 'base' is defined by s6-overlay itself"),
    ],
)  # fmt: skip
def test_bad_definitions_are_one_line_naming_the_folder(tmp_path: Path, build, expected) -> None:  # type: ignore[no-untyped-def]
    rc = tmp_path / "s6-rc.d"
    build(rc)
    define(rc, "user", "bundle", contents="x" if (rc / "x").exists() else "")
    _, problems = load_tree(rc, None)
    assert [str(p).removeprefix(f"{rc}/") for p in problems] == [expected]


def test_a_logger_pipeline_is_wired_through_a_fifo_named_after_the_consumer(
    tmp_path: Path,
) -> None:
    rc = tmp_path / "s6-rc.d"
    define(rc, "app", "longrun", run="#!/bin/sh\n", producer_for="app-log\n")
    define(rc, "app-log", "longrun", run="#!/bin/sh\n", consumer_for="app\n",
           pipeline_name="app-pipeline\n")  # fmt: skip
    define(rc, "user", "bundle", contents="app-pipeline")
    tree, problems = load_tree(rc, None)
    assert problems == [] and tree is not None
    assert tree.get("app-pipeline").contents == ("app", "app-log")
    assert tree.order == ("app-log", "app")  # the consumer first: no line is lost
    stages, problems = convert.stages(tree, ENV, (), pipes=tmp_path / "pipes")
    assert problems == []
    app, log = ({s.name: s for s in stages.longruns}[n] for n in ("app", "app-log"))
    assert app.requires == ("app-log",)
    fifo = str(tmp_path / "pipes" / "app-log")
    assert app.command[app.command.index("--stdout") + 1] == fifo
    assert log.command[log.command.index("--stdin") + 1] == fifo


def test_a_dependency_cycle_is_named(tmp_path: Path) -> None:
    rc = tmp_path / "s6-rc.d"
    define(rc, "a", "oneshot", deps="b", up="/bin/true")
    define(rc, "b", "oneshot", deps="a", up="/bin/true")
    define(rc, "user", "bundle", contents="a")
    _, problems = load_tree(rc, None)
    assert [str(p) for p in problems] == [f"{rc / 'a'}: dependency cycle a -> b -> a"]


def test_an_up_line_naming_a_missing_program_is_refused(tmp_path: Path) -> None:
    rc = tmp_path / "s6-rc.d"
    define(rc, "x", "oneshot", up="/etc/s6-overlay/scripts/missing\n")
    define(rc, "y", "oneshot", up="no-such-command-here arg\n")
    define(rc, "user", "bundle", contents="x y")
    tree, problems = load_tree(rc, None)
    assert problems == [] and tree is not None
    _, problems = convert.stages(tree, ENV, ())
    assert [str(p) for p in problems] == [
        f"{rc / 'x' / 'up'}: cannot run '/etc/s6-overlay/scripts/missing': no such program",
        f"{rc / 'y' / 'up'}: cannot run 'no-such-command-here': no such program",
    ]


def test_a_longrun_after_a_oneshot_that_needs_a_longrun_is_refused(tmp_path: Path) -> None:
    rc = tmp_path / "s6-rc.d"
    define(rc, "db", "longrun", run="#!/bin/sh\n")
    define(rc, "migrate", "oneshot", deps="db", up="/bin/true")
    define(rc, "app", "longrun", deps="migrate", run="#!/bin/sh\n")
    define(rc, "user", "bundle", contents="app")
    tree, problems = load_tree(rc, None)
    assert problems == [] and tree is not None
    _, problems = convert.stages(tree, ENV, ())
    assert [str(p) for p in problems] == [
        f"{rc / 'app'}: depends on oneshot 'migrate', which itself needs a longrun: helix-init"
        " runs oneshots before its services or after them, never between two of them"
    ]


def test_a_missing_folder_is_no_tree(tmp_path: Path) -> None:
    assert load_tree(tmp_path / "absent", None) == (None, [])


@pytest.mark.parametrize(
    ("text", "argv"),
    [
        ("/etc/s6-overlay/s6-rc.d/init-x/run\n", ("/etc/s6-overlay/s6-rc.d/init-x/run",)),
        ("# This file doesn't do anything\n", ()),
        ("with-contenv /etc/s6-overlay/scripts/x\n", ("with-contenv", "/etc/s6-overlay/scripts/x")),
        ('echo "[ls.io-init] done."', ("echo", "[ls.io-init] done.")),
        ("\n\n", ()),
    ],
)  # fmt: skip
def test_up_lines(text: str, argv: tuple[str, ...]) -> None:
    assert upline.parse(text) == argv


def test_execline_builtins_are_refused() -> None:
    with pytest.raises(upline.UpLineError, match="'foreground'"):
        upline.parse("foreground { mkdir -p /x } chmod 0755 /x")
