"""The process tier's fixtures: `pid1` (a helix-init harness per test) and `netns`.

The harness itself is tests/support/pid1.py; tests import its names from there
(`from tests.support.pid1 import Pid1, wait_until`), never from a conftest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import Netns
from tests.support.pid1 import Pid1


@pytest.fixture
def pid1(tmp_path: Path) -> Iterator[Pid1]:
    harness = Pid1(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def netns() -> Iterator[Callable[[str], Any]]:
    """`netns("desktop")` makes a namespace named hx-desktop-XXXXXX with lo up
    (tests/support/netns.py); every one made in a test is deleted after it, with
    the processes started in it and its /etc/netns folder."""
    made: list[Netns] = []

    def make(role: str) -> Netns:
        ns = Netns(role)
        made.append(ns)
        return ns.create()

    try:
        yield make
    finally:
        for ns in reversed(made):
            ns.delete()
