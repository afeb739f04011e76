"""Collection rules that span the tiers; each tier's fixtures are in its own conftest.py
(tests/process, tests/system) and what tests share is the package tests/support.

Tests marked `process` (the whole process tier, and the unit tests that make
real namespaces) need root and unshare; elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "process tests need root (unshare --pid)"
    elif shutil.which("unshare") is None:
        reason = "process tests need unshare (util-linux)"
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("process"):
            item.add_marker(pytest.mark.skip(reason=reason))
