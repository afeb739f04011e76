"""`helix-init install s6-compat [--root DIR] [--force]`: install the s6 commands scripts call.

Runs at image build time (`RUN helix-init install s6-compat`), as root. Each
command is one of the stdlib-only scripts in compat/, written behind a
`#!PYTHON -IS` line to DIR/usr/bin/NAME and DIR/command/NAME (DIR is `/`
by default; tests use a temporary root). Idempotent: files it wrote before
(they carry MARKER) are rewritten; anything else there, such as a real s6
binary or s6-overlay's symlinks into /package, is left alone and the whole
install refused, naming the files, unless --force replaces them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from helix_init.exitcodes import Exit

MARKER = b"helix-init s6-compat entry point"
COMPAT = Path(__file__).resolve().parent / "compat"
FOLDERS = ("usr/bin", "command")
COMMANDS = {
    "with-contenv": "contenv.py",
    "printcontenv": "contenv.py",
    "s6-setuidgid": "uidgid.py",
    "s6-envuidgid": "uidgid.py",
    "s6-applyuidgid": "uidgid.py",
    "s6-notifyoncheck": "notifyoncheck.py",
    "s6-svc": "svc.py",
    "s6-svwait": "svc.py",
}


@dataclass(frozen=True)
class Outcome:
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    refused: tuple[Path, ...]


def entry_point(source: str, python: str) -> bytes:
    return f"#!{python} -IS\n".encode() + (COMPAT / source).read_bytes()


def install(root: Path, python: str, force: bool) -> Outcome:
    """Write every entry point, or none if any target is not ours (without force)."""
    plan: list[tuple[Path, bytes]] = []
    for folder in FOLDERS:
        for name, source in COMMANDS.items():
            plan.append((root / folder / name, entry_point(source, python)))
    refused = tuple(path for path, _ in plan if not force and not _ours_or_absent(path))
    if refused:
        return Outcome((), (), refused)
    written: list[Path] = []
    unchanged: list[Path] = []
    for path, content in plan:
        if not path.is_symlink() and path.is_file() and path.read_bytes() == content:
            unchanged.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.helix-init")
        tmp.write_bytes(content)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)  # replaces a symlink itself, never writes through it
        written.append(path)
    return Outcome(tuple(written), tuple(unchanged), ())


def _ours_or_absent(path: Path) -> bool:
    if not os.path.lexists(path):
        return True
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        return MARKER in f.read(512)


def main(args: list[str]) -> int:
    """The CLI: returns the exit code (0, 64 bad usage, 73 cannot write, 78 refused)."""
    usage = "usage: helix-init install s6-compat [--root DIR] [--force]"
    root, force, rest = Path("/"), False, list(args)
    if not rest or rest.pop(0) != "s6-compat":
        print(usage, file=sys.stderr)
        return Exit.USAGE
    while rest:
        opt = rest.pop(0)
        if opt == "--force":
            force = True
        elif opt == "--root" and rest and rest[0].startswith("/"):
            root = Path(rest.pop(0))
        else:
            print(usage, file=sys.stderr)
            return Exit.USAGE
    try:
        outcome = install(root, os.path.realpath(sys.executable), force)
    except OSError as exc:
        print(
            f"helix-init: install s6-compat: cannot write {exc.filename}: {exc.strerror}",
            file=sys.stderr,
        )
        return Exit.CANT_CREATE
    for path in outcome.refused:
        print(
            f"helix-init: install s6-compat: {path} exists and was not installed by helix-init"
            " (a real s6 command?); nothing was installed; use --force to replace it",
            file=sys.stderr,
        )
    if outcome.refused:
        return Exit.CONFIG
    print(
        f"s6-compat: {len(outcome.written)} entry point(s) written, {len(outcome.unchanged)}"
        f" already in place, under {root / 'usr/bin'} and {root / 'command'}"
    )
    return Exit.OK
