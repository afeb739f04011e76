"""The one table of exit codes helix-init can end with (docs/reference/exit-codes.md).

Codes below 64 and 128+N belong to the CMD: when the CMD ends the container its
own code is passed through, and a CMD killed by signal N gives 128+N, as a
shell would report it. 126 and 127 keep a shell's meanings for programs the
init starts (the CMD, a service's command). The init's own codes follow
sysexits.h where one fits. No module of helix_init writes an exit code as a
bare number (tests/unit/test_architecture.py); svcexec.py, which cannot import
this package, mirrors the three it needs and a test keeps them equal.
"""

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # a requested graceful stop (SIGTERM/SIGINT), or a CMD that exited 0
    NOT_READY = 1  # `helix-init health`: some required service is not ready
    FAILED = 1  # a built-in step or a helper service failed; one line on stderr says why
    USAGE = 64  # bad command line (EX_USAGE)
    INTERNAL = 70  # a bug in helix-init itself (EX_SOFTWARE); the log has the traceback
    CANT_CREATE = 73  # HELIX_INIT_RUN_DIR or the service log folder not writable (EX_CANTCREAT)
    NO_PERMISSION = 77  # a control command run by a user who may not control the init
    CONFIG = 78  # invalid drop-ins or settings (EX_CONFIG); nothing was started
    STEP_FAILED = 79  # a required cont-init step failed or timed out
    SERVICE_GAVE_UP = 80  # an essential service exhausted its restart budget
    READY_TIMEOUT = 81  # services not ready within HELIX_INIT_CMD_WAIT_FOR_SERVICES_MAXTIME
    ENGINE_LOST = 82  # supervisord could not be (re)started
    CANNOT_RUN = 126  # a service's program was found but could not be run (as a shell says)
    NOT_FOUND = 127  # the CMD could not be started, or a service's program was not found


def from_wait_status(code: int) -> int:
    """Map os.waitstatus_to_exitcode() output to a container exit code (-N -> 128+N)."""
    return 128 - code if code < 0 else code
