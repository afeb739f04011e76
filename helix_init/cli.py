"""The `helix-init` command: boot as the container's init, or one of the operator commands.

    helix-init [--] [CMD ARGS...]     boot (the ENTRYPOINT); CMD runs after init and services
    helix-init --gow [ARGS...]        boot with GOW's start contract (HELIX_INIT_START=gow)
    helix-init check                  validate drop-ins without running them (exit 78 if bad)
    helix-init plan                   print the ordered steps and the service graph
    helix-init status [--json]        state, readiness, pid, uptime, restarts of every service
    helix-init health                 exit 0 when every required service is ready
    helix-init logs [-f] [-n N] SVC   a service's log file
    helix-init env [--json] SVC       a service's environment: origins shown, secrets masked
    helix-init start|stop|restart SVC control one service (root only)
    helix-init step NAME              a built-in cont-init step (cont-init.d/ runs these)
    helix-init run-dockerd            the dockerd service: clean up, then exec dockerd
    helix-init dns-relay              the DNS relay service (when the level's resolver is loopback)
    helix-init bridge-guard           the bridge-guard service: recreate a deleted bridge
    helix-init install s6-compat      put with-contenv, s6-svc, ... in /usr/bin and /command

A first argument that is not a known command is the CMD, so images can keep
`CMD ["bash"]`; use `helix-init -- status` for a CMD that shares a command's name.
`env` is the operator command only beside a running init (not as PID 1) and
only as `env [--json] SERVICE`; otherwise it is the CMD, so `docker run IMAGE
env` and `env FOO=1 prog` behave as they do without helix-init.
Expected failures print one line and exit with the code from exitcodes.py;
only a bug in helix-init itself shows a traceback (exit 70).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from helix_init import sigmask  # main() holds the signals PID 1 must not lose, first thing

# Nothing else at import: what main() does before its first statement must take
# no time (even `typing` is a few ms); the rest is imported once signals are held.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from helix_init.settings import Settings

# Programs the shipped drop-ins run (each a process of its own, never PID 1).
HELPERS = ("step", "run-dockerd", "dns-relay", "bridge-guard", "install")
COMMANDS = ("check", "plan", "status", "health", "logs", "env", "start", "stop", "restart")
USAGE = __doc__.split("\n\n")[1] if __doc__ else ""


def main(argv: Sequence[str] | None = None) -> int:
    held = sigmask.hold()  # before anything takes time: see sigmask.py
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    if args[:1] == ["--gow"]:  # COMPAT: GOW's start contract, as HELIX_INIT_START=gow
        env["HELIX_INIT_START"] = "gow"
        args = args[1:]
    if not _boots(args):  # a command or a helper: signals behave as usual at once
        sigmask.release(held)
    if args[:1] == ["run-dockerd"]:
        # An interpreter at every dockerd start, on the boot's critical path:
        # no Settings (its import was ~25 ms of a ~57 ms start in the image).
        # A bad setting stops the init at boot, before any service starts.
        from helix_init import rundockerd

        return rundockerd.main(run_dir(env), env, args[1:])
    from helix_init.exitcodes import Exit
    from helix_init.problems import ConfigError
    from helix_init.settings import Settings

    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"helix-init: {problem}", file=sys.stderr)
        return Exit.CONFIG
    first = args[0] if args else ""
    if first in ("-h", "--help", "help"):
        print(f"usage:\n{USAGE}")
        return Exit.OK
    if first in ("--version", "version"):
        from helix_init import __version__

        print(f"helix-init {__version__}")
        return Exit.OK
    if first in COMMANDS and (first != "env" or _asks_for_a_services_env(args[1:])):
        return _operator_command(first, args[1:], settings)
    if first in HELPERS and (first != "install" or args[1:2] == ["s6-compat"]):
        return _helper_command(first, args[1:])
    if first == "--":
        args = args[1:]
    elif first.startswith("-"):
        print(f"helix-init: unknown option {first}; see helix-init --help", file=sys.stderr)
        return Exit.USAGE
    return _boot(settings, args, held)


def run_dir(env: dict[str, str]) -> str:
    """HELIX_INIT_RUN_DIR as Settings reads it (an absolute path, else the default), unparsed."""
    raw = env.get("HELIX_INIT_RUN_DIR", "")
    return raw if raw.startswith("/") else "/run/helix-init"


def _boots(args: list[str]) -> bool:
    """Whether these arguments boot the init (the CMD), before anything is imported."""
    first = args[0] if args else ""
    if first in ("-h", "--help", "help", "--version", "version", *HELPERS):
        return False
    if first in COMMANDS:
        return first == "env" and not _asks_for_a_services_env(args[1:])
    return first == "--" or not first.startswith("-")


def _boot(settings: Settings, cmd: list[str], held: sigmask.Held) -> int:
    # PID 1 never speaks TLS, but asyncio imports ssl if it can: libssl and
    # libcrypto, ~10 ms and ~4.5 MiB of an idle init. Marked missing, it does
    # without; nothing in PID 1 needs it.
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]
    from helix_init import boot
    from helix_init.exitcodes import Exit
    from helix_init.logsink import Log

    log = Log(verbosity=settings.verbosity)
    try:
        return boot.run(settings, cmd, log, held)
    except Exception:
        import traceback  # only for a bug (it loads textwrap)

        log.error("internal error in helix-init (a bug); traceback follows")
        for line in traceback.format_exc().splitlines():
            log.error(line)
        return Exit.INTERNAL


def _helper_command(name: str, args: list[str]) -> int:
    from helix_init.exitcodes import Exit

    if name == "step":
        from helix_init.builtin import run_step

        if len(args) != 1:
            print("usage: helix-init step NAME", file=sys.stderr)
            return Exit.USAGE
        return run_step(args[0], os.environ)
    if name == "install":
        from helix_init.s6 import install

        return install.main(args)
    if name == "bridge-guard":
        from helix_init.sibling import bridgeguard

        return bridgeguard.main(os.environ, args)
    from helix_init.dns import service

    return service.relay(os.environ)


def _asks_for_a_services_env(args: list[str]) -> bool:
    if os.getpid() == 1:
        return False
    names = [a for a in args if a != "--json"]
    return args[:1] in (["-h"], ["--help"]) or (
        len(names) == 1 and "=" not in names[0] and not names[0].startswith("-")
    )


def _operator_command(name: str, args: list[str], settings: Settings) -> int:
    from helix_init import operator
    from helix_init.exitcodes import Exit

    try:
        return operator.run(name, args, settings)
    except BrokenPipeError:  # `helix-init status --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK


if __name__ == "__main__":
    raise SystemExit(main())
