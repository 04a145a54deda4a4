"""Models of the connectors app (they arrive with its issue)."""
