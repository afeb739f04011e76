"""The `revdial` step: the runner id and local address the revdial-agent service needs."""

from __future__ import annotations

from helix_init.builtin.level import Level, say, which
from helix_init.dind import DindError

# RevDial roles (seeds/003): runner id prefix, the variable naming the instance,
# and the local address the tunnel exposes by default.
REVDIAL_ROLES = {
    "sandbox": ("sandbox", "HELIX_SESSION_ID", "127.0.0.1:9876"),
    "wolf": ("wolf", "WOLF_INSTANCE_ID", "unix:///var/run/wolf/wolf.sock"),
    "moonlight": ("moonlight", "WOLF_INSTANCE_ID", "127.0.0.1:8080"),
}


def name_revdial_runner(level: Level) -> None:
    """Export HELIX_RUNNER_ID and HELIX_REVDIAL_LOCAL_ADDR for the revdial-agent service.

    Only where HELIX_API_URL is set and the revdial-client binary exists: that
    is what enables the agent. The id is `ROLE-INSTANCE` as the control plane
    expects (sandbox-$HELIX_SESSION_ID, wolf-/moonlight-$WOLF_INSTANCE_ID);
    a missing instance is a failed step, not an agent dialling in unnamed.
    """
    env = level.env
    if not env.get("HELIX_API_URL"):
        return
    if not which("revdial-client"):
        say("HELIX_API_URL is set but revdial-client is not installed: no RevDial agent")
        return
    role = env.get("HELIX_REVDIAL_ROLE", "sandbox")
    if role not in REVDIAL_ROLES:
        raise DindError(
            f"HELIX_REVDIAL_ROLE must be one of {', '.join(REVDIAL_ROLES)}, got {role!r}"
        )
    prefix, variable, local_addr = REVDIAL_ROLES[role]
    runner_id = env.get("HELIX_RUNNER_ID", "")
    if not runner_id:
        instance = env.get(variable) or (
            env.get("SANDBOX_INSTANCE_ID", "local") if role != "sandbox" else ""
        )
        if not instance:
            raise DindError(f"RevDial role {role} needs {variable} (or HELIX_RUNNER_ID)")
        runner_id = f"{prefix}-{instance}"
    level.export("HELIX_RUNNER_ID", runner_id)
    level.export("HELIX_REVDIAL_LOCAL_ADDR", env.get("HELIX_REVDIAL_LOCAL_ADDR") or local_addr)
    say(f"RevDial runner id {runner_id}")
