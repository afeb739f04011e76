"""The s6 commands that real s6-overlay scripts call, as stdlib-only scripts (see install.py).

Each file here is copied, behind a `#!PYTHON -I -S` line, to /usr/bin/NAME and
/command/NAME by `helix-init install s6-compat`; none imports helix_init.
"""
