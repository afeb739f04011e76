"""A lean PID 1: an idle init has loaded only what boot needs, pinned here module by module.

Read where it is decided: the real init as PID 1, run with
PYTHONPROFILEIMPORTTIME=1, lists on its stderr every module it imports, in
order; the list is read while the CMD runs (the init is idle, fully booted),
before anything is stopped. A module that is new in that list fails this test
on purpose: add it to the allowlist only if boot really needs it, else import
it where it is used (`import X` inside the function, as boot.py does for the
services' engine).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.pid1 import NsProc, Pid1, ns_processes, wait_until

pytestmark = pytest.mark.process

# helix_init modules an idle PID 1 with no services may have loaded.
HELIX_INIT = {
    "helix_init",
    "helix_init.boot",
    "helix_init.cli",
    "helix_init.cmd",
    "helix_init.contenv",
    "helix_init.control",
    "helix_init.dind",
    "helix_init.dind.plancheck",
    "helix_init.dropins",
    "helix_init.exitcodes",
    "helix_init.hostcmd",
    "helix_init.logsink",
    "helix_init.problems",
    "helix_init.procgroup",
    "helix_init.reaper",
    "helix_init.rootfiles",
    "helix_init.rundir",
    "helix_init.settings.s6",  # is this an s6-overlay image (S6_* meanings)?
    "helix_init.services",
    "helix_init.services.conditions",
    "helix_init.services.fields",
    "helix_init.services.graph",
    "helix_init.services.limits",
    "helix_init.services.probes",
    "helix_init.services.resolve",  # specs + environment + accounts -> the plan
    "helix_init.services.spec",
    "helix_init.settings",
    "helix_init.settings.dind",
    "helix_init.settings.dns",  # the names of the upstream variables plancheck looks at
    "helix_init.settings.revdial",  # HELIX_API_URL and the runner id, checked at boot
    "helix_init.settings.sibling",
    "helix_init.settings.user",  # PUID, PGID, UNAME, UMASK: checked at boot, UMASK at the CMD
    "helix_init.shellstep",
    "helix_init.sigmask",
    "helix_init.steprunner",
    "helix_init.timeline",
    "helix_init.usersetup",
}
# Top-level standard-library packages it may have loaded: asyncio and what it
# brings (concurrent, logging, socket, selectors, inspect), json, dataclasses.
STDLIB = {
    "abc",
    "array",
    "ast",
    "asyncio",
    "atexit",
    "codecs",
    "collections",
    "concurrent",
    "contextlib",
    "contextvars",
    "copy",
    "copyreg",
    "dataclasses",
    "datetime",
    "dis",
    "encodings",
    "enum",
    "errno",
    "fcntl",
    "fnmatch",
    "functools",
    "genericpath",
    "grp",
    "heapq",
    "importlib",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "linecache",
    "locale",
    "logging",
    "marshal",
    "math",
    "ntpath",
    "opcode",
    "operator",
    "os",
    "pathlib",
    "posix",
    "posixpath",
    "pwd",
    "re",
    "reprlib",
    "select",
    "selectors",
    "signal",
    "site",
    "sitecustomize",
    "socket",
    "stat",
    "string",
    "struct",
    "subprocess",
    "textwrap",
    "threading",
    "time",
    "token",
    "tokenize",
    "traceback",
    "types",
    "typing",
    "urllib",
    "warnings",
    "weakref",
    "zipimport",
}
# Tried and missing on Linux (or marked missing, as ssl is): listed, never loaded.
TRIED = {"msvcrt", "nt", "org", "ssl"}
# Never in an idle PID 1: the engine client (rpcwire) and TLS (ssl),
# the built-in steps' and helpers' libraries, and what only a bug report needs.
NEVER = {
    "_ssl",  # ssl itself is tried (and marked missing), never loaded
    "xmlrpc",
    "http",
    "email",
    "tomllib",
    "difflib",
    "shutil",
    "ctypes",
    "docker",
    "pyroute2",
    "psutil",
    "supervisor",
    "helix_init.services.engine",
    "helix_init.services.manager",
    "helix_init.services.render",
    "helix_init.builtin",
    "helix_init.dns",
    "helix_init.operator",
}


def _imported(pid1: Pid1) -> list[str]:
    """Every module the (first) init has imported so far, from its -X importtime lines."""
    text = pid1.path("stderr.0").read_text()  # Pid1.start: stderr.N of run N
    names = []
    for line in text.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            names.append(line.rsplit("|", 1)[1].strip())
    return names


def _top(name: str) -> str:
    return name.partition(".")[0]


def test_an_idle_pid1_has_loaded_only_what_boot_needs(pid1: Pid1) -> None:
    running = pid1.start_running(env={"PYTHONPROFILEIMPORTTIME": "1"})
    wait_until(lambda: bool(_imported(pid1)), 5, "the import list", running.alive)
    names = _imported(pid1)  # idle now: read before anything is stopped
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=15)
    assert result.code == 0, result.describe()

    ours = {n for n in names if _top(n) == "helix_init"}
    stdlib = {_top(n) for n in names if _top(n) != "helix_init" and not n.startswith("_")}
    stdlib -= {"__editable___helix_init_0_1_0_finder", "__future__", "_distutils_hack"}
    never = sorted(n for n in names if n in NEVER or _top(n) in NEVER)

    assert never == [], f"an idle PID 1 loaded {never}"
    assert ours - HELIX_INIT == set(), "new in PID 1: import these where they are used"
    assert stdlib - STDLIB - TRIED == set(), "new in PID 1: import these where they are used"
    assert "helix_init.sigmask" in names[: names.index("helix_init.cli") + 1]  # signals first


def test_with_services_the_engine_client_loads_but_not_xmlrpc_http_nor_tls(pid1: Pid1) -> None:
    pid1.idle_service()
    marker = pid1.path("cmd-running")
    running = pid1.start("sh", "-c", f'touch "{marker}"', env={"PYTHONPROFILEIMPORTTIME": "1"})
    result = running.wait(timeout=30)
    assert result.code == 0, result.describe()
    names = set(_imported(pid1))

    assert "helix_init.services.engine" in names
    assert "_ssl" not in names and "ssl" in names  # tried (by asyncio), not loaded
    # rpcwire.py speaks XML-RPC over http10.py: xmlrpc.client's http.client and email
    # package were ~2.3 MiB of PID 1's RSS
    assert sorted(n for n in names if _top(n) in ("xmlrpc", "http", "email")) == []
    # difflib only for a mistyped service name, random at a service's first restart
    assert sorted(n for n in names if n in ("difflib", "random")) == []


def test_health_loads_no_psutil_into_pid1_and_status_does(pid1: Pid1) -> None:
    """The images' HEALTHCHECK asks `helix-init health` every 10 s: it needs no usage figures.

    Each answer with them walked every service's processes with psutil, and
    the first loaded psutil into PID 1 for good (~1.3 MiB of its RSS).
    """
    pid1.idle_service()
    running = pid1.start_running(env={"PYTHONPROFILEIMPORTTIME": "1"})
    health = pid1.command("health")
    after_health = set(_imported(pid1))
    status = pid1.command("status", "--json")
    after_status = set(_imported(pid1))
    running.signal(signal.SIGTERM)
    assert running.wait(timeout=15).code == 0

    assert (health.code, health.stdout.strip()) == (0, "ready"), health.describe()
    assert "psutil" not in after_health
    assert status.code == 0, status.describe()
    assert "psutil" in after_status  # status still gives each service's usage


def test_its_supervisord_starts_without_site_and_loads_no_openssl(pid1: Pid1) -> None:
    """supervisord is the other half of the stack's RSS: OpenSSL was ~4 MiB of its ~25.

    It runs in the init's interpreter without `site` (engineexec.py), and with
    ssl and _hashlib marked missing: it speaks plain HTTP on a unix socket and
    hashes nothing. Read from its /proc/PID/maps while it runs.
    """
    pid1.idle_service()
    running = pid1.start_running()
    engines: list[NsProc] = []
    wait_until(
        lambda: bool(engines.extend(p for p in ns_processes(running) if _is_engine(p)) or engines),
        10,
        "supervisord",
        running.alive,
    )
    engine = engines[0]
    maps = Path(f"/proc/{engine.host_pid}/maps").read_text()
    running.signal(signal.SIGTERM)
    result = running.wait(timeout=15)
    assert result.code == 0, result.describe()

    assert "-S" in engine.argv and "-I" in engine.argv, engine.argv
    loaded = sorted({line.rsplit("/", 1)[-1] for line in maps.splitlines() if ".so" in line})
    assert [n for n in loaded if n.startswith(("libssl", "libcrypto", "_ssl", "_hashlib"))] == []
    said = [t for t in result.texts("supervisord") if not t.startswith("WARN stopped: idle")]
    assert said == [], result.describe()  # not a line of complaint (hashlib's, say)


def _is_engine(proc: NsProc) -> bool:
    return proc.carries("supervisor.supervisord") and proc.state != "Z"
