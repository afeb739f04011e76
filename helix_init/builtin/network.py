"""The `network` step: subnets, MTU and the helix0 bridge, and the DNS plan; runs as root."""

from __future__ import annotations

import json
from pathlib import Path

from helix_init.builtin.level import Level, run_command, say
from helix_init.dind import netplan
from helix_init.settings.dind import CHILD_RESERVED_NETS
from helix_init.settings.dns import DNS_MODE, DNS_RELAY, dns_override


def plan_network(level: Level) -> None:
    """Pick subnets and MTU that clash with nothing, create helix0, plan DNS (netplan/dns.json).

    Incident: inner Docker networks clashed with outer ones, and inner
    containers got Google's public resolvers because dockerd drops loopback ones.
    """
    if not level.docker_wanted():
        return
    from helix_init.dns.plan import plan_dns
    from helix_init.dns.resolvconf import parse_resolv_conf

    found = level.facts()
    resolv_text = _read("/etc/resolv.conf")
    around = netplan.observe_surroundings(run_command)
    plan = netplan.plan_network(
        found["depth"],
        routes=around.routes,
        addresses=around.addresses,
        nameservers=netplan.nameservers(resolv_text),
        must_reach=netplan.hosts_to_reach(level.dind.must_reach),
        reserved=list(level.dind.reserved_nets),
        mtu=found["network"]["mtu"],
    )
    if plan.moved_because:
        say(f"network: default pool taken ({plan.moved_because}); using {plan.network}")
    for change in netplan.ensure_bridge(
        run_command, plan.bip, plan.mtu, around.links.get(netplan.BRIDGE_NAME)
    ):
        say(f"bridge {netplan.BRIDGE_NAME}: {change}")
    _sysctl("net/ipv4/ip_forward", "1")
    override_name, override = dns_override(level.env)
    dns = plan_dns(
        parse_resolv_conf(resolv_text),
        override,
        str(plan.bip.ip),
        override_name=override_name,
    )
    level.docker_dir.mkdir(parents=True, exist_ok=True)
    level.netplan_path.write_text(
        json.dumps(
            {
                "network": str(plan.network),
                "bip": str(plan.bip),
                "mtu": plan.mtu,
                "children_reserved": plan.children_env,
            },
            indent=2,
        )
        + "\n"
    )
    level.dns_path.write_text(dns.to_json())
    say(f"network {plan.network}, bridge {plan.bip}, mtu {plan.mtu}")
    say(f"dns {dns.mode}: {dns.reason}")
    level.export(DNS_MODE, dns.mode)
    level.export(DNS_RELAY, dns.relay_listen or "")
    level.export(CHILD_RESERVED_NETS, plan.children_env)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys") / key
    try:
        if path.read_text().strip() != value:
            path.write_text(value)
            say(f"sysctl {key.replace('/', '.')}={value}")
    except OSError as exc:
        say(f"warning: cannot set {key.replace('/', '.')}: {exc.strerror}")
