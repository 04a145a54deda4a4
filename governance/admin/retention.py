"""Admin for governance retention."""
