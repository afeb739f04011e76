"""Services: services.d drop-ins parsed into a frozen plan (spec) and their start order (graph)."""
