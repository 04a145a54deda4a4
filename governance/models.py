"""Models of the governance app (they arrive with its issue)."""
