"""Models of the analytics app (they arrive with its issue)."""
