"""The system tier's fixtures: Docker engine, images and the nest, built on helix_nest
(the same harness as the demo and bench/nest.py).

`docker_engine` (session): the engine in DOCKER_HOST or at /var/run/docker.sock,
else a private dockerd under .work/ (root only; helix_nest.engine()), stopped at
the end if we started it. `helix_images` (session): the images as shipped and
their stand-in layers, built once from this checkout on the local debootstrap
base. `the_nest` (session): the five levels (helix_nest.Nest: host, control
plane, l1 sandbox, l2 desktop, l3 sandbox, l4 desktop), built once per run;
`nest` is its list of levels [host, l1, l2, l3, l4], index = depth. Tests
marked `nest_teardown` stop it, so they run last. `level1` (per test): a fresh
level-1 sandbox of the test's own, for tests that stop or restart dockerd.
Every name on the host engine starts with SYSTEM_PREFIX (unique per run), so a
demo, a benchmark or another run on a shared engine is never touched. Outside
CI, no root or no dockerd binary skips with the reason; in CI (CI=true) that,
a missing engine or a failed image build FAILS the tier.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import helix_nest
from tests.support.system import SYSTEM_PREFIX


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `nest_teardown` stop the session's nest: they are moved last."""
    items.sort(key=lambda item: item.get_closest_marker("nest_teardown") is not None)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _system_unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"system tier in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nestlib() -> Any:
    """The helix_nest package: image names, CAPS, API_FQDN, Level."""
    return helix_nest


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    if os.geteuid() != 0:
        _system_unavailable("system tests need root (a private dockerd, nested engines)")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        _system_unavailable("system tests need docker.io (dockerd and docker); see setup-host")
    try:
        eng = helix_nest.engine()
    except helix_nest.NestError as exc:
        pytest.fail(f"no Docker engine: {exc}", pytrace=False)
    try:
        yield eng
    finally:
        eng.stop()  # only a dockerd we started ourselves


@pytest.fixture(scope="session")
def helix_images(docker_engine: Any) -> Any:
    try:
        helix_nest.build_images(docker_engine)
    except helix_nest.NestError as exc:
        pytest.fail(f"building the images failed: {exc}", pytrace=False)
    return docker_engine


@pytest.fixture(scope="session")
def the_nest(helix_images: Any) -> Iterator[Any]:
    """The five-level nest beside its control plane (helix_nest.Nest)."""
    try:
        try:
            built = helix_nest.build_nest(helix_images, prefix=SYSTEM_PREFIX, log=lambda _: None)
        except helix_nest.NestError as exc:
            pytest.fail(f"building the nest failed: {exc}", pytrace=False)
        yield built
    finally:
        helix_nest.remove_nest(helix_images, prefix=SYSTEM_PREFIX)


@pytest.fixture(scope="session")
def nest(the_nest: Any) -> list[Any]:
    """[host, l1, l2, l3, l4]: sandbox → desktop → sandbox → desktop."""
    levels: list[Any] = the_nest.all
    return levels


@pytest.fixture
def level1(helix_images: Any) -> Iterator[Callable[..., Any]]:
    """`level1(tag, *docker_run_args, image=SANDBOX)`: start a level-1 container of the test's own
    (volume on /var/lib/docker, the nest's capability set), wait until healthy,
    return its helix_nest.Level. Removed with its volume after the test."""
    host = helix_nest.Level.host(helix_images)
    made: list[str] = []

    def start(tag: str, *extra: str, image: str = helix_nest.SANDBOX_IMAGE) -> Any:
        name = f"{SYSTEM_PREFIX}{tag}"
        made.append(name)
        host.docker(
            "run", "-d", "--pull", "never", "--name", name, "--hostname", tag,
            *helix_nest.CAPS, "-v", f"{name}-docker:/var/lib/docker", *extra, image,
        )  # fmt: skip
        level = host.inside(name)
        level.wait_healthy(120)
        return level

    try:
        yield start
    finally:
        for name in made:
            host.docker("rm", "-f", "-v", name, check=False, timeout=180)
            host.docker("volume", "rm", "-f", f"{name}-docker", check=False)
