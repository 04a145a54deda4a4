"""Admin for governance policies."""
