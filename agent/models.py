"""Models of the agent app (they arrive with its issue)."""
