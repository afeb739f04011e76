"""helix0 and the route reader against real netlink, in a network namespace of the test's own."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.unshared import run_unshared

SCRIPT = r"""
import json, subprocess
from ipaddress import IPv4Interface
from helix_init.builtin.level import run_command
from helix_init.dind.netplan import ensure_bridge, observe_surroundings, plan_network

subprocess.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"], check=True)
subprocess.run(["ip", "link", "set", "up1", "up"], check=True)
subprocess.run(["ip", "addr", "add", "10.213.7.2/24", "dev", "up0"], check=True)
subprocess.run(["ip", "link", "set", "up0", "mtu", "1450", "up"], check=True)
seen = observe_surroundings(run_command)
plan = plan_network(1, routes=seen.routes, addresses=seen.addresses, mtu=1450)
first = ensure_bridge(run_command, plan.bip, plan.mtu, seen.links.get("helix0"))
after = observe_surroundings(run_command)
second = ensure_bridge(run_command, plan.bip, plan.mtu, after.links["helix0"])
again = plan_network(1, routes=after.routes, addresses=after.addresses, mtu=1450)
subprocess.run(["ip", "addr", "add", "10.9.9.1/24", "dev", "helix0"], check=True)
found = observe_surroundings(run_command).links["helix0"]
stale = ensure_bridge(run_command, plan.bip, plan.mtu, found)
link = subprocess.run(["ip", "-j", "addr", "show", "helix0"], capture_output=True, text=True)
import sys
assert "pyroute2" not in sys.modules, "the network step imported pyroute2"
print(json.dumps({
    "network": str(plan.network), "moved": plan.moved_because, "bip": str(plan.bip),
    "first": first, "second": second, "again": str(again.network), "stale": stale,
    "link": json.loads(link.stdout)[0],
}))
"""


@pytest.mark.process
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="tools")
def test_bridge_is_made_once_and_the_plan_does_not_flee_from_it() -> None:
    r = run_unshared(["--net"], SCRIPT)
    assert r["network"] == "10.0.0.0/16"  # 10.213.7.0/24 is on up0
    assert "overlaps route 10.213.7.0/24" in r["moved"]
    assert r["first"] == ["created helix0", "address 10.0.0.1/24", "mtu 1450", "up"]
    assert r["second"] == []
    assert r["again"] == r["network"]
    assert r["stale"] == ["removed 10.9.9.1/24"]
    addrs = [(a["local"], a["prefixlen"]) for a in r["link"]["addr_info"] if a["family"] == "inet"]
    assert addrs == [("10.0.0.1", 24)] and r["link"]["mtu"] == 1450
