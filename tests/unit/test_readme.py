"""The README's reference tables, checked against the code: every key documented, none invented."""

from __future__ import annotations

import re
from pathlib import Path

from helix_init.services.spec import TOP_KEYS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_services_key_is_in_the_reference_table() -> None:
    text = README.read_text()
    table = text[text.index("### services.d reference") : text.index("### Shipped services")]
    documented = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", table, re.M):
        documented.update(re.findall(r"`([a-z_]+)`", row))
    missing, unknown = set(TOP_KEYS) - documented, documented - set(TOP_KEYS)
    assert not missing and not unknown, f"missing: {sorted(missing)}; unknown: {sorted(unknown)}"


def test_every_exit_code_is_in_the_readme() -> None:
    from helix_init.exitcodes import Exit

    text = README.read_text()
    for code in Exit:
        assert re.search(rf"^\| {code.value} \|", text, re.M), code
