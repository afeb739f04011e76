"""Sibling-dockerd mode: the network repairs for a dockerd beside the desktop (seeds 000, 001).

- localhost: the `localhost-forward` step and its undo, in the desktop's namespace;
- bridgeguard: the `bridge-guard` service, in the namespace that holds the bridge.

Their settings (HELIX_LOCALHOST_FORWARD*, HELIX_BRIDGE_GUARD*) are parsed in
helix_init/settings/sibling.py.
"""
