"""The demo company's governance configuration (Brewline Coffee). Idempotent: rows that exist are left as an admin
may have edited them; missing rows are created through the audited configuration service."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models, transaction

from governance.changes import config_object_save
from governance.models import (
    ActionPolicy,
    ChannelRollout,
    EscalationRule,
    FieldMapping,
    GateCriterion,
    RetentionRule,
    RolloutGate,
)
from governance.roles import GROUP_NAMES, Role, sync_roles

C, A, M, ADM = Role.CUSTOMER.value, Role.SUPPORT_AGENT.value, Role.SUPPORT_MANAGER.value, Role.SUPPORT_ADMIN.value

# (system, object, field, label, read roles, read verification, write roles, value rule extras, evidence, purpose)
FIELD_MAPPINGS: list[dict[str, Any]] = [
    dict(
        system="demo_crm",
        object="customer",
        field_path="name",
        label="Customer name",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Greet the customer by name once they are verified.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="email",
        label="Email",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Confirm where order and billing emails go.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="plan",
        label="Subscription plan",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Answer plan questions in the customer's context.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="region",
        label="Region",
        read_roles=[C, A, M],
        read_min_verification=0,
        purpose="Pick the right shipping and returns policy.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="lifecycle_stage",
        label="Lifecycle stage",
        read_roles=[A, M],
        read_min_verification=2,
        purpose="Route churn-risk conversations to retention.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="renewal_date",
        label="Renewal date",
        read_roles=[C, A, M],
        read_min_verification=2,
        purpose="Tell the customer when their subscription renews.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="account_owner",
        label="Account owner",
        read_roles=[A, M],
        read_min_verification=2,
        purpose="Name the account manager on a VIP escalation.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="tier",
        label="Account tier",
        read_roles=[A, M],
        read_min_verification=0,
        write_roles=[M],
        value_rule="choices",
        allowed_choices=["standard", "plus", "vip"],
        audit_evidence_required=True,
        purpose="VIP routing and escalation rules.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="shipping_address",
        label="Shipping address",
        read_roles=[C, A, M],
        read_min_verification=2,
        write_roles=[C, A],
        write_min_verification=2,
        value_rule="pattern",
        allowed_pattern=r"[^<>{}\n]{8,200}",
        audit_evidence_required=True,
        retention_days=30,
        purpose="Confirm or change where orders ship.",
    ),
    dict(
        system="demo_crm",
        object="customer",
        field_path="lifetime_value",
        label="Lifetime value",
        read_roles=[M],
        read_min_verification=2,
        audit_evidence_required=True,
        purpose="Refund approvals weigh the customer's history.",
    ),
    dict(
        system="demo_commerce",
        object="order",
        field_path="status",
        label="Order status",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Answer 'where is my order'.",
    ),
    dict(
        system="demo_commerce",
        object="order",
        field_path="items",
        label="Order items",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Confirm what was ordered.",
    ),
    dict(
        system="demo_commerce",
        object="order",
        field_path="shipping.status",
        label="Shipping status",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Answer 'where is my order'.",
    ),
    dict(
        system="demo_commerce",
        object="order",
        field_path="shipping.tracking_number",
        label="Tracking number",
        read_roles=[C, A, M],
        read_min_verification=1,
        purpose="Give the carrier's tracking link.",
    ),
    dict(
        system="demo_commerce",
        object="order",
        field_path="total",
        label="Order total",
        read_roles=[C, A, M],
        read_min_verification=2,
        purpose="Refund amounts are checked against it.",
    ),
    dict(
        system="demo_commerce",
        object="subscription",
        field_path="status",
        label="Subscription status",
        read_roles=[C, A, M],
        read_min_verification=2,
        write_roles=[C, A],
        value_rule="choices",
        allowed_choices=["active", "paused"],
        audit_evidence_required=True,
        purpose="Pause or resume a coffee subscription.",
    ),
    dict(
        system="demo_commerce",
        object="subscription",
        field_path="next_charge_date",
        label="Next charge",
        read_roles=[C, A, M],
        read_min_verification=2,
        purpose="Tell the customer when they will be charged.",
    ),
    dict(
        system="helpdesk",
        object="ticket",
        field_path="priority",
        label="Ticket priority",
        read_roles=[A, M],
        read_min_verification=0,
        write_roles=[A, M],
        value_rule="range",
        allowed_min=Decimal(1),
        allowed_max=Decimal(5),
        purpose="Set the priority of an escalation ticket.",
    ),
]

ACTION_POLICIES: list[dict[str, Any]] = [
    dict(
        action="knowledge_search",
        label="Answer from the help centre",
        tier="read_only",
        allowed_roles=[C, A],
        min_verification=0,
        enabled_from_stage=1,
        description="Search approved knowledge and cite it.",
    ),
    dict(
        action="order_status_lookup",
        label="Look up an order",
        tier="read_only",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=2,
        description="Read an order's status and shipping.",
    ),
    dict(
        action="subscription_lookup",
        label="Look up a subscription",
        tier="read_only",
        allowed_roles=[C, A],
        min_verification=2,
        enabled_from_stage=2,
        description="Read the plan, status and next charge.",
    ),
    dict(
        action="ticket_create",
        label="Create a helpdesk ticket",
        tier="automated",
        allowed_roles=[C, A],
        min_verification=0,
        enabled_from_stage=3,
        description="Hand over to a person with the full context.",
    ),
    dict(
        action="crm_note",
        label="Add a CRM note",
        tier="automated",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=3,
        description="Leave a summary on the customer's record.",
    ),
    dict(
        action="address_change",
        label="Change a shipping address",
        tier="automated",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=4,
        description="Change where an unshipped order goes.",
    ),
    dict(
        action="subscription_pause",
        label="Pause a subscription",
        tier="automated",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=4,
        description="Pause deliveries; resume any time.",
    ),
    dict(
        action="subscription_resume",
        label="Resume a subscription",
        tier="automated",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=4,
        description="Resume paused deliveries.",
    ),
    dict(
        action="refund",
        label="Refund an order",
        tier="automated",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=4,
        limit_argument="amount",
        automated_limit=Decimal("50.00"),
        hard_limit=Decimal("500.00"),
        approval_expiry_hours=24,
        description="Refund up to 50 at once; above that a manager approves; above 500 it is refused.",
    ),
    dict(
        action="subscription_cancel",
        label="Cancel a subscription",
        tier="approval_required",
        allowed_roles=[C, A],
        min_verification=1,
        enabled_from_stage=4,
        approval_expiry_hours=48,
        description="Cancellation is confirmed by a person (retention offer first).",
    ),
]

ESCALATION_RULES: list[dict[str, Any]] = [
    dict(name="Low confidence answer", trigger="low_confidence", threshold=Decimal("0.45"), priority=3),
    dict(name="Frustrated customer", trigger="frustration", threshold=Decimal("-0.5"), priority=2),
    dict(name="VIP account", trigger="vip", account_tiers=["vip"], priority=2, queue="vip"),
    dict(
        name="Legal or compliance",
        trigger="compliance",
        priority=1,
        queue="compliance",
        keywords=["lawyer", "legal action", "gdpr", "data protection", "chargeback", "ombudsman"],
    ),
    dict(name="Refund above policy", trigger="refund_over_policy", threshold=Decimal("500.00"), priority=2),
    dict(name="Going in circles", trigger="loop", threshold=Decimal("3"), priority=3),
    dict(
        name="Asked for a person",
        trigger="human_requested",
        priority=3,
        keywords=["a human", "human agent", "a person", "real person", "agent please", "speak to someone"],
    ),
    dict(name="A connected system failed", trigger="connector_failure", priority=2),
]

RETENTION_RULES: list[dict[str, Any]] = [
    dict(data_class="transcripts", days=365, action="mask"),
    dict(data_class="crm_values", days=30, action="delete"),
    dict(data_class="audit_evidence", days=2555, action="delete"),
    dict(data_class="analytics_events", days=730, action="delete"),
]

# Gate into each stage of web chat: entry criteria (must hold to move up) and rollback criteria (fall back when met),
# each (metric, comparator, threshold, minimum sample). The minimums keep a gate from opening on a handful of reviews
# (a real launch would ask for more: the demo's sampled conversations are few) and a rollback from firing on a few
# questions; one reviewed policy breach is enough to fall back.
GATES: dict[int, dict[str, Any]] = {
    2: dict(
        signoffs=["permission_scope_review"],
        entry=[
            ("source_freshness", "gte", "0.90", 0),
            ("qa_pass_rate", "gte", "0.85", 10),
            ("regression_pass_rate", "gte", "0.95", 30),
        ],
    ),
    3: dict(
        signoffs=["support_owner"],
        entry=[("escalation_accuracy", "gte", "0.90", 10), ("regression_pass_rate", "gte", "0.95", 30)],
    ),
    4: dict(
        signoffs=["permission_scope_review", "support_owner"],
        entry=[
            ("qa_pass_rate", "gte", "0.90", 10),
            ("escalation_accuracy", "gte", "0.92", 10),
            ("regression_pass_rate", "gte", "0.97", 30),
        ],
    ),
    5: dict(
        signoffs=["permission_scope_review", "support_owner"],
        entry=[("containment_rate", "gte", "0.55", 100), ("csat", "gte", "4.2", 30)],
    ),
}
ROLLBACK = [
    ("reopen_rate", "gte", "0.15", 20),
    ("policy_breach_rate", "gte", "0.01", 0),
    ("failed_retrieval_rate", "gte", "0.25", 20),
]


def _staff(username: str, role: Role, first: str, last: str) -> Any:
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"first_name": first, "last_name": last, "is_staff": True, "email": f"{username}@brewline.example"},
    )
    if created:
        user.set_unusable_password()  # demo owners; people log in with the admin account or their own
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=GROUP_NAMES[role]))
    return user


def _ensure(model: type[models.Model], lookup: dict[str, Any], values: dict[str, Any]) -> tuple[models.Model, bool]:
    existing = model._default_manager.filter(**lookup).first()
    if existing is not None:
        return existing, False
    return config_object_save(actor=None, instance=model(**lookup, **values), reason="demo company seed"), True


@transaction.atomic
def seed_governance() -> dict[str, int]:
    """Create the demo company's staff owners and governance configuration; return how many rows were created."""
    sync_roles()
    owner = _staff("maya.ops", Role.SUPPORT_ADMIN, "Maya", "Okafor")
    fallback = _staff("omar.lead", Role.SUPPORT_MANAGER, "Omar", "Haddad")
    _staff("sam.support", Role.SUPPORT_AGENT, "Sam", "Reyes")
    _staff("quinn.qa", Role.QA_REVIEWER, "Quinn", "Larsen")
    created: dict[str, int] = {
        "field mappings": 0,
        "action policies": 0,
        "escalation rules": 0,
        "retention rules": 0,
        "rollout rows": 0,
    }
    for spec in FIELD_MAPPINGS:
        lookup = {k: spec[k] for k in ("system", "object", "field_path")}
        values = {k: v for k, v in spec.items() if k not in lookup}
        created["field mappings"] += _ensure(
            FieldMapping, lookup, {"owner": owner, "fallback_owner": fallback, **values}
        )[1]
    for spec in ACTION_POLICIES:
        created["action policies"] += _ensure(
            ActionPolicy, {"action": spec["action"]}, {k: v for k, v in spec.items() if k != "action"}
        )[1]
    for spec in ESCALATION_RULES:
        created["escalation rules"] += _ensure(
            EscalationRule, {"name": spec["name"]}, {k: v for k, v in spec.items() if k != "name"}
        )[1]
    for spec in RETENTION_RULES:
        created["retention rules"] += _ensure(
            RetentionRule, {"data_class": spec["data_class"]}, {k: v for k, v in spec.items() if k != "data_class"}
        )[1]
    channel, made = _ensure(ChannelRollout, {"channel": "web_chat"}, {"stage": 4, "traffic_percent": 100})
    created["rollout rows"] += made
    if made:
        for stage, spec in GATES.items():
            gate, _ = _ensure(
                RolloutGate,
                {"channel": channel, "stage": stage},
                {"required_signoffs": spec["signoffs"], "traffic_percent": 100 if stage < 5 else 25},
            )
            for kind, criteria in (("entry", spec["entry"]), ("rollback", ROLLBACK)):
                for metric, comparator, threshold, min_sample in criteria:
                    _ensure(
                        GateCriterion,
                        {"gate": gate, "kind": kind, "metric": metric},
                        {"comparator": comparator, "threshold": Decimal(threshold), "min_sample": min_sample},
                    )
    return created
