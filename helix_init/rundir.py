"""The run dir's layout (HELIX_INIT_RUN_DIR, /run/helix-init): every entry named once, here.

The init, its built-in steps, its services and the operator commands all meet
in this folder; each used to spell the names it needed itself. Who writes
each entry, and whether boot clears it (`CLEARED`), is said beside it.
"""

from __future__ import annotations

# pathlib for the annotations only: `helix-init run-dockerd`, an interpreter on
# every boot's critical path, imports this module and nothing heavier (~7 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

# The init's own (cleared at every boot, whatever a crash left there)
CONTROL_SOCK = "control.sock"  # the operator commands' socket, root only (control.py)
READY = "ready"  # exists while every service is ready: the health check's file
STEPS = "steps"  # each step's report of its exports and functions (steps.py)
ENV_FILE = "env.json"  # what cont-init exported, root only
# The process engine's (services/engine.py, render.py): cleared at every boot
SUPERVISORD_CONF = "supervisord.conf"
SUPERVISOR_SOCK = "supervisor.sock"
SUPERVISORD_PID = "supervisord.pid"
LAUNCH_DIR = "services"  # NAME.sh, NAME.json: what a service is started with, root only
NOTIFY_DIR = "notify"  # NAME.sock: a service's sd_notify socket
# The built-in steps' (helix_init/builtin/, through dind/paths.py), kept across boots
FACTS = "facts.json"  # what preflight found: can this level run dockerd?
DNS = "dns.json"  # the DNS plan (the relay reads it)
RELAY_STATS = "dns-relay.stats.json"  # the relay's counters, for `helix-init status`
DOCKER_DIR = "docker"  # daemon.json, netplan.json, path: dockerd's configuration
DAEMON_JSON = f"{DOCKER_DIR}/daemon.json"
NETPLAN = f"{DOCKER_DIR}/netplan.json"
DOCKERD_PATH_FILE = f"{DOCKER_DIR}/path"  # a folder to put first on dockerd's PATH

CLEARED = (
    CONTROL_SOCK,
    READY,
    STEPS,
    ENV_FILE,
    SUPERVISORD_CONF,
    SUPERVISOR_SOCK,
    SUPERVISORD_PID,
    LAUNCH_DIR,
    NOTIFY_DIR,
)


def cleared(run_dir: Path) -> tuple[Path, ...]:
    """What boot removes before it starts anything (a stale socket, a half-written file)."""
    return tuple(run_dir / name for name in CLEARED)
