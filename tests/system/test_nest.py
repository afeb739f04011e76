"""The nest on a real engine: sandbox (l1) → desktop (l2) → sandbox (l3) → desktop (l4) → busybox.

One nest per run (the session fixture `the_nest` in tests/system/conftest.py, beside
its control plane `api`); these tests only add containers and networks of
their own inside it and remove them again, so their order does not matter,
except the `nest_teardown` test at the end, which stops and restarts it.
Names resolved are only those of containers the tests started: `api` (level
0, alias api.helix.test) and siblings made here. Waits poll with deadlines.
Mocks: the stand-ins of examples/standins/ for the revdial-client, the
compositor and the desktop-bridge (no real binaries, GPU or video here).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.pid1 import LOG_LINE

pytestmark = pytest.mark.system
DESKTOPS = (2, 4)

BUSYBOX = "local/busybox:latest"
PUBLIC_RESOLVERS = ("8.8.8.8", "8.8.4.4")
# The cont-init steps 00..40 print their decisions; the init logs start and end of every step.
TALKING_STEPS = (
    "00-helix-preflight",
    "10-helix-cgroups",
    "20-helix-network",
    "30-helix-dockerd-config",
    "40-helix-docker-group",
)


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def busybox(level: Any, script: str, *run_args: str, check: bool = True) -> str:
    """Run `sh -c script` in a throwaway busybox container at `level`; its output."""
    done = level.docker(
        "run", "--rm", "--pull", "never", *run_args, BUSYBOX, "sh", "-c", script, check=check,
        timeout=120,
    )  # fmt: skip
    return str(done.stdout + done.stderr)


def lookup_script(names: list[str]) -> str:
    parts = ["echo '== resolv.conf'; cat /etc/resolv.conf"]
    parts += [f"echo '== {name}'; nslookup -type=a {name} || true" for name in names]
    return "; ".join(parts)


def parse_lookups(output: str) -> tuple[str, dict[str, list[str]]]:
    """(resolv.conf text, {name: [IPv4 answers]}) from lookup_script's output.

    busybox nslookup prints the server as `Address:\\tIP:53` before the answers,
    then `Name:\\tNAME` and `Address: IP` per answer; only the latter count.
    """
    sections = re.split(r"^== (\S+)\n", output, flags=re.MULTILINE)
    found: dict[str, list[str]] = {}
    resolv = ""
    for title, body in zip(sections[1::2], sections[2::2], strict=True):
        if title == "resolv.conf":
            resolv = body
            continue
        answers, in_answer = [], False
        for line in body.splitlines():
            if line.startswith("Name:"):
                in_answer = line.split(None, 1)[1].strip() == title
            elif in_answer and line.startswith("Address:"):
                answers.append(line.split(None, 1)[1].strip())
        found[title] = answers
    return resolv, found


def nameservers(resolv_conf: str) -> list[str]:
    return [
        line.split()[1]
        for line in resolv_conf.splitlines()
        if line.startswith("nameserver") and len(line.split()) > 1
    ]


def api_address(nest: list[Any]) -> str:
    """The `api` container's address on its network at level 0 (what every level must get)."""
    host = nest[0]
    name = f"{nest[1].name.removesuffix('l1')}api"
    networks = json.loads(
        host.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", name).stdout
    )
    (address,) = [n["IPAddress"] for n in networks.values()]
    return str(address)


def address_on(level: Any, container: str, network: str) -> str:
    fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
    return str(level.docker("inspect", "-f", fmt, container).stdout.strip())


def assert_no_public_resolver(where: str, resolv_conf: str) -> None:
    for address in PUBLIC_RESOLVERS:
        assert address not in resolv_conf, f"{where}: {address} in resolv.conf:\n{resolv_conf}"


def relay_address(level: Any) -> str:
    """The address this level's daemon.json hands inner default-bridge containers."""
    daemon = json.loads(level.exec(["cat", "/run/helix-init/docker/daemon.json"]).stdout)
    (address,) = daemon["dns"]
    return str(address)


# --- 1. five levels, every service ready, every agent connected ----------------------------


