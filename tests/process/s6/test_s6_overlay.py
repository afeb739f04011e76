"""A linuxserver-style s6-overlay v3 image boots under helix-init as PID 1, files unchanged.

The fixture (tests/fixtures/s6-overlay) is mounted at its real paths by
s6image.py. Real pieces only: helix-init as PID 1, supervisord, bash, the
installed s6-compat entry points (no execlineb, no s6 binaries in the path
that matters: ours shadow Debian's in /usr/bin).
"""

from __future__ import annotations

import pytest
from s6image import S6Image

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

INIT_ONESHOTS = ["init-migrations", "init-banner", "init-envfile", "init-app-config"]


def test_the_tree_boots_in_order_with_secrets_readiness_and_the_exit_code_file(
    pid1: Pid1,
) -> None:
    image = S6Image(pid1)
    secret = pid1.path("app-password")
    secret.write_text("s3cret")
    cmd = (
        'echo "cmd: password=$APP_PASSWORD listening=$(test -e $APP_STATE/app.listening && echo y)"'
        "; ls -l /run/s6/container_environment/APP_PASSWORD"
        "; exit 3"
    )

    result = pid1.run("sh", "-c", cmd, env={"FILE__APP_PASSWORD": str(secret)})

    order = image.order()
    # Oneshots once each, every dependency first; both longruns after init-services.
    assert sorted(order[:4]) == sorted(INIT_ONESHOTS), result.describe()
    assert order.index("init-migrations") < order.index("init-banner")
    assert order.index("init-app-config") == 3
    assert sorted(order[4:]) == ["svc-app", "svc-notify"]
    # FILE__ secret: init-envfile wrote it into container_environment; it is
    # exported from there (the CMD and later scripts see it) and root-only.
    assert result.texts("init-envfile") == ["[env-init] APP_PASSWORD set from FILE__APP_PASSWORD"]
    assert result.has("step init-envfile set in container_environment: APP_PASSWORD")
    assert "password=s3cret" in (image.state / "app.conf").read_text()
    assert "cmd: password=s3cret listening=y" in result.lines
    assert any(line.startswith("-rw------- ") for line in result.lines), result.describe()
    # Readiness: the CMD started only after both notification-fd services said ready,
    # and after the user2 oneshot that waits for legacy-services.
    init = result.init_texts()
    ready = [
        i for i, t in enumerate(init)
        if "-> ready (ready)" in t and ("svc-app" in t or "svc-notify" in t)
    ]  # fmt: skip
    ci = init.index("step ci-check: starting")
    cmd_at = next(i for i, t in enumerate(init) if t.startswith("CMD started"))
    assert len(ready) == 2 and max(ready) < ci < cmd_at, result.describe()
    assert result.texts("ci-check") == ["[fixture-init] done."]
    # finish ran with s6's arguments (killed by TERM at shutdown: 256 15) and its
    # exit code file wins, as in s6-overlay (128 + 15), over the CMD's 3.
    assert (image.state / "finish-args").read_text() == "256 15\n"
    assert result.code == 143, result.describe()
    assert result.has("exit code 143 from /run/s6-linux-init-container-results/exitcode (was 3)")


def test_with_contenv_replaces_the_environment_with_the_folder(pid1: Pid1) -> None:
    S6Image(pid1)
    pid1.step("10-export.sh", "export FROM_STEP=carried\n")
    cmd = (
        "env -i PATH=/usr/bin:/bin NOT_CARRIED=x /usr/bin/with-contenv sh -c "
        "'echo \"contenv: FROM_STEP=$FROM_STEP FROM_DOCKER=$FROM_DOCKER"
        " NOT_CARRIED=${NOT_CARRIED-unset}\"'"
        "; ls /run/s6/container_environment | grep -c NOTIFY_SOCKET || true"
    )

    result = pid1.run("sh", "-c", cmd, env={"FROM_DOCKER": "yes"})

    assert result.code == 143, result.describe()  # the fixture's finish sets it
    assert "contenv: FROM_STEP=carried FROM_DOCKER=yes NOT_CARRIED=unset" in result.lines
    assert "0" in result.lines  # the init's own NOTIFY_SOCKET is never a container variable


def test_s6_keep_env_leaves_the_folder_unwritten_and_with_contenv_a_no_op(pid1: Pid1) -> None:
    S6Image(pid1)
    cmd = (
        "test -e /run/s6/container_environment && echo folder || echo no-folder"
        "; env KEPT=here /usr/bin/with-contenv sh -c 'echo kept=$KEPT'"
    )

    result = pid1.run("sh", "-c", cmd, env={"S6_KEEP_ENV": "1"})

    assert "no-folder" in result.lines and "kept=here" in result.lines, result.describe()


def test_a_bad_tree_is_one_line_naming_the_folder_and_starts_nothing(pid1: Pid1) -> None:
    image = S6Image(pid1)
    (image.rc / "svc-app" / "type").write_text("daemon\n")
    (image.rc / "init-banner" / "dependencies.d" / "init-app-config").touch()  # a cycle

    check = image.command("check")
    result = pid1.run("true")

    where = "/etc/s6-overlay/s6-rc.d"
    assert check.code == 78
    assert check.stdout.splitlines() == [
        f"{where}/svc-app: unknown type 'daemon' (expected oneshot, longrun or bundle)",
    ], check.stdout
    assert result.code == 78 and image.order() == [], result.describe()
    (image.rc / "svc-app" / "type").write_text("longrun\n")
    check = image.command("check")
    assert check.code == 78
    assert len(check.stdout.splitlines()) == 1
    assert check.stdout.startswith(f"{where}/init-") and "dependency cycle" in check.stdout


