"""Helpdesk webhooks at the door: Zendesk's signature (right, wrong, missing, stale, over an altered body), Chatwoot's
URL token, replays refused, bodies in the vendors' documented shapes or a 400 naming the field, and the answers for
unknown connectors, other methods and oversized bodies. The test payloads themselves are checked against the
vendors' contracts (../shared/contracts). What the deliveries record is agent/tests/test_ticket_outcomes.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connectors.models import Connector, WebhookDelivery
from connectors.tests.contracts import CONTRACTS_DIR, contract_or_skip
from connectors.webhooks import (
    CHATWOOT,
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TICKET_STATES,
    TIMESTAMP_HEADER,
    ZENDESK,
    Ignored,
    PayloadInvalid,
    chatwoot_update,
    connector_webhook_token_rotate,
    webhook_deliveries_prune,
    zendesk_update,
)
from governance.models import AuditRecord, EventType, SecretKind
from governance.secrets import secret_create
from governance.tests.factories import UserFactory

SIGNING_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # Zendesk's documented test secret, used as is
TICKET_CREATED = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
INBOX = 7

# --- Payloads, in the shapes the vendors document ------------------------------------------------------------------


def zendesk_time(moment: datetime) -> str:
    """Zendesk writes event times with nine fractional digits: ``2025-01-08T10:12:07.672717030Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "030Z"


def _zendesk_detail(ticket_id: str, status: str) -> dict[str, Any]:
    return {
        "actor_id": "8447388090494",
        "assignee_id": "8447388090494",
        "brand_id": "8447346621310",
        "created_at": TICKET_CREATED.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "custom_status": "8447320465790",
        "description": "Escalated by Steward",
        "external_id": "7d1f0c1e-0000-4000-8000-000000000001",
        "form_id": "8646151517822",
        "group_id": "8447320466430",
        "id": ticket_id,
        "is_public": True,
        "organization_id": "8447346622462",
        "priority": "HIGH",
        "requester_id": "8447388090495",
        "status": status,
        "subject": "Chat escalation: my grinder stopped",
        "submitter_id": "8447388090494",
        "tags": ["steward"],
        "type": "INCIDENT",
        "updated_at": TICKET_CREATED.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "via": {"channel": "web_service"},
    }


def zendesk_status_event(
    ticket_id: str = "4242", current: str = "SOLVED", previous: str = "OPEN", *, at: datetime | None = None
) -> dict[str, Any]:
    """A ``zen:event-type:ticket.status_changed`` event (Zendesk webhooks, ticket events)."""
    return {
        "account_id": 12514403,
        "detail": _zendesk_detail(ticket_id, current),
        "event": {"current": current, "previous": previous},
        "id": str(uuid.uuid4()),
        "subject": f"zen:ticket:{ticket_id}",
        "time": zendesk_time(at or timezone.now()),
        "type": "zen:event-type:ticket.status_changed",
        "zendesk_event_version": "2022-11-06",
    }


def zendesk_comment_event(
    ticket_id: str = "4242", *, public: bool = True, staff: bool = True, at: datetime | None = None
) -> dict[str, Any]:
    """A ``zen:event-type:ticket.comment_added`` event."""
    return {
        "account_id": 12514403,
        "detail": _zendesk_detail(ticket_id, "OPEN"),
        "event": {
            "comment": {
                "author": {"id": "8447388090494", "is_staff": staff, "name": "Sam Agent"},
                "body": "Thanks for waiting: a replacement grinder is on its way.",
                "id": "9001",
                "is_public": public,
            }
        },
        "id": str(uuid.uuid4()),
        "subject": f"zen:ticket:{ticket_id}",
        "time": zendesk_time(at or timezone.now()),
        "type": "zen:event-type:ticket.comment_added",
        "zendesk_event_version": "2022-11-06",
    }