def test_level5_busybox_runs_and_every_level_has_all_services_ready(nest: list[Any]) -> None:
    deepest = nest[4]
    out = busybox(deepest, "echo hello from level 5")
    assert out.strip() == "hello from level 5"
    for level in nest[1:]:
        st = level.status()
        assert st["stage"] == "running", (level.name, st)
        assert st["ready"] is True, (level.name, st)
        services = st["services"]
        assert services["ready"] is True, (level.name, services)
        names = {s["name"] for s in services["services"]}
        # every level is on a user network (resolver 127.0.0.11): dockerd and the relay
        # run; HELIX_API_URL is set at every level: the RevDial agent runs; desktops
        # have their compositor and desktop-bridge.
        expected = {"dockerd", "dns-relay", "revdial-agent"}
        if level.depth in DESKTOPS:
            expected |= {"compositor", "desktop-bridge"}
        assert expected <= names, (level.name, names)
        for service in services["services"]:
            assert service["state"] == "ready", (level.name, service)
            assert service["ready"] is True, (level.name, service)
            assert service["pid"], (level.name, service)
        assert level.exec(["helix-init", "health"]).returncode == 0


def test_every_level_agent_is_connected_to_the_control_plane(the_nest: Any) -> None:
    expected = sorted(up.plan.runner_id for up in the_nest.levels)
    assert expected == ["sandbox-l2", "sandbox-l4", "wolf-l1", "wolf-l3"]
    assert the_nest.plane.runners() == expected
    for up in the_nest.levels:
        # the id is the one the revdial step chose and exported
        env = json.loads(up.level.exec(["cat", "/run/helix-init/env.json"]).stdout)
        assert env["HELIX_RUNNER_ID"]["value"] == up.plan.runner_id, env["HELIX_RUNNER_ID"]


@pytest.mark.parametrize("depth", DESKTOPS)
def test_the_control_plane_reaches_the_desktop_bridge_through_the_tunnel(
    the_nest: Any, depth: int
) -> None:
    """The point of RevDial: the API dials a desktop's 127.0.0.1:9876 (desktop-bridge)."""
    runner = the_nest.levels[depth - 1].plan.runner_id
    status, body = the_nest.plane.through_tunnel(runner, "/health")
    assert (status, body.strip()) == (200, "OK"), (status, body)


CLEAN_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
NOT_ROOT_VIEW = r"""
for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do tr '\0' '\n' < "$f"; done 2>/dev/null
ps -eo args 2>&1
"""


def test_the_runner_token_is_never_in_a_non_root_view_of_proc(the_nest: Any) -> None:
    """What a user of a level sees of the processes the level runs.

    The viewer starts with an empty environment (`env -i`): a `docker exec`
    process gets the container's environment, RUNNER_TOKEN included, by
    Docker's design, and that is not what the level's own processes expose.
    """
    token = the_nest.plane.token
    for up in the_nest.levels:
        level = up.level
        as_root = level.exec(["env", "-i", CLEAN_PATH, "sh", "-c", NOT_ROOT_VIEW]).stdout
        # The positive control: root does see it (PID 1's environment at least).
        assert token in as_root, f"level {level.depth}: the check cannot see the token"
        users = ["65534"] + (["1000"] if level.depth in DESKTOPS else [])  # nobody, retro
        for uid in users:
            view = level.exec(
                ["env", "-i", CLEAN_PATH, "setpriv", f"--reuid={uid}", f"--regid={uid}",
                 "--clear-groups", "sh", "-c", NOT_ROOT_VIEW],
            ).stdout  # fmt: skip
            assert "revdial-client" in view or "dockerd" in view or "sh" in view, view[:500]
            assert token not in view, f"level {level.depth}: uid {uid} reads the runner token"
        assert token not in json.dumps(level.status()), f"level {level.depth}: in status"
        logs = level.parent.docker("logs", level.name)
        assert token not in logs.stdout + logs.stderr, f"level {level.depth}: in docker logs"
        init_log = level.exec(["cat", "/var/log/helix-init/init.log"]).stdout
        assert token not in init_log, f"level {level.depth}: in init.log"


# --- 2. a published port in the desktop ---------------------------------------------------

