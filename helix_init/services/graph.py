"""Service graph: start order in levels and cycle detection over `requires` (pure functions).

`deps` maps a service to the services it requires. Every name that appears, as a
key or inside a value, is a node. A level holds the services whose requirements
are all in earlier levels, so a level can be started at once; names within a
level are sorted, so the plan is the same on every boot.

What the levels are for: stopping and showing. A shutdown stops level by
level in reverse (ServicePlan.stop_levels), so a service is gone before the
services it requires are asked to stop; `helix-init plan` prints them. Starting
does not wait for a whole level: each service waits only for the readiness of
its own `requires` (supervise.py's gate), so a slow service holds back its
dependents and no one else; the order the levels give is kept all the same,
since a service's requirements are all in earlier levels.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

Levels = tuple[tuple[str, ...], ...]


def _nodes(deps: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set(required) for name, required in deps.items()}
    for required in deps.values():
        for name in required:
            graph.setdefault(name, set())
    return graph


def start_levels(deps: Mapping[str, Collection[str]]) -> Levels:
    """Kahn's algorithm, one level at a time; raises ValueError naming a cycle if there is one."""
    graph = _nodes(deps)
    missing = {name: len(required) for name, required in graph.items()}
    dependents: dict[str, list[str]] = {name: [] for name in graph}
    for name, required in graph.items():
        for other in required:
            dependents[other].append(name)
    levels: list[tuple[str, ...]] = []
    level = sorted(name for name, count in missing.items() if count == 0)
    while level:
        levels.append(tuple(level))
        unblocked: list[str] = []
        for name in level:
            for dependent in dependents[name]:
                missing[dependent] -= 1
                if missing[dependent] == 0:
                    unblocked.append(dependent)
        level = sorted(unblocked)
    if sum(len(lv) for lv in levels) < len(graph):
        raise ValueError(f"dependency cycle {' -> '.join(find_cycle(deps) or [])}")
    return tuple(levels)


def find_cycle(deps: Mapping[str, Collection[str]]) -> list[str] | None:
    """One cycle as a closed path such as ["a", "b", "a"], starting at its smallest name; or None.

    Depth-first search in sorted order, iterative so a long chain cannot hit the
    recursion limit.
    """
    graph = _nodes(deps)
    done: set[str] = set()
    for root in sorted(graph):
        if root in done:
            continue
        path = [root]
        on_path = {root}
        pending = [iter(sorted(graph[root]))]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                pending.pop()
                continue
            if nxt in on_path:
                cycle = path[path.index(nxt) :]
                start = cycle.index(min(cycle))
                cycle = cycle[start:] + cycle[:start]
                return [*cycle, cycle[0]]
            if nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                pending.append(iter(sorted(graph[nxt])))
    return None