def chatwoot_conversation(conversation_id: int = 55, status: str = "open", *, updated: float = 0.0) -> dict[str, Any]:
    """A conversation as Chatwoot's webhooks send it (its display id as ``id``, epoch-second times)."""
    created = TICKET_CREATED.timestamp()
    return {
        "additional_attributes": {},
        "can_reply": True,
        "channel": "Channel::Api",
        "contact_inbox": {"id": 31, "contact_id": 12, "inbox_id": INBOX, "source_id": "steward-ada"},
        "id": conversation_id,
        "inbox_id": INBOX,
        "messages": [],
        "labels": ["steward"],
        "meta": {"sender": {"id": 12, "name": "Ada", "type": "contact"}, "assignee": None},
        "status": status,
        "custom_attributes": {},
        "snoozed_until": None,
        "unread_count": 0,
        "first_reply_created_at": None,
        "priority": "high",
        "waiting_since": 0,
        "agent_last_seen_at": 0,
        "contact_last_seen_at": 0,
        "last_activity_at": int(updated or created),
        "timestamp": int(updated or created),
        "created_at": int(created),
        "updated_at": updated or created,
    }


def chatwoot_status_event(
    conversation_id: int = 55, status: str = "resolved", *, at: datetime | None = None
) -> dict[str, Any]:
    """``conversation_status_changed``: the conversation itself, with the event's name and what changed."""
    updated = (at or timezone.now()).timestamp()
    return {
        **chatwoot_conversation(conversation_id, status, updated=updated),
        "event": "conversation_status_changed",
        "changed_attributes": [{"status": {"previous_value": "open", "current_value": status}}],
    }


