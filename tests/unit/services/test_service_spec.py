"""Unit: services.d drop-ins parsed into a ServicePlan, and every problem reported at once."""

import dataclasses
import shutil
import stat
from pathlib import Path

import pytest

from helix_init.problems import ConfigError
from helix_init.services import s6dir
from helix_init.services.conditions import Condition
from helix_init.services.probes import Health, Probe, WaitFor
from helix_init.services.spec import Backoff, Secret, ServiceSpec
from tests.support.services import load_services

CORPUS = Path(__file__).parents[2] / "corpus" / "services"

FULL = """
command = ["dockerd", "--config-file", "/run/helix-init/docker/daemon.json", "${EXTRA}"]
description = "Docker engine"
requires = ["dns"]
wait_for = [
  { path = "/run/helix-init/docker/daemon.json" },
  { tcp = ["10.0.0.1:53", "[::1]:53"], timeout = 30 },
]
ready = { docker = "unix:///var/run/docker.sock", timeout = 120, interval = 0.5 }
health = { interval = 15, failures = 4 }
restart = "on-failure"
backoff = { initial = 1, max = 60, jitter = 0.1, reset_after = 300 }
max_restarts = 5
essential = true
stop_signal = "sigint"
stop_timeout = 30
user = "root"
group = "0"
working_dir = "/var/lib/docker"
required_env = ["DOCKER_HOST"]
inherit_exports = ["HTTP_PROXY", "NO_PROXY"]
stop_file = "/tmp/.dockerd-stop"
finish = ["/usr/local/bin/dockerd-cleanup"]

[environment]
DOCKER_RAMDISK = "true"

[secrets]
RUNNER_TOKEN = { env = "HELIX_RUNNER_TOKEN" }
TLS_KEY = { file = "/run/secrets/tls.key", required = false }

[enabled_if]
env_set = "HELIX_DIND"
env_equals = { HELIX_MODE = "sandbox" }
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def problems_of(folder: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_services(folder, environ or {})
    return [str(p) for p in raised.value.problems]


def test_full_example_parses_to_the_expected_spec(tmp_path: Path) -> None:
    write(tmp_path, "dns.toml", 'command = ["dns-relay"]\n')
    source = write(tmp_path, "dockerd.toml", FULL)
    plan = load_services(tmp_path, {"HELIX_DIND": "1", "HELIX_MODE": "sandbox"})
    docker_probe = Probe("docker", "unix:///var/run/docker.sock", 200, 120.0, 0.5)
    assert plan.get("dockerd") == ServiceSpec(
        name="dockerd",
        command=("dockerd", "--config-file", "/run/helix-init/docker/daemon.json", "${EXTRA}"),
        source=str(source),
        description="Docker engine",
        requires=("dns",),
        wait_for=(
            WaitFor("path", ("/run/helix-init/docker/daemon.json",), 0.0),
            WaitFor("tcp", ("10.0.0.1:53", "[::1]:53"), 30.0),
        ),
        ready=docker_probe,
        health=Health(dataclasses.replace(docker_probe, timeout=5.0, interval=15.0), 15.0, 4, 5.0),
        restart="on-failure",
        backoff=Backoff(1.0, 60.0, 0.1, 300.0),
        max_restarts=5,
        essential=True,
        stop_signal="INT",
        stop_timeout=30.0,
        user="root",
        group="0",
        working_dir="/var/lib/docker",
        environment={"DOCKER_RAMDISK": "true"},
        secrets=(
            Secret("RUNNER_TOKEN", "HELIX_RUNNER_TOKEN", None, True),
            Secret("TLS_KEY", None, "/run/secrets/tls.key", False),
        ),
        required_env=("DOCKER_HOST",),
        inherit_exports=("HTTP_PROXY", "NO_PROXY"),
        enabled_if=Condition(env_set=("HELIX_DIND",), env_equals=(("HELIX_MODE", "sandbox"),)),
        enabled=True,
        disabled_reason="",
        stop_file="/tmp/.dockerd-stop",
        finish=("/usr/local/bin/dockerd-cleanup",),
    )
    assert plan.start_levels == (("dns",), ("dockerd",))
    assert plan.stop_levels == (("dockerd",), ("dns",))


def test_a_command_alone_gets_every_default(tmp_path: Path) -> None:
    source = write(tmp_path, "web.toml", 'command = ["python3", "-m", "http.server"]\n')
    spec = load_services(tmp_path, {}).get("web")
    assert spec == ServiceSpec(
        name="web", command=("python3", "-m", "http.server"), source=str(source)
    )
    assert (spec.restart, spec.stop_signal, spec.stop_timeout) == ("always", "TERM", 10.0)
    assert spec.backoff == Backoff(initial=0.5, max=30.0, jitter=0.2, reset_after=60.0)
    assert (spec.ready, spec.health, spec.user, spec.enabled_if) == (None, None, None, None)
    assert (spec.max_restarts, spec.essential, spec.inherit_exports) == (0, False, True)
    assert dict(spec.environment) == {}
    assert spec.enabled and spec.disabled_reason == ""


def test_probe_defaults(tmp_path: Path) -> None:
    write(tmp_path, "web.toml", 'command = ["web"]\nready = { http = "http://127.0.0.1:8080/" }\n')
    ready = load_services(tmp_path, {}).get("web").ready
    assert ready == Probe("http", "http://127.0.0.1:8080/", status=200, timeout=60.0, interval=0.2)


def test_health_with_its_own_probe(tmp_path: Path) -> None:
    write(tmp_path, "web.toml", 'command = ["w"]\nhealth = { command = ["check", "-q"] }\n')
    health = load_services(tmp_path, {}).get("web").health
    assert health == Health(Probe("command", ("check", "-q"), 200, 5.0, 10.0), 10.0, 3, 5.0)


@pytest.mark.parametrize(("raw", "name"), [("TERM", "TERM"), ("SIGTERM", "TERM"), ("term", "TERM"),
                                           ("SigHup", "HUP"), ("KILL", "KILL")])  # fmt: skip
def test_stop_signal_is_normalised(tmp_path: Path, raw: str, name: str) -> None:
    write(tmp_path, "svc.toml", f'command = ["x"]\nstop_signal = "{raw}"\n')
    assert load_services(tmp_path, {}).get("svc").stop_signal == name


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("false", False), ("[]", ())])
def test_inherit_exports(tmp_path: Path, raw: str, value: object) -> None:
    write(tmp_path, "svc.toml", f'command = ["x"]\ninherit_exports = {raw}\n')
    assert load_services(tmp_path, {}).get("svc").inherit_exports == value


def test_spec_and_its_environment_are_frozen(tmp_path: Path) -> None:
    write(tmp_path, "svc.toml", 'command = ["x"]\nenvironment = { A = "1" }\n')
    spec = load_services(tmp_path, {}).get("svc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.command = ("y",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.environment["A"] = "2"  # type: ignore[index]
    assert hash(spec) == hash(dataclasses.replace(spec))


def test_a_missing_folder_is_an_empty_plan(tmp_path: Path) -> None:
    plan = load_services(tmp_path / "nowhere", {})
    assert (plan.services, plan.enabled, plan.start_levels) == ((), (), ())


def test_dotfiles_and_readmes_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, ".svc.toml.swp", "junk")
    write(tmp_path, "README.md", "# services")
    (tmp_path / ".git").mkdir()
    write(tmp_path, "svc.toml", 'command = ["x"]\n')
    assert load_services(tmp_path, {}).enabled == ("svc",)


# --- the corpus of bad drop-ins: one folder per problem, expected.txt beside the files ---


def corpus_cases() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir())


def test_the_corpus_covers_at_least_twenty_problems() -> None:
    assert len(corpus_cases()) >= 20


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda p: p.name)
def test_bad_drop_in_is_reported(tmp_path: Path, case: Path) -> None:
    folder = tmp_path / "services.d"
    shutil.copytree(case, folder, ignore=shutil.ignore_patterns("expected.txt"))
    expected = (case / "expected.txt").read_text().strip()
    found = problems_of(folder)
    assert any(expected in p for p in found), found
    assert all("\n" not in p for p in found)
    assert all(p.startswith(str(folder)) for p in found)


def test_s6_run_not_executable_in_the_corpus_really_is_not() -> None:
    run = CORPUS / "s6-run-not-executable" / "legacy" / "run"
    assert not run.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'command = []\nrestart = "sometimes"\nbackoff = { jitter = 2 }\n')
    write(tmp_path, "b.toml", 'command = ["b"]\nrequires = ["nope"]\nstop_signal = "BOGUS"\n')
    write(tmp_path, "c.toml", "command = [\n")
    write(tmp_path, "d.txt", "")
    found = problems_of(tmp_path)
    for expected in [
        "a.toml: command: must not be empty",
        "a.toml: restart: must be one of",
        "a.toml: backoff.jitter: must be between 0 and 1",
        "b.toml: requires: unknown service 'nope'",
        "b.toml: stop_signal: unknown signal 'BOGUS'",
        "c.toml: TOML syntax error",
        "d.txt: not a service",
    ]:
        assert any(expected in p for p in found), (expected, found)
    assert len(found) == 7


def test_a_cycle_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'command = ["a"]\nrequires = ["b"]\n')
    write(tmp_path, "b.toml", 'command = ["b"]\nrequires = ["c"]\n')
    write(tmp_path, "c.toml", 'command = ["c"]\nrequires = ["a"]\n')
    write(tmp_path, "x.toml", 'command = ["x"]\nrequires = ["y"]\n')
    write(tmp_path, "y.toml", 'command = ["y"]\nrequires = ["x"]\n')
    found = problems_of(tmp_path)
    assert found == [
        f"{tmp_path / 'a.toml'}: requires: dependency cycle a -> b -> c -> a",
        f"{tmp_path / 'x.toml'}: requires: dependency cycle x -> y -> x",
    ]


def test_requiring_a_broken_file_is_not_also_an_unknown_service(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'command = ["a"]\nrequires = ["b"]\n')
    write(tmp_path, "b.toml", "command = = 1\n")
    found = problems_of(tmp_path)
    assert len(found) == 1 and "b.toml: TOML syntax error" in found[0]


def test_numeric_user_and_group_that_exist(tmp_path: Path) -> None:
    write(tmp_path, "svc.toml", 'command = ["x"]\nuser = 0\ngroup = "0"\n')
    spec = load_services(tmp_path, {}).get("svc")
    assert (spec.user, spec.group) == ("0", "0")


def test_unknown_numeric_user(tmp_path: Path) -> None:
    write(tmp_path, "svc.toml", 'command = ["x"]\nuser = "4000000000"\n')
    assert any("user: unknown user '4000000000'" in p for p in problems_of(tmp_path))


def test_health_reuses_the_ready_probe(tmp_path: Path) -> None:
    write(tmp_path, "svc.toml", 'command = ["x"]\nready = { unix = "/run/x.sock" }\nhealth = {}\n')
    spec = load_services(tmp_path, {}).get("svc")
    assert spec.health == Health(Probe("unix", "/run/x.sock", 200, 5.0, 10.0), 10.0, 3, 5.0)


def test_notify_ready_probe(tmp_path: Path) -> None:
    write(tmp_path, "svc.toml", 'command = ["x"]\nready = { notify = true, timeout = 0 }\n')
    ready = load_services(tmp_path, {}).get("svc").ready
    assert ready == Probe("notify", None, 200, 0.0, 0.2)


# --- enabled_if ---


THREE = 'path_exists = "{there}"\nenv_set = "T"\nenv_unset = "U"'
DESKTOP = 'env_equals = { MODE = "desktop" }'


@pytest.mark.parametrize(
    ("clauses", "environ", "reason"),
    [
        ('path_exists = "{there}"', {}, ""),
        ('path_exists = ["{there}", "{missing}"]', {}, "path_exists: {missing} does not exist"),
        ('env_set = "TOKEN"', {"TOKEN": "t"}, ""),
        ('env_set = "TOKEN"', {"TOKEN": ""}, "env_set: TOKEN is not set"),
        ('env_set = ["A", "B"]', {"A": "1"}, "env_set: B is not set"),
        ('env_unset = "NO_DOCKER"', {}, ""),
        ('env_unset = "NO_DOCKER"', {"NO_DOCKER": "1"}, "env_unset: NO_DOCKER is set"),
        (DESKTOP, {"MODE": "desktop"}, ""),
        (DESKTOP, {"MODE": "secret"}, "env_equals: MODE is not 'desktop'"),
        (DESKTOP, {}, "env_equals: MODE is not 'desktop'"),
        (THREE, {"T": "1"}, ""),
        (THREE, {"T": "1", "U": "1"}, "env_unset: U is set"),
        (THREE, {"U": "1"}, "env_set: T is not set"),
        ("", {}, ""),
    ],
)
def test_enabled_if(tmp_path: Path, clauses: str, environ: dict[str, str], reason: str) -> None:
    there, missing = tmp_path / "there", tmp_path / "missing"
    there.touch()
    clauses = clauses.replace("{there}", str(there)).replace("{missing}", str(missing))
    write(tmp_path / "d", "svc.toml", f'command = ["x"]\n[enabled_if]\n{clauses}\n')
    plan = load_services(tmp_path / "d", environ)
    spec = plan.get("svc")
    expected = f"enabled_if.{reason}".replace("{missing}", str(missing)) if reason else ""
    assert spec.disabled_reason == expected
    assert spec.enabled is (reason == "")
    assert plan.enabled == (("svc",) if spec.enabled else ())
    assert plan.start_levels == ((("svc",),) if spec.enabled else ())


def test_a_disabled_requirement_counts_as_satisfied(tmp_path: Path) -> None:
    write(tmp_path, "dockerd.toml", 'command = ["dockerd"]\nenabled_if = { env_set = "DIND" }\n')
    write(tmp_path, "agent.toml", 'command = ["agent"]\nrequires = ["dockerd"]\n')
    write(tmp_path, "ui.toml", 'command = ["ui"]\nrequires = ["agent"]\n')
    off = load_services(tmp_path, {})
    assert [s.name for s in off.services] == ["agent", "dockerd", "ui"]
    assert off.enabled == ("agent", "ui")
    assert off.get("agent").requires == ("dockerd",)
    assert off.start_levels == (("agent",), ("ui",))
    on = load_services(tmp_path, {"DIND": "1"})
    assert on.start_levels == (("dockerd",), ("agent",), ("ui",))


def test_levels_for_a_chain_and_a_diamond(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'command = ["a"]\nrequires = ["b"]\n')
    write(tmp_path, "b.toml", 'command = ["b"]\nrequires = ["c"]\n')
    write(tmp_path, "c.toml", 'command = ["c"]\n')
    assert load_services(tmp_path, {}).start_levels == (("c",), ("b",), ("a",))
    write(tmp_path, "a.toml", 'command = ["a"]\nrequires = ["b", "d"]\n')
    write(tmp_path, "d.toml", 'command = ["d"]\nrequires = ["c"]\n')
    assert load_services(tmp_path, {}).start_levels == (("c",), ("b", "d"), ("a",))


# --- s6-overlay v2 folders ---


def s6_folder(parent: Path, name: str, *, finish: bool = False, down: bool = False) -> Path:
    folder = parent / name
    folder.mkdir(parents=True)
    write(folder, "run", "#!/bin/sh\nexec sleep 1000\n").chmod(0o755)
    if finish:
        write(folder, "finish", "#!/bin/sh\nexit 0\n").chmod(0o755)
    if down:
        write(folder, "down", "")
    return folder


def test_s6_folder_becomes_a_service(tmp_path: Path) -> None:
    folder = s6_folder(tmp_path, "legacy", finish=True)
    (folder / "log").mkdir()
    write(tmp_path, "modern.toml", 'command = ["m"]\nrequires = ["legacy"]\n')
    plan = load_services(tmp_path, {})
    # Run in its folder, as s6-supervise does; the finish script is run by the
    # s6 shim with s6's arguments (tests/unit/s6), not by the init with one.
    # The shim KILLs the run at the grace's end itself, so that its finish still runs;
    # supervisord's own KILL waits for that and the finish's 5 s too.
    shim = s6dir.command(folder, folder / "run", folder / "finish", None, kill_after=10.0)
    assert plan.get("legacy") == ServiceSpec(
        name="legacy",
        command=shim,
        source=str(folder),
        working_dir=str(folder),
        stop_timeout=16.0,
    )
    assert shim[-3:] == (str(folder), "--", str(folder / "run"))
    assert "--finish" in shim
    assert shim[shim.index("--kill-after") :][:4] == (
        "--kill-after",
        "10000",
        "--down-signal",
        "TERM",
    )
    assert plan.start_levels == (("legacy",), ("modern",))


def test_s6_folder_without_finish_or_notification_fd_runs_its_run_script(tmp_path: Path) -> None:
    folder = s6_folder(tmp_path, "plain")
    assert load_services(tmp_path, {}).get("plain").command == (str(folder / "run"),)


def test_s6_folder_notification_fd_is_readiness(tmp_path: Path) -> None:
    folder = s6_folder(tmp_path, "notifier")
    write(folder, "notification-fd", "3\n")
    spec = load_services(tmp_path, {}).get("notifier")
    assert spec.ready is not None and spec.ready.kind == "notify"
    assert spec.command[spec.command.index("--notify") + 1] == "3"


def test_s6_folder_with_a_missing_interpreter_is_refused(tmp_path: Path) -> None:
    folder = s6_folder(tmp_path, "lsio")
    write(folder, "run", "#!/no/such/with-contenv bash\nexec sleep 1\n").chmod(0o755)
    with pytest.raises(ConfigError) as exc:
        load_services(tmp_path, {})
    assert [str(p) for p in exc.value.problems] == [
        f"{folder / 'run'}: its #! interpreter /no/such/with-contenv does not exist;"
        " run `helix-init install s6-compat` in the Dockerfile"
    ]


def test_s6_down_file_disables_the_service(tmp_path: Path) -> None:
    s6_folder(tmp_path, "legacy", down=True)
    spec = load_services(tmp_path, {}).get("legacy")
    assert (spec.enabled, spec.disabled_reason, spec.finish) == (False, "down file present", None)


def test_a_secret_marked_argv_may_sit_in_the_command_of_a_root_service(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(
        'command = ["revdial-client", "-token", "${T}"]\n'
        'secrets = { T = { env = "RUNNER_TOKEN", argv = true } }\n'
    )
    spec = load_services(tmp_path, {}).get("agent")
    assert spec.secrets == (Secret("T", "RUNNER_TOKEN", None, True, True),)
    assert spec.command == ("revdial-client", "-token", "${T}")  # filled in only at exec


def test_an_argv_secret_for_a_service_with_its_own_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(
        'command = ["agent", "-token", "${T}"]\nuser = "nobody"\n'
        'secrets = { T = { env = "RUNNER_TOKEN", argv = true } }\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_services(tmp_path, {})
    (problem,) = caught.value.problems
    assert problem.what.startswith("secrets: argv = true needs the service to run as root")
