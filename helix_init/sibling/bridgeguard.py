"""Bridge guard: recreate a deleted bridge, re-attach its orphaned veths; the bridge-guard service.

Runs as root (CAP_NET_ADMIN) as a long-lived service process, never in PID 1,
in the network namespace that holds the bridge (the sandbox, beside its
dockerd); on only when HELIX_BRIDGE_GUARD=BRIDGE=ADDRESS/PREFIX is set.

Why (seed 001): starting a per-session dockerd sometimes deletes the main
dockerd's bridge. Every container on it (helix-buildkit, buildx builders, the
desktop) loses its network until someone recreates the bridge and puts the
veths back. Helix did that in Go, once, right after starting a session
dockerd; here it is a watcher, so a deletion at any time is repaired.

How:
- Detection: a netlink subscription to link events (pyroute2 IPRoute
  bind() + get(), in a reader thread that only wakes the main loop). On each
  wake-up, and every RESYNC seconds in case an event was lost, the bridge's
  existence is checked. Where subscriptions are refused (gVisor), or with
  HELIX_BRIDGE_GUARD_MODE=poll, the check runs every POLL seconds instead.
- Repair: only when the bridge is gone. Recreate it, give it its address,
  bring it up, and attach every veth without a master, except eth* and lo
  (inside a container eth0 is itself a veth, and attaching it cut the sandbox
  off: seed 001) and names starting with a skip prefix (vethb-: Hydra's
  session veths, which belong to the session bridges). "Orphan" means kind
  veth with no master, as in Helix: remembering the bridge's ports instead
  would miss ports added since the last look, and a veth Docker is still
  wiring to another bridge is moved there by Docker anyway. A bridge that
  exists is never touched: its owner (dockerd, the network step) manages it.
- Speed: the kernel takes tens of milliseconds to finish deleting a bridge
  and the recreation waits for it; with events, traffic flows again right
  after that (bench/bridge_guard.py), with polling up to POLL later.
- One line per repair: "recreated sandbox0 10.213.0.1/24; re-attached veth1, veth2".

Readiness is sd_notify READY=1 once the bridge exists (after the first check).
TERM or INT ends the guard with exit 0; it holds no state worth saving.
"""

from __future__ import annotations

import errno
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface
from types import FrameType
from typing import Any, Protocol

from helix_init.exitcodes import Exit
from helix_init.hostinfo import is_gvisor
from helix_init.problems import ConfigError
from helix_init.settings.sibling import (
    GUARD,
    GUARD_MODE,
    GuardConfig,
    guard_config,
    never_touched,
)

POLL = 0.2  # seconds between checks without netlink events
RESYNC = 5.0  # seconds between checks with events, in case one was lost (ENOBUFS)
Say = Callable[[str], None]


@dataclass(frozen=True)
class Link:
    """A network interface as the decision needs it."""

    index: int
    name: str
    kind: str | None  # IFLA_INFO_KIND: veth, bridge, ...; None for plain devices
    master: int | None  # index of the bridge it is attached to


@dataclass(frozen=True)
class Repair:
    """Recreate `bridge` with `address`, up, and attach `attach` (veth names) to it."""

    bridge: str
    address: IPv4Interface
    attach: tuple[str, ...]


# --- decisions (pure) ---------------------------------------------------------


def is_orphan(link: Link, skip_prefixes: Sequence[str]) -> bool:
    """A veth that lost its bridge and is ours to re-attach."""
    if link.kind != "veth" or link.master is not None:
        return False
    return not never_touched(link.name) and not link.name.startswith(tuple(skip_prefixes))


def needed_repair(config: GuardConfig, links: Iterable[Link]) -> Repair | None:
    """None while the bridge exists; else how to bring it back."""
    links = list(links)
    if any(link.name == config.bridge for link in links):
        return None
    orphans = sorted(
        (link.name for link in links if is_orphan(link, config.skip_prefixes)), key=_natural
    )
    return Repair(config.bridge, config.address, tuple(orphans))


def describe(repair: Repair, attached: Sequence[str]) -> str:
    """The one log line of a repair."""
    which = f"re-attached {', '.join(attached)}" if attached else "no orphaned veths to re-attach"
    return f"recreated {repair.bridge} {repair.address}; {which}"


def _natural(name: str) -> tuple[str, int]:
    """veth2 before veth10."""
    stem = name.rstrip("0123456789")
    digits = name[len(stem) :]
    return stem, int(digits) if digits else -1


# --- the loop -------------------------------------------------------------------


class Net(Protocol):
    """The netlink operations the guard needs (a fake is a few lines)."""

    def exists(self, name: str) -> bool: ...

    def links(self) -> list[Link]: ...

    def recreate(self, repair: Repair) -> list[str]:
        """Carry out `repair`; the names actually attached (a veth may vanish meanwhile)."""
        ...


class Waiter(Protocol):
    def wait(self) -> None:
        """Return when the bridge should be checked again (an event, or time passed)."""
        ...


class EventsLost(Exception):
    """The netlink subscription failed or was refused; the guard polls instead."""


def guard(
    config: GuardConfig, net: Net, waiter: Waiter, say: Say, ready: Callable[[], None]
) -> None:
    """Check, repair, report ready, wait; forever (until a signal, or EventsLost)."""
    while True:
        if not net.exists(config.bridge):
            repair = needed_repair(config, net.links())
            if repair is not None:
                say(describe(repair, net.recreate(repair)))
        ready()
        waiter.wait()