def chatwoot_message_event(
    conversation_id: int = 55,
    *,
    message_id: int = 901,
    message_type: str = "outgoing",
    private: bool = False,
    sender_type: str = "user",
    at: datetime | None = None,
) -> dict[str, Any]:
    """``message_created``: the message, its sender and its conversation (Chatwoot webhook events)."""
    return {
        "event": "message_created",
        "id": message_id,
        "content": "Thanks for waiting: a replacement grinder is on its way.",
        "created_at": (at or timezone.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "message_type": message_type,
        "content_type": "text",
        "content_attributes": {},
        "source_id": None,
        "private": private,
        "sender": {"id": 3, "name": "Sam Agent", "email": "sam@brewline.example", "type": sender_type},
        "conversation": chatwoot_conversation(conversation_id, "open"),
        "account": {"id": 1, "name": "Brewline"},
        "inbox": {"id": INBOX, "name": "Steward escalations"},
    }


def zendesk_headers(body: bytes, *, secret: str = SIGNING_SECRET, at: datetime | None = None) -> dict[str, str]:
    stamp = (at or timezone.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: stamp}


def post_zendesk(client: Client, connector: Connector, payload: Any, **signing: Any) -> Any:
    body = json.dumps(payload).encode()
    url = reverse("hooks:signed", kwargs={"connector_key": connector.key})
    return client.post(url, body, content_type="application/json", headers=zendesk_headers(body, **signing))


def post_chatwoot(client: Client, connector: Connector, payload: Any, *, token: str | None = None) -> Any:
    url = reverse("hooks:token", kwargs={"connector_key": connector.key, "token": token or connector.webhook_token})
    return client.post(url, json.dumps(payload), content_type="application/json")


def zendesk_connector(*, key: str = "zendesk", with_secret: bool = True) -> Connector:
    owner = UserFactory()
    secret = None
    if with_secret:
        secret = secret_create(
            actor=None, name=f"{key}_webhook", kind=SecretKind.ENCRYPTED, owner=owner, value=SIGNING_SECRET
        )
    return Connector.objects.create(
        key=key,
        name="Zendesk Support",
        family="helpdesk",
        adapter="zendesk",
        owner=owner,
        base_url="https://brewline.zendesk.com",
        config={"email": "agent@brewline.example"},
        webhook_secret=secret,
    )


def chatwoot_connector(*, key: str = "chatwoot") -> Connector:
    connector = Connector.objects.create(
        key=key,
        name="Chatwoot",
        family="helpdesk",
        adapter="chatwoot",
        owner=UserFactory(),
        config={"account_id": 1, "inbox_id": INBOX},
    )
    connector_webhook_token_rotate(actor=None, connector=connector)
    return connector


@pytest.fixture
def zendesk(db: None) -> Connector:
    return zendesk_connector()


@pytest.fixture
def chatwoot(db: None) -> Connector:
    return chatwoot_connector()


# --- The payloads against the vendors' contracts ------------------------------------------------------------------


@cache
def _contract(relative: str) -> dict[str, Any]:
    contract_or_skip(relative)
    return json.loads((CONTRACTS_DIR / relative).read_text())


def test_the_chatwoot_payloads_are_conversations_as_chatwoots_contract_describes_them() -> None:
    from openapi_schema_validator import OAS31Validator

    document = _contract("chatwoot/swagger.json")
    validator = OAS31Validator({"$ref": "#/components/schemas/conversation", "components": document["components"]})
    statuses = document["components"]["schemas"]["conversation"]["properties"]["status"]["enum"]
    for status in statuses:
        validator.validate(chatwoot_status_event(status=status))
    validator.validate(chatwoot_message_event()["conversation"])
    # Every status the contract names is read; "snoozed" too, which Chatwoot sends but the contract leaves out.
    assert set(statuses) < set(TICKET_STATES[CHATWOOT])
    with pytest.raises(Exception, match="is not one of"):
        validator.validate(chatwoot_status_event(status="closed"))


def test_the_zendesk_statuses_are_the_ticket_status_enum_of_zendesks_contract() -> None:
    document = _contract("zendesk/support-oas.customer-service.json")
    statuses = document["components"]["schemas"]["TicketObject"]["properties"]["status"]["enum"]
    assert set(TICKET_STATES[ZENDESK]) == set(statuses)
    for payload in (zendesk_status_event(current="SOLVED"), zendesk_status_event(current="HOLD")):
        assert payload["event"]["current"].lower() in statuses


# --- Reading payloads ------------------------------------------------------------------------------------------------


def test_a_zendesk_status_event_reads_as_the_ticket_its_status_in_lower_case_and_its_time() -> None:
    at = datetime(2031, 3, 4, 10, 12, 7, 672717, tzinfo=UTC)
    update = zendesk_update(zendesk_status_event("4242", "SOLVED", at=at))
    assert not isinstance(update, Ignored)
    assert (update.ticket_id, update.status, update.at, update.status_changed) == ("4242", "solved", at, True)
    assert update.ticket_created_at == TICKET_CREATED
    assert not update.first_reply


@pytest.mark.parametrize(("public", "staff", "reply"), [(True, True, True), (False, True, False), (True, False, False)])
def test_only_a_public_zendesk_comment_by_staff_is_a_reply(public: bool, staff: bool, reply: bool) -> None:
    update = zendesk_update(zendesk_comment_event(public=public, staff=staff))
    assert not isinstance(update, Ignored)
    assert (update.first_reply, update.status_changed, update.status) == (reply, False, "open")


@pytest.mark.parametrize(
    ("changes", "reply"),
    [
        ({}, True),
        ({"private": True}, False),  # an internal note, like Steward's own hand-over
        ({"sender_type": "agent_bot"}, False),
        ({"message_type": "incoming", "sender_type": "contact"}, False),
    ],
)
def test_only_a_public_outgoing_chatwoot_message_by_an_agent_is_a_reply(changes: dict[str, Any], reply: bool) -> None:
    update = chatwoot_update(chatwoot_message_event(55, **changes))
    assert not isinstance(update, Ignored)
    assert (update.ticket_id, update.first_reply, update.status_changed) == ("55", reply, False)
    assert update.ticket_created_at == TICKET_CREATED


def test_event_types_outcomes_do_not_use_are_ignored() -> None:
    assert isinstance(zendesk_update({**zendesk_status_event(), "type": "zen:event-type:ticket.priority_changed"}),
                      Ignored)  # fmt: skip
    assert isinstance(chatwoot_update({"event": "conversation_created", "id": 55}), Ignored)


@pytest.mark.parametrize(
    ("read", "payload", "field"),
    [
        (zendesk_update, {**zendesk_status_event(), "detail": {"status": "OPEN"}}, "detail.id is missing"),
        (zendesk_update, {**zendesk_status_event(), "detail": "4242"}, "detail must be an object"),
        (zendesk_update, {**zendesk_status_event(), "event": {"current": "ARCHIVED"}}, "event.current must be one"),
        (zendesk_update, {**zendesk_status_event(), "time": "yesterday"}, "time must be an ISO-8601 time"),
        (zendesk_update, {**zendesk_status_event(), "id": 17}, "id must be a string"),
        (zendesk_update, {**zendesk_comment_event(), "event": {"comment": {}}}, "event.comment.is_public"),
        (chatwoot_update, {**chatwoot_status_event(), "status": "closed"}, "status must be one of"),
        (chatwoot_update, {**chatwoot_status_event(), "id": "C-55"}, "id must be a numeric id"),
        (chatwoot_update, {**chatwoot_status_event(), "updated_at": "today"}, "updated_at must be a number"),
        (chatwoot_update, {**chatwoot_message_event(), "message_type": "shout"}, "message_type must be one of"),
        (chatwoot_update, {**chatwoot_message_event(), "private": "no"}, "private must be true or false"),
        (chatwoot_update, {**chatwoot_message_event(), "conversation": None}, "conversation.id is missing"),
    ],
)
def test_a_payload_outside_the_vendors_shape_is_refused_naming_the_field(read: Any, payload: Any, field: str) -> None:
    with pytest.raises(PayloadInvalid, match=field):
        read(payload)


# --- Zendesk: the signature ----------------------------------------------------------------------------------------


def test_a_correctly_signed_zendesk_delivery_is_taken_and_its_secret_read_is_audited(
    client: Client, zendesk: Connector
) -> None:
    response = post_zendesk(client, zendesk, zendesk_status_event())
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "reason": "Ticket 4242 belongs to no conversation."}
    read = AuditRecord.objects.get(event_type=EventType.SECRET_READ, subject_id=str(zendesk.webhook_secret_id))
    assert read.reason == "verify a webhook request from Zendesk Support"
    assert SIGNING_SECRET not in json.dumps(read.data)


