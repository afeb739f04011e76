"""Launch.script: the exec chain that starts a service, run for real with `env -i /bin/sh`.

What it must give the service is what svcexec.py gives it: exactly the
launch's environment (no variable of the shell's or supervisord's), its
secrets read from their files, its directory; and the same one-line errors
and exit codes when it cannot. The user switch (setpriv) is the process
tier's (test_svc_nonroot.py): it needs root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helix_init.services.render import SVCEXEC, Launch

TRICKY = 'it\'s "quoted" $HOME `id` \\ back\nslash and a new line; *'


def _start(launch: Launch, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / f"{launch.name}.sh"
    script.write_text(launch.script(tmp_path / f"{launch.name}.json"))
    (tmp_path / f"{launch.name}.json").write_text(launch.to_json())
    return subprocess.run(
        ["/usr/bin/env", "-i", "/bin/sh", str(script)],  # as render.py's command= line
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


def _env_of(output: str) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in output.split("\0") if entry)


def test_the_service_gets_exactly_its_environment_and_secrets(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value\n\n")
    env = {"PATH": "/usr/bin:/bin", "TRICKY": TRICKY, "EMPTY": "", "NOTIFY_SOCKET": "/n.sock"}
    launch = Launch(
        name="web",
        argv=("/usr/bin/env", "-0"),  # prints its environment: the service's
        env=env,
        secret_files={"TOKEN": str(secret)},
        cwd=str(tmp_path),
    )
    where = Launch("pwd", ("/bin/pwd",), env, {}, cwd=str(tmp_path))

    done = _start(launch, tmp_path)

    assert done.returncode == 0, done.stderr
    assert _env_of(done.stdout) == {**env, "TOKEN": "s3cr3t-value"}  # trailing \n dropped
    assert _start(where, tmp_path).stdout == f"{tmp_path}\n"
    assert SVCEXEC.name not in launch.script(tmp_path / "web.json")  # no interpreter


@pytest.mark.parametrize(
    ("launch", "code", "line"),
    [
        (
            Launch("a", ("true",), {"PATH": "/bin"}, {"TOKEN": "/nonexistent/token"}),
            126,
            "helix-init: service a: cannot read secret TOKEN from /nonexistent/token: "
            "No such file or directory",
        ),
        (
            Launch("b", ("no-such-program-here",), {"PATH": "/bin:/usr/bin"}, {}),
            127,
            "helix-init: service b: command not found: no-such-program-here",
        ),
        (
            Launch("c", ("true",), {"PATH": "/bin"}, {}, cwd="/nonexistent/dir"),
            126,
            "helix-init: service c: cannot switch user or directory",
        ),
    ],
    ids=["secret", "command", "cwd"],
)
def test_what_cannot_start_says_so_in_one_line_with_a_shells_code(
    tmp_path: Path, launch: Launch, code: int, line: str
) -> None:
    done = _start(launch, tmp_path)

    assert done.returncode == code
    assert line in done.stdout.splitlines()


def test_a_secret_that_goes_into_argv_goes_to_svcexec(tmp_path: Path) -> None:
    launch = Launch("g", ("c", "-token", "${T}"), {"T": "x"}, {}, argv_secrets=("T",))

    assert str(SVCEXEC) in launch.script(tmp_path / "g.json").splitlines()[-1]


@pytest.mark.parametrize(
    "env", [{"my-var": "1"}, {"PWD": "/x"}, {"A": "nul\0byte"}], ids=["name", "pwd", "nul"]
)
def test_what_a_shell_cannot_say_exactly_goes_to_svcexec(
    tmp_path: Path, env: dict[str, str]
) -> None:
    launch = Launch("d", ("true",), env, {})

    assert launch.script(tmp_path / "d.json").splitlines()[-1] == (
        f"exec '{sys.executable}' '-I' '-S' '{SVCEXEC}' '{tmp_path / 'd.json'}'"
    )


def test_a_user_switch_goes_through_setpriv_with_the_exact_groups(tmp_path: Path) -> None:
    launch = Launch("e", ("id",), {}, {}, uid=1000, gid=1001, groups=(1001, 27))

    last = launch.script(tmp_path / "e.json", setpriv="/usr/bin/setpriv").splitlines()[-1]

    assert last == (
        "exec '/usr/bin/setpriv' '--regid=1001' '--groups=1001,27' '--reuid=1000' '--' 'id'"
    )


def test_the_wrapper_joins_the_services_cgroup_before_anything_else(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    launch = Launch("f", ("true",), {"PATH": "/bin:/usr/bin"}, {}, cgroup=str(cgroup))

    done = _start(launch, tmp_path)

    assert done.returncode == 0, done.stdout
    assert launch.script(tmp_path / "f.json").splitlines()[1].startswith("echo $$ ")
    assert (cgroup / "cgroup.procs").read_text().strip().isdigit()  # a plain folder here
