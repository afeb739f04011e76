"""An s6-overlay image for one test: the fixture tree at its real paths, in private mounts.

The init runs in its own mount namespace (unshare --mount-proc) where /etc and
/usr/bin are overlays whose upper layers are under the test's folder (the
tree at /etc/s6-overlay/s6-rc.d, the s6-compat entry points installed by
`helix-init install s6-compat` at /usr/bin), and /run is a fresh tmpfs; the
host's folders are never written. So the fixture scripts run unchanged with
their absolute paths: `#!/usr/bin/with-contenv bash`, `/etc/s6-overlay/...`,
`/run/s6/container_environment`, `/run/s6-linux-init-container-results`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.pid1 import HELIX_INIT, Finished, Pid1, assert_no_traceback

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "s6-overlay" / "root"


class S6Image:
    def __init__(self, pid1: Pid1, *, compat: bool = True, tree: bool = True) -> None:
        self.pid1 = pid1
        root = pid1.root
        self.etc_upper = root / "etc-upper"
        self.rc = self.etc_upper / "s6-overlay" / "s6-rc.d"  # /etc/s6-overlay/s6-rc.d inside
        self.state = root / "state"
        for folder in (self.etc_upper, root / "etc-work", root / "bin-work", self.state):
            folder.mkdir()
        if tree:
            shutil.copytree(FIXTURE / "etc", self.etc_upper, dirs_exist_ok=True, symlinks=True)
        compat_root = root / "compat"
        (compat_root / "usr" / "bin").mkdir(parents=True)
        if compat:
            subprocess.run(
                [str(HELIX_INIT), "install", "s6-compat", "--root", str(compat_root)],
                check=True, capture_output=True,
            )  # fmt: skip
        self.script = (
            f"mount -t overlay hx-etc -o lowerdir=/etc,upperdir={self.etc_upper},"
            f"workdir={root / 'etc-work'} /etc"
            f" && mount -t overlay hx-bin -o lowerdir=/usr/bin,upperdir={compat_root / 'usr/bin'},"
            f"workdir={root / 'bin-work'} /usr/bin"
            ' && mount -t tmpfs hx-run /run && exec "$@"'
        )
        pid1._wrapper = ["sh", "-c", self.script, "sh"]
        pid1.env["APP_STATE"] = str(self.state)
        for name in ("RC_DIR", "ENV_DIR", "RESULTS_DIR", "BASEDIR"):  # the real paths, here
            pid1.env.pop(f"HELIX_INIT_S6_{name}")

    def longrun(self, name: str, run: str, finish: str | None = None) -> Path:
        """A longrun of the user bundle after init-services (run executable; finish not,
        which s6-rc accepts); its folder, for more files."""
        svc = self.rc / name
        (svc / "dependencies.d").mkdir(parents=True)
        (svc / "type").write_text("longrun\n")
        (svc / "dependencies.d" / "init-services").touch()
        (svc / "run").write_text(run)
        (svc / "run").chmod(0o755)
        if finish is not None:
            (svc / "finish").write_text(finish)
        (self.rc / "user" / "contents.d" / name).touch()
        return svc

    def command(self, *args: str, env: dict[str, str] | None = None) -> Finished:
        """`helix-init check|plan` in the same private mounts (a mount namespace, no PID one)."""
        proc = subprocess.run(
            ["unshare", "--mount", "sh", "-c", self.script, "sh", str(HELIX_INIT), *args],
            stdin=subprocess.DEVNULL, capture_output=True, env={**self.pid1.env, **(env or {})},
            cwd=self.pid1.root, timeout=60,
        )  # fmt: skip
        result = Finished(proc.returncode, proc.stdout.decode(), proc.stderr.decode(), 0.0)
        assert_no_traceback(result)
        return result

    def order(self) -> list[str]:
        path = self.state / "order"
        return path.read_text().split() if path.exists() else []
