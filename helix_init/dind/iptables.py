"""iptables backend for this level's dockerd (legacy, nft or none); root, before dockerd.

The kernel keeps legacy (x_tables) and nf_tables rules side by side. When the
host, or the level above, filters with one and our dockerd writes to the other,
its NAT and forwarding rules never see the packets, and containers have no
network with nothing in any log. So: an explicit HELIX_IPTABLES_BACKEND wins;
else legacy when the kernel already has legacy tables here
(/proc/net/ip_tables_names non-empty); else whichever *-save shows more rules
(legacy on a tie above zero, as kind does); else nft when it works; else none.

The choice is scoped to dockerd: a directory of symlinks (iptables ->
iptables-legacy, ...) goes first on dockerd's PATH only. The xtables-*-multi
binaries behind those names dispatch on argv[0]'s basename, so a link named
`iptables` to `iptables-legacy` runs the legacy `iptables`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helix_init.dind import DindError
from helix_init.hostcmd import Runner
from helix_init.settings.dind import IPTABLES_BACKEND

TOOLS = (
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
)


@dataclass(frozen=True)
class IptablesObservations:
    override: str | None = None
    ip_tables_names: str = ""  # contents of /proc/net/ip_tables_names
    legacy_rules: int | None = None  # rules in iptables/ip6tables-legacy-save; None: not usable
    nft_rules: int | None = None  # the same for -nft-save; None also means nft does not work


@dataclass(frozen=True)
class IptablesChoice:
    backend: str  # legacy, nft or none
    reason: str
    path_dir: Path | None = None  # to put first on dockerd's PATH


def choose_backend(obs: IptablesObservations) -> tuple[str, str]:
    """(backend, reason) from what was observed; see the module docstring for the order."""
    legacy, nft = obs.legacy_rules, obs.nft_rules
    if obs.override:
        if (legacy if obs.override == "legacy" else nft) is None:
            raise DindError(
                f"{IPTABLES_BACKEND}={obs.override}, but iptables-{obs.override}-save "
                "is missing or fails here"
            )
        return obs.override, f"{IPTABLES_BACKEND}={obs.override}"
    tables = obs.ip_tables_names.split()
    if tables and legacy is not None:
        return "legacy", f"legacy tables already in use here ({', '.join(tables)})"
    if max(legacy or 0, nft or 0) > 0:
        counts = f"{legacy or 0} legacy vs {nft or 0} nft rules"
        if (legacy or 0) >= (nft or 0):
            return "legacy", f"{counts} (legacy wins ties)"
        return "nft", counts
    if nft is not None:
        return "nft", "no rules in either backend; nft works"
    return "none", "no iptables backend works here (iptables-nft-save fails or is missing)"


def count_rules(save_output: str) -> int:
    """Rules in iptables-save output: the lines that start with '-' (-A ...)."""
    return sum(1 for line in save_output.splitlines() if line.startswith("-"))


def observe_iptables(
    runner: Runner,
    override: str | None,
    proc: Path = Path("/proc"),
    which: Callable[[str], str | None] = shutil.which,
) -> IptablesObservations:
    """Read the override, the legacy table names, and the rule counts of both backends."""
    try:
        names = (proc / "net" / "ip_tables_names").read_text()
    except OSError:
        names = ""
    return IptablesObservations(
        override=override,
        ip_tables_names=names,
        legacy_rules=_rules(runner, which, "legacy", proc),
        nft_rules=_rules(runner, which, "nft", proc),
    )


# The legacy save tools list the tables of these files (and nothing else).
LEGACY_TABLE_NAMES = {"iptables": "ip_tables_names", "ip6tables": "ip6_tables_names"}


def _no_legacy_tables(proc: Path, family: str) -> bool:
    """True when /proc says this family has no legacy table here: its save would print nothing.

    iptables-legacy-save dumps exactly the tables named in /proc/net/ip_tables_names
    (ip6_tables_names for ip6tables); empty, it prints nothing and exits 0 (checked in
    a fresh network namespace), so the count is 0 without running it. A missing
    file (no x_tables here) is left to the tool, which then fails.
    """
    try:
        return (proc / "net" / LEGACY_TABLE_NAMES[family]).read_text().split() == []
    except OSError:
        return False


def _rules(
    runner: Runner, which: Callable[[str], str | None], backend: str, proc: Path
) -> int | None:
    """Rules of iptables-BACKEND-save plus ip6tables; None when the IPv4 one is missing or fails."""
    total = 0
    for family in ("iptables", "ip6tables"):
        tool = which(f"{family}-{backend}-save")
        if tool is None:
            if family == "iptables":
                return None
            continue
        if backend == "legacy" and _no_legacy_tables(proc, family):
            continue  # 0 rules, exactly what the tool would have said
        result = runner([tool])
        if result.returncode != 0:
            if family == "iptables":
                return None
            continue
        total += count_rules(result.stdout)
    return total


def link_backend(
    backend: str, run_dir: Path, which: Callable[[str], str | None] = shutil.which
) -> Path:
    """run_dir/iptables-BACKEND with iptables -> iptables-BACKEND etc.; return the directory.

    Links are replaced atomically and only when they point elsewhere, so a
    second run changes nothing.
    """
    directory = run_dir / f"iptables-{backend}"
    directory.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        family, _, verb = tool.partition("-")
        target = which(f"{family}-{backend}" + (f"-{verb}" if verb else ""))
        if target is None:
            continue
        link = directory / tool
        if link.is_symlink() and os.readlink(link) == target:
            continue
        tmp = directory / f".{tool}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return directory


def choose_iptables(
    obs: IptablesObservations,
    run_dir: Path,
    which: Callable[[str], str | None] = shutil.which,
) -> IptablesChoice:
    backend, reason = choose_backend(obs)
    if backend == "none":
        return IptablesChoice(backend, reason)
    return IptablesChoice(backend, reason, link_backend(backend, run_dir, which))


def bridge_disabled_reason(gvisor: bool, choice: IptablesChoice) -> str | None:
    """Why dockerd must run with iptables off and no bridge, or None when it need not."""
    if gvisor:
        return (
            "gVisor: netlink and iptables are partial there; dockerd runs with "
            "iptables off and no bridge, so containers need --network host"
        )
    if choice.backend == "none":
        return (
            f"{choice.reason}; dockerd runs with iptables off and no bridge, "
            "so containers need --network host"
        )
    return None
