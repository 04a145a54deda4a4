"""Admin for governance mappings."""
