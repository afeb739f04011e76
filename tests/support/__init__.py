"""What more than one test folder (or the benchmarks) shares, imported as a package.

- `pid1`: the process tier's harness (helix-init as PID 1 of a PID namespace)
  and what it sees inside that namespace.
- `netns`: network namespaces with veths (sibling tests, bench/bridge_guard).
- `fakedns`: a small DNS server and the query/reply codec (DNS tests, bench).
- `services`: services.d read and resolved in one call (unit tests of drop-ins).
- `system`: the system tier's name prefix.

Imported as `tests.support.X`: pytest puts the repository on sys.path
(`pythonpath` in pyproject.toml), the benchmarks run from the repository as
modules. The fixtures of each tier are in that tier's conftest.py; the root
tests/conftest.py has only the collection rules that span the tiers.
"""