def test_a_signature_made_with_another_secret_is_refused(client: Client, zendesk: Connector) -> None:
    response = post_zendesk(client, zendesk, zendesk_status_event(), secret="not-the-signing-secret")
    assert response.status_code == 401
    assert "does not match" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_a_request_without_the_signature_headers_is_refused_before_the_secret_is_read(
    client: Client, zendesk: Connector, missing: str
) -> None:
    body = json.dumps(zendesk_status_event()).encode()
    headers = {name: value for name, value in zendesk_headers(body).items() if name != missing}
    url = reverse("hooks:signed", kwargs={"connector_key": zendesk.key})
    response = client.post(url, body, content_type="application/json", headers=headers)
    assert response.status_code == 401
    assert not AuditRecord.objects.filter(event_type=EventType.SECRET_READ).exists()


@pytest.mark.parametrize("minutes", [-6, 6])
def test_a_correctly_signed_request_with_a_timestamp_over_five_minutes_away_is_refused(
    client: Client, zendesk: Connector, minutes: int
) -> None:
    signed_at = timezone.now() + timedelta(minutes=minutes)
    response = post_zendesk(client, zendesk, zendesk_status_event(), at=signed_at)
    assert response.status_code == 401
    assert "more than 5 minutes" in response.json()["error"]


def test_a_timestamp_four_minutes_old_is_still_accepted(client: Client, zendesk: Connector) -> None:
    response = post_zendesk(client, zendesk, zendesk_status_event(), at=timezone.now() - timedelta(minutes=4))
    assert response.status_code == 200


def test_a_body_changed_after_signing_is_refused(client: Client, zendesk: Connector) -> None:
    body = json.dumps(zendesk_status_event("4242")).encode()
    headers = zendesk_headers(body)
    tampered = body.replace(b'"4242"', b'"4243"')
    url = reverse("hooks:signed", kwargs={"connector_key": zendesk.key})
    response = client.post(url, tampered, content_type="application/json", headers=headers)
    assert response.status_code == 401


def test_a_zendesk_connector_without_a_signing_secret_takes_nothing(client: Client, db: None) -> None:
    connector = zendesk_connector(with_secret=False)
    response = post_zendesk(client, connector, zendesk_status_event())
    assert response.status_code == 401
    assert "no webhook signing secret" in response.json()["error"]


