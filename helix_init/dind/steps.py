"""The built-in cont-init steps, `helix-init step NAME`: the desktop user, then dockerd's needs.

Runs as root in a cont-init step process (never in PID 1), once per boot, in
the order of the shipped cont-init.d entries. Each step is one function named
for its effect, idempotent (a second run changes nothing), printing one line
per decision; the init prefixes and timestamps them. Steps hand results on
through files under HELIX_INIT_RUN_DIR/docker and exported variables.

Whether this level runs dockerd at all is decided once, by `preflight`: when
it cannot, the later steps do nothing, no daemon.json is written, and the
dockerd service (enabled only when daemon.json exists) is off. Where
HELIX_DOCKER_REQUIRED=1 (the sandbox image) that is a failed step instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from helix_init import usersetup
from helix_init.dind import (
    CommandResult,
    DindError,
    cgroups,
    check,
    daemonjson,
    dockergroup,
    facts,
    iptables,
    netplan,
)
from helix_init.problems import ConfigError
from helix_init.settings import Settings
from helix_init.sibling import forward_config, localhost

DEFAULT_DEPTH = 1


def run_command(argv: Sequence[str]) -> CommandResult:
    """The Runner for steps: a step is its own process, so plain subprocess is fine here."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandResult(127, "", str(exc))
    return CommandResult(done.returncode, done.stdout, done.stderr)


