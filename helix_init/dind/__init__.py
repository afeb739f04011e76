"""Docker-in-Docker set-up for one nesting level: the libraries the built-in steps call.

Each module owns one concern and says where it runs; decisions are pure
functions over plain data, and the I/O that feeds them sits in small collector
functions beside them. The steps that call them live in helix_init/builtin/;
the dockerd service's command is helix_init/rundockerd.py (outside this
package, which it would have to import: it starts at every dockerd start).

- facts: read-only preflight facts about this level (facts.json)
- cgroups: v2 delegation and v1 read-write remounts, before dockerd starts
- mountcall: mount(2) through libc, for those remounts
- storage: the storage driver for /var/lib/docker
- netplan: bip, address pools and MTU that clash with nothing around us
- iptables: which iptables backend dockerd sees on its PATH
- daemonjson: daemon.json from the plan, with the operator's file merged in
- dockergroup: the `docker` group and the desktop user's membership
- paths: where the steps hand their results on (under HELIX_INIT_RUN_DIR)

Commands are run through a `Runner` (helix_init/hostcmd.py) that the caller
passes in: PID 1's loop is the only owner of waitpid(-1), so nothing here
spawns a process on its own.
"""

from helix_init.hostcmd import StepError


class DindError(StepError):
    """This level cannot run dockerd as configured; the message is one line saying what to do."""
