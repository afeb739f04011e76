"""`helix-init dns-relay` and `helix-init dns-check`: the dns-relay service and its readiness probe.

dns-relay runs the relay with the addresses the network step planned
(HELIX_INIT_RUN_DIR/dns.json); dns-check sends one query to the relay and
exits 0 on any answer with the query's ID (SERVFAIL included: the relay is up
even if its upstream is not), so it can gate dockerd's start.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from collections.abc import Mapping

from helix_init.dns.plan import DnsPlan
from helix_init.settings import Settings


def _plan(env: Mapping[str, str]) -> DnsPlan:
    path = Settings.from_env(env).run_dir / "dns.json"
    return DnsPlan.from_json(path.read_text(), str(path))


def relay(env: Mapping[str, str]) -> int:
    from helix_init.dns import relay as relay_mod

    plan = _plan(env)
    listen = plan.relay_listen
    if listen is None:
        print(f"dns-relay: DNS mode is {plan.mode}; nothing to relay")
        return 78
    argv = ["--listen", listen, "--freebind"]
    for upstream in plan.upstreams:
        argv += ["--upstream", upstream]
    argv += ["--stats", str(Settings.from_env(env).run_dir / "dns-relay.stats.json")]
    return relay_mod.main(argv)


def check(env: Mapping[str, str], timeout: float = 1.0) -> int:
    plan = _plan(env)
    if plan.relay_listen is None:
        return 1
    query_id = int.from_bytes(os.urandom(2), "big")
    # A query for the root zone's NS records: small, and any resolver answers it.
    query = (
        struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + b"\x00" + struct.pack("!HH", 2, 1)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(query, (plan.relay_listen, 53))
            reply = sock.recv(4096)
        except OSError as exc:
            print(f"dns-check: no answer from {plan.relay_listen}: {exc}", file=sys.stderr)
            return 1
    return 0 if reply[:2] == query[:2] else 1
