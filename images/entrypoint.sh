#!/bin/sh
# COMPAT: Helm charts wrap the images with `exec /entrypoint.sh`, and GOW-based
# images have it as their ENTRYPOINT. In an image with GOW's layout (/opt/gow)
# it keeps GOW's start contract: no arguments run the startup script as $UNAME,
# arguments run as `/bin/bash -c "$@"` (HELIX_INIT_START=gow; docs/migration.md).
# Elsewhere (helix-init's own images) the arguments are the CMD's argv.
if [ -z "${HELIX_INIT_START:-}" ] && [ -d /opt/gow ]; then
    HELIX_INIT_START=gow
    export HELIX_INIT_START
fi
exec helix-init "$@"
