"""The nest's images: a local base, the two images as shipped, the stand-in layers; moving them.

Built once per engine and reused (Docker's build cache makes a rebuild of an
unchanged checkout a few seconds): local/debian:bookworm from debootstrap
(cached as a tarball under WORK), local/busybox from the host's busybox-static,
Dockerfile.sandbox and Dockerfile.desktop from this checkout (tagged :shipped),
and on top the stand-ins of examples/standins/ (tagged :test), which the nest
runs: the revdial-client in both, the compositor and desktop-bridge in the
desktop, and the control-plane image.
"""

from __future__ import annotations

import shutil
import subprocess

from helix_nest.engine import REPO, WORK, Engine
from helix_nest.proc import NestError, run

BASE_IMAGE = "local/debian:bookworm"
BUSYBOX_IMAGE = "local/busybox:latest"
SANDBOX_SHIPPED = "helix-sandbox:shipped"
DESKTOP_SHIPPED = "helix-desktop:shipped"
SANDBOX_IMAGE = "helix-sandbox:test"
DESKTOP_IMAGE = "helix-desktop:test"
CONTROL_PLANE_IMAGE = "helix-control-plane:test"
STANDINS = REPO / "examples" / "standins"


def has_image(eng: Engine, name: str) -> bool:
    return eng.docker("image", "inspect", name, check=False).returncode == 0


def _import(eng: Engine, source: subprocess.Popen[bytes] | str, *args: str) -> None:
    """`docker import` from a tar stream (a running tar) or a tarball path."""
    if isinstance(source, str):
        with open(source, "rb") as f:
            done = subprocess.run(
                ["docker", "import", *args], stdin=f, env=eng.env, capture_output=True
            )
    else:
        done = subprocess.run(
            ["docker", "import", *args], stdin=source.stdout, env=eng.env, capture_output=True
        )
        source.wait()
    if done.returncode != 0:
        raise NestError(f"docker import {args[-1]} failed: {done.stderr.decode().strip()}")


def base_images(eng: Engine) -> None:
    """local/debian:bookworm (debootstrap, cached as a tarball) and local/busybox."""
    if not has_image(eng, BASE_IMAGE):
        tarball = WORK / "images" / "debian-bookworm.tar"
        if not tarball.exists():
            rootfs = WORK / "images" / "rootfs"
            shutil.rmtree(rootfs, ignore_errors=True)
            rootfs.parent.mkdir(parents=True, exist_ok=True)
            run(
                ["debootstrap", "--variant=minbase", "bookworm", str(rootfs),
                 "http://deb.debian.org/debian"],
                timeout=900,
            )  # fmt: skip
            run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."])
            shutil.rmtree(rootfs, ignore_errors=True)
        _import(eng, str(tarball), "-", BASE_IMAGE)
    if not has_image(eng, BUSYBOX_IMAGE):
        root = WORK / "images" / "busybox"
        shutil.rmtree(root, ignore_errors=True)
        for folder in ("bin", "etc", "www", "tmp"):
            (root / folder).mkdir(parents=True)
        busybox = shutil.which("busybox") or "/bin/busybox"
        shutil.copy(busybox, root / "bin" / "busybox")
        for applet in run([busybox, "--list"]).stdout.split():
            if applet != "busybox":
                (root / "bin" / applet).symlink_to("busybox")
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        (root / "www" / "index.html").write_text("hello from busybox httpd\n")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _import(eng, tar, "-c", 'CMD ["/bin/sh"]', "-", BUSYBOX_IMAGE)


def build_images(eng: Engine) -> None:
    """The base images, the two images as shipped, and the stand-in layers the nest runs."""
    base_images(eng)
    for dockerfile, tag in (
        ("Dockerfile.sandbox", SANDBOX_SHIPPED),
        ("Dockerfile.desktop", DESKTOP_SHIPPED),
    ):
        eng.docker(
            "build", "-q", "-f", str(REPO / dockerfile), "--build-arg", f"BASE={BASE_IMAGE}",
            "-t", tag, str(REPO), timeout=1200,
        )  # fmt: skip
    for target, tag in (
        ("sandbox", SANDBOX_IMAGE),
        ("desktop", DESKTOP_IMAGE),
        ("control-plane", CONTROL_PLANE_IMAGE),
    ):
        eng.docker(
            "build", "-q", "--target", target, "--build-arg", f"SANDBOX={SANDBOX_SHIPPED}",
            "--build-arg", f"DESKTOP={DESKTOP_SHIPPED}", "-t", tag, str(STANDINS), timeout=600,
        )  # fmt: skip


def copy_images(eng: Engine, into_prefix: list[str], *images: str) -> None:
    """docker save on the host | docker load through `into_prefix` (how images move down)."""
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE, env=eng.env)
    load = subprocess.run(
        [*into_prefix, "docker", "load", "-q"],
        stdin=save.stdout,
        env=eng.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    save.wait()
    if load.returncode != 0 or save.returncode != 0:
        raise NestError(f"loading {' '.join(images)} failed: {load.stderr.strip()}")
