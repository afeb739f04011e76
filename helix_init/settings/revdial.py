"""RevDial settings: whether this level dials the control plane, and under which runner id; pure.

The `revdial` step (builtin/revdial.py) exports the runner id and the local
address for the revdial-agent service, only where HELIX_API_URL is set (and
the revdial-client binary exists: the step checks that, not this module).
The id is `ROLE-INSTANCE` as the control plane expects (seeds/003):
sandbox-$HELIX_SESSION_ID, wolf-/moonlight-$WOLF_INSTANCE_ID (or
SANDBOX_INSTANCE_ID, default `local`); HELIX_RUNNER_ID overrides it. A
missing instance is a bad setting, not an agent dialling in unnamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from helix_init.problems import ConfigError, Problem
from helix_init.settings.dind import API_URL as API_URL

ROLE = "HELIX_REVDIAL_ROLE"
RUNNER_ID = "HELIX_RUNNER_ID"  # set by the operator, or exported by the step
LOCAL_ADDR = "HELIX_REVDIAL_LOCAL_ADDR"  # likewise
SESSION_ID = "HELIX_SESSION_ID"
WOLF_INSTANCE_ID = "WOLF_INSTANCE_ID"
SANDBOX_INSTANCE_ID = "SANDBOX_INSTANCE_ID"  # COMPAT: wolf and moonlight fall back to it

DEFAULT_ROLE = "sandbox"
# Role -> runner id prefix, the variable naming the instance, the address the tunnel exposes.
ROLES = {
    "sandbox": ("sandbox", SESSION_ID, "127.0.0.1:9876"),
    "wolf": ("wolf", WOLF_INSTANCE_ID, "unix:///var/run/wolf/wolf.sock"),
    "moonlight": ("moonlight", WOLF_INSTANCE_ID, "127.0.0.1:8080"),
}


@dataclass(frozen=True)
class RevDial:
    """The agent's identity: the runner id it dials in with and the address it exposes."""

    role: str
    runner_id: str
    local_addr: str


def api_url(env: Mapping[str, str]) -> str | None:
    """HELIX_API_URL: set, this level has a RevDial agent (if its binary is installed)."""
    return env.get(API_URL) or None


def revdial_from_env(env: Mapping[str, str]) -> RevDial:
    """The agent's identity from the role, the instance and the overrides; ConfigError if it
    has none (a bad role, or a role whose instance variable is unset)."""
    role = env.get(ROLE, DEFAULT_ROLE)
    if role not in ROLES:
        raise ConfigError([Problem(ROLE, f"must be one of {', '.join(ROLES)}, got {role!r}")])
    prefix, variable, local_addr = ROLES[role]
    runner_id = env.get(RUNNER_ID, "")
    if not runner_id:
        instance = env.get(variable) or (
            env.get(SANDBOX_INSTANCE_ID, "local") if role != "sandbox" else ""
        )
        if not instance:
            why = f"unset, and the RevDial role {role} needs it (or {RUNNER_ID})"
            raise ConfigError([Problem(variable, why)])
        runner_id = f"{prefix}-{instance}"
    return RevDial(role, runner_id, env.get(LOCAL_ADDR) or local_addr)


def problems_from_env(env: Mapping[str, str], has_client: bool) -> list[Problem]:
    """Checked before anything starts (boot.make_plan, `helix-init check`).

    HELIX_API_URL must be an http(s) URL with a host whenever it is set (the
    agent dials it and dockerd's pools keep its host clear); the role and the
    instance are checked as the `revdial` step will, where that step will name
    a runner: a revdial-client on PATH (`has_client`).
    """
    url = api_url(env)
    if url is None:
        return []
    problems = []
    parts = urlsplit(url) if url.isprintable() and not any(c.isspace() for c in url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        why = f"must be an http:// or https:// URL with a host, got {url!r}"
        problems.append(Problem(API_URL, why))
    if has_client:
        try:
            agent = revdial_from_env(env)
        except ConfigError as exc:
            return problems + exc.problems
        if not agent.runner_id.isprintable() or any(c.isspace() for c in agent.runner_id):
            source = RUNNER_ID if env.get(RUNNER_ID) else ROLES[agent.role][1]
            why = f"makes the runner id {agent.runner_id!r}: no white space or control characters"
            problems.append(Problem(source, why))
    return problems