FETCH = """
import sys, urllib.request
try:
    print(urllib.request.urlopen("http://localhost:8080", timeout=3).read().decode(), end="")
except OSError as exc:
    print(f"not yet: {exc}", file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.parametrize("depth", DESKTOPS)
def test_port_published_in_the_desktop_answers_on_its_localhost(
    nest: list[Any], depth: int
) -> None:
    desktop = nest[depth]
    desktop.docker(
        "run", "-d", "--pull", "never", "--name", "web8080", "-p", "8080:80",
        BUSYBOX, "httpd", "-f", "-p", "80", "-h", "/www",
    )  # fmt: skip
    try:
        # python3 urllib in the desktop container's own netns (the image has no wget)
        def fetch() -> str:
            done = desktop.exec(["python3", "-c", FETCH], check=False, timeout=30)
            return str(done.stdout) if done.returncode == 0 else ""

        body = poll(fetch, 30, f"http://localhost:8080 in the desktop at level {depth}")
        assert body == "hello from busybox httpd\n"
    finally:
        desktop.docker("rm", "-f", "web8080", check=False)


# --- 3. DNS across levels -----------------------------------------------------------------


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_default_bridge_containers_resolve_level0_names_through_the_relays(
    nest: list[Any], depth: int
) -> None:
    """Default bridge at level 2 and 3: the dotted alias and the single-label `api`."""
    level, want = nest[depth], api_address(nest)
    resolv, found = parse_lookups(busybox(level, lookup_script(["api.helix.test", "api"])))
    assert_no_public_resolver(f"default-bridge container at level {depth}", resolv)
    assert nameservers(resolv) == [relay_address(level)], resolv
    assert found["api.helix.test"] == [want], found
    assert found["api"] == [want], found
    # status shows the DNS mode, the upstreams and the relay's counters
    # (written at most once a second, so poll for the queries just made).
    deadline = time.monotonic() + 10
    while True:
        dns = level.status()["dns"]
        relay = dns.get("relay") or {}
        if relay.get("queries", 0) > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert dns["mode"] == "relay" and dns["upstreams"] == ["127.0.0.11"], dns
    assert dns["relay_address"] == relay_address(level), dns
    assert relay.get("queries", 0) > 0 and "errors" in relay, dns
    assert "dns: relay, upstreams 127.0.0.11" in level.exec(["helix-init", "status"]).stdout


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_user_network_containers_resolve_level0_names_and_their_siblings(
    nest: list[Any], depth: int
) -> None:
    level, want = nest[depth], api_address(nest)
    net, sibling = f"dnsnet{depth}", f"sibling{depth}"
    level.docker("network", "create", net)
    try:
        level.docker(
            "run", "-d", "--pull", "never", "--name", sibling, "--network", net,
            BUSYBOX, "httpd", "-f", "-p", "80", "-h", "/www",
        )  # fmt: skip
        output = busybox(level, lookup_script(["api.helix.test", sibling, "api"]), "--network", net)
        resolv, found = parse_lookups(output)
        assert_no_public_resolver(f"user-network container at level {depth}", resolv)
        assert nameservers(resolv) == ["127.0.0.11"], resolv  # Docker's embedded DNS
        assert found["api.helix.test"] == [want], output
        assert found[sibling] == [address_on(level, sibling, net)], output
        # Docker 20.10 answers a single-label name empty when the container's
        # options set ndots; the dns plan keeps Docker's ndots:0 from being handed
        # down, so `api` resolves on user networks at inner levels too.
        assert found["api"] == [want], output
    finally:
        level.docker("rm", "-f", sibling, check=False)
        level.docker("network", "rm", net, check=False)


def test_no_level_resolv_conf_names_a_public_resolver(nest: list[Any]) -> None:
    for level in nest[1:]:
        resolv = level.exec(["cat", "/etc/resolv.conf"]).stdout
        assert_no_public_resolver(f"level {level.depth} ({level.name})", resolv)
        daemon = level.exec(["cat", "/run/helix-init/docker/daemon.json"]).stdout
        assert_no_public_resolver(f"level {level.depth} daemon.json", daemon)


def test_docker_build_at_level2_resolves_through_the_relay(nest: list[Any]) -> None:
    """Legacy builder RUN steps use the default bridge's DNS: the relay, not 8.8.8.8."""
    desktop = nest[2]
    dockerfile = f"FROM {BUSYBOX}\nRUN cat /etc/resolv.conf && nslookup -type=a api.helix.test\n"
    done = desktop.exec(
        ["env", "DOCKER_BUILDKIT=0", "docker", "build", "--pull=false", "--no-cache",
         "-t", "dnsbuild:test", "-"],
        input=dockerfile.encode(), check=False, timeout=180,
    )  # fmt: skip
    try:
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert_no_public_resolver("docker build RUN at level 2", output)
        assert f"nameserver {relay_address(desktop)}" in output, output
        assert re.search(rf"Name:\s+api\.helix\.test\nAddress: {re.escape(api_address(nest))}\n",
                         output), output  # fmt: skip
    finally:
        desktop.docker("rmi", "-f", "dnsbuild:test", check=False)


# --- 4. pools never overlap an outer network ------------------------------------------------


def subnets(level: Any, only: tuple[str, ...] = ()) -> dict[str, ipaddress.IPv4Network]:
    ids = level.docker("network", "ls", "-q").stdout.split()
    found = {}
    for net in json.loads(level.docker("network", "inspect", *ids).stdout):
        if only and net["Name"] not in only:
            continue
        for config in (net.get("IPAM") or {}).get("Config") or []:
            subnet = ipaddress.ip_network(config["Subnet"])
            if subnet.version == 4:
                found[f"level {level.depth} {net['Name']} {subnet}"] = subnet
    return found


