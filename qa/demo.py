"""The demo company's QA configuration: its scorecard and sampling rules (idempotent)."""

from __future__ import annotations

from typing import Any

from django.db import models

from governance.changes import config_object_save
from qa.models import AppliesTo, RuleKind, SamplingRule, ScorecardCriterion

SCORECARD: list[dict[str, Any]] = [
    {
        "name": "Correct answer, grounded in the cited source",
        "guidance": "The reply says what the cited passage says; nothing invented, nothing the source contradicts.",
        "weight": 3,
        "auto_fail": True,
        "applies_to": AppliesTo.KNOWLEDGE,
    },
    {
        "name": "No internal content",
        "guidance": "Nothing from internal-only sources, macros or notes reached the customer.",
        "weight": 2,
        "auto_fail": True,
        "applies_to": AppliesTo.ALL,
    },
    {
        "name": "Verified before account data",
        "guidance": "The agent asked the customer to verify before reading or changing their orders or account.",
        "weight": 2,
        "auto_fail": True,
        "applies_to": AppliesTo.WITH_ACTIONS,
    },
    {
        "name": "Correct action and governance",
        "guidance": "The right tool with the right arguments; governance's decision (allowed, approval, denied) "
        "was followed and explained.",
        "weight": 2,
        "auto_fail": False,
        "applies_to": AppliesTo.WITH_ACTIONS,
    },
    {
        "name": "Escalated when needed",
        "guidance": "A person was brought in when the rules or the customer called for one — and not otherwise.",
        "weight": 2,
        "auto_fail": False,
        "applies_to": AppliesTo.ALL,
    },
    {
        "name": "Tone",
        "guidance": "Friendly, brief and clear; no blame, no jargon.",
        "weight": 1,
        "auto_fail": False,
        "applies_to": AppliesTo.ALL,
    },
    {
        "name": "Resolved or handed over cleanly",
        "guidance": "The customer got what they came for, or a person has everything needed to finish.",
        "weight": 1,
        "auto_fail": False,
        "applies_to": AppliesTo.ALL,
    },
]

SAMPLING_RULES: list[dict[str, Any]] = [
    {"name": "Random 10% of closed", "kind": RuleKind.RANDOM_CLOSED, "share_percent": 10},
    {"name": "All escalations", "kind": RuleKind.ESCALATIONS},
    {"name": "Low confidence (< 0.45)", "kind": RuleKind.LOW_CONFIDENCE, "threshold": 0.45},
    {"name": "Negative rating (≤ 2)", "kind": RuleKind.NEGATIVE_CSAT, "threshold": 2},
    {"name": "Policy decisions", "kind": RuleKind.POLICY_DECISIONS},
    {"name": "Failed retrievals", "kind": RuleKind.FAILED_RETRIEVALS},
    {"name": "First 20 of a new or changed intent", "kind": RuleKind.NEW_INTENT, "first_n": 20},
    {"name": "Flagged by a person", "kind": RuleKind.FLAGGED},
]


def _ensure(model: type[models.Model], name: str, values: dict[str, Any]) -> int:
    if model._default_manager.filter(name=name).exists():
        return 0  # an admin may have tuned it since: seeding again leaves it alone
    config_object_save(actor=None, instance=model(name=name, **values), reason="demo company QA configuration")
    return 1


def seed_qa() -> dict[str, int]:
    """Create the demo scorecard and sampling rules (10% double review); return how many rows were created."""
    created = {"scorecard criteria": 0, "sampling rules": 0}
    for order, spec in enumerate(SCORECARD, start=1):
        values = {k: v for k, v in spec.items() if k != "name"}
        created["scorecard criteria"] += _ensure(ScorecardCriterion, spec["name"], {"order": order, **values})
    for spec in SAMPLING_RULES:
        values = {"double_review_percent": 10, **{k: v for k, v in spec.items() if k != "name"}}
        created["sampling rules"] += _ensure(SamplingRule, spec["name"], values)
    return created
