"""The built-in steps' table: every name resolves to its function, importing its module alone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helix_init.builtin import STEPS, step_function


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_step_resolves_to_the_function_of_its_module(name: str) -> None:
    module, function = STEPS[name]
    step = step_function(name)
    assert step is not None and step.__name__ == function
    assert step.__module__ == f"helix_init.builtin.{module}"


def test_an_unknown_step_is_none() -> None:
    assert step_function("no-such-step") is None


def test_a_step_imports_no_other_steps_module() -> None:
    code = (
        "import sys; from helix_init.builtin import step_function; step_function('user'); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('helix_init.builtin.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.split() == ["helix_init.builtin.level", "helix_init.builtin.user"]