def test_inner_networks_never_overlap_outer_ones(nest: list[Any]) -> None:
    # Networks made at each inner level beyond the defaults, so user pools are compared too.
    for level in nest[1:]:
        level.docker("network", "create", "poolcheck")
    try:
        host_net = f"{nest[1].name.removesuffix('l1')}helix-net"
        per_level = [subnets(nest[0], only=(host_net,))] + [subnets(lv) for lv in nest[1:]]
        expect = {
            1: ("bridge", "net2"),
            2: ("bridge", "net3"),
            3: ("bridge", "net4"),
            4: ("bridge",),
        }
        for depth, expected in expect.items():
            names = {key.split()[2] for key in per_level[depth]}
            assert {*expected, "poolcheck"} <= names, per_level[depth]
        for i, outer in enumerate(per_level):
            for inner in per_level[i + 1 :]:
                clashes = [
                    (a, b) for a, na in outer.items() for b, nb in inner.items() if na.overlaps(nb)
                ]
                assert not clashes, clashes
    finally:
        for level in nest[1:]:
            level.docker("network", "rm", "poolcheck", check=False)


# --- 5. the desktop user runs docker --------------------------------------------------------


def test_desktop_user_runs_docker_without_sudo(nest: list[Any]) -> None:
    l1, desktop = nest[1], nest[2]

    def as_retro(*argv: str, check: bool = True) -> Any:
        return l1.docker("exec", "-u", "retro", "l2", *argv, check=check, timeout=120)

    assert as_retro("id", "-u").stdout.strip() == "1000"
    sock = desktop.exec(["stat", "-c", "%U:%G %a", "/var/run/docker.sock"]).stdout.strip()
    assert sock == "root:docker 660"
    assert as_retro("docker", "ps").stdout.startswith("CONTAINER ID")
    as_retro("docker", "network", "create", "retronet")
    try:
        as_retro(
            "docker", "run", "-d", "--pull", "never", "--name", "retroweb",
            "--network", "retronet", BUSYBOX, "httpd", "-f", "-p", "80", "-h", "/www",
        )  # fmt: skip
        # bounded poll inside the client container until httpd answers (at most 10 s)
        fetched = as_retro(
            "docker", "run", "--rm", "--pull", "never", "--network", "retronet", BUSYBOX,
            "sh", "-c",
            "for i in $(seq 100); do wget -qO- http://retroweb/ && exit 0; sleep 0.1; done; exit 1",
        )  # fmt: skip
        assert fetched.stdout == "hello from busybox httpd\n"
    finally:
        as_retro("docker", "rm", "-f", "retroweb", check=False)
        as_retro("docker", "network", "rm", "retronet", check=False)


# --- 8. docker logs: prefixed lines from every step and service ------------------------------


def test_docker_logs_of_every_level_carry_prefixed_step_and_service_lines(
    nest: list[Any],
) -> None:
    for level in nest[1:]:
        parent = level.parent
        logs = parent.docker("logs", level.name)
        lines = (logs.stdout + logs.stderr).splitlines()
        unprefixed = [line for line in lines if not LOG_LINE.match(line)]
        # Only the CMD's output passes through unprefixed (README "Logs"): the
        # desktop's stand-in session prints one line; sandboxes have no CMD.
        if level.depth in DESKTOPS:
            assert len(unprefixed) == 1, unprefixed
            assert unprefixed[0].startswith("desktop session running as retro"), unprefixed
        else:
            assert unprefixed == [], unprefixed
        sources: dict[str, list[str]] = {}
        for line in lines:
            match = re.match(r"^\S+ \[([^\]]+)\] (.*)$", line)
            if match and LOG_LINE.match(line):
                sources.setdefault(match.group(1), []).append(match.group(2))
        for step in TALKING_STEPS:
            assert sources.get(step), f"level {level.depth}: no [{step}] line: {sorted(sources)}"
        shipped = level.exec(["ls", "/etc/cont-init.d"]).stdout.split()
        init_lines = sources["helix-init"]
        for step in shipped:
            # "starting", or "starting (built-in NAME, in a fork of the init)"
            assert any(t.startswith(f"step {step}: starting") for t in init_lines), (
                level.depth,
                step,
            )
            assert any(t.startswith(f"step {step}: exit code 0 in ") for t in init_lines), (
                level.depth,
                step,
            )
        enabled = [s["name"] for s in level.status()["services"]["services"]]
        for service in enabled:
            assert sources.get(service), f"level {level.depth}: no [{service}] line"


