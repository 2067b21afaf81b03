"""Ways in: the CLI (and later the HTTP API and web UI)."""
