"""The drop-ins in examples/ (what scripts/demo runs) pass `check` and boot as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pid1 import Pid1

pytestmark = pytest.mark.process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def examples(pid1: Pid1) -> Pid1:
    pid1.env["HELIX_INIT_CONT_INIT_DIR"] = str(EXAMPLES / "cont-init.d")
    pid1.env["HELIX_INIT_CONT_FINISH_DIR"] = str(EXAMPLES / "cont-finish.d")
    return pid1


def test_the_examples_pass_check(examples: Pid1) -> None:
    result = examples.command("check")

    assert result.code == 0, result.describe()
    assert result.stdout.startswith("ok: 3 cont-init step(s), 1 cont-finish step(s)")


def test_the_examples_boot_and_carry_their_exports(examples: Pid1) -> None:
    result = examples.run("sh", "-c", 'echo "cmd $DEMO_GREETING|$DEMO_LEVEL|$DEMO_FACTS"')

    assert result.code == 0, result.describe()
    assert result.errors() == [] and result.warnings() == []
    cmd_line = next(line for line in result.lines if line.startswith("cmd "))
    assert cmd_line.startswith("cmd hello from 10-legacy-env.sh|1|step 30-facts ran as pid ")
    assert result.texts("20-sourced-return.sh") == [
        "I see DEMO_GREETING=hello from 10-legacy-env.sh"
    ]
    assert result.texts("10-goodbye.sh") == [
        "cont-finish: saying goodbye; carried DEMO_GREETING=hello from 10-legacy-env.sh"
    ]
