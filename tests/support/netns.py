"""Network namespaces for tests and benches: made with `ip netns`, wired with veth pairs, deleted.

Needs root and iproute2. Traffic stays between namespaces made here: every
address is assigned by the caller inside them, and a fresh namespace has no
route anywhere else. Processes started through `popen` are stopped by `delete`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any


class Netns:
    """One named network namespace (`ip netns add hx-ROLE-XXXXXX`) with lo up."""

    def __init__(self, role: str) -> None:
        self.name = f"hx-{role}-{uuid.uuid4().hex[:6]}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def create(self) -> Netns:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)

    @property
    def etc(self) -> Path:
        """/etc/netns/NAME: `ip netns exec` bind-mounts files found here over /etc (resolv.conf)."""
        return Path("/etc/netns") / self.name

    def ip(self, *argv: str) -> str:
        done = subprocess.run(["ip", "-n", self.name, *argv], capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"ip -n {self.name} {' '.join(argv)}: {done.stderr.strip()}")
        return done.stdout

    def links(self) -> dict[str, dict[str, Any]]:
        """`ip -d -j link` by name: master, operstate, linkinfo.info_kind, ..."""
        return {link["ifname"]: link for link in json.loads(self.ip("-d", "-j", "link", "show"))}

    def addresses(self, dev: str) -> list[str]:
        shown = json.loads(self.ip("-j", "addr", "show", "dev", dev))
        return [
            f"{a['local']}/{a['prefixlen']}" for a in shown[0]["addr_info"] if a["family"] == "inet"
        ]

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, *argv: str, timeout: float = 30, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*argv), capture_output=True, text=True, timeout=timeout, **kwargs
        )

    def popen(self, *argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.argv(*argv), **kwargs)
        self.procs.append(proc)
        return proc


def veth(a: Netns, a_name: str, b: Netns, b_name: str) -> None:
    """A veth pair with one end in each namespace (both ends up, no addresses)."""
    temp = f"t{uuid.uuid4().hex[:8]}"
    a.ip("link", "add", a_name, "type", "veth", "peer", "name", temp)
    a.ip("link", "set", temp, "netns", b.name)
    b.ip("link", "set", temp, "name", b_name)
    a.ip("link", "set", a_name, "up")
    b.ip("link", "set", b_name, "up")
