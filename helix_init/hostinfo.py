"""Facts about the kernel under this level that more than one package needs; pure, no I/O.

dind/facts.py (preflight) and sibling/bridgeguard.py (which waiter to use)
both ask whether they run under gVisor; the answer lives here so neither
package imports the other.
"""

GVISOR_VERSION = "#1 SMP Sun Jan 10 15:06:54 PST 2016"


def is_gvisor(release: str, version: str) -> bool:
    """gVisor reports a fixed fake kernel: this version string, release 4.4.0 or *-gvisor."""
    return version.strip() == GVISOR_VERSION or release == "4.4.0" or release.endswith("-gvisor")
