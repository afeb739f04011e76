"""supervisord's lean start: the init's sys.path, no `site`, no OpenSSL, pkg_resources on demand.

Runs as root as supervisord's own process (engine.py spawns it; nothing is
exec'd after this), with `python -I -S engineexec.py SYS_PATH MODULE ARG...`:

- `-I -S` and SYS_PATH (the init's sys.path, joined with ':'): supervisor and
  what it imports are found where the init's interpreter found them, without
  `site`'s work at every start (its .pth files, the dev venv's editable-install
  finder, sitecustomize, the user site) and without reading any PYTHON*
  variable. An entry with a ':' in it cannot be passed (as in PYTHONPATH).
- `ssl` and `_hashlib` marked missing: supervisord speaks plain HTTP on the
  init's root-only unix socket and hashes nothing but a configured password
  (the init sets none), yet http.client imports ssl and supervisor.compat
  imports hashlib, and both load OpenSSL (libcrypto, libssl): ~4.5 MiB of its
  RSS. Both modules are written for an interpreter built without OpenSSL:
  http.client goes without TLS, hashlib uses CPython's own md5/sha1/sha2/
  blake2/sha3. Where those own modules are missing, `_hashlib` is left alone.
- `pkg_resources` is a stand-in that loads the real one when first asked
  for anything but an EntryPoint's parse-and-resolve (_PkgResources).
  supervisor 4.2 (Debian bookworm's, in the images) imports it to resolve
  one "module:attr" at start, its rpcinterface factory, and importing it
  (setuptools' vendored packaging and pyparsing, then a scan of every
  distribution on sys.path) was ~40% of supervisord's start there, ~55 ms
  of ~140, and ~7 MiB of its ~30 MiB of RSS (docs/boot.md). supervisor 4.3
  imports importlib.metadata instead and never asks for it. Where no
  pkg_resources is installed, there is no stand-in either: importing it
  fails as it would.
- MODULE runs as `python -m MODULE` would run it: as `__main__`, sys.argv[0]
  its file, ARG... the rest of sys.argv.

Stdlib only and nothing of helix_init: sys.path is not set up when this starts.
"""

import re
import sys
import types
from typing import Any

USAGE = 64  # Exit.USAGE; tests/unit/test_architecture.py keeps it equal (no helix_init import here)
# What hashlib falls back to without _hashlib (3.12 merged _sha256 and _sha512 into _sha2).
OWN_HASHES = ("_md5", "_sha1", "_blake2", "_sha3") + (
    ("_sha2",) if sys.version_info >= (3, 12) else ("_sha256", "_sha512")
)


def _own_hashes() -> bool:
    try:
        for name in OWN_HASHES:
            __import__(name)
    except ImportError:
        return False
    return True


# pkg_resources.EntryPoint.pattern, less the extras (an EntryPoint with extras goes to the real one)
_ENTRY_POINT = re.compile(
    r"\s*(?P<name>.+?)\s*=\s*(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+))?\s*\Z"
)


def _real_pkg_resources() -> Any:
    if isinstance(sys.modules.get("pkg_resources"), _PkgResources):
        del sys.modules["pkg_resources"]
    import importlib

    return importlib.import_module("pkg_resources")


class _EntryPoint:
    """pkg_resources.EntryPoint.parse(SRC).resolve(), as pkg_resources does it; the rest is its."""

    def __init__(self, src: str, module: str, attrs: tuple[str, ...]) -> None:
        self._src = src
        self.module_name = module
        self.attrs = attrs

    @classmethod
    def parse(cls, src: str, dist: Any = None) -> Any:
        found = _ENTRY_POINT.match(src)
        if found is None or dist is not None:
            return _real_pkg_resources().EntryPoint.parse(src, dist)
        attr = found["attr"]
        return cls(src, found["module"], tuple(attr.split(".")) if attr else ())

    def resolve(self) -> Any:
        target = __import__(self.module_name, fromlist=["__name__"], level=0)
        try:
            for name in self.attrs:
                target = getattr(target, name)
        except AttributeError as exc:
            raise ImportError(str(exc)) from exc
        return target

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_pkg_resources().EntryPoint.parse(self._src), name)


class _PkgResources(types.ModuleType):
    """`pkg_resources` until anything but EntryPoint is asked of it: then the real one."""

    EntryPoint = _EntryPoint

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_pkg_resources(), name)


def main(argv: list[str]) -> None:
    path, module, *args = argv
    sys.path[:] = path.split(":")
    sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl: ImportError
    if _own_hashes():
        sys.modules["_hashlib"] = None  # type: ignore[assignment]
    import importlib.util
    import runpy

    if importlib.util.find_spec("pkg_resources") is not None:  # found, not imported
        sys.modules["pkg_resources"] = _PkgResources("pkg_resources")
    sys.argv[1:] = args

    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: engineexec.py SYS_PATH MODULE [ARG...]", file=sys.stderr)
        raise SystemExit(USAGE)
    main(sys.argv[1:])