# --- 9. level 5 reaches level 0 by name -------------------------------------------------------


def test_a_level5_container_reaches_the_level0_control_plane_by_name(the_nest: Any) -> None:
    """A user container in the deepest desktop: api.helix.test resolved and answered."""
    want = api_address(the_nest.all)
    out = busybox(
        the_nest.all[4],
        f"{lookup_script(['api.helix.test'])}; echo '== http'; "
        "wget -qO- http://api.helix.test:8080/api/v1/runners",
    )
    body = out.split("== http\n", 1)[1]
    _, found = parse_lookups(out.split("== http\n", 1)[0])
    assert found["api.helix.test"] == [want], out
    assert json.loads(body)["runners"] == the_nest.plane.runners(), out


# --- 10. the compositor goes, the bridge comes back -----------------------------------------


@pytest.mark.parametrize("depth", DESKTOPS)
def test_a_killed_compositor_is_restarted_and_the_bridge_with_it(
    nest: list[Any], depth: int
) -> None:
    desktop = nest[depth]
    before = desktop.services()
    assert before["compositor"]["state"] == before["desktop-bridge"]["state"] == "ready"
    desktop.exec(["kill", "-KILL", str(before["compositor"]["pid"])])

    def both_back() -> dict[str, Any] | None:
        now = desktop.services()
        for name in ("compositor", "desktop-bridge"):
            if now[name]["state"] != "ready" or now[name]["restarts"] <= before[name]["restarts"]:
                return None
        return now

    after = poll(both_back, 60, f"compositor and desktop-bridge ready again at level {depth}")
    assert after["compositor"]["pid"] != before["compositor"]["pid"]
    assert after["desktop-bridge"]["pid"] != before["desktop-bridge"]["pid"]
    # the bridge left because its compositor went, not for any other reason
    log = desktop.exec(["cat", "/var/log/helix-init/init.log"]).stdout
    assert "desktop-bridge: lost the compositor at" in log, log[-3000:]
    assert desktop.exec(["helix-init", "health"]).returncode == 0
    health = FETCH.replace("localhost:8080", "localhost:9876/health")
    answer = desktop.exec(["python3", "-c", health], check=False)
    assert answer.returncode == 0 and answer.stdout == "OK", answer


# --- 11. docker stop of the nest, and start again --------------------------------------------


def stopped_cleanly(parent: Any, name: str, depth: int) -> None:
    """Container `name` at `parent` exited 0 after a graceful stop of its dockerd by TERM."""
    state = json.loads(parent.docker("inspect", "-f", "{{json .State}}", name).stdout)
    logs = parent.docker("logs", name)
    text = logs.stdout + logs.stderr
    where = f"level {depth} ({name})"
    assert state["Running"] is False and state["ExitCode"] == 0, (where, text[-3000:])
    assert "[helix-init] got SIGTERM: graceful shutdown" in text, where
    assert "service dockerd: ready -> stopping (shutdown)" in text, where
    assert "Processing signal 'terminated'" in text, where  # dockerd's own line: it got TERM
    assert "Daemon shutdown complete" in text, where
    assert "service dockerd: stopping -> stopped" in text, where
    assert "sending KILL" not in text and "killing its group" not in text, where


@pytest.mark.nest_teardown
def test_docker_stop_of_the_nest_terms_every_dockerd_and_a_restart_keeps_the_images(
    the_nest: Any,
) -> None:
    host, levels = the_nest.host, [up.level for up in the_nest.levels]
    marker = "kept/at-every-level:1"
    for level in levels:
        level.docker("tag", "local/busybox:latest", marker)
    started = time.monotonic()
    host.docker("stop", "-t", "120", levels[0].name, timeout=300)
    took = time.monotonic() - started
    assert took < 90, f"docker stop of the nest took {took:.1f}s"
    # Level by level: it stopped cleanly, it starts again with its images and
    # its volume, and the level below it is there, stopped cleanly as well.
    parent = host
    for up, level in zip(the_nest.levels, levels, strict=True):
        stopped_cleanly(parent, level.name, level.depth)
        parent.docker("start", level.name)
        level.wait_healthy(180)
        kept = level.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert marker in kept, (level.depth, kept)
        if up.depth < len(levels):  # the image of the level below, loaded before the stop
            assert the_nest.levels[up.depth].plan.image in kept, (level.depth, kept)
        the_nest.plane.wait_connected(up.plan.runner_id, 90)
        parent = level
    assert the_nest.plane.runners() == sorted(up.plan.runner_id for up in the_nest.levels)
