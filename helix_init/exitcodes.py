"""The one table of exit codes helix-init can end with (documented in the README).

Codes below 64 and 128+N belong to the CMD: when the CMD ends the container its
own code is passed through, and a CMD killed by signal N gives 128+N, as a
shell would report it. The init's own codes follow sysexits.h where one fits.
"""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # a requested graceful stop (SIGTERM/SIGINT), or a CMD that exited 0
    NOT_READY = 1  # `helix-init health`: some required service is not ready
    USAGE = 64  # bad command line (EX_USAGE)
    INTERNAL = 70  # a bug in helix-init itself (EX_SOFTWARE); the log has the traceback
    CANT_CREATE = 73  # HELIX_INIT_RUN_DIR or the service log folder not writable (EX_CANTCREAT)
    NO_PERMISSION = 77  # a control command run by a user who may not control the init
    CONFIG = 78  # invalid drop-ins or settings (EX_CONFIG); nothing was started
    STEP_FAILED = 79  # a required cont-init step failed or timed out
    SERVICE_GAVE_UP = 80  # an essential service exhausted its restart budget
    READY_TIMEOUT = 81  # services not ready within HELIX_INIT_CMD_WAIT_FOR_SERVICES_MAXTIME
    ENGINE_LOST = 82  # supervisord could not be (re)started


def from_wait_status(code: int) -> int:
    """Map os.waitstatus_to_exitcode() output to a container exit code (-N -> 128+N)."""
    return 128 - code if code < 0 else code