class PollWaiter:
    def __init__(self, interval: float = POLL, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = interval
        self.sleep = sleep

    def wait(self) -> None:
        self.sleep(self.interval)


class EventWaiter:
    """Wakes on netlink link events, read by a thread; raises EventsLost when those stop.

    The thread blocks in get(): pyroute2 0.9 reads ahead into its own queue,
    so select() on the socket would miss events that are already read.
    """

    def __init__(self, resync: float = RESYNC) -> None:
        self.resync = resync
        self.events: queue.Queue[BaseException | None] = queue.Queue()
        self.refused: BaseException | None = None
        started = threading.Event()
        threading.Thread(target=self._read, args=(started,), daemon=True).start()
        started.wait()
        if self.refused is not None:
            raise EventsLost(str(self.refused) or type(self.refused).__name__)

    def _read(self, started: threading.Event) -> None:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            ipr = IPRoute()
            ipr.bind(groups=RTMGRP_LINK)
        except Exception as exc:  # gVisor: EPERM, EINVAL or EOPNOTSUPP
            self.refused = exc
            started.set()
            return
        started.set()
        while True:
            try:
                ipr.get()
            except NetlinkError as exc:
                if exc.code != errno.ENOBUFS:  # ENOBUFS: events were dropped; a check resyncs
                    self.events.put(exc)
                    return
            except Exception as exc:
                self.events.put(exc)
                return
            self.events.put(None)

    def wait(self) -> None:
        try:
            item = self.events.get(timeout=self.resync)
        except queue.Empty:
            return
        while True:  # one check for a burst of events
            if item is not None:
                raise EventsLost(str(item) or type(item).__name__)
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return


RTMGRP_LINK = 1  # <linux/rtnetlink.h>; pyroute2 0.7 and 0.9 export the same value


# --- I/O: netlink -----------------------------------------------------------------


class Netlink:
    """The guard's Net over pyroute2 (one request socket, kept open)."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute

        self.ipr: Any = IPRoute()

    def exists(self, name: str) -> bool:
        try:
            socket.if_nametoindex(name)  # one ioctl: polling every 0.2 s costs nothing
        except OSError:
            return False
        return True

    def links(self) -> list[Link]:
        found = []
        for msg in self.ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            found.append(
                Link(msg["index"], msg.get_attr("IFLA_IFNAME"), kind, msg.get_attr("IFLA_MASTER"))
            )
        return found

    def recreate(self, repair: Repair) -> list[str]:
        ipr = self.ipr
        _tolerate(errno.EEXIST, ipr.link, "add", ifname=repair.bridge, kind="bridge")
        index = ipr.link_lookup(ifname=repair.bridge)[0]
        address, prefix = str(repair.address.ip), repair.address.network.prefixlen
        _tolerate(errno.EEXIST, ipr.addr, "add", index=index, address=address, prefixlen=prefix)
        ipr.link("set", index=index, state="up")
        attached = []
        for name in repair.attach:
            found = ipr.link_lookup(ifname=name)
            if found and _tolerate(errno.ENODEV, ipr.link, "set", index=found[0], master=index):
                attached.append(name)
        return attached


def _tolerate(code: int, action: Callable[..., object], *args: object, **kwargs: object) -> bool:
    """Run a netlink request; False if it failed with `code` (someone got there first)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        action(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code != code:
            raise
        return False
    return True


def notify_ready(env: Mapping[str, str]) -> None:
    """sd_notify READY=1 to $NOTIFY_SOCKET, when there is one (under helix-init or systemd)."""
    path = env.get("NOTIFY_SOCKET", "")
    if not path:
        return
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(b"READY=1", address)
        except OSError as exc:
            print(f"warning: cannot notify readiness on {path}: {exc}", flush=True)


# --- the service --------------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _choose_waiter(config: GuardConfig) -> tuple[Waiter, str]:
    """Netlink events where they work, else polling; and how, for the start-up line."""
    polling = f"polling every {POLL:g}s"
    if config.mode == "poll":
        return PollWaiter(), f"{polling} ({GUARD_MODE}=poll)"
    uname = os.uname()
    if is_gvisor(uname.release, uname.version):
        return PollWaiter(), f"{polling}: netlink subscriptions are refused under gVisor"
    try:
        return EventWaiter(), "netlink link events"
    except EventsLost as exc:
        return PollWaiter(), f"{polling}: netlink subscription refused ({exc})"


def main(env: Mapping[str, str], args: Sequence[str] = ()) -> int:
    """`helix-init bridge-guard`: 0 on TERM/INT, 78 bad or missing config, 1 netlink failed."""
    from pyroute2.netlink.exceptions import NetlinkError

    def say(text: str) -> None:
        print(text, flush=True)

    if args:
        print(f"usage: helix-init bridge-guard (configured by {GUARD})", file=sys.stderr)
        return Exit.USAGE
    try:
        config = guard_config(env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"bridge-guard: {problem}", file=sys.stderr)
        return Exit.CONFIG
    if config is None:
        print(f"bridge-guard: {GUARD} is not set: nothing to guard", file=sys.stderr)
        return Exit.CONFIG
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    waiter, how = _choose_waiter(config)
    skipped = ", ".join(["eth*", "lo", *(f"{p}*" for p in config.skip_prefixes)])
    say(f"guarding {config.bridge} {config.address} by {how}; never touching {skipped}")
    announced: list[bool] = []

    def ready() -> None:
        if not announced:
            notify_ready(env)
            announced.append(True)

    try:
        net = Netlink()
        while True:
            try:
                guard(config, net, waiter, say, ready)
            except EventsLost as exc:
                say(f"netlink events stopped ({exc}): polling every {POLL:g}s")
                waiter = PollWaiter()
    except _Stop:
        return Exit.OK
    except (OSError, NetlinkError) as exc:
        print(f"bridge-guard: cannot repair {config.bridge}: {exc}", file=sys.stderr)
        return Exit.FAILED
