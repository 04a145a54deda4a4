"""Governance admin, one module per subdomain."""

from governance.admin import approvals, audit, gates, mappings, policies, retention, secrets  # noqa: F401
