"""Bridge guard decisions and its loop, against a fake netlink (no namespace needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Interface

import pytest

from helix_init.settings.sibling import GuardConfig
from helix_init.sibling.bridgeguard import (
    Link,
    PollWaiter,
    Repair,
    describe,
    guard,
    is_orphan,
    needed_repair,
)

ADDR = IPv4Interface("10.213.0.1/24")
CONFIG = GuardConfig("sandbox0", ADDR)
BR = 10  # the bridge's index while it exists


def link(index: int, name: str, kind: str | None = "veth", master: int | None = None) -> Link:
    return Link(index, name, kind, master)


AROUND = [
    link(1, "lo", None),
    link(2, "eth0"),  # inside a container, eth0 is a veth without a master
    link(3, "eth1"),
    link(4, "vethb-x"),  # Hydra's session veth
    link(5, "dummy0", "dummy"),
    link(6, "hydra1", "bridge"),
    link(7, "vethabc", master=6),  # on another bridge: not ours
]


def test_an_existing_bridge_needs_nothing() -> None:
    links = [*AROUND, link(BR, "sandbox0", "bridge"), link(11, "veth1", master=BR)]
    assert needed_repair(CONFIG, links) is None


def test_a_missing_bridge_takes_back_every_orphaned_veth_in_natural_order() -> None:
    links = [*AROUND, link(11, "veth10"), link(12, "veth2"), link(13, "veth1")]
    assert needed_repair(CONFIG, links) == Repair("sandbox0", ADDR, ("veth1", "veth2", "veth10"))


def test_a_missing_bridge_without_orphans_is_still_recreated() -> None:
    assert needed_repair(CONFIG, AROUND) == Repair("sandbox0", ADDR, ())


ORPHANS = [
    (link(1, "veth1"), True),
    (link(1, "veth1", master=6), False),
    (link(1, "eth0"), False),
    (link(1, "eth-anything"), False),
    (link(1, "lo", None), False),
    (link(1, "vethb-x"), False),
    (link(1, "hydra-veth"), False),  # a configured skip prefix
    (link(1, "tap0", "tun"), False),
    (link(1, "odd", None), False),
]


@pytest.mark.parametrize(("candidate", "orphan"), ORPHANS)
def test_who_counts_as_an_orphan(candidate: Link, orphan: bool) -> None:
    assert is_orphan(candidate, ("vethb-", "hydra-")) is orphan


def test_the_repair_line() -> None:
    repair = Repair("sandbox0", ADDR, ("veth1", "veth2"))
    assert describe(repair, ["veth1", "veth2"]) == (
        "recreated sandbox0 10.213.0.1/24; re-attached veth1, veth2"
    )
    assert (
        describe(repair, []) == "recreated sandbox0 10.213.0.1/24; no orphaned veths to re-attach"
    )


@dataclass
class FakeNet:
    links_now: list[Link]
    done: list[Repair] = field(default_factory=list)

    def exists(self, name: str) -> bool:
        return any(item.name == name for item in self.links_now)

    def links(self) -> list[Link]:
        return list(self.links_now)

    def recreate(self, repair: Repair) -> list[str]:
        self.done.append(repair)
        self.links_now = [
            link(item.index, item.name, item.kind, BR) if item.name in repair.attach else item
            for item in self.links_now
        ] + [link(BR, repair.bridge, "bridge")]
        return [name for name in repair.attach if name != "gone"]


class Done(Exception):
    pass


class ScriptedWaiter:
    """Each wait() runs the next scripted change to the fake; after the last, the test ends."""

    def __init__(self, net: FakeNet, changes: list[list[Link]]) -> None:
        self.net = net
        self.changes = changes

    def wait(self) -> None:
        if not self.changes:
            raise Done
        self.net.links_now = self.changes.pop(0)


def test_guard_repairs_each_deletion_and_reports_ready_before_waiting() -> None:
    bridge = link(BR, "sandbox0", "bridge")
    healthy = [*AROUND, bridge, link(11, "veth1", master=BR), link(12, "veth2", master=BR)]
    deleted = [*AROUND, link(11, "veth1"), link(12, "veth2")]
    net = FakeNet(list(healthy))
    said: list[str] = []
    readies: list[int] = []
    waiter = ScriptedWaiter(net, [healthy, deleted, healthy, [*AROUND, link(12, "veth2")]])
    with pytest.raises(Done):
        guard(CONFIG, net, waiter, said.append, lambda: readies.append(len(said)))
    assert said == [
        "recreated sandbox0 10.213.0.1/24; re-attached veth1, veth2",
        "recreated sandbox0 10.213.0.1/24; re-attached veth2",
    ]
    assert readies and readies[0] == 0  # ready after the first check, nothing to repair then
    assert all(r.attach and "eth0" not in r.attach for r in net.done)


def test_guard_started_without_the_bridge_repairs_before_ready() -> None:
    net = FakeNet([*AROUND, link(11, "veth1")])
    said: list[str] = []
    readies: list[int] = []
    with pytest.raises(Done):
        guard(CONFIG, net, ScriptedWaiter(net, []), said.append, lambda: readies.append(len(said)))
    assert said == ["recreated sandbox0 10.213.0.1/24; re-attached veth1"]
    assert readies == [1]


def test_poll_waiter_sleeps_its_interval() -> None:
    slept: list[float] = []
    PollWaiter(sleep=slept.append).wait()
    assert slept == [0.2]
