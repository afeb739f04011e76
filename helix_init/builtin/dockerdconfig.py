"""The `dockerd-config` step: daemon.json from the facts and the network plan; runs as root."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Interface, IPv4Network

from helix_init.builtin.level import Level, run_command, say, which
from helix_init.dind import DindError, daemonjson, iptables, netplan


def write_dockerd_config(level: Level) -> None:
    """Render daemon.json (storage driver, pools, bridge, MTU, DNS, iptables, registries, GPU).

    Its existence is what enables the dockerd service at this level, so a
    level that cannot run dockerd never starts one that fails in a loop.
    """
    if not level.docker_wanted():
        level.daemon_json.unlink(missing_ok=True)
        return
    from helix_init.dns.plan import DnsPlan

    found = level.facts()
    driver = found["storage"]["driver"]
    if driver is None:  # preflight says it can run dockerd only with a driver
        raise DindError(f"{level.facts_path} names no storage driver: run the preflight step again")
    net_data = json.loads(level.netplan_path.read_text())
    bip = IPv4Interface(net_data["bip"])
    net = netplan.NetPlan(IPv4Network(net_data["network"]), bip, net_data["mtu"], ())
    choice = iptables.choose_iptables(
        iptables.observe_iptables(run_command, level.dind.iptables_backend), level.docker_dir
    )
    say(f"iptables: {choice.backend} ({choice.reason})")
    disabled = iptables.bridge_disabled_reason(found["gvisor"], choice)
    if disabled:
        say(f"warning: {disabled}")
    level.path_file.write_text(str(choice.path_dir or "") + "\n")
    dns = DnsPlan.from_json(level.dns_path.read_text(), str(level.dns_path))
    inputs = daemonjson.DaemonInputs(
        storage_driver=driver,
        net=net,
        bridge_disabled=disabled,
        insecure_registries=list(level.dind.insecure_registries),
        nvidia=daemonjson.nvidia_runtime_wanted(
            level.dind.gpu_vendor,
            os.path.exists("/dev/nvidia0"),
            which("nvidia-container-runtime"),
        ),
        dns=dns.dns,
        dns_search=dns.search,
        dns_opts=dns.options,
    )
    config = daemonjson.render_daemon_json(
        inputs, daemonjson.operator_config(level.dind.dockerd_config)
    )
    changed = daemonjson.write_daemon_json(config, level.daemon_json)
    say(f"{level.daemon_json} {'written' if changed else 'unchanged'}")