def test_an_unsigned_body_that_is_not_json_is_refused_as_unauthenticated_not_read(
    client: Client, zendesk: Connector
) -> None:
    url = reverse("hooks:signed", kwargs={"connector_key": zendesk.key})
    assert client.post(url, b"{oops", content_type="application/json").status_code == 401


# --- Chatwoot: the URL token ---------------------------------------------------------------------------------------


def test_a_delivery_to_the_chatwoot_url_with_its_token_is_taken(client: Client, chatwoot: Connector) -> None:
    response = post_chatwoot(client, chatwoot, chatwoot_status_event())
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"


def test_a_wrong_chatwoot_token_is_refused(client: Client, chatwoot: Connector) -> None:
    response = post_chatwoot(client, chatwoot, chatwoot_status_event(), token=chatwoot.webhook_token[:-1] + "x")
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_a_rotated_token_retires_the_old_url_and_the_rotation_is_audited_without_it(
    client: Client, chatwoot: Connector
) -> None:
    old = chatwoot.webhook_token
    new = connector_webhook_token_rotate(actor=None, connector=chatwoot)
    assert new != old and len(new) >= 43
    assert post_chatwoot(client, chatwoot, chatwoot_status_event(), token=old).status_code == 401
    assert post_chatwoot(client, chatwoot, chatwoot_status_event(), token=new).status_code == 200
    records = AuditRecord.objects.filter(event_type=EventType.SECRET_ROTATED, subject_id=str(chatwoot.pk))
    assert [r.decision for r in records.order_by("pk")] == ["webhook_token_created", "webhook_token_rotated"]
    assert not any(token in json.dumps([r.data, r.changes, r.reason]) for r in records for token in (old, new))


def test_a_chatwoot_connector_without_a_token_takes_nothing(client: Client, db: None) -> None:
    connector = Connector.objects.create(
        key="chatwoot", name="Chatwoot", family="helpdesk", adapter="chatwoot", owner=UserFactory(), config={}
    )
    url = reverse("hooks:token", kwargs={"connector_key": connector.key, "token": "anything"})
    assert client.post(url, "{}", content_type="application/json").status_code == 401


# --- Replays, bodies, addresses and methods ------------------------------------------------------------------------


def test_the_same_zendesk_delivery_twice_is_refused_the_second_time(client: Client, zendesk: Connector) -> None:
    payload = zendesk_status_event()
    assert post_zendesk(client, zendesk, payload).status_code == 200
    again = post_zendesk(client, zendesk, payload)  # signed afresh: only the event id repeats
    assert again.status_code == 409
    assert WebhookDelivery.objects.filter(connector=zendesk).count() == 1


def test_the_same_chatwoot_delivery_twice_is_refused_and_a_new_status_is_not(
    client: Client, chatwoot: Connector
) -> None:
    resolved = chatwoot_status_event(status="resolved")
    assert post_chatwoot(client, chatwoot, resolved).status_code == 200
    assert post_chatwoot(client, chatwoot, resolved).status_code == 409
    reopened = chatwoot_status_event(status="open", at=timezone.now() + timedelta(seconds=5))
    assert post_chatwoot(client, chatwoot, reopened).status_code == 200


def test_the_same_key_at_two_connectors_is_two_deliveries(client: Client, zendesk: Connector) -> None:
    other = zendesk_connector(key="zendesk_eu")
    payload = zendesk_status_event()
    assert post_zendesk(client, zendesk, payload).status_code == 200
    assert post_zendesk(client, other, payload).status_code == 200


