"""`python -m helix_init`: the same entry point as the `helix-init` console script."""

from helix_init.cli import main  # its first import holds the signals (see sigmask.py)

raise SystemExit(main())
