"""Admin for governance gates."""
