"""Unit: what the parser refuses because it would break at run time, and `check`'s warnings."""

import os
from pathlib import Path

import pytest

from helix_init.contenv import Exports
from helix_init.problems import ConfigError
from helix_init.services import lint
from helix_init.services.environ import service_env
from helix_init.services.limits import EXEC_LIMIT, MAX_ARG_STRLEN, exec_problem
from helix_init.services.spec import ServiceSpec
from helix_init.services.supervise import launch_problem
from tests.support.services import load_services


def problems(folder: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_services(folder, environ or {})
    return [str(p) for p in caught.value.problems]


def test_a_file_name_ending_in_a_newline_is_not_a_service_name(tmp_path: Path) -> None:
    (tmp_path / "web\n.toml").write_text('command = ["true"]\n')
    (found,) = problems(tmp_path)
    assert "invalid service name 'web\\n'" in found
    assert "\n" not in found


@pytest.mark.parametrize("name", ["a\tb", "a b", "a\x07", "é"])
def test_names_with_control_characters_or_spaces_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / f"{name}.toml").write_text('command = ["true"]\n')
    assert "invalid service name" in problems(tmp_path)[0]


def test_a_symlink_to_an_s6_folder_is_not_a_second_service(tmp_path: Path) -> None:
    folder = tmp_path / "y"
    folder.mkdir()
    (folder / "run").write_text("#!/bin/sh\nexec sleep 1\n")
    (folder / "run").chmod(0o755)
    (tmp_path / "y.toml").symlink_to(folder)
    (found,) = problems(tmp_path)
    assert found.startswith(f"{tmp_path / 'y.toml'}: the same drop-in as {folder}")


def test_two_names_for_one_file_are_one_service_too(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('command = ["true"]\n')
    (tmp_path / "b.toml").symlink_to(tmp_path / "a.toml")
    (found,) = problems(tmp_path)
    assert "b.toml: the same drop-in as" in found


def test_a_symlink_from_elsewhere_is_fine(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.toml").write_text('command = ["true"]\n')
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "svc.toml").symlink_to(tmp_path / "elsewhere.toml")
    assert load_services(tmp_path / "d", {}).enabled == ("svc",)


@pytest.mark.parametrize(
    ("toml", "what"),
    [
        ('command = ["a\\u0000"]', "command[0]: contains a NUL byte"),
        ('command = ["true"]\nfinish = ["x\\u0000"]', "finish[0]: contains a NUL byte"),
        ('command = ["true"]\nuser = "ro\\u0000ot"', "user: contains a NUL byte"),
        ('command = ["true"]\nworking_dir = "/a\\u0000"', "working_dir: contains a NUL byte"),
        ('command = ["true"]\nenvironment = { A = "\\u0000" }', "environment.A: contains a NUL"),
        ('command = ["true"]\nrequired_env = ["A\\nB"]', "required_env[0]: not a valid variable"),
        ('command = ["true"]\ninherit_exports = ["A B"]', "inherit_exports[0]: not a valid"),
        ('command = ["true"]\n"x\\ny" = 1', "'x\\ny': unknown key"),
        ('command = ["true"]\nready = { tcp = "h:1", interval = 0.001 }', "ready.interval: must"),
        ('command = ["true"]\nhealth = { tcp = "h:1", interval = 0 }', "health.interval: must"),
        ('command = ["true"]\nstop_timeout = 1e300', "stop_timeout: must be <= 86400"),
        ('command = ["true"]\nstop_timeout = inf', "stop_timeout: must be a finite number"),
        ('command = ["true"]\nstop_timeout = nan', "stop_timeout: must be a finite number"),
        ('command = ["true"]\nwait_for = [{ path = "/a", timeout = 1e9 }]', "timeout: must be <="),
        ('command = ["true"]\nbackoff = { initial = 1e-9 }', "backoff.initial: must be >= 0.001"),
        ('command = ["true"]\nbackoff = { reset_after = 1e400 }', "reset_after: must be a finite"),
        ('command = ["true"]\nmax_restarts = 10000000000', "max_restarts: must be 0..1000000"),
    ],
)
def test_values_that_would_break_at_run_time(tmp_path: Path, toml: str, what: str) -> None:
    (tmp_path / "svc.toml").write_text(toml + "\n")
    (found,) = problems(tmp_path)
    assert what in found
    assert "\n" not in found


def test_an_environment_past_the_kernels_limit_is_refused_at_check(tmp_path: Path) -> None:
    table = "\n".join(f'V{i} = "{"x" * 100}"' for i in range(24_000))
    (tmp_path / "svc.toml").write_text(f'command = ["true"]\n[environment]\n{table}\n')
    (found,) = problems(tmp_path)
    assert "environment: command and environment take" in found
    assert "24,000 variables" in found


def test_the_containers_own_variables_count_too(tmp_path: Path) -> None:
    (tmp_path / "svc.toml").write_text('command = ["true"]\n')
    environ = {f"C{i}": "y" * 100 for i in range(24_000)}
    assert "over the kernel's" in problems(tmp_path, environ)[0]


def test_a_large_environment_under_the_limit_is_fine(tmp_path: Path) -> None:
    table = "\n".join(f'V{i} = "${{V{i - 1}}}"' if i else 'V0 = "x"' for i in range(24_000))
    (tmp_path / "svc.toml").write_text(f'command = ["true"]\n[environment]\n{table}\n')
    spec = load_services(tmp_path, {}).get("svc")
    made = service_env(spec, Exports({}), frozenset(), {})
    assert len(made.env) == 24_000
    assert made.env["V23999"] == "x"  # each entry expanded from the ones before it


def test_exec_problem_counts_like_the_kernel() -> None:
    assert exec_problem(["true"], {"A": "b"}) is None
    assert "per variable" in (exec_problem([], {"A": "x" * MAX_ARG_STRLEN}) or "")
    assert exec_problem(["x" * MAX_ARG_STRLEN], {}) is not None
    many = {f"V{i}": "" for i in range(EXEC_LIMIT // 12)}
    assert "for one process" in (exec_problem(["true"], many) or "")


def test_a_nul_exported_by_a_step_makes_the_service_give_up_not_loop() -> None:
    assert "NUL" in (launch_problem(("true",), {"A": "x\0y"}) or "")
    assert "NUL" in (launch_problem(("a\0",), {}) or "")
    assert launch_problem(("true",), {"A": "b"}) is None


def spec_with(command: tuple[str, ...], **env: str) -> ServiceSpec:
    return ServiceSpec(name="svc", command=command, source="/s/svc.toml", environment=env)


def test_check_warns_about_a_program_not_on_the_path(tmp_path: Path) -> None:
    prog = tmp_path / "bin" / "prog"
    prog.parent.mkdir()
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    environ = {"PATH": "/nowhere"}
    assert lint.missing_program(spec_with(("prog",)), environ) == (
        "command 'prog' is not on the service's PATH (/nowhere)"
    )
    assert (
        lint.missing_program(spec_with(("prog",), PATH=f"{prog.parent}:${{PATH}}"), environ) is None
    )
    assert lint.missing_program(spec_with((str(prog),)), environ) is None
    assert "not an executable file" in (lint.missing_program(spec_with(("/no/x",)), environ) or "")
    assert lint.missing_program(spec_with(("${LATER}",)), environ) is None
    os.chmod(prog, 0o644)
    assert lint.missing_program(spec_with((str(prog),)), environ) is not None
