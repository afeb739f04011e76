"""Where the built-in steps hand their results on: files under HELIX_INIT_RUN_DIR; pure paths.

The steps (helix_init/builtin/) write them; the dockerd service's command
(rundockerd.py) reads daemon.json and the PATH file. One definition, so the
writer and the readers never disagree on a name.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LevelPaths:
    run_dir: Path

    @property
    def docker_dir(self) -> Path:
        return self.run_dir / "docker"

    @property
    def facts_path(self) -> Path:
        return self.run_dir / "facts.json"

    @property
    def daemon_json(self) -> Path:
        """Its existence is what enables the dockerd service at this level."""
        return self.docker_dir / "daemon.json"

    @property
    def netplan_path(self) -> Path:
        return self.docker_dir / "netplan.json"

    @property
    def dns_path(self) -> Path:
        return self.run_dir / "dns.json"

    @property
    def path_file(self) -> Path:
        """The folder to put first on dockerd's PATH (the chosen iptables backend)."""
        return self.docker_dir / "path"