def test_without_the_compat_commands_check_says_how_to_install_them(pid1: Pid1) -> None:
    image = S6Image(pid1, compat=False)

    check = image.command("check")

    assert check.code == 78
    assert (
        "/etc/s6-overlay/s6-rc.d/svc-app/run: its #! interpreter /usr/bin/with-contenv does not"
        " exist; run `helix-init install s6-compat` in the Dockerfile"
    ) in check.stdout.splitlines(), check.stdout


def test_plan_shows_the_tree_as_it_will_run(pid1: Pid1) -> None:
    image = S6Image(pid1)

    plan = image.command("plan")

    assert plan.code == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert "  init-app-config  [exec, no timeout]" in lines, plan.stdout  # as in s6-rc
    assert any(line.startswith("  1. svc-app") and "ready by notify" in line for line in lines)
    tree = lines[lines.index("s6-rc tree (/etc/s6-overlay/s6-rc.d), bundles user and user2,"
                             " as it will run:"):]  # fmt: skip
    assert "  longrun svc-app, ready by notification-fd, stop TERM" in tree, plan.stdout
    assert "  longrun svc-web after svc-web-log, ready once started, stop TERM" in tree
    assert "  oneshots once the services are ready: ci-check" in tree
    assert any(
        t.startswith("  oneshots with nothing to run: ") and "init-os-end" in t for t in tree
    )


def test_finish_exit_125_means_do_not_restart(pid1: Pid1) -> None:
    image = S6Image(pid1)
    image.longrun(
        "svc-once",
        '#!/bin/sh\necho once >> "$APP_STATE/once"\nexit 7\n',
        finish=f'#!/bin/sh\necho "$@" >> {image.state}/once-finish\nexit 125\n',
    )
    # The CMD waits for it to be down for good, then asks s6-svc for one more run.
    cmd = (
        "s6-svwait -d -t 20000 /run/service/svc-once && echo down"
        f" && s6-svc -u /run/service/svc-once && until test -s {image.state}/once-2; do"
        f" sed -n 2p {image.state}/once > {image.state}/once-2; sleep 0.05; done"
    )

    result = pid1.run("sh", "-c", cmd, timeout=40)

    assert "down" in result.lines, result.describe()
    assert (image.state / "once").read_text() == "once\nonce\n", result.describe()
    where = "/etc/s6-overlay/s6-rc.d/svc-once"
    assert (image.state / "once-finish").read_text().splitlines()[0] == f"7 0 {where}"
    assert not result.has("svc-once: exited") or not any(
        "svc-once" in t and "restarting in" in t for t in result.init_texts()
    ), result.describe()


def test_a_run_deaf_to_its_down_signal_is_killed_at_timeout_kill_and_its_finish_runs(
    pid1: Pid1,
) -> None:
    """s6-supervise KILLs the run timeout-kill after the down-signal, then runs ./finish with
    256 and 9. The shim does that KILL itself: supervisord's own (which ends the shim's
    whole group) comes later, so the finish is not lost with it."""
    image = S6Image(pid1)
    up = image.state / "deaf-up"
    svc = image.longrun(
        "svc-deaf",
        f'#!/bin/sh\ntrap "" TERM\ntouch {up}\nwhile :; do sleep 1; done\n',
        finish=f'#!/bin/sh\necho "$@" > {image.state}/deaf-finish\n',
    )
    (svc / "timeout-kill").write_text("300\n")

    result = pid1.run("sh", "-c", f"until test -e {up}; do sleep 0.05; done", timeout=40)

    assert result.code == 143, result.describe()  # the fixture's own finish sets it
    finish = image.state / "deaf-finish"
    assert finish.exists(), f"no finish after the KILL\n{result.describe()}"
    assert finish.read_text() == "256 9 /etc/s6-overlay/s6-rc.d/svc-deaf\n"
    assert not any("svc-deaf" in t and "killing it all" in t for t in result.init_texts())


def test_a_logger_pipeline_carries_the_producers_output_across_logger_restarts(
    pid1: Pid1,
) -> None:
    image = S6Image(pid1)
    log = image.state / "web.log"
    cmd = f"""
lines() {{ grep -c 'web: request' {log} 2>/dev/null || echo 0; }}
until [ "$(lines)" -ge 3 ]; do sleep 0.05; done
web=$(pgrep -f 'i=0; while' | head -1)
s6-svc -k /run/service/svc-web-log
until [ "$(grep -c 'web-log: started' {log})" -ge 2 ]; do sleep 0.05; done
before=$(lines); until [ "$(lines)" -ge $((before + 3)) ]; do sleep 0.05; done
echo "producer kept running: $([ "$(pgrep -f 'i=0; while' | head -1)" = "$web" ] && echo yes)"
"""

    result = pid1.run("bash", "-c", cmd, timeout=60)

    assert "producer kept running: yes" in result.lines, result.describe()
    text = log.read_text().splitlines()
    assert text[0] == "web-log: started" and "[web-log] web: started" in text[1]
    numbers = [int(t.rsplit(" ", 1)[1]) for t in text if "web: request" in t]
    # In order; at most the one line the KILLed logger had read and not yet written is
    # missing (s6-rc's fd holder has the same window); nothing else is lost.
    assert numbers == sorted(set(numbers)) and numbers[0] == 0, numbers
    assert numbers[-1] - numbers[0] + 1 - len(numbers) <= 1, numbers
    assert not result.texts("svc-web"), "the producer's stdout goes to its logger only"
