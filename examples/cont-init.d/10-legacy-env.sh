# A script written for the old entrypoint, which sourced every file in
# /etc/cont-init.d into one shell. It needs no exec bit. It exports a variable
# for the later steps and the CMD, then stops with `exit 0`: under a sourcing
# entrypoint that `exit` ended the whole start-up; under helix-init it ends
# only this script, and the export is still carried.
export DEMO_GREETING="hello from 10-legacy-env.sh"

if [ -z "${DEMO_GPU:-}" ]; then
    echo "DEMO_GPU is not set: no GPU set-up, leaving early with exit 0"
    exit 0
fi
echo "setting up GPU $DEMO_GPU"
