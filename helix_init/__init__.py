"""helix-init: a PID-1 init and service supervisor for Docker-in-Docker containers."""

__version__ = "0.1.0"
