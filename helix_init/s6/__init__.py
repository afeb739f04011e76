"""s6-overlay compatibility: container_environment, v3 s6-rc.d trees, the s6 commands scripts call.

Runs in PID 1 (envdir, tree) and in `helix-init install` (install). The
commands under `compat/` are stdlib-only scripts installed as /usr/bin and
/command entry points; they never import this package, so a `with-contenv`
in every run script costs one small interpreter start. See docs/s6-overlay.md.
"""
