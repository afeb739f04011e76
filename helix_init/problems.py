"""Errors an operator can act on: one line each, naming the file or setting and the problem."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a drop-in or a setting; `where` is a path or a variable name."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class ConfigError(Exception):
    """Invalid drop-ins or settings; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
