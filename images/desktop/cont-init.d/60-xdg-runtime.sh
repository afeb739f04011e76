# The desktop user's runtime folder, where the compositor puts its Wayland
# socket and desktop-bridge looks for it (there is no logind in the container).
# HELIX_DESKTOP_USER and XDG_RUNTIME_DIR come from the user step (05-helix-user).
if [ -z "${HELIX_DESKTOP_USER:-}" ] || [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    echo "no desktop user (HELIX_DESKTOP_USER or XDG_RUNTIME_DIR unset): no runtime folder"
    return 0
fi
install -d -m 0700 -o "$HELIX_DESKTOP_USER" -g "$(id -g "$HELIX_DESKTOP_USER")" "$XDG_RUNTIME_DIR"
