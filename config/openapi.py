"""drf-spectacular hooks."""

from __future__ import annotations

from typing import Any

# Endpoints served by embedded third-party apps: documented by their own projects, not part of Steward's API.
FOREIGN_PREFIXES = ("/helpdesk/",)


def exclude_foreign_endpoints(
    endpoints: list[tuple[str, str, str, Any]], **kwargs: Any
) -> list[tuple[str, str, str, Any]]:
    """Keep only Steward's own endpoints in the schema."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(FOREIGN_PREFIXES)]
