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


def test_the_migration_guides_services_file_is_a_valid_drop_in(tmp_path: Path) -> None:
    from helix_init.services.spec import load_services

    text = README.read_text()
    guide = text[text.index("### A restart loop becomes a services.d file") :]
    toml = guide[guide.index("```toml\n") + 8 : guide.index("```\n", guide.index("```toml"))]
    (tmp_path / "settings-sync.toml").write_text(toml)

    plan = load_services(tmp_path, {"UNAME": "retro", "PUID": "1000"})

    (spec,) = plan.services
    assert spec.user == "retro"
    assert spec.required_env == ("HELIX_API_URL", "HELIX_SESSION_ID")
    assert [s.name for s in spec.secrets] == ["USER_API_TOKEN"]
