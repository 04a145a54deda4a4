"""QA review: what is sampled and how it is scored (config), the review queue and its reviews (review), and what a
failed review leads to (fixes)."""

from qa.models.config import AppliesTo, RuleKind, SamplingRule, ScorecardCriterion
from qa.models.fixes import ConversationFlag, FixRequest, FixStatus
from qa.models.review import (
    CriterionResult,
    CriterionScore,
    ItemStatus,
    Review,
    ReviewAssignment,
    ReviewItem,
    ReviewReason,
    TurnAnnotation,
)

__all__ = [
    "AppliesTo",
    "ConversationFlag",
    "CriterionResult",
    "CriterionScore",
    "FixRequest",
    "FixStatus",
    "ItemStatus",
    "Review",
    "ReviewAssignment",
    "ReviewItem",
    "ReviewReason",
    "RuleKind",
    "SamplingRule",
    "ScorecardCriterion",
    "TurnAnnotation",
]
