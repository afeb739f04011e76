# The desktop user's runtime folder, where the compositor puts its Wayland
# socket and desktop-bridge looks for it (there is no logind in the container).
install -d -m 0700 -o "$HELIX_DESKTOP_USER" -g "$(id -g "$HELIX_DESKTOP_USER")" "$XDG_RUNTIME_DIR"
