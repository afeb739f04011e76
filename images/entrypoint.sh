#!/bin/sh
# COMPAT: Helm charts wrap the images with `exec /entrypoint.sh`.
exec helix-init "$@"
