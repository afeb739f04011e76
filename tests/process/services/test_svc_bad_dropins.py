"""Invalid services.d at boot: exit 78, one line naming the file, and nothing started.

Every case of tests/corpus/services/ boots a real helix-init as PID 1 with that
folder as services.d and a cont-init step that would leave a marker had it run.
The boots run side by side (one module fixture starts them all, each test
reads its own result), which keeps 40-odd PID-1 boots within a few seconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pid1 import Finished, Pid1, assert_no_traceback

pytestmark = pytest.mark.process

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "services"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
CONFIG = 78
ALL_AT_ONCE = 12  # boots in flight together


@pytest.fixture(scope="module")
def boots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Pid1, Finished]]]:
    harnesses: dict[str, Pid1] = {}
    for case in CASES:
        pid1 = Pid1(tmp_path_factory.mktemp(case))
        shutil.copytree(
            CORPUS / case, pid1.root / "services.d", ignore=shutil.ignore_patterns("expected.txt")
        )
        pid1.step("10-marker", f'#!/bin/sh\ntouch "{pid1.path("cont-init-ran")}"\n')
        harnesses[case] = pid1
    results: dict[str, tuple[Pid1, Finished]] = {}
    try:
        for i in range(0, len(CASES), ALL_AT_ONCE):
            batch = CASES[i : i + ALL_AT_ONCE]
            started = {case: harnesses[case].start("sh", "-c", "echo CMD ran") for case in batch}
            for case, running in started.items():
                results[case] = (harnesses[case], running.wait(timeout=30))
        yield results
    finally:
        for pid1 in harnesses.values():
            pid1.close()


def test_the_corpus_has_at_least_fifteen_distinct_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES)
def test_bad_services_d_exits_78_naming_the_file_and_starts_nothing(
    boots: dict[str, tuple[Pid1, Finished]], case: str
) -> None:
    pid1, result = boots[case]
    expected = (CORPUS / case / "expected.txt").read_text().strip()
    services_d = pid1.root / "services.d"

    assert result.code == CONFIG, result.describe()
    assert_no_traceback(result)
    problem, summary = result.errors()
    assert expected in problem, result.describe()
    assert problem.startswith(f"{services_d}/"), problem  # names the file, on one line
    assert summary == "invalid drop-ins: nothing was started (exit 78)"
    assert result.warnings() == []
    assert not pid1.path("cont-init-ran").exists()
    assert "CMD ran" not in result.stdout
    assert not (pid1.root / "service-logs").exists()  # supervisord never ran
    assert not (pid1.run_dir / "supervisord.conf").exists()
