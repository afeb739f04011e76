"""`helix-init dns-relay`: the dns-relay service, with the addresses the network step planned.

Reads HELIX_INIT_RUN_DIR/dns.json. Its readiness is a TCP connect to the relay
(services.d/dns-relay.toml), not a DNS query: a query would be forwarded up
the chain, and a readiness probe must not send traffic off this machine.
"""

from __future__ import annotations

from collections.abc import Mapping

from helix_init import rundir
from helix_init.dns.plan import DnsPlan
from helix_init.exitcodes import Exit
from helix_init.settings import Settings


def _plan(env: Mapping[str, str]) -> DnsPlan:
    path = Settings.from_env(env).run_dir / rundir.DNS
    return DnsPlan.from_json(path.read_text(), str(path))


def relay(env: Mapping[str, str]) -> int:
    from helix_init.dns import relay as relay_mod

    plan = _plan(env)
    listen = plan.relay_listen
    if listen is None:
        print(f"dns-relay: DNS mode is {plan.mode}; nothing to relay")
        return Exit.CONFIG
    argv = ["--listen", listen, "--freebind"]
    for upstream in plan.upstreams:
        argv += ["--upstream", upstream]
    argv += ["--stats", str(Settings.from_env(env).run_dir / rundir.RELAY_STATS)]
    return relay_mod.main(argv)
