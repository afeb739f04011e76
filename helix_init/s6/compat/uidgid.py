# helix-init s6-compat entry point: s6-setuidgid, s6-envuidgid, s6-applyuidgid (stdlib only)
"""Drop privileges as s6 does, without Debian's s6 package.

s6-setuidgid ACCOUNT PROG...: ACCOUNT is a user name (its primary group and
supplementary groups from /etc/group) or `uid:gid` (no supplementary groups);
the environment is left as it is (no HOME, USER). Exit 100 on bad usage, 111
when the account is unknown or the switch fails.

s6-envuidgid [-u|-g|-B] [-n] [-i|-D uid:gid:gidlist] ACCOUNT PROG...: sets UID,
GID and GIDLIST for ACCOUNT (a user, a group with -g, user:group with -B) and
execs PROG. s6-applyuidgid [-u UID] [-g GID] [-G GIDLIST] [-U] [-z] PROG...:
switches to them (-U: from UID, GID, GIDLIST; -z: unset those).
"""

import grp
import os
import pwd
import sys
import warnings  # noqa: F401 - os.execvp imports it lazily; after setuid the stdlib may be unreadable


def _fail(prog: str, why: str, code: int = 111) -> int:
    print(f"{prog}: fatal: {why}", file=sys.stderr)
    return code


def _exec(prog: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    try:
        if env is None:
            os.execvp(argv[0], argv)
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        return _fail(prog, f"unable to exec {argv[0]}: No such file or directory", 127)
    except OSError as exc:
        return _fail(prog, f"unable to exec {argv[0]}: {exc.strerror}", 126)
    return 0


def _apply(prog: str, uid: int | None, gid: int | None, groups: list[int] | None) -> int | None:
    try:
        if gid is not None:
            os.setgroups(groups if groups is not None else [gid])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
    except OSError as exc:
        return _fail(prog, f"unable to set uid/gid: {exc.strerror}")
    return None


def _account(spec: str) -> tuple[int, int, list[int]]:
    """(uid, gid, groups) for a user name or uid:gid."""
    if ":" in spec:
        u, _, g = spec.partition(":")
        return int(u), int(g), [int(g)]
    pw = pwd.getpwnam(spec)
    return pw.pw_uid, pw.pw_gid, os.getgrouplist(pw.pw_name, pw.pw_gid)


def setuidgid(args: list[str]) -> int:
    prog = "s6-setuidgid"
    if len(args) < 2:
        return _fail(prog, "usage: s6-setuidgid account prog...", 100)
    try:
        uid, gid, groups = _account(args[0])
    except (KeyError, ValueError):
        return _fail(prog, f"unknown user: {args[0]}")
    failed = _apply(prog, uid, gid, groups)
    return failed if failed is not None else _exec(prog, args[1:])


def envuidgid(args: list[str]) -> int:
    prog = "s6-envuidgid"
    mode, strict, default = "u", True, ""
    while args and args[0].startswith("-") and len(args[0]) > 1:
        opt = args.pop(0)
        if opt == "--":
            break
        if opt in ("-u", "-g", "-B"):
            mode = opt[1]
        elif opt == "-n":
            pass
        elif opt == "-i":
            strict = False
        elif opt == "-D" and args:
            strict, default = False, args.pop(0)
        else:
            return _fail(prog, f"usage: unknown option {opt}", 100)
    if len(args) < 2:
        return _fail(prog, "usage: s6-envuidgid [-u|-g|-B] [-n] [-i|-D def] account prog...", 100)
    env = dict(os.environ)
    user, _, group = args[0].partition(":") if mode == "B" else (args[0], "", args[0])
    try:
        if mode in ("u", "B"):
            pw = pwd.getpwnam(user)
            env["UID"], env["GID"] = str(pw.pw_uid), str(pw.pw_gid)
            gids = [g for g in os.getgrouplist(pw.pw_name, pw.pw_gid) if g != pw.pw_gid]
            env["GIDLIST"] = ",".join(map(str, gids))
        if mode == "g" or (mode == "B" and group):
            env["GID"] = str(grp.getgrnam(group).gr_gid)
    except KeyError:
        if strict:
            return _fail(prog, f"unknown account: {args[0]}")
        u, g, gl = [*(default or "0:0:").split(":"), "", ""][:3]
        env.update(UID=u, GID=g, GIDLIST=gl)
    return _exec(prog, args[1:], env)


def applyuidgid(args: list[str]) -> int:
    prog = "s6-applyuidgid"
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    from_env = unset = False
    try:
        while args and args[0].startswith("-") and len(args[0]) > 1:
            opt = args.pop(0)
            if opt == "--":
                break
            if opt == "-u":
                uid = int(args.pop(0))
            elif opt == "-g":
                gid = int(args.pop(0))
            elif opt == "-G":
                groups = [int(g) for g in args.pop(0).split(",") if g]
            elif opt == "-U":
                from_env = True
            elif opt == "-z":
                unset = True
            else:
                return _fail(prog, f"usage: unknown option {opt}", 100)
        if from_env:
            uid = int(os.environ["UID"]) if os.environ.get("UID") else uid
            gid = int(os.environ["GID"]) if os.environ.get("GID") else gid
            gl = os.environ.get("GIDLIST", "")
            groups = [int(g) for g in gl.split(",") if g]
    except (IndexError, ValueError):
        return _fail(
            prog, "usage: s6-applyuidgid [-u uid] [-g gid] [-G gidlist] [-U] [-z] prog...", 100
        )
    if not args:
        return _fail(
            prog, "usage: s6-applyuidgid [-u uid] [-g gid] [-G gidlist] [-U] [-z] prog...", 100
        )
    if gid is not None and groups is not None:
        groups = [gid, *groups]
    failed = _apply(prog, uid, gid, groups)
    if failed is not None:
        return failed
    env = None
    if unset:
        env = {k: v for k, v in os.environ.items() if k not in ("UID", "GID", "GIDLIST")}
    return _exec(prog, args, env)


if __name__ == "__main__":
    _name = os.path.basename(sys.argv[0])
    _main = {"s6-envuidgid": envuidgid, "s6-applyuidgid": applyuidgid}.get(_name, setuidgid)
    sys.exit(_main(sys.argv[1:]))
