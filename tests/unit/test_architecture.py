"""The package's shape: no import cycle between its packages, no bare exit code."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helix_init

ROOT = Path(helix_init.__file__).parent


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every helix_init module `name` imports, lazy and TYPE_CHECKING imports included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{a.name}" for a in node.names)


def _unit(module: str) -> str | None:
    """helix_init.dind.netplan -> dind; helix_init.boot -> boot; outside helix_init -> None."""
    parts = module.split(".")
    if parts[0] != "helix_init" or len(parts) < 2:
        return None
    if (ROOT / parts[1]).is_dir() or (ROOT / f"{parts[1]}.py").exists():
        return parts[1]
    return None


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in _modules():
        source = _unit(name)
        if source is None:
            continue
        edges = graph.setdefault(source, set())
        for target in filter(None, map(_unit, _imports(name, path))):
            if target != source:
                edges.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_packages_or_top_level_modules() -> None:
    graph = unit_graph()
    assert {"builtin", "dind", "sibling", "dns", "services"} <= graph.keys()
    assert cycles(graph) == []


def test_the_step_libraries_never_import_the_steps() -> None:
    graph = unit_graph()
    for library in ("dind", "dns", "sibling", "usersetup"):
        assert "builtin" not in graph[library], library


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


EXIT_CALLS = ("sys.exit", "os._exit", "SystemExit", "exit", "self.finish")


# s6's commands as stdlib scripts (with-contenv, s6-svc, ...): they exit with s6's own
# codes (100 usage, 111 system call, 99 timeout) and read their interface from the
# environment (S6_KEEP_ENV, HELIX_INIT_RUN_DIR); they never import helix_init.
S6_COMPAT = "helix_init.s6.compat"


def bare_exit_codes() -> list[str]:
    """`return N` in a function returning int (the exit positions), sys.exit(N), os._exit(N)..."""
    found = []
    for name, path in _modules():
        if name.startswith(S6_COMPAT):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            literal: ast.expr | None = None
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _exit_position(node):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and _is_int(inner.value):
                        found.append(f"{name}:{inner.lineno}: {ast.unparse(inner)}")
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in EXIT_CALLS:
                literal = node.args[0] if node.args else None
                if _is_int(literal):
                    found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


EXIT_FUNCTIONS = ("main", "run", "run_step", "relay")


def _exit_position(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A command's entry point, or any function that returns an Exit member somewhere."""
    if func.name in EXIT_FUNCTIONS:
        return True
    return any(
        isinstance(n, ast.Return)
        and n.value is not None
        and ast.unparse(n.value).startswith("Exit.")
        for n in ast.walk(func)
    )


def _is_int(node: ast.expr | None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    )


def test_no_bare_exit_code_in_helix_init() -> None:
    assert bare_exit_codes() == []


def test_the_bare_exit_code_finder_finds_them(tmp_path: Path, monkeypatch: Any) -> None:
    package = tmp_path / "helix_init"
    package.mkdir()
    (package / "x.py").write_text(
        "import os, sys\n"
        "def main() -> int:\n    return 78\n"
        "def count() -> int:\n    return 0\n"
        "def health() -> int:\n    if x:\n        return Exit.OK\n    return 1\n"
        "sys.exit(3)\nos._exit(Exit.OK)\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", package)
    assert bare_exit_codes() == [
        "helix_init.x:3: return 78",
        "helix_init.x:9: return 1",
        "helix_init.x:10: sys.exit(3)",
    ]


def test_svcexec_mirrors_the_exit_code_table() -> None:
    from helix_init.exitcodes import Exit
    from helix_init.services import engineexec, svcexec

    assert engineexec.USAGE == Exit.USAGE
    assert (svcexec.USAGE, svcexec.CANNOT_RUN, svcexec.NOT_FOUND) == (
        Exit.USAGE,
        Exit.CANNOT_RUN,
        Exit.NOT_FOUND,
    )


# Modules still naming HELIX_* variables themselves, to move into helix_init/settings/
# (the list only shrinks; empty, the test below enforces the rule everywhere).
NOT_YET_SETTINGS: set[str] = set()


def environment_readers() -> dict[str, list[str]]:
    """Module -> the HELIX_* string literals it holds and its os.environ / os.getenv reads."""
    found: dict[str, list[str]] = {}
    for name, path in _modules():
        if name.startswith(("helix_init.settings", S6_COMPAT)) or name == "helix_init.cli":
            continue
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        parents = {
            id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
        }
        for node in ast.walk(tree):
            hit = None
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings and re.search(r"\bHELIX_[A-Z_]+", node.value):
                    hit = repr(node.value)[:60]
            elif isinstance(node, ast.Attribute) and ast.unparse(node) in (
                "os.environ",
                "os.getenv",
                "os.environb",
            ):
                use = parents.get(id(node))
                # Setting a forked child's environment (reaper.py) is no read.
                writes = isinstance(use, ast.Attribute) and use.attr in ("clear", "update")
                hit = None if writes else ast.unparse(node)
            if hit:
                found.setdefault(name, []).append(f"{node.lineno}: {hit}")
    return found


def test_only_the_settings_modules_and_the_cli_name_variables_or_read_the_environment() -> None:
    found = environment_readers()
    assert {k: v for k, v in found.items() if k not in NOT_YET_SETTINGS} == {}
    assert found.keys() >= NOT_YET_SETTINGS, "moved: take it off NOT_YET_SETTINGS"


def test_the_docker_sdk_is_imported_only_for_the_status_command() -> None:
    """PID 1 never loads it: only dockerinfo.py imports it, and only operator.py that."""
    importers: dict[str, set[str]] = {"docker": set(), "helix_init.dockerinfo": set()}
    for name, path in _modules():
        for module in _imports(name, path):
            for wanted, found in importers.items():
                if module == wanted or module.startswith(f"{wanted}."):
                    found.add(name)
    assert importers == {
        "docker": {"helix_init.dockerinfo"},
        "helix_init.dockerinfo": {"helix_init.operator"},
    }
