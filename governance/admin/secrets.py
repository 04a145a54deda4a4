"""Admin for governance secrets."""
