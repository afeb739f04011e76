"""The docs' reference tables, checked against the code: every key documented, none invented."""

from __future__ import annotations

import re
from pathlib import Path

from helix_init.services.spec import TOP_KEYS

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
PAGES = [README, REPO / "bench" / "README.md", *sorted(DOCS.rglob("*.md"))]


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def test_every_services_key_is_in_the_reference_table() -> None:
    table = _section((REFERENCE / "services-d.md").read_text(), "## Options", "## Exit codes")
    documented = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", table, re.M):
        documented.update(re.findall(r"`([a-z_]+)`", row))
    missing, unknown = set(TOP_KEYS) - documented, documented - set(TOP_KEYS)
    assert not missing and not unknown, f"missing: {sorted(missing)}; unknown: {sorted(unknown)}"


def test_every_exit_code_is_on_the_exit_codes_page() -> None:
    from helix_init.exitcodes import Exit

    table = _section((REFERENCE / "exit-codes.md").read_text(), "## Exit codes", "## Notes")
    for code in Exit:
        assert re.search(rf"^\| {code.value} \|", table, re.M), code


def test_every_built_in_step_is_on_the_built_in_steps_page() -> None:
    from helix_init.builtin import STEPS

    table = _section((REFERENCE / "builtin-steps.md").read_text(), "## Options", "## Exit codes")
    documented = set(re.findall(r"^\| `[^`]+` \| `([a-z-]+)` \|", table, re.M))
    assert documented == set(STEPS)


def test_every_init_setting_is_on_the_environment_page() -> None:
    from helix_init import settings

    page = (REFERENCE / "environment.md").read_text()
    source = (REPO / "helix_init" / "settings" / "__init__.py").read_text()
    set_for_steps = {settings.INIT_ENV_FILE, settings.INIT_PID}
    names = set(re.findall(r'"(HELIX_INIT_[A-Z_]+)"', source)) - set_for_steps
    table = _section(page, "### The init", "### The images")
    documented = set(re.findall(r"^\| `(HELIX_INIT_[A-Z_]+)` \|", table, re.M))
    assert names == documented
    assert all(f"`{name}`" in page[page.index("## Notes") :] for name in set_for_steps)


def test_every_dind_dns_user_and_revdial_variable_is_on_the_environment_page() -> None:
    from helix_init.settings import dind, dns, revdial, user

    page = (REFERENCE / "environment.md").read_text()
    names = [
        v
        for module in (dind, dns, revdial, user)
        for k, v in vars(module).items()
        if k.isupper() and isinstance(v, str) and v.isupper() and "_" in v
    ]
    missing = [n for n in names if f"`{n}`" not in page]
    assert missing == []


def test_the_migration_guides_services_file_is_a_valid_drop_in(tmp_path: Path) -> None:
    from tests.support.services import load_services

    text = (DOCS / "image-builders.md").read_text()
    guide = text[text.index("### A restart loop becomes a services.d file") :]
    toml = guide[guide.index("```toml\n") + 8 : guide.index("```\n", guide.index("```toml"))]
    (tmp_path / "settings-sync.toml").write_text(toml)

    plan = load_services(tmp_path, {"UNAME": "retro", "PUID": "1000"})

    (spec,) = plan.services
    assert spec.user == "retro"
    assert spec.required_env == ("HELIX_API_URL", "HELIX_SESSION_ID")
    assert [s.name for s in spec.secrets] == ["USER_API_TOKEN"]


def test_the_readmes_service_example_is_a_valid_drop_in(tmp_path: Path) -> None:
    from tests.support.services import load_services

    text = README.read_text()
    toml = text[text.index("```toml\n") + 8 : text.index("```\n", text.index("```toml"))]
    (tmp_path / "web.toml").write_text(toml)

    (spec,) = load_services(tmp_path, {"UNAME": "root"}).services
    assert spec.name == "web" and spec.user == "root"


def test_the_readme_stays_short_and_its_quickstart_has_two_commands() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 20 * 1024
    quick = _section(text, "## Quickstart", "\n## ")
    block = quick[quick.index("```sh\n") + 6 : quick.index("```\n", quick.index("```sh"))]
    assert block.split("\n")[:-1] == ["./scripts/demo", "./scripts/test"]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    titles = re.findall(r"^#{1,6} (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", t.strip().lower()).replace(" ", "-") for t in titles}


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert broken == []
