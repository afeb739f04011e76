"""DNS for inner containers: read this level's resolv.conf, plan passthrough or relay, relay."""
