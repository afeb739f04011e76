"""DNS settings: the explicit upstream resolvers, HELIX_DNS or (COMPAT) DNS_UPSTREAM; pure.

Read by the `network` step, which hands the raw list to dns.plan.plan_dns:
that is where each entry is checked, and a bad one is named with the
variable it came from.
"""

from __future__ import annotations

from collections.abc import Mapping

HELIX_DNS = "HELIX_DNS"
DNS_UPSTREAM = "DNS_UPSTREAM"  # COMPAT: today's images; HELIX_DNS wins
OVERRIDE_VARIABLES = (HELIX_DNS, DNS_UPSTREAM)
DNS_MODE = "HELIX_DNS_MODE"  # exported by the network step: passthrough or relay
DNS_RELAY = "HELIX_DNS_RELAY"  # exported by the network step: the relay's address, or ""


def dns_override(env: Mapping[str, str]) -> tuple[str, str | None]:
    """(variable, value) of the explicit upstream list: HELIX_DNS if set, else DNS_UPSTREAM."""
    for name in OVERRIDE_VARIABLES:
        if env.get(name, "").strip():
            return name, env[name]
    return OVERRIDE_VARIABLES[0], None
