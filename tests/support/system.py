"""The system tier's run-wide name: every container, volume and network it makes on
the host engine starts with SYSTEM_PREFIX (unique per run), so a demo, a
benchmark or another run on a shared engine is never touched."""

from __future__ import annotations

import os

SYSTEM_PREFIX = f"hxtest{os.getpid()}-"
