"""Benchmarks against anchors run side by side; never part of the tests (bench/README.md).

Each script measures one thing and writes JSON (to --json FILE, else stdout);
run.py alone turns the JSON into the table. Run them as modules from the
repository, `.venv/bin/python -m bench.pid1`, so they import their shared
helpers (`bench.common`) and the test kits (`tests.support`) as plain
packages.
"""
