"""Where the built-in steps hand their results on: files under HELIX_INIT_RUN_DIR; pure paths.

The steps (helix_init/builtin/) write them; the dockerd service's command
(helix_init/rundockerd.py) reads daemon.json and the PATH file. The names are
helix_init/rundir.py's, so the writer and the readers never disagree on one.
"""

from dataclasses import dataclass
from pathlib import Path

from helix_init import rundir


@dataclass(frozen=True)
class LevelPaths:
    run_dir: Path

    @property
    def docker_dir(self) -> Path:
        return self.run_dir / rundir.DOCKER_DIR

    @property
    def facts_path(self) -> Path:
        return self.run_dir / rundir.FACTS

    @property
    def daemon_json(self) -> Path:
        """Its existence is what enables the dockerd service at this level."""
        return self.run_dir / rundir.DAEMON_JSON

    @property
    def netplan_path(self) -> Path:
        return self.run_dir / rundir.NETPLAN

    @property
    def dns_path(self) -> Path:
        return self.run_dir / rundir.DNS

    @property
    def path_file(self) -> Path:
        """The folder to put first on dockerd's PATH (the chosen iptables backend)."""
        return self.run_dir / rundir.DOCKERD_PATH_FILE