def test_pruning_forgets_only_old_delivery_keys(zendesk: Connector) -> None:
    WebhookDelivery.objects.create(connector=zendesk, key="old", received_at=timezone.now() - timedelta(days=8))
    WebhookDelivery.objects.create(connector=zendesk, key="new")
    assert webhook_deliveries_prune(older_than=timedelta(days=7)) == 1
    assert list(WebhookDelivery.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "The body is not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_a_signed_body_that_is_not_a_json_object_is_a_400(
    client: Client, zendesk: Connector, body: bytes, error: str
) -> None:
    url = reverse("hooks:signed", kwargs={"connector_key": zendesk.key})
    response = client.post(url, body, content_type="application/json", headers=zendesk_headers(body))
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_a_payload_in_the_wrong_shape_is_a_400_naming_the_field(
    client: Client, zendesk: Connector, chatwoot: Connector
) -> None:
    response = post_zendesk(client, zendesk, {**zendesk_status_event(), "detail": {}})
    assert response.status_code == 400
    assert response.json()["error"] == "Not a zendesk webhook payload: The field detail.id is missing."
    response = post_chatwoot(client, chatwoot, {**chatwoot_status_event(), "status": 3})
    assert response.status_code == 400
    assert "status must be a string" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_an_event_type_outcomes_do_not_use_is_answered_200_ignored(client: Client, zendesk: Connector) -> None:
    payload = {**zendesk_status_event(), "type": "zen:event-type:ticket.priority_changed"}
    response = post_zendesk(client, zendesk, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert not WebhookDelivery.objects.exists()


def test_unknown_disabled_and_mismatched_connectors_are_404(
    client: Client, zendesk: Connector, chatwoot: Connector
) -> None:
    assert post_zendesk(client, Connector(key="nobody"), zendesk_status_event()).status_code == 404
    # A Chatwoot connector has no signed address, a Zendesk one no token address.
    assert post_zendesk(client, chatwoot, zendesk_status_event()).status_code == 404
    assert post_chatwoot(client, zendesk, chatwoot_status_event(), token="x").status_code == 404
    Connector.objects.filter(pk=zendesk.pk).update(enabled=False)
    assert post_zendesk(client, zendesk, zendesk_status_event()).status_code == 404


def test_only_post_is_accepted(client: Client, zendesk: Connector) -> None:
    response = client.get(reverse("hooks:signed", kwargs={"connector_key": zendesk.key}))
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_a_body_over_one_megabyte_is_a_413(client: Client, zendesk: Connector) -> None:
    body = json.dumps({**zendesk_status_event(), "padding": "x" * MAX_BODY_BYTES}).encode()
    url = reverse("hooks:signed", kwargs={"connector_key": zendesk.key})
    response = client.post(url, body, content_type="application/json", headers=zendesk_headers(body))
    assert response.status_code == 413


# --- The admin -----------------------------------------------------------------------------------------------------


def test_the_admin_shows_the_webhook_url_and_a_new_one_replaces_it(
    client: Client, support_admin: User, chatwoot: Connector
) -> None:
    client.force_login(support_admin)
    change = reverse("admin:connectors_connector_change", args=[chatwoot.pk])
    old = chatwoot.webhook_token
    assert f"/api/hooks/chatwoot/{old}/" in client.get(change).content.decode()
    response = client.post(
        reverse("admin:connectors_connector_changelist"),
        {"action": "rotate_webhook_token", "_selected_action": [chatwoot.pk]},
        follow=True,
    )
    chatwoot.refresh_from_db()
    assert chatwoot.webhook_token != old
    assert any(f"/api/hooks/chatwoot/{chatwoot.webhook_token}/" in str(m) for m in response.context["messages"])


def test_a_signing_secret_set_in_the_admin_is_audited_by_reference(
    client: Client, support_admin: User, db: None
) -> None:
    connector = zendesk_connector(with_secret=False)
    secret = secret_create(
        actor=None, name="zendesk_signing", kind=SecretKind.ENCRYPTED, owner=support_admin, value=SIGNING_SECRET
    )
    client.force_login(support_admin)
    change = reverse("admin:connectors_connector_change", args=[connector.pk])
    page = client.get(change)
    assert "/api/hooks/zendesk/" in page.content.decode()
    form = {
        "name": connector.name,
        "family": "helpdesk",
        "adapter": "zendesk",
        "base_url": connector.base_url,
        "timeout_seconds": 10,
        "config": json.dumps(connector.config),
        "owner": connector.owner_id,
        "webhook_secret": secret.pk,
    }
    assert client.post(change, form).status_code == 302
    connector.refresh_from_db()
    assert connector.webhook_secret_id == secret.pk
    record = AuditRecord.objects.filter(event_type=EventType.CONFIG_CHANGED, subject_id=str(connector.pk)).get()
    assert record.changes["webhook_secret"] == {"old": None, "new": secret.pk}
    assert post_zendesk(client, connector, zendesk_status_event()).status_code == 200
