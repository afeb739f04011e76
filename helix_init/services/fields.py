"""Typed reads from one parsed TOML table, collecting problems instead of raising (no I/O).

Every message names the key path ("backoff.max", "wait_for[1].tcp") and, for a
wrong type, what was expected and what was found, in TOML's words: a TOML
`true` is a boolean, never a number.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator
from datetime import date, datetime, time
from typing import Any

from helix_init.problems import Problem

# Bounds every time in a drop-in is checked against (docs/service-limits.md).
# A day is past any grace, probe or delay an operator means; beyond it a typo
# (1e300) made a shutdown that never ends.
MAX_SECONDS = 86_400.0
MIN_INTERVAL = 0.01  # a probe more often than this is a busy loop (1e-300 took a core)
NUL = "\0"


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    return type(value).__name__


def shown(value: object) -> str:
    """A value as it reads in a one-line message: TOML spelling for booleans, short, no newlines."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = value.isoformat() if isinstance(value, date | time) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggestion(word: str, choices: Collection[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    import difflib  # only for a drop-in with a typo: PID 1 does not load it at every boot

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Fields:
    """One TOML table of one file; `prefix` is its key path ("" at the top, "backoff." below)."""

    def __init__(
        self, table: dict[str, Any], where: str, problems: list[Problem], prefix: str = ""
    ) -> None:
        self.table = table
        self.where = where
        self.problems = problems
        self.prefix = prefix

    @property
    def name(self) -> str:
        """This table's own key path, for messages about the table as a whole."""
        return self.prefix.rstrip(".") or "(top level)"

    def key(self, name: str) -> str:
        """The key path of `name`; quoted when it holds a newline or control character,
        so every message stays one line."""
        return f"{self.prefix}{name if name.isprintable() else repr(name)}"

    def problem(self, key: str, what: str) -> None:
        """Record a problem about `key`, a full key path."""
        self.problems.append(Problem(self.where, f"{key}: {what}"))

    def wrong_type(self, key: str, expected: str, value: object) -> None:
        self.problem(key, f"expected {expected}, got {toml_type(value)} {shown(value)}")

    def child(self, table: dict[str, Any], key: str) -> Fields:
        return Fields(table, self.where, self.problems, f"{key}.")

    def only(self, allowed: Collection[str]) -> bool:
        """Report every key not in `allowed`, with the closest allowed key; True when none."""
        clean = True
        for name in self.table:
            if name not in allowed:
                self.problem(self.key(name), f"unknown key{suggestion(name, allowed)}")
                clean = False
        return clean

    def has(self, name: str) -> bool:
        return name in self.table

    def raw(self, name: str) -> Any:
        return self.table.get(name)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.table.items())

    def string(self, name: str) -> str | None:
        value = self.table.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.wrong_type(self.key(name), "a string", value)
            return None
        if NUL in value:
            self.no_nul(self.key(name))
            return None
        return value

    def no_nul(self, key: str) -> None:
        self.problem(key, "contains a NUL byte, which no argv or environment can hold")

    def absolute_path(self, name: str) -> str | None:
        value = self.string(name)
        if value is not None and not value.startswith("/"):
            self.problem(self.key(name), f"must be an absolute path, got {value!r}")
            return None
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.table.get(name, default)
        if not isinstance(value, bool):
            self.wrong_type(self.key(name), "a boolean (true or false)", value)
            return default
        return value

    def number(
        self,
        name: str,
        default: float,
        *,
        positive: bool = False,
        minimum: float = 0.0,
        maximum: float = MAX_SECONDS,
    ) -> float:
        """Seconds or a ratio: integer or float, finite, in [minimum, maximum] (> 0 if `positive`).

        `inf`, `nan` and `1e400` (which TOML reads as inf) are refused like any bad value.
        """
        value = self.table.get(name, default)
        key = self.key(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(key, "a number", value)
            return default
        if not math.isfinite(value):
            self.problem(key, f"must be a finite number, got {value}")
            return default
        if positive and value <= 0:
            self.problem(key, f"must be > 0, got {value}")
            return default
        if value < minimum:
            self.problem(key, f"must be >= {minimum:g}, got {value}")
            return default
        if value > maximum:
            self.problem(key, f"must be <= {maximum:g}, got {value:g}")
            return default
        return float(value)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self.table.get(name, default)
        key = self.key(name)
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(key, "an integer", value)
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"{minimum}..{maximum}"
            self.problem(key, f"must be {bounds}, got {value}")
            return default
        return value

    def strings(self, name: str, *, non_empty: bool = False) -> tuple[str, ...] | None:
        """An array of non-empty strings (an argv, a list of names); None if absent or wrong."""
        value = self.table.get(name)
        if value is None:
            return None
        return self._string_list(self.key(name), value, non_empty=non_empty)

    def one_or_more(self, name: str) -> tuple[str, ...] | None:
        """A string, or a non-empty array of strings; always returned as a tuple."""
        value = self.table.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return self._string_list(self.key(name), [value], non_empty=True)
        if not isinstance(value, list):
            self.wrong_type(self.key(name), "a string or an array of strings", value)
            return None
        return self._string_list(self.key(name), value, non_empty=True)

    def _string_list(self, key: str, value: object, *, non_empty: bool) -> tuple[str, ...] | None:
        if not isinstance(value, list):
            self.wrong_type(key, "an array of strings", value)
            return None
        if non_empty and not value:
            self.problem(key, "must not be empty")
            return None
        good = True
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.wrong_type(f"{key}[{i}]", "a string", item)
                good = False
            elif not item:
                self.problem(f"{key}[{i}]", "must not be an empty string")
                good = False
            elif NUL in item:
                self.no_nul(f"{key}[{i}]")
                good = False
        return tuple(value) if good else None

    def subtable(self, name: str) -> Fields | None:
        value = self.table.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.wrong_type(self.key(name), "a table", value)
            return None
        return self.child(value, self.key(name))
