"""The `preflight` step: facts.json, and whether this level runs dockerd at all; reads only."""

from __future__ import annotations

import json

from helix_init.builtin.level import Level, say
from helix_init.dind import DindError, facts
from helix_init.settings import INIT_PID


def preflight(level: Level) -> None:
    """Record what this level is and whether it can run dockerd (facts.json), in one line if not.

    Incident: the desktop image started dockerd on its overlay root and only
    failed much later; now the reason is known before anything starts.
    """
    obs = facts.observe()
    found = facts.preflight_facts(obs, level.dind, level.env.get(INIT_PID))
    level.settings.run_dir.mkdir(parents=True, exist_ok=True)
    level.facts_path.write_text(json.dumps(found, indent=2) + "\n")
    cg = found["cgroup"]
    say(
        f"pid1={found['pid1']} depth={found['depth']} cgroup={cg['version']} "
        f"writable={cg['writable']} gvisor={found['gvisor']} userns={found['user_namespace']}"
    )
    say(
        f"/var/lib/docker on {found['storage']['fs_type']}; uplink "
        f"{found['network']['default_interface']} mtu {found['network']['mtu']}"
    )
    for warning in found["warnings"]:
        say(f"warning: {warning}")
    if found["can_run_dockerd"]:
        say("this level can run dockerd")
        return
    why = f"dockerd cannot run at this level: {found['why_not']}"
    if level.dind.required:
        raise DindError(why)
    say(f"{why}; continuing without Docker")
