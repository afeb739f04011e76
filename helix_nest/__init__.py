"""The nest: the Helix images built on a local base and run level inside level (host side, root).

The harness the demo (`python -m helix_nest.demo`), the system tier
(tests/system) and the nested benchmark (bench/nest.py) share. Nothing here is
part of the images. Nothing pulls from a registry: the base image is made with
debootstrap and `docker import`, a busybox image from Debian's busybox-static,
and every `docker run` passes `--pull never`.

    host engine (level 0)   the control plane `api` (api.helix.test:8080) on helix-net
      └ l1  sandbox   on helix-net                 RevDial runner wolf-l1
          └ l2  desktop   on net2 inside l1        sandbox-l2, compositor + desktop-bridge
              └ l3  sandbox   on net3 inside l2    wolf-l3
                  └ l4  desktop   on net4 inside l3  sandbox-l4, compositor + desktop-bridge
                      └ a user container (busybox)  level 5

Each level's /var/lib/docker is a named volume of the level above. Modules:
`proc` runs commands, `engine` finds or starts the level-0 dockerd, `images`
builds and moves images, `level` talks to one level, `plane` runs the
control-plane stand-in, `build` puts the nest up and takes it down, `demo` is
the demo.
"""

from helix_nest.build import LEVELS, Nest, NestLevel, build_nest, remove_nest
from helix_nest.engine import Engine, engine
from helix_nest.images import (
    BASE_IMAGE,
    BUSYBOX_IMAGE,
    CONTROL_PLANE_IMAGE,
    DESKTOP_IMAGE,
    SANDBOX_IMAGE,
    build_images,
    copy_images,
)
from helix_nest.level import CAPS, Level
from helix_nest.plane import API_FQDN, API_PORT, ControlPlane
from helix_nest.proc import NestError, run

__all__ = [
    "API_FQDN",
    "API_PORT",
    "BASE_IMAGE",
    "BUSYBOX_IMAGE",
    "CAPS",
    "CONTROL_PLANE_IMAGE",
    "DESKTOP_IMAGE",
    "LEVELS",
    "SANDBOX_IMAGE",
    "ControlPlane",
    "Engine",
    "Level",
    "Nest",
    "NestError",
    "NestLevel",
    "build_images",
    "build_nest",
    "copy_images",
    "engine",
    "remove_nest",
    "run",
]
