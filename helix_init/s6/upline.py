"""The `up` and `down` files of s6-rc oneshots: one execlineb command line, read into an argv.

Pure. s6-rc runs these files with `execlineb -P`; real images keep them to one
command line (linuxserver: the path of a script; s6-overlay's docs: `with-contenv
SCRIPT`), or comments only (a placeholder oneshot that does nothing). Words
are split as execlineb splits them (blanks, double quotes, `#` comments to
the end of the line). execline's own control syntax (`{ }` blocks, `if`,
`foreground`, `importas`, ...) needs execlineb, which an image without s6 does
not have: that is refused at check time with a line saying what to do.
"""

from __future__ import annotations

import shlex

# execline builtins: a line using them is a program only execlineb can run.
_EXECLINE_WORDS = """
    if ifelse ifte ifthenelse foreground background backtick pipeline piperw redirfd fdmove
    fdclose fdswap fdreserve fdblock importas import multisubstitute multidefine define
    elglob forx forbacktickx forstdin loopwhilex heredoc tryexec withstdinas wait getpid
    emptyenv exportall unexport getcwd cd umask export dollarat shift elgetpositionals
    elgetopt runblock trap exec execlineb
"""
EXECLINE = frozenset(_EXECLINE_WORDS.split())


class UpLineError(ValueError):
    """Why a line cannot be run without execlineb."""


def parse(text: str) -> tuple[str, ...]:
    """The argv of an up/down file; () when it holds only comments and blanks."""
    try:
        words = shlex.split(text, comments=True, posix=True)
    except ValueError as exc:
        raise UpLineError(f"cannot be split into words ({exc})") from None
    if not words:
        return ()
    first = words[1] if words[0] == "with-contenv" and len(words) > 1 else words[0]
    if first in EXECLINE:
        raise UpLineError(
            f"uses the execline command {first!r}, which needs execlineb; put the commands in"
            " an executable script and write its path in this file"
        )
    if "{" in words or "}" in words or any(w.startswith("{") or w.endswith("}") for w in words):
        raise UpLineError(
            "uses execline blocks ({ ... }), which need execlineb; put the commands in an"
            " executable script and write its path in this file"
        )
    return tuple(words)
