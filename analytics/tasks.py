"""Analytics' Celery task: thin and idempotent (STYLE.md rule 5)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="analytics.rollup", soft_time_limit=900, time_limit=960)
def analytics_rollup_task() -> int:
    """Recompute the recent days' metric rollups (beat: nightly). Idempotent: each day is replaced whole."""
    from analytics.rollups import rollup_recent

    return rollup_recent()
