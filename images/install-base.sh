#!/bin/sh
# Installs what both images need from Debian's registry only: the Docker engine,
# iptables (both backends), and helix-init's Python dependencies as Debian
# packages (pip inside a build may not reach PyPI; see README "Images").
set -eu
# Keep package scripts from starting daemons during the build.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    docker.io containerd runc iptables iproute2 procps ca-certificates util-linux \
    python3 python3-psutil python3-docker python3-pyroute2 python3-tenacity \
    supervisor
# The downloaded .debs too (190 MB: a debootstrap base has no docker-clean hook):
# every nesting level loads this image, so its size is paid once per level.
apt-get clean
rm -rf /var/lib/apt/lists/*
# Debian's supervisor package ships a system-wide service we never use:
# helix-init renders and owns its own supervisord.
rm -f /etc/supervisor/conf.d/* /etc/init.d/supervisor
