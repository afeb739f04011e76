"""How a `*.sh` step is sourced: the wrapper shell, the prelude, carried functions, misses.

Runs in PID 1 (building argv, reading reports); the wrapper itself runs in the
step's own bash. The old entrypoint sourced every script into one shell, after
a helper library (GOW's /opt/gow/bash-lib/utils.sh, which defines `gow_log`).
Scripts written for it rely on three things beyond exported variables, and
each is kept here without sharing one shell:

- the prelude (HELIX_INIT_STEP_PRELUDE): files sourced before every step, so
  the library's functions exist (`gow_log` works unedited);
- functions a step defines reach later steps (its `declare -f` is carried, and
  the log names new functions, as it names exported variables);
- a command that is not found is recorded, so a failing step's error line
  names it ("command not found: gow_log") and the fix (set the prelude).

Not carried: unexported variables and shell options (`set -e` leaking into
later scripts was one of the old entrypoint's bugs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from helix_init.contenv import ENV_FILE_VAR

# Report files next to the step's env file (HELIX_INIT_ENV_FILE):
FUNCTIONS_SUFFIX = ".functions"  # `declare -f` when the shell ends
MISSING_SUFFIX = ".missing"  # one name per line: commands that were not found

# $0 = the step; $1 = the carried functions file ("" for none); $2... = prelude files.
# The report is written when the sourced step returns, and by the EXIT trap when
# it calls `exit` (a step that replaces the EXIT trap with its own is still
# reported if it ends without `exit`). `command`/`builtin` and `>|` keep it
# working whatever functions or `set -C` a step left behind.
_REPORT = r"""
__helix_report() {
    [ -n "${__helix_reported-}" ] && return 0
    __helix_reported=1
    command env -0 >| "$__helix_out"
    builtin declare -f >| "$__helix_out@FUNCTIONS@"
}
"""
WRAPPER = (
    r"""
__helix_out="$@ENV_FILE@"; unset @ENV_FILE@
command_not_found_handle() {
    printf '%s\n' "$1" >> "$__helix_out@MISSING@"
    printf '%s: line %s: %s: command not found\n' \
        "${BASH_SOURCE[1]:-$0}" "${BASH_LINENO[0]}" "$1" >&2
    return 127
}
"""
    + _REPORT
    + r"""
trap '__helix_rc=$?
if [ -z "${__helix_in_step-}" ]; then
    echo "helix-init: a prelude file ended the shell before the step ran" >&2
    __helix_rc=125
fi
__helix_report; builtin exit $__helix_rc' EXIT
__helix_fn="$1"; shift
for __helix_f in "$@"; do . "$__helix_f"; done; unset __helix_f
if [ -n "$__helix_fn" ]; then
    # Functions written under extglob parse and match only with it on; it stays
    # on (patterns like +(...) are a syntax error without it, so nothing else changes).
    shopt -s extglob
    . "$__helix_fn"
fi
unset __helix_fn
set --
__helix_in_step=1
. "$0"
__helix_rc=$?
__helix_report
builtin exit $__helix_rc
"""
)
# Sourced once before the first step: what the prelude itself exports and defines.
PRELUDE_PROBE = (
    r"""
__helix_out="$@ENV_FILE@"; unset @ENV_FILE@
for __helix_f in "$@"; do . "$__helix_f"; done; unset __helix_f
"""
    + _REPORT
    + "__helix_report\n"
)
WRAPPER, PRELUDE_PROBE = (
    text.replace("@ENV_FILE@", ENV_FILE_VAR)
    .replace("@FUNCTIONS@", FUNCTIONS_SUFFIX)
    .replace("@MISSING@", MISSING_SUFFIX)
    for text in (WRAPPER, PRELUDE_PROBE)
)
_OWN_FUNCTIONS = frozenset({"command_not_found_handle", "__helix_report"})
_FUNCTION_HEADER = re.compile(r"^([^\s()]+) \(\) $", re.MULTILINE)


def wrapper_argv(
    shell: str, step: Path, functions: Path | None, prelude: Sequence[Path]
) -> list[str]:
    return [shell, "-c", WRAPPER, str(step), str(functions or ""), *map(str, prelude)]


def probe_argv(shell: str, prelude: Sequence[Path]) -> list[str]:
    return [shell, "-c", PRELUDE_PROBE, "prelude", *map(str, prelude)]


def function_names(declared: str) -> set[str]:
    """Names in a `declare -f` dump, without the wrapper's own."""
    return set(_FUNCTION_HEADER.findall(declared)) - _OWN_FUNCTIONS


def read_missing(env_file: Path) -> tuple[str, ...]:
    """Commands the step did not find, in first-seen order, each once."""
    try:
        text = Path(str(env_file) + MISSING_SUFFIX).read_text(errors="replace")
    except OSError:
        return ()
    return tuple(dict.fromkeys(name for name in text.splitlines() if name))


def read_functions(env_file: Path) -> str:
    try:
        return Path(str(env_file) + FUNCTIONS_SUFFIX).read_text(errors="surrogateescape")
    except OSError:
        return ""
