"""Parse resolv.conf text (pure, no I/O); runs in the cont-init DNS step and in `plan`/`status`.

The rules follow glibc's resolver, which is what this level's own lookups use:
`#` and `;` start comments; `nameserver` takes one address per line; `search`
and `domain` replace each other (the last one wins); `options` lines add up.
Lines that fit none of these, or carry an invalid address, are skipped: a junk
line must not stop the container, and the plan says what it saw.

Docker writes its own upstreams into the comments of the file it generates
(moby `libnetwork/internal/resolvconf`), which tells us, at a nested level,
where 127.0.0.11 really forwards to:

    nameserver 127.0.0.11
    # ExtServers: [host(10.0.0.1) host(fdb6:b8fe:b528::1)]
    # Option ndots from: internal

`host(A)` means A is reached from the host's network namespace, a bare `A` from
the container's own; older engines wrote the public fallback pair there and, after a bad
restart, `[invalid IP ...]`. Both forms are accepted; anything else is skipped.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_EXT_SERVERS = re.compile(r"^#\s*ExtServers:\s*\[(?P<body>[^\]]*)\]")
_NDOTS_FROM = re.compile(r"^#\s*Option ndots from:\s*(?P<origin>\S+)")
_HOST_WRAPPED = re.compile(r"^host\((?P<addr>[^)]*)\)$")


@dataclass(frozen=True)
class ResolvConf:
    """What a resolv.conf says, in file order; addresses are kept as written (zone included)."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    ext_servers: tuple[str, ...] = ()  # from Docker's `# ExtServers:` comment, diagnostics only
    ndots_from: str = ""  # from Docker's `# Option ndots from:`; "internal" = Docker added it


def parse_resolv_conf(text: str) -> ResolvConf:
    """Read resolv.conf text the way glibc does, plus Docker's diagnostic comments."""
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    ext_servers: list[str] = []
    ndots_from = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("#", ";")):
            ext_servers.extend(_ext_servers(line))
            origin = _NDOTS_FROM.match(line)
            if origin:
                ndots_from = origin["origin"]
            continue
        words = _strip_comment(line).split()
        if len(words) < 2:
            continue
        keyword, values = words[0], words[1:]
        if keyword == "nameserver" and is_address(values[0]):
            nameservers.append(values[0])
        elif keyword in ("search", "domain"):
            search = values if keyword == "search" else values[:1]
        elif keyword == "options":
            options.extend(values)
    return ResolvConf(
        nameservers=tuple(nameservers),
        search=tuple(search),
        options=tuple(options),
        ext_servers=tuple(ext_servers),
        ndots_from=ndots_from,
    )


def is_address(text: str) -> bool:
    """True for an IPv4 or IPv6 address, an IPv6 zone (`fe80::1%eth0`) allowed."""
    try:
        ipaddress.ip_address(text.split("%", 1)[0] if ":" in text else text)
    except ValueError:
        return False
    return True


def _strip_comment(line: str) -> str:
    for mark in ("#", ";"):
        line = line.split(mark, 1)[0]
    return line


def _ext_servers(line: str) -> list[str]:
    match = _EXT_SERVERS.match(line)
    if not match:
        return []
    found = []
    for word in match["body"].split():
        wrapped = _HOST_WRAPPED.match(word)
        addr = wrapped["addr"] if wrapped else word
        if is_address(addr):
            found.append(addr)
    return found
