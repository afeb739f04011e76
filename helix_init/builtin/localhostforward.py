"""The `localhost-forward` step and its cont-finish undo (sibling-dockerd mode); runs as root."""

from __future__ import annotations

from pathlib import Path

from helix_init.builtin.level import Level, run_command, say
from helix_init.settings.sibling import forward_config

RESOLV_CONF = Path("/etc/resolv.conf")


def forward_localhost_to_gateway(level: Level) -> None:
    """Sibling-dockerd mode: localhost:PORT in the desktop reaches ports published on the gateway.

    Incident (seed 000): `docker run -p 8082:80 nginx` published on the sibling
    dockerd's gateway 10.200.1.1, and `curl localhost:8082` in the desktop
    failed. Off unless HELIX_LOCALHOST_FORWARD names the gateway; see
    helix_init/sibling/localhost.py for the rules and why.
    """
    config = forward_config(level.env)
    if config is None:
        return
    from helix_init.sibling import localhost  # here: off (the default), the step imports nothing

    localhost.forward(config, run_command, _forward_state(level), RESOLV_CONF, say)


def undo_localhost_forwarding(level: Level) -> None:
    """cont-finish: remove exactly the rules `localhost-forward` added and restore its sysctls.

    Prevents rules piling up in a network namespace that outlives the
    container (a sibling's, or a restarted desktop's).
    """
    from helix_init.sibling import localhost

    localhost.undo(run_command, _forward_state(level), RESOLV_CONF, say)


def _forward_state(level: Level) -> Path:
    return level.settings.run_dir / "sibling" / "localhost-forward.json"
