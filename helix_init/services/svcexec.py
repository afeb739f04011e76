"""Start one service for supervisord where a shell cannot: apply its launch file, then exec it.

The fallback of the launch script (render.py's Launch.script, a plain exec
chain that needs no interpreter): used when the service's environment has a
name a shell cannot export, PWD, a NUL, or a user switch without setpriv.
Runs as root in the service's own process group, between supervisord's fork
and the service's exec; stdlib only and run with `python -I -S`, so it starts
in milliseconds and imports nothing from site-packages. Secrets from files
are read here, as root, at every start (a rotated token is picked up on the
next restart) and reach the service through its environment; a secret marked
`argv = true` (a binary that takes its token only as a flag) is moved from the
environment into its `${NAME}` in argv here, at exec, and nowhere earlier
(the init has checked that /proc hides root's command lines).
Errors are one line on the service's log and exit 126/127, like a shell.
"""

import json
import os
import sys
import warnings  # noqa: F401 - os.execvpe imports it lazily; after setuid the stdlib may be unreadable

# Exit.USAGE, Exit.CANNOT_RUN and Exit.NOT_FOUND of helix_init/exitcodes.py, which this
# file cannot import (python -I -S); tests/unit/services/test_svcexec_codes.py keeps them equal.
USAGE = 64
CANNOT_RUN = 126
NOT_FOUND = 127


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: svcexec.py LAUNCH.json", file=sys.stderr)
        return USAGE
    with open(argv[1]) as f:
        launch = json.load(f)
    name = launch["name"]
    join_cgroup(launch.get("cgroup"))
    env = dict(launch["env"])
    for var, path in launch["secret_files"].items():
        try:
            with open(path) as secret:
                env[var] = secret.read().rstrip("\n")
        except OSError as exc:
            print(
                f"helix-init: service {name}: cannot read secret {var} from {path}: {exc.strerror}"
            )
            return CANNOT_RUN
    try:
        if launch["gid"] is not None:
            os.setgroups(launch["groups"])
            os.setgid(launch["gid"])
        if launch["uid"] is not None:
            os.setuid(launch["uid"])
        if launch["cwd"]:
            os.chdir(launch["cwd"])
    except OSError as exc:
        print(f"helix-init: service {name}: cannot switch user or directory: {exc.strerror}")
        return CANNOT_RUN
    command = launch["argv"]
    for var in launch.get("argv_secrets", ()):
        value = env.pop(var, "")
        command = [arg.replace("${" + var + "}", value) for arg in command]
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        print(f"helix-init: service {name}: command not found: {command[0]}")
        return NOT_FOUND
    except OSError as exc:
        print(f"helix-init: service {name}: cannot run {command[0]}: {exc.strerror}")
        return CANNOT_RUN
    return os.EX_OK  # not reached


def join_cgroup(path: str | None) -> None:
    """Into the service's cgroup before anything runs: a daemon forked at once cannot escape.

    Writing 0 moves the writer. The init also moves the first process in after
    the spawn; this closes the window before it (a setsid child forked first).
    """
    if path:
        try:
            with open(os.path.join(path, "cgroup.procs"), "w") as procs:
                procs.write("0")
        except OSError:
            pass  # the init's own move, and its descendant scan, still apply


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as exc:  # one line on the service's log, never a traceback
        print(f"helix-init: cannot start service: {type(exc).__name__}: {exc}")
        sys.exit(CANNOT_RUN)
