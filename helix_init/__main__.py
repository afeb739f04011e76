"""`python -m helix_init`: the same entry point as the `helix-init` console script."""

from helix_init.cli import main

raise SystemExit(main())