class Level:
    """Paths and settings of this level, as the steps share them."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.settings = Settings.from_env(env)
        self.docker_dir = self.settings.run_dir / "docker"
        self.facts_path = self.settings.run_dir / "facts.json"
        self.daemon_json = self.docker_dir / "daemon.json"
        self.netplan_path = self.docker_dir / "netplan.json"
        self.dns_path = self.settings.run_dir / "dns.json"
        self.path_file = self.docker_dir / "path"  # dir to put first on dockerd's PATH

    def facts(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.facts_path.read_text())
        except (OSError, ValueError):
            raise DindError(f"{self.facts_path} is missing: run the preflight step first") from None
        return data

    def docker_wanted(self) -> bool:
        return bool(self.facts().get("can_run_dockerd"))

    def export(self, name: str, value: str) -> None:
        """Hand a variable to later steps, the services and the CMD (see contenv.py)."""
        target = self.env.get("HELIX_INIT_ENV_FILE")
        if target:
            with open(target, "a") as f:
                f.write(f"{name}={value}\0")


def _say(text: str) -> None:
    print(text, flush=True)


def set_up_user(level: Level) -> None:
    """COMPAT: make the desktop user from PUID/PGID/UNAME and hand it the CMD (usersetup.py)."""
    problems = usersetup.problems(level.env)
    if problems:
        raise ConfigError(problems)
    want = usersetup.wanted(level.env)
    if want is None:
        _say("PUID, PGID and UNAME are unset: no desktop user to set up")
        return
    users, groups = usersetup.read_accounts()
    ran = usersetup.user_commands(users, groups, want, usersetup.home_owner)
    for argv in ran:
        check(run_command, argv)
        _say(f"ran: {' '.join(argv)}")
    if not ran:
        _say(f"user {want.name} (uid {want.uid}, gid {want.gid}) already in place")
    for name, value in usersetup.exports(level.env, want).items():
        level.export(name, value)


def preflight(level: Level) -> None:
    """Record what this level is and whether it can run dockerd (facts.json), in one line if not.

    Incident: the desktop image started dockerd on its overlay root and only
    failed much later; now the reason is known before anything starts.
    """
    obs = facts.observe()
    default_depth = int(level.env.get("HELIX_DOCKER_DEPTH_DEFAULT", DEFAULT_DEPTH))
    found = facts.preflight_facts(obs, level.env, default_depth)
    level.settings.run_dir.mkdir(parents=True, exist_ok=True)
    level.facts_path.write_text(json.dumps(found, indent=2) + "\n")
    cg = found["cgroup"]
    _say(
        f"pid1={found['pid1']} depth={found['depth']} cgroup={cg['version']} "
        f"writable={cg['writable']} gvisor={found['gvisor']} userns={found['user_namespace']}"
    )
    _say(
        f"/var/lib/docker on {found['storage']['fs_type']}; uplink "
        f"{found['network']['default_interface']} mtu {found['network']['mtu']}"
    )
    for warning in found["warnings"]:
        _say(f"warning: {warning}")
    if found["can_run_dockerd"]:
        _say("this level can run dockerd")
        return
    why = f"dockerd cannot run at this level: {found['why_not']}"
    if level.env.get("HELIX_DOCKER_REQUIRED", "0") == "1":
        raise DindError(why)
    _say(f"{why}; continuing without Docker")


def fix_cgroups(level: Level) -> None:
    """v1: remount read-only hierarchies rw; v2: move our processes down and delegate controllers.

    Incident: without --privileged, Docker mounts v1 hierarchies read-only and
    the nested dockerd fails with "mkdir /sys/fs/cgroup/cpuset/docker: read-only
    file system"; on v2, kind inside a desktop failed on missing controllers.
    """
    if not level.docker_wanted():
        return
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for point in cgroups.remount_cgroups_rw(run_command, mountinfo):
        _say(f"remounted {point} read-write")
    layout = level.facts()["cgroup"]
    if layout["version"] == "v2":
        if not cgroups.at_namespace_root(Path("/proc/self/cgroup").read_text()):
            _say("cgroup v2 without a private cgroup namespace: not moving processes")
            return
        result = cgroups.delegate_cgroup_v2()
        moved = len(result.moved)
        _say(f"cgroup v2: moved {moved} process(es); controllers {result.subtree_control}")
    # dockerd's mounts must propagate into its containers (moby hack/dind).
    done = run_command(["mount", "--make-rshared", "/"])
    if done.returncode != 0:
        _say(f"warning: mount --make-rshared / failed: {done.stderr.strip()}")


def plan_network(level: Level) -> None:
    """Pick subnets and MTU that clash with nothing, create helix0, plan DNS (netplan/dns.json).

    Incident: inner Docker networks clashed with outer ones, and inner
    containers got Google's public resolvers because dockerd drops loopback ones.
    """
    if not level.docker_wanted():
        return
    from helix_init.dns.plan import dns_override, plan_dns
    from helix_init.dns.resolvconf import parse_resolv_conf

    found = level.facts()
    resolv_text = _read("/etc/resolv.conf")
    around = netplan.observe_surroundings()
    plan = netplan.plan_network(
        found["depth"],
        routes=around.routes,
        addresses=around.addresses,
        nameservers=netplan.nameservers(resolv_text),
        must_reach=netplan.hosts_to_reach(level.env),
        reserved=netplan.parse_reserved_nets(level.env.get("HELIX_INIT_RESERVED_NETS", "")),
        mtu=found["network"]["mtu"],
    )
    if plan.moved_because:
        _say(f"network: default pool taken ({plan.moved_because}); using {plan.network}")
    for change in netplan.ensure_bridge(plan.bip, plan.mtu):
        _say(f"bridge {netplan.BRIDGE_NAME}: {change}")
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
    _say(f"network {plan.network}, bridge {plan.bip}, mtu {plan.mtu}")
    _say(f"dns {dns.mode}: {dns.reason}")
    level.export("HELIX_DNS_MODE", dns.mode)
    level.export("HELIX_DNS_RELAY", dns.relay_listen or "")
    level.export("HELIX_CHILD_RESERVED_NETS", plan.children_env)


def write_dockerd_config(level: Level) -> None:
    """Render daemon.json (storage driver, pools, bridge, MTU, DNS, iptables, registries, GPU).

    Its existence is what enables the dockerd service at this level.
    """
    if not level.docker_wanted():
        level.daemon_json.unlink(missing_ok=True)
        return
    from helix_init.dns.plan import DnsPlan

    found = level.facts()
    net_data = json.loads(level.netplan_path.read_text())
    bip = IPv4Interface(net_data["bip"])
    net = netplan.NetPlan(IPv4Network(net_data["network"]), bip, net_data["mtu"], ())
    choice = iptables.choose_iptables(
        iptables.observe_iptables(run_command, level.env), level.docker_dir
    )
    _say(f"iptables: {choice.backend} ({choice.reason})")
    disabled = iptables.bridge_disabled_reason(found["gvisor"], choice)
    if disabled:
        _say(f"warning: {disabled}")
    level.path_file.write_text(str(choice.path_dir or "") + "\n")
    dns = DnsPlan.from_json(level.dns_path.read_text(), str(level.dns_path))
    inputs = daemonjson.DaemonInputs(
        storage_driver=found["storage"]["driver"],
        net=net,
        bridge_disabled=disabled,
        insecure_registries=daemonjson.registries_from_env(level.env),
        nvidia=daemonjson.nvidia_runtime_wanted(
            level.env.get("GPU_VENDOR"),
            os.path.exists("/dev/nvidia0"),
            _which("nvidia-container-runtime"),
        ),
        dns=dns.dns,
        dns_search=dns.search,
        dns_opts=dns.options,
    )
    config = daemonjson.render_daemon_json(inputs, daemonjson.operator_config_from_env(level.env))
    changed = daemonjson.write_daemon_json(config, level.daemon_json)
    _say(f"{level.daemon_json} {'written' if changed else 'unchanged'}")


def ensure_docker_group(level: Level) -> None:
    """Create the docker group and add the desktop user, so the socket is root:docker 0660.

    dockerd never creates the group; without it the socket is root-only and the
    desktop user cannot run `docker ps`.
    """
    if not level.docker_wanted():
        return
    gid, user = dockergroup.settings_from_env(level.env)
    ran = dockergroup.ensure_docker_group(run_command, gid, user)
    for argv in ran:
        _say(f"ran: {' '.join(argv)}")
    if not ran:  # still one line: the log shows the step decided, not that it was skipped
        group = dockergroup.parse_group_file(Path("/etc/group").read_text())[dockergroup.GROUP]
        members = ", ".join(group.members) or "no members"
        _say(f"group {group.name} (gid {group.gid}, {members}) already in place")


# RevDial roles (seeds/003): runner id prefix, the variable naming the instance,
# and the local address the tunnel exposes by default.
REVDIAL_ROLES = {
    "sandbox": ("sandbox", "HELIX_SESSION_ID", "127.0.0.1:9876"),
    "wolf": ("wolf", "WOLF_INSTANCE_ID", "unix:///var/run/wolf/wolf.sock"),
    "moonlight": ("moonlight", "WOLF_INSTANCE_ID", "127.0.0.1:8080"),
}


def name_revdial_runner(level: Level) -> None:
    """Export HELIX_RUNNER_ID and HELIX_REVDIAL_LOCAL_ADDR for the revdial-agent service.

    Only where HELIX_API_URL is set and the revdial-client binary exists: that
    is what enables the agent. The id is `ROLE-INSTANCE` as the control plane
    expects (sandbox-$HELIX_SESSION_ID, wolf-/moonlight-$WOLF_INSTANCE_ID).
    """
    env = level.env
    if not env.get("HELIX_API_URL"):
        return
    if not _which("revdial-client"):
        _say("HELIX_API_URL is set but revdial-client is not installed: no RevDial agent")
        return
    role = env.get("HELIX_REVDIAL_ROLE", "sandbox")
    if role not in REVDIAL_ROLES:
        raise DindError(
            f"HELIX_REVDIAL_ROLE must be one of {', '.join(REVDIAL_ROLES)}, got {role!r}"
        )
    prefix, variable, local_addr = REVDIAL_ROLES[role]
    runner_id = env.get("HELIX_RUNNER_ID", "")
    if not runner_id:
        instance = env.get(variable) or (
            env.get("SANDBOX_INSTANCE_ID", "local") if role != "sandbox" else ""
        )
        if not instance:
            raise DindError(f"RevDial role {role} needs {variable} (or HELIX_RUNNER_ID)")
        runner_id = f"{prefix}-{instance}"
    level.export("HELIX_RUNNER_ID", runner_id)
    level.export("HELIX_REVDIAL_LOCAL_ADDR", env.get("HELIX_REVDIAL_LOCAL_ADDR") or local_addr)
    _say(f"RevDial runner id {runner_id}")


def forward_localhost_to_gateway(level: Level) -> None:
    """Sibling-dockerd mode: localhost:PORT in the desktop reaches ports published on the gateway.

    Incident (seed 000): `docker run -p 8082:80 nginx` published on the sibling
    dockerd's gateway 10.200.1.1, and `curl localhost:8082` in the desktop
    failed. Off unless HELIX_LOCALHOST_FORWARD names the gateway; see
    helix_init/sibling/localhost.py for the rules and why.
    """
    config = forward_config(level.env)
    if config is None:
        return
    localhost.forward(config, run_command, _forward_state(level), RESOLV_CONF, _say)


def undo_localhost_forwarding(level: Level) -> None:
    """cont-finish: remove exactly the rules `localhost-forward` added and restore its sysctls."""
    localhost.undo(run_command, _forward_state(level), RESOLV_CONF, _say)


def _forward_state(level: Level) -> Path:
    return level.settings.run_dir / "sibling" / "localhost-forward.json"


RESOLV_CONF = Path("/etc/resolv.conf")


STEPS: dict[str, Callable[[Level], None]] = {
    "user": set_up_user,
    "preflight": preflight,
    "cgroups": fix_cgroups,
    "network": plan_network,
    "dockerd-config": write_dockerd_config,
    "docker-group": ensure_docker_group,
    "revdial": name_revdial_runner,
    "localhost-forward": forward_localhost_to_gateway,
    "localhost-forward-undo": undo_localhost_forwarding,
}


def run_step(name: str, env: Mapping[str, str]) -> int:
    """`helix-init step NAME`: 0 on success, 1 with one line on stderr otherwise."""
    step = STEPS.get(name)
    if step is None:
        print(
            f"helix-init step: unknown step {name!r} (known: {', '.join(STEPS)})", file=sys.stderr
        )
        return 64
    try:
        step(Level(env))
    except (DindError, ConfigError, OSError, usersetup.UserSetupError) as exc:
        print(f"step {name} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _which(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


def _sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys") / key
    try:
        if path.read_text().strip() != value:
            path.write_text(value)
            _say(f"sysctl {key.replace('/', '.')}={value}")
    except OSError as exc:
        _say(f"warning: cannot set {key.replace('/', '.')}: {exc.strerror}")
