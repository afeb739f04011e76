"""engineexec.py: supervisord started as `python -m` would start it, without `site` or OpenSSL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helix_init.services.engine import ENGINE_EXEC, supervisord_argv

PROBE = """
import hashlib, json, sys
try:
    import ssl
    tls = "loaded"
except ImportError:
    tls = "missing"
print(json.dumps({
    "name": __name__,
    "argv": sys.argv,
    "path": sys.path,
    "site": "site" in sys.modules,
    "ssl": tls,
    "openssl_hashes": "_hashlib" in sys.modules and sys.modules["_hashlib"] is not None,
    "md5": hashlib.md5(b"x").hexdigest(),
}))
"""


def test_the_argv_is_the_inits_interpreter_without_site_and_with_its_path(tmp_path: Path) -> None:
    conf = tmp_path / "supervisord.conf"
    argv = supervisord_argv(conf, ["/a", "/odd:dir", "/b"])
    assert argv == [
        sys.executable, "-I", "-S", str(ENGINE_EXEC), "/a:/b",
        "supervisor.supervisord", "-n", "-c", str(conf),
    ]  # fmt: skip


def test_a_module_runs_as_main_with_the_given_path_and_no_openssl(tmp_path: Path) -> None:
    pkg = tmp_path / "lib" / "probe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text(PROBE)
    path = ":".join([str(tmp_path / "lib"), *sys.path])
    argv = [sys.executable, "-I", "-S", str(ENGINE_EXEC), path, "probe.main", "-n", "-c", "x"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["name"] == "__main__"
    assert seen["argv"] == [str(pkg / "main.py"), "-n", "-c", "x"]
    assert seen["path"][: len(sys.path) + 1] == [str(tmp_path / "lib"), *sys.path]
    assert not seen["site"]
    assert seen["ssl"] == "missing" and not seen["openssl_hashes"]
    assert seen["md5"] == "9dd4e461268c8034f5c8564e155c67a6"  # CPython's own md5
    assert done.stderr == ""


def test_without_a_module_it_says_how_to_call_it() -> None:
    argv = [sys.executable, "-I", "-S", str(ENGINE_EXEC), "/nowhere"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    assert (done.returncode, done.stderr.strip()) == (
        64,
        "usage: engineexec.py SYS_PATH MODULE [ARG...]",
    )


ENTRY_POINTS = """
import json, sys
import pkg_resources
stand_in = type(sys.modules["pkg_resources"]).__name__
ep = pkg_resources.EntryPoint.parse("x=json.decoder:JSONDecoder.decode")
found = ep.resolve() is __import__("json").decoder.JSONDecoder.decode
whole = pkg_resources.EntryPoint.parse(" x = json ").resolve() is json
try:
    pkg_resources.EntryPoint.parse("x=json:no_such_thing").resolve()
    missing = "resolved"
except ImportError as exc:
    missing = str(exc)
before = "real" in sys.modules["pkg_resources"].__dict__
extras = pkg_resources.EntryPoint.parse("x=json:dumps [fast]")  # the real one's, with extras
print(json.dumps({
    "stand_in": stand_in, "found": found, "whole": whole, "missing": missing,
    "real_before": before, "extras": type(extras).__module__,
    "other": pkg_resources.MARK, "now": sys.modules["pkg_resources"].__dict__.get("real"),
}))
"""
FAKE_PKG_RESOURCES = """
real = True
MARK = "from the real one"
class EntryPoint:
    @classmethod
    def parse(cls, src, dist=None):
        return cls()
"""


def test_pkg_resources_is_real_only_once_more_than_an_entry_point_is_asked(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "probe.py").write_text(ENTRY_POINTS)
    (lib / "pkg_resources.py").write_text(FAKE_PKG_RESOURCES)
    path = ":".join([str(lib), *sys.path])
    argv = [sys.executable, "-I", "-S", str(ENGINE_EXEC), path, "probe"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    assert done.returncode == 0, done.stderr

    seen = json.loads(done.stdout)
    assert seen["stand_in"] == "_PkgResources"
    assert seen["found"] and seen["whole"]
    assert seen["missing"] == "module 'json' has no attribute 'no_such_thing'"
    assert not seen["real_before"]  # parse and resolve did not load the real one
    assert seen["extras"] == "pkg_resources"  # an entry point with extras did
    assert (seen["other"], seen["now"]) == ("from the real one", True)


def test_where_pkg_resources_is_not_installed_importing_it_fails_as_it_would(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "probe.py").write_text("import pkg_resources\n")
    stdlib = [p for p in sys.path if "-packages" not in p and p and "/work/" not in p]
    path = ":".join([str(lib), *stdlib])
    argv = [sys.executable, "-I", "-S", str(ENGINE_EXEC), path, "probe"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'pkg_resources'" in done.stderr
