"""authorize() decides from the policy and the channel's rollout stage, and audits every decision."""

from __future__ import annotations

import pytest

from governance.authorization import authorize, check_field_write, readable_fields
from governance.models import AuditRecord, ChannelRollout, EventType
from governance.policies import Outcome
from governance.tests.factories import ActionPolicyFactory, FieldMappingFactory

pytestmark = pytest.mark.django_db


def test_an_action_follows_the_channels_stage_and_is_audited(verified_customer) -> None:  # type: ignore[no-untyped-def]
    ActionPolicyFactory(
        action="refund", tier="automated", enabled_from_stage=4, limit_argument="amount", automated_limit="50.00"
    )
    channel = ChannelRollout.objects.create(channel="web_chat", stage=3)
    early = authorize(actor=verified_customer, action="refund", args={"amount": "20"}, conversation_id="conv-9")
    assert early.outcome == Outcome.DENY and "stage 4" in early.reason

    channel.stage = 4
    channel.save()
    assert authorize(actor=verified_customer, action="refund", args={"amount": "20"}).outcome == Outcome.ALLOW
    assert authorize(actor=verified_customer, action="refund", args={"amount": "80"}).outcome == Outcome.NEEDS_APPROVAL

    records = list(AuditRecord.objects.filter(event_type=EventType.ACTION_DECISION).order_by("seq"))
    assert [r.decision for r in records] == ["deny", "allow", "needs_approval"]
    assert records[0].conversation_id == "conv-9"
    assert records[0].data == {"args": {"amount": "20"}, "channel": "web_chat", "stage": 3}
    assert records[0].actor_label == "customer C-1001"


def test_an_unknown_action_is_denied_and_still_audited(anonymous_visitor) -> None:  # type: ignore[no-untyped-def]
    decision = authorize(actor=anonymous_visitor, action="delete_everything", args={})
    assert decision.outcome == Outcome.DENY
    assert AuditRecord.objects.get().reason == "no action policy: actions without a policy are refused"


def test_only_mapped_readable_fields_are_listed(email_verified_customer, verified_customer) -> None:  # type: ignore[no-untyped-def]
    FieldMappingFactory(field_path="plan", read_min_verification=1)
    FieldMappingFactory(field_path="address.line1", read_min_verification=2)
    FieldMappingFactory(field_path="lifetime_value", read_roles=["support_agent"])
    FieldMappingFactory(field_path="notes", enabled=False)
    seen = readable_fields(actor=email_verified_customer, system="demo_crm", obj="customer")
    assert set(seen) == {"plan", "address.line1", "lifetime_value"}  # the disabled mapping is invisible
    assert {path for path, verdict in seen.items() if verdict.allowed} == {"plan"}
    seen = readable_fields(actor=verified_customer, system="demo_crm", obj="customer")
    assert {path for path, verdict in seen.items() if verdict.allowed} == {"plan", "address.line1"}


def test_a_write_outside_the_mapping_is_refused(verified_customer) -> None:  # type: ignore[no-untyped-def]
    FieldMappingFactory(
        field_path="shipping_address", write_roles=["customer"], value_rule="pattern", allowed_pattern=r"[^<>]{5,120}"
    )
    assert check_field_write(
        actor=verified_customer,
        system="demo_crm",
        obj="customer",
        field_path="shipping_address",
        value="12 Roast Lane, Bristol",
    ).allowed
    assert not check_field_write(
        actor=verified_customer, system="demo_crm", obj="customer", field_path="shipping_address", value="<b>"
    ).allowed
    refused = check_field_write(
        actor=verified_customer, system="demo_crm", obj="customer", field_path="credit", value="100"
    )
    assert (refused.allowed, refused.reason) == (False, "unmapped field: the agent may not write it")
