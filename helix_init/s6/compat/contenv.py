# helix-init s6-compat entry point: with-contenv, printcontenv (stdlib only)
"""with-contenv PROG...: run PROG with the container environment, as s6-overlay's does.

Unless S6_KEEP_ENV is a non-zero number, the environment is emptied but for
PATH (`emptyenv -p`), then loaded from the folder (`s6-envdir -Lf`): every
file not starting with '.' and without '=' in its name sets the variable
named after it to its whole content (one trailing newline chomped, NULs made
newlines); an empty file unsets it. Files this user cannot read are skipped
(under helix-init, variables that look like secrets are root-only files).
The folder is HELIX_INIT_S6_ENV_DIR, default /run/s6/container_environment.

printcontenv NAME: print one variable of the container environment.
"""

import os
import sys
from collections.abc import Mapping

DEFAULT = "/run/s6/container_environment"


def _keep_env(env: Mapping[str, str]) -> bool:
    raw = env.get("S6_KEEP_ENV", "")
    try:
        return int("0" + raw) != 0
    except ValueError:  # eltest fails: s6-overlay's ifelse takes the keep branch
        return True


def load(folder: str, path: str | None) -> dict[str, str]:
    env = {} if path is None else {"PATH": path}
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or "=" in name:
            continue
        try:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
        except (PermissionError, IsADirectoryError):
            continue
        if not data:
            env.pop(name, None)
            continue
        if data.endswith(b"\n"):
            data = data[:-1]
        env[name] = data.replace(b"\0", b"\n").decode("utf-8", "surrogateescape")
    return env


def with_contenv(args: list[str]) -> int:
    if not args:
        print("with-contenv: usage: with-contenv prog...", file=sys.stderr)
        return 100
    env = dict(os.environ)
    if not _keep_env(env):
        folder = env.get("HELIX_INIT_S6_ENV_DIR") or DEFAULT
        try:
            env = load(folder, env.get("PATH"))
        except OSError as exc:
            print(f"s6-envdir: fatal: unable to envdir {folder}: {exc.strerror}", file=sys.stderr)
            return 111
    try:
        os.execvpe(args[0], args, env)
    except FileNotFoundError:
        print(
            f"with-contenv: fatal: unable to exec {args[0]}: No such file or directory",
            file=sys.stderr,
        )
        return 127
    except OSError as exc:
        print(f"with-contenv: fatal: unable to exec {args[0]}: {exc.strerror}", file=sys.stderr)
        return 126
    return 0


def printcontenv(args: list[str]) -> int:
    if not args:
        print("printcontenv: fatal: too few arguments", file=sys.stderr)
        return 100
    env = os.environ
    if _keep_env(env):
        value = env.get(args[0], "")
        if not value:
            return 1
        print(value)
        return 0
    folder = env.get("HELIX_INIT_S6_ENV_DIR") or DEFAULT
    try:
        with open(os.path.join(folder, args[0]), "rb") as f:
            data = f.read()
    except OSError:
        return 1
    sys.stdout.buffer.write(data + b"\n")
    return 0


if __name__ == "__main__":
    _name = os.path.basename(sys.argv[0])
    sys.exit(printcontenv(sys.argv[1:]) if _name == "printcontenv" else with_contenv(sys.argv[1:]))
