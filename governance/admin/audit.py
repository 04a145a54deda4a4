"""Admin for governance audit."""
