"""Build the Helix images on a locally made base and run them nested, level inside level.

Used by the demo (`scripts/demo`), the system tests (tests/system) and the
nested benchmark (bench/nest.py). Runs on the host as root. Nothing here pulls
from a registry: the base image is made with debootstrap and `docker import`,
a busybox image from Debian's busybox-static, and every `docker run` passes
`--pull never` so a missing image fails instead of reaching out.

    host engine (level 0)
      └ l1  sandbox   on user network helix-net, beside a container named `api`
          └ l2  desktop   on user network net2 inside l1
              └ l3  sandbox   on user network net3 inside l2
                  └ busybox   level 4

Each level's /var/lib/docker is a named volume of the level above.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("HELIX_NEST_WORK", REPO / ".work"))
BASE_IMAGE = "local/debian:bookworm"
BUSYBOX_IMAGE = "local/busybox:latest"
SANDBOX_IMAGE = "helix-sandbox:test"
DESKTOP_IMAGE = "helix-desktop:test"
# `api` and this dotted alias both resolve from every inner level (README, "DNS
# across levels"); the alias also works below engines that are not helix-init's.
API_FQDN = "api.helix.test"
# --privileged fails on these hosts (CAP_SYS_RESOURCE is not in the bounding
# set); this is the set TESTBED.md measured to nest 4 levels deep.
CAPS = [
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--security-opt",
    "systempaths=unconfined",
]


class NestError(Exception):
    """A step of building or running the nest failed; the message says which."""


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float = 600,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(argv),
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise NestError(f"timed out after {timeout:g}s: {' '.join(argv)}") from exc
    if check and done.returncode != 0:
        raise NestError(
            f"`{' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done


# -- the engine at level 0 ------------------------------------------------------------


@dataclass
class Engine:
    """A Docker engine on the host: an existing one, or a private dockerd we started."""

    host: str
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def docker(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], env=self.env, **kw)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def engine(start_private: bool = True) -> Engine:
    """The engine in DOCKER_HOST or at the default socket, else a private dockerd (root only)."""
    env = dict(os.environ)
    for host in filter(
        None,
        (
            os.environ.get("DOCKER_HOST"),
            "unix:///var/run/docker.sock",
            f"unix://{WORK}/dockerd/docker.sock",
        ),
    ):
        env["DOCKER_HOST"] = host
        if (
            shutil.which("docker")
            and run(["docker", "version"], env=env, check=False, timeout=20).returncode == 0
        ):
            return Engine(host, None, env)
    if not start_private or os.geteuid() != 0 or not shutil.which("dockerd"):
        raise NestError("no Docker engine is running, and none can be started here")
    root = WORK / "dockerd"
    root.mkdir(parents=True, exist_ok=True)
    (root / "docker.pid").unlink(missing_ok=True)
    host = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "ab")  # noqa: SIM115 - dockerd's own log, for the demo's lifetime
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(root / "root"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "docker.pid"),
            "--host",
            host,
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    env["DOCKER_HOST"] = host
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if run(["docker", "version"], env=env, check=False, timeout=20).returncode == 0:
            return Engine(host, proc, env)
        if proc.poll() is not None:
            raise NestError(f"dockerd exited with {proc.returncode}; see {root}/dockerd.log")
        time.sleep(0.2)
    raise NestError(f"dockerd did not answer within 60s; see {root}/dockerd.log")


# -- images ------------------------------------------------------------------------------


def has_image(eng: Engine, name: str) -> bool:
    return eng.docker("image", "inspect", name, check=False).returncode == 0


def base_images(eng: Engine) -> None:
    """local/debian:bookworm (debootstrap, cached as a tarball) and local/busybox."""
    if not has_image(eng, BASE_IMAGE):
        tarball = WORK / "images" / "debian-bookworm.tar"
        if not tarball.exists():
            rootfs = WORK / "images" / "rootfs"
            shutil.rmtree(rootfs, ignore_errors=True)
            rootfs.parent.mkdir(parents=True, exist_ok=True)
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "bookworm",
                    str(rootfs),
                    "http://deb.debian.org/debian",
                ],
                timeout=900,
            )
            run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
            shutil.rmtree(rootfs, ignore_errors=True)
        with open(tarball, "rb") as f:
            subprocess.run(
                ["docker", "import", "-", BASE_IMAGE],
                stdin=f,
                env=eng.env,
                check=True,
                capture_output=True,
            )
    if not has_image(eng, BUSYBOX_IMAGE):
        root = WORK / "images" / "busybox"
        shutil.rmtree(root, ignore_errors=True)
        (root / "bin").mkdir(parents=True)
        (root / "etc").mkdir()
        (root / "www").mkdir()
        (root / "tmp").mkdir()
        busybox = shutil.which("busybox") or "/bin/busybox"
        shutil.copy(busybox, root / "bin" / "busybox")
        applets = run([busybox, "--list"]).stdout.split()
        for applet in applets:
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        (root / "www" / "index.html").write_text("hello from busybox httpd\n")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-c", 'CMD ["/bin/sh"]', "-", BUSYBOX_IMAGE],
            stdin=tar.stdout,
            env=eng.env,
            check=True,
            capture_output=True,
        )
        tar.wait()


def build_images(eng: Engine) -> None:
    """Build Dockerfile.sandbox and Dockerfile.desktop from this checkout on the local base."""
    base_images(eng)
    for dockerfile, tag in (
        ("Dockerfile.sandbox", SANDBOX_IMAGE),
        ("Dockerfile.desktop", DESKTOP_IMAGE),
    ):
        eng.docker(
            "build",
            "-q",
            "-f",
            str(REPO / dockerfile),
            "--build-arg",
            f"BASE={BASE_IMAGE}",
            "-t",
            tag,
            str(REPO),
            timeout=1200,
        )


# -- levels -------------------------------------------------------------------------------


@dataclass
class Level:
    """Level n of the nest: `prefix` runs a command inside its container (empty for level 0)."""

    depth: int
    name: str
    prefix: list[str]
    eng: Engine
    parent: Level | None = None  # the level whose engine runs this one (None for level 0)

    def sh(
        self, command: str, *, check: bool = True, timeout: float = 300, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command in this level's container."""
        return self.exec(["sh", "-c", command], check=check, timeout=timeout, input=input)

    def exec(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 300,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [*self.prefix, *argv], env=self.eng.env, check=check, timeout=timeout, input=input
        )

    def docker(
        self, *args: str, check: bool = True, timeout: float = 300, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS` against this level's engine."""
        return self.exec(["docker", *args], check=check, timeout=timeout, input=input)

    def inside(self, name: str) -> Level:
        """The level of container `name`, run by this level's engine."""
        interactive = ["docker", "exec", "-i", name]
        return Level(self.depth + 1, name, [*self.prefix, *interactive], self.eng, self)

    def status(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.exec(["helix-init", "status", "--json"]).stdout)
        return data

    def wait_healthy(self, timeout: float = 180) -> None:
        """Poll `helix-init health`; fail at once, with its last lines, if the container ended."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            done = self.exec(["helix-init", "health"], check=False, timeout=30)
            if done.returncode == 0:
                return
            last = (done.stdout + done.stderr).strip()
            if self.parent is not None and not self.running():
                logs = self.parent.docker("logs", "--tail", "30", self.name, check=False)
                raise NestError(
                    f"level {self.depth} ({self.name}) exited with {self.exit_code()} "
                    f"before it was healthy; last lines:\n{(logs.stdout + logs.stderr).strip()}"
                )
            time.sleep(0.5)
        raise NestError(f"level {self.depth} ({self.name}) not healthy in {timeout:g}s: {last}")

    def running(self) -> bool:
        """Whether this level's container runs (asked of the level above)."""
        assert self.parent is not None
        state = self.parent.docker("inspect", "-f", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def exit_code(self) -> int:
        assert self.parent is not None
        return int(self.parent.docker("inspect", "-f", "{{.State.ExitCode}}", self.name).stdout)


def copy_images(eng: Engine, into: Level, *images: str) -> None:
    """docker save on the host | docker load at `into` (TESTBED.md: how images move down)."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE, env=eng.env)
    load = subprocess.run(
        [*into.prefix, "docker", "load", "-q"],
        stdin=save.stdout,
        env=eng.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    save.wait()
    if load.returncode != 0 or save.returncode != 0:
        raise NestError(f"loading {images} into level {into.depth} failed: {load.stderr.strip()}")


LEVEL_PLAN = [  # (container name, image, user network it joins at the level above)
    ("l1", SANDBOX_IMAGE, "helix-net"),
    ("l2", DESKTOP_IMAGE, "net2"),
    ("l3", SANDBOX_IMAGE, "net3"),
]


def start_level(parent: Level, name: str, image: str, network: str, reserved: str = "") -> Level:
    """Run `image` as container `name` at `parent`, on `network`, /var/lib/docker on a volume."""
    depth = parent.depth + 1
    parent.docker("network", "inspect", network, check=False).returncode == 0 or parent.docker(
        "network", "create", network
    )
    args = [
        "run",
        "-d",
        "--pull",
        "never",
        "--name",
        name,
        "--hostname",
        name,
        "--network",
        network,
        *CAPS,
        "-v",
        f"{name}-docker:/var/lib/docker",
        "-e",
        f"HELIX_DOCKER_DEPTH={depth}",
    ]
    if reserved:
        args += ["-e", f"HELIX_INIT_RESERVED_NETS={reserved}"]
    parent.docker(*args, image)
    level = parent.inside(name)
    level.wait_healthy()
    return level


def build_nest(
    eng: Engine,
    depth: int = 3,
    log: callable = print,  # type: ignore[valid-type]
    prefix: str = "",
) -> list[Level]:
    """Levels 0..depth; level 0 also runs `api` (busybox httpd) on helix-net.

    `prefix` goes before every name made on the host engine (the level-1
    container, its volume, helix-net and the api container), so a test nest and
    a demo on a shared engine never remove each other's containers. The api
    container is reachable as `api` and `api.helix.test` (network aliases)
    whatever its container name.
    """
    host = Level(0, "host", [], eng)
    levels = [host]
    net, api = f"{prefix}helix-net", f"{prefix}api"
    host.docker("network", "inspect", net, check=False).returncode == 0 or host.docker(
        "network", "create", net
    )
    if host.docker("inspect", api, check=False).returncode != 0:
        host.docker(
            "run",
            "-d",
            "--pull",
            "never",
            "--name",
            api,
            "--network",
            net,
            "--network-alias",
            "api",
            "--network-alias",
            API_FQDN,
            BUSYBOX_IMAGE,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        )
    reserved = ""
    for name, image, network in LEVEL_PLAN[:depth]:
        parent = levels[-1]
        if parent.depth > 0:
            nxt = LEVEL_PLAN[parent.depth][1]
            log(f"loading {nxt} and busybox into level {parent.depth}")
            copy_images(eng, parent, nxt, BUSYBOX_IMAGE)
        else:
            name, network = f"{prefix}{name}", net
        log(f"starting level {parent.depth + 1}: {name} ({image})")
        levels.append(start_level(parent, name, image, network, reserved))
        env = levels[-1].exec(["cat", "/run/helix-init/env.json"], check=False).stdout
        carried = json.loads(env) if env.strip() else {}
        reserved = carried.get("HELIX_CHILD_RESERVED_NETS", {}).get("value", reserved)
    copy_images(eng, levels[-1], BUSYBOX_IMAGE)
    return levels


def remove_nest(eng: Engine, prefix: str = "") -> None:
    host = Level(0, "host", [], eng)
    host.docker("rm", "-f", f"{prefix}l1", f"{prefix}api", check=False, timeout=180)
    host.docker("volume", "rm", "-f", f"{prefix}l1-docker", check=False)
    host.docker("network", "rm", f"{prefix}helix-net", check=False)


def main(argv: list[str]) -> int:
    """The nested demo: build, nest 3 init levels, run busybox at level 4, print each status."""
    try:
        eng = engine()
    except NestError as exc:
        print(f"nest: {exc}", file=sys.stderr)
        return 3  # scripts/demo falls back to the PID-namespace demo
    try:
        print(f"Docker engine: {eng.host}" + (" (private dockerd started)" if eng.process else ""))
        print("building images (local base, no registry pulls)...", flush=True)
        build_images(eng)
        remove_nest(eng)
        started = time.monotonic()
        levels = build_nest(eng, log=lambda text: print(text, flush=True))
        for level in levels[1:]:
            print(f"\n== level {level.depth} ({level.name}): helix-init status")
            print(level.exec(["helix-init", "status"]).stdout.rstrip())
        deepest = levels[-1]
        out = deepest.docker(
            "run",
            "--rm",
            "--pull",
            "never",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            f"echo hello from level 4; nslookup {API_FQDN} | grep -A1 Name",
        )
        print(f"\n== level {deepest.depth + 1}: a busybox container inside level {deepest.depth}")
        print(out.stdout.rstrip())
        print(f"\nnest up in {time.monotonic() - started:.1f}s; stopping it")
        t0 = time.monotonic()
        Level(0, "host", [], eng).docker("stop", "-t", "120", "l1", timeout=300)
        code = Level(0, "host", [], eng).docker("inspect", "-f", "{{.State.ExitCode}}", "l1").stdout
        print(f"docker stop l1: {time.monotonic() - t0:.1f}s, exit code {code.strip()}")
        remove_nest(eng)
        eng.stop()
        return 0
    except NestError as exc:
        print(f"nest: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
