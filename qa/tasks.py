"""QA's Celery task: thin and idempotent (STYLE.md rule 5)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="qa.daily", soft_time_limit=300, time_limit=360)
def qa_daily_task() -> dict[str, int]:
    """Fill the review queue and close the fix requests whose source was reviewed (beat: daily).

    Idempotent: the queue fill queues a conversation once per rule (a unique constraint) and a closed request is not
    closed again, so a redelivered or doubled run changes nothing.
    """
    from qa.services import fix_requests_close_reviewed, qa_queue_fill

    filled = qa_queue_fill()
    return {**filled.as_dict(), "fix requests closed": fix_requests_close_reviewed()}
