"""The bad-input corpus: every broken drop-in or setting is caught by `check` and at boot.

tests/corpus/ holds one case per way to get the input wrong, each with the
line it must produce:
- services/CASE/: a services.d folder, and expected.txt;
- cont-init/CASE/: a cont-init.d folder (the bad step), and expected.txt;
- env/CASE.env: KEY=VALUE settings, and CASE.expected;
- daemon-json/CASE.json: the operator's daemon.json (HELIX_DOCKERD_CONFIG), and CASE.expected.

For every case, `helix-init check` exits 78 with the expected text on one
line, and a boot as PID 1 exits 78 with it too, before anything started: a
cont-init step that would leave a marker did not run, nor did the CMD, and
there is no traceback anywhere. Checks and boots run side by side in batches
(one module fixture starts them), so the whole corpus takes seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.pid1 import HELIX_INIT, Finished, Pid1, assert_no_traceback

pytestmark = pytest.mark.process

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CONFIG = 78
AT_ONCE = 12  # cases in flight together (a boot and a check each)


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    expected: str
    source: Path

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


def _cases() -> list[Case]:
    cases = []
    for kind in ("services", "cont-init"):
        for folder in sorted(p for p in (CORPUS / kind).iterdir() if p.is_dir()):
            expected = (folder / "expected.txt").read_text().strip()
            cases.append(Case(kind, folder.name, expected, folder))
    for kind, suffix in (("env", ".env"), ("daemon-json", ".json")):
        for expected_file in sorted((CORPUS / kind).glob("*.expected")):
            name = expected_file.name.removesuffix(".expected")
            source = expected_file.with_name(name + suffix)
            cases.append(Case(kind, name, expected_file.read_text().strip(), source))
    return cases


CASES = _cases()


def _prepare(case: Case, pid1: Pid1) -> tuple[dict[str, str], str]:
    """Put the case in place; returns the extra environment and what its line must name."""
    ignore = shutil.ignore_patterns("expected.txt")
    if case.kind == "services":
        target = pid1.root / "services.d"
        shutil.copytree(case.source, target, ignore=ignore, symlinks=True)
        return {}, f"{target}/"
    if case.kind == "cont-init":
        shutil.copytree(
            case.source, pid1.cont_init, ignore=ignore, symlinks=True, dirs_exist_ok=True
        )
        return {}, f"{pid1.cont_init}/"
    if case.kind == "env":
        env = {}
        for line in case.source.read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = value
        return env, next(iter(env))
    target = pid1.root / case.source.name
    if case.source.is_symlink() or not case.source.is_dir():
        shutil.copy2(case.source, target, follow_symlinks=False)
    else:
        shutil.copytree(case.source, target)
    return {"HELIX_DOCKERD_CONFIG": str(target)}, str(target)


@dataclass(frozen=True)
class Outcome:
    pid1: Pid1
    names: str  # what the problem line must name: the file, folder or variable
    check: Finished
    boot: Finished


def _check(pid1: Pid1, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(HELIX_INIT), "check"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**pid1.env, **env},
        cwd=pid1.root,
    )


def _finished(proc: subprocess.Popen[bytes], started: float) -> Finished:
    out, err = proc.communicate(timeout=30)
    return Finished(
        proc.returncode,
        out.decode("utf-8", "backslashreplace"),
        err.decode("utf-8", "backslashreplace"),
        time.monotonic() - started,
    )


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    prepared: dict[str, tuple[Pid1, dict[str, str], str]] = {}
    for case in CASES:
        pid1 = Pid1(tmp_path_factory.mktemp(case.id.replace("/", "-")))
        env, names = _prepare(case, pid1)
        pid1.step("10-marker", f'#!/bin/sh\ntouch "{pid1.path("cont-init-ran")}"\n')
        prepared[case.id] = (pid1, env, names)
    results: dict[str, Outcome] = {}
    try:
        for i in range(0, len(CASES), AT_ONCE):
            batch = [case.id for case in CASES[i : i + AT_ONCE]]
            started = time.monotonic()
            boots, checks = {}, {}
            for cid in batch:
                pid1, env, _names = prepared[cid]
                boots[cid] = pid1.start("touch", str(pid1.path("cmd-ran")), env=env)
                checks[cid] = _check(pid1, env)
            for cid in batch:
                pid1, _env, names = prepared[cid]
                check = _finished(checks[cid], started)
                results[cid] = Outcome(pid1, names, check, boots[cid].wait(timeout=30))
        yield results
    finally:
        for pid1, _env, _names in prepared.values():
            pid1.close()


def test_the_corpus_holds_at_least_forty_cases_of_every_kind() -> None:
    kinds = {case.kind for case in CASES}
    assert kinds == {"services", "cont-init", "env", "daemon-json"}
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


def _line_with(result: Finished, expected: str) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if expected in line]
    assert len(lines) == 1, (expected, result.describe())
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_check_exits_78_with_the_expected_line(outcomes: dict[str, Outcome], case: Case) -> None:
    outcome = outcomes[case.id]
    result = outcome.check

    assert result.code == CONFIG, result.describe()
    assert_no_traceback(result)
    assert outcome.names in _line_with(result, case.expected)
    assert not outcome.pid1.run_dir.exists()  # checking changes nothing


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_boot_exits_78_with_the_expected_line_and_starts_nothing(
    outcomes: dict[str, Outcome], case: Case
) -> None:
    outcome = outcomes[case.id]
    result, pid1 = outcome.boot, outcome.pid1

    assert result.code == CONFIG, result.describe()
    assert_no_traceback(result)
    assert outcome.names in _line_with(result, case.expected)
    assert not pid1.path("cont-init-ran").exists()
    assert not pid1.path("cmd-ran").exists()
    assert not (pid1.root / "service-logs").exists()  # supervisord never ran
    assert not (pid1.run_dir / "supervisord.conf").exists()
