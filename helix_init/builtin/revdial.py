"""The `revdial` step: the runner id and local address the revdial-agent service needs."""

from __future__ import annotations

from helix_init.builtin.level import Level, say, which
from helix_init.settings import revdial


def name_revdial_runner(level: Level) -> None:
    """Export the RevDial runner id and local address for the revdial-agent service.

    Only where HELIX_API_URL is set and the revdial-client binary exists: that
    is what enables the agent. The id follows the role (settings/revdial.py);
    a missing instance is a failed step, not an agent dialling in unnamed.
    """
    if revdial.api_url(level.env) is None:
        return
    if not which("revdial-client"):
        say(f"{revdial.API_URL} is set but revdial-client is not installed: no RevDial agent")
        return
    agent = revdial.revdial_from_env(level.env)
    level.export(revdial.RUNNER_ID, agent.runner_id)
    level.export(revdial.LOCAL_ADDR, agent.local_addr)
    say(f"RevDial runner id {agent.runner_id}")
