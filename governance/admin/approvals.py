"""Admin for governance approvals."""
