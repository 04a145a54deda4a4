"""QA's writes, each one audited service (STYLE.md rule 1)."""

from qa.services.fixes import (
    conversation_flag,
    fix_request_close,
    fix_request_create,
    fix_requests_close_reviewed,
)
from qa.services.queue import qa_queue_fill
from qa.services.regression import regression_case_from_review
from qa.services.review import may_review, may_settle, qa_item_settle, qa_review_submit

__all__ = [
    "conversation_flag",
    "fix_request_close",
    "fix_request_create",
    "fix_requests_close_reviewed",
    "may_review",
    "may_settle",
    "qa_item_settle",
    "qa_queue_fill",
    "qa_review_submit",
    "regression_case_from_review",
]
