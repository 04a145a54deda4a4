"""The agent admin: intents and prompt versions configured (validated, audited, versions never overwritten), and
conversations with their turn traces shown to read, never changed or deleted."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from agent.admin import slot_errors
from agent.messages import conversation_start, message_store_customer
from agent.models import Conversation, Intent, Message, PromptVersion, TurnTrace
from agent.tests.test_turn import Chat, demo_company  # noqa: F401 - the fixture, used by name
from governance.models import AuditRecord, EventType
from governance.tests.factories import ActionPolicyFactory, UserFactory

ORDER_SLOT = {"name": "order_id", "pattern": "order_id", "question": "Which order is it?", "label": "the order"}


def _url(model: str, view: str, *args: Any) -> str:
    return reverse(f"admin:agent_{model}_{view}", args=args)


def _intent_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "name": "where_is_my_order",
        "label": "Where is my order",
        "enabled": "on",
        "route": "action",
        "action": "order_status_lookup",
        "slots": json.dumps([ORDER_SLOT]),
        "examples": "where is my order\nmy parcel has not arrived",
        "threshold": "",
        "volume": 5,
        "complexity": 2,
        "policy_risk": 2,
        "business_value": 4,
    }
    form.update(changes)
    return form


# --- Intents -----------------------------------------------------------------------------------------------------


def test_slots_of_the_right_shape_have_no_errors() -> None:
    assert slot_errors([]) == []
    assert slot_errors([ORDER_SLOT, {"name": "amount", "pattern": "amount", "question": "How much?"}]) == []
    assert slot_errors([{**ORDER_SLOT, "required": False}]) == []


def test_slots_of_the_wrong_shape_say_what_is_wrong() -> None:
    assert slot_errors({"name": "order_id"})[0].startswith("Slots must be a list")
    assert slot_errors(["order_id"]) == ["Slot 1 must be an object with a name, a pattern and a question."]
    errors = slot_errors(
        [
            {"name": "order_id", "pattern": "iban", "question": ""},
            {**ORDER_SLOT, "required": "yes", "colour": "red"},
        ]
    )
    assert "Slot 'order_id': the pattern must be one of order_id, subscription_id, email, amount, address." in errors
    assert "Slot 'order_id' needs the question the agent asks when the value is missing." in errors
    assert "Slot 2 has unknown keys: colour (known: label, name, pattern, question, required)." in errors
    assert "Slot 2: the name 'order_id' is used twice." in errors
    assert "Slot 2: required must be true or false." in errors


@pytest.mark.django_db
def test_adding_an_intent_in_the_admin_is_audited(support_admin: User, client: Client) -> None:
    ActionPolicyFactory(action="order_status_lookup")
    client.force_login(support_admin)

    response = client.post(_url("intent", "add"), _intent_form())

    assert response.status_code == 302, response.context["adminform"].form.errors
    intent = Intent.objects.get(name="where_is_my_order")
    assert intent.slots == [ORDER_SLOT] and intent.examples == ["where is my order", "my parcel has not arrived"]
    record = AuditRecord.objects.get(event_type=EventType.CONFIG_CREATED, subject_type="agent.intent")
    assert record.subject_id == str(intent.pk) and record.actor_user_id == support_admin.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ('[{"name": "order_id", "pattern": "order_id"', "Enter a valid JSON."),
        ('{"name": "order_id"}', "Slots must be a list"),
        ('[{"name": "order_id", "pattern": "postcode", "question": "Which?"}]', "the pattern must be one of"),
        ('[{"name": "order_id", "pattern": "order_id"}]', "needs the question the agent asks"),
    ],
)
def test_slots_that_are_not_valid_are_a_form_error_and_nothing_is_saved(
    slots: str, message: str, support_admin: User, client: Client
) -> None:
    ActionPolicyFactory(action="order_status_lookup")
    client.force_login(support_admin)

    response = client.post(_url("intent", "add"), _intent_form(slots=slots))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in error for error in errors["slots"]), errors
    assert not Intent.objects.exists() and not AuditRecord.objects.filter(subject_type="agent.intent").exists()


@pytest.mark.django_db
def test_an_action_intent_must_name_an_action_policy_and_launch_scores_run_from_1_to_5(
    support_admin: User, client: Client
) -> None:
    client.force_login(support_admin)

    response = client.post(_url("intent", "add"), _intent_form(action="teleport", volume=9, threshold="1.5"))

    errors = response.context["adminform"].form.errors
    assert errors["action"] == ["There is no action policy named 'teleport'."]
    assert errors["volume"] == ["Score it from 1 to 5."]
    assert "between 0 and 1" in errors["threshold"][0]
    assert not Intent.objects.exists()


@pytest.mark.django_db
def test_changing_an_intents_slots_records_old_and_new_values(support_admin: User, client: Client) -> None:
    ActionPolicyFactory(action="order_status_lookup")
    fields = {**_intent_form(), "enabled": True, "threshold": None, "slots": [ORDER_SLOT]}
    intent = Intent.objects.create(**{**fields, "examples": fields["examples"].splitlines()})
    client.force_login(support_admin)
    optional = [{**ORDER_SLOT, "required": False}]

    response = client.post(_url("intent", "change", intent.pk), _intent_form(slots=json.dumps(optional)))

    assert response.status_code == 302, response.context["adminform"].form.errors
    record = AuditRecord.objects.get(event_type=EventType.CONFIG_CHANGED, subject_type="agent.intent")
    assert record.changes["slots"] == {"old": [ORDER_SLOT], "new": optional}


@pytest.mark.django_db
def test_the_intent_list_ranks_intents_for_launch_in_the_same_queries_however_many(
    support_admin: User, client: Client, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    def intent(name: str, volume: int, complexity: int, policy_risk: int, business_value: int) -> None:
        Intent.objects.create(
            name=name,
            label=name,
            route="knowledge",
            examples=["x"],
            volume=volume,
            complexity=complexity,
            policy_risk=policy_risk,
            business_value=business_value,
        )

    intent("refund_request", 3, 4, 5, 4)  # score -2
    intent("shipping_times", 5, 1, 1, 4)  # score 7
    client.force_login(support_admin)
    # session, user, permissions (2), count, full count, page; the values of the risk and complexity filters.
    with django_assert_num_queries(9):
        client.get(_url("intent", "changelist"))
    intent("opening_hours", 2, 1, 1, 2)  # score 2
    intent("cancel_subscription", 3, 3, 4, 3)  # score -1

    with django_assert_num_queries(9):
        response = client.get(_url("intent", "changelist"))

    rows = [(i.name, i.launch_score_value, i.launch_rank) for i in response.context["cl"].result_list]
    assert rows == [
        ("shipping_times", 7, 1),
        ("opening_hours", 2, 2),
        ("cancel_subscription", -1, 3),
        ("refund_request", -2, 4),
    ]


# --- Prompt versions ----------------------------------------------------------------------------------------------


def _prompt_form(**values: Any) -> dict[str, Any]:
    return {"name": "default", "system_prompt": "You are Brewline's assistant.", "guidance": "", **values}


@pytest.mark.django_db
def test_editing_a_prompt_saves_a_new_version_and_keeps_the_old_one_as_it_was(
    support_admin: User, client: Client
) -> None:
    client.force_login(support_admin)
    assert client.post(_url("promptversion", "add"), _prompt_form(activate="on")).status_code == 302
    v1 = PromptVersion.objects.get()
    assert (v1.version, v1.active) == (1, True)

    response = client.post(
        _url("promptversion", "change", v1.pk),
        {"system_prompt": "You are Brewline's friendly assistant.", "guidance": "Be brief.", "activate": "on"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    v1.refresh_from_db()
    v2 = PromptVersion.objects.get(version=2)
    assert (v1.system_prompt, v1.active) == ("You are Brewline's assistant.", False)
    assert (v2.system_prompt, v2.guidance, v2.active) == ("You are Brewline's friendly assistant.", "Be brief.", True)
    assert response.url == _url("promptversion", "changelist")
    created = AuditRecord.objects.filter(event_type=EventType.CONFIG_CREATED, subject_type="agent.promptversion")
    assert sorted(created.values_list("subject_id", flat=True)) == sorted([str(v1.pk), str(v2.pk)])
    deactivated = AuditRecord.objects.get(event_type=EventType.CONFIG_CHANGED, subject_id=str(v1.pk))
    assert (
        deactivated.changes["active"] == {"old": True, "new": False} and deactivated.actor_user_id == support_admin.pk
    )


@pytest.mark.django_db
def test_an_old_version_can_be_made_active_again_without_a_new_version(support_admin: User, client: Client) -> None:
    client.force_login(support_admin)
    client.post(_url("promptversion", "add"), _prompt_form(activate="on"))
    client.post(_url("promptversion", "add"), _prompt_form(system_prompt="Second try.", activate="on"))
    v1, v2 = PromptVersion.objects.order_by("version")
    assert (v1.active, v2.active) == (False, True)

    response = client.post(_url("promptversion", "changelist"), {"action": "make_active", "_selected_action": [v1.pk]})

    assert response.status_code == 302
    assert list(PromptVersion.objects.order_by("version").values_list("version", "active")) == [(1, True), (2, False)]
    assert PromptVersion.objects.count() == 2


@pytest.mark.django_db
def test_saving_a_version_unedited_changes_nothing(support_admin: User, client: Client) -> None:
    client.force_login(support_admin)
    client.post(_url("promptversion", "add"), _prompt_form())
    v1 = PromptVersion.objects.get()
    audited = AuditRecord.objects.count()

    client.post(_url("promptversion", "change", v1.pk), {"system_prompt": v1.system_prompt, "guidance": ""})

    assert PromptVersion.objects.count() == 1 and AuditRecord.objects.count() == audited


@pytest.mark.django_db
def test_prompt_versions_cannot_be_deleted(support_admin: User, client: Client) -> None:
    client.force_login(support_admin)
    client.post(_url("promptversion", "add"), _prompt_form())
    v1 = PromptVersion.objects.get()

    assert client.post(_url("promptversion", "delete", v1.pk), {"post": "yes"}).status_code == 403
    assert PromptVersion.objects.filter(pk=v1.pk).exists()


# --- Conversations and traces ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_conversation_shows_its_transcript_with_each_replys_trace(demo_company, client: Client) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from governance.roles import Role

    chat = Chat()
    chat.say("How long does delivery to the UK take?")
    chat.say("I want to talk to a human")
    admin_user = UserFactory(username="ada_admin", roles=[Role.SUPPORT_ADMIN])
    client.force_login(admin_user)
    conversation = chat.conversation
    first = TurnTrace.objects.filter(conversation=conversation).order_by("pk").first()

    listing = client.get(_url("conversation", "changelist"))
    assert listing.status_code == 200 and str(conversation.pk)[:8] in listing.content.decode()

    html = client.get(_url("conversation", "change", conversation.pk)).content.decode()
    assert "How long does delivery to the UK take?" in html and "2–3 business days" in html
    assert f"Turn {first.pk}" in html and f"chunk {first.retrieved[0]['chunk_id']}" in html
    assert "Escalation rules" in html and "FIRED" in html  # the request for a person
    assert "Timings" in html and "responder_ms" in html and first.prompt_version in html

    traces = client.get(_url("turntrace", "changelist"), {"status": "done", "responder": "embedded"})
    assert traces.status_code == 200 and len(traces.context["cl"].result_list) == 2
    assert client.get(_url("turntrace", "change", first.pk)).status_code == 200


@pytest.mark.django_db
def test_what_customers_typed_and_tools_returned_is_shown_escaped(support_admin: User, client: Client) -> None:
    conversation = conversation_start()
    message_store_customer(conversation_id=conversation.pk, client_id=uuid.uuid4(), text="<script>alert('hi')</script>")
    reply = Message.objects.create(conversation=conversation, seq=2, author="agent", text="<b>bold</b> reply")
    TurnTrace.objects.create(
        conversation=conversation,
        status=TurnTrace.Status.DONE,
        message_seqs=[1],
        intent="refund_request",
        intent_score=0.81234,
        tool_calls=[
            {
                "action": "refund",
                "arguments": {"order_id": "<img src=x onerror=alert(1)>"},
                "decision": "deny",
                "reason": "needs <identity> verification",
                "result": {"card_number": "4111 1111 1111 1111"},
            }
        ],
        escalation=[{"rule": "Refund over policy", "trigger": "refund", "fired": False, "detail": "no amount"}],
        confidence=0.7,
        responder="embedded",
        prompt_version="1:abc123",
        timings={"responder_ms": 12.5, "total_ms": 40.1},
        reply=reply,
        error="ValueError: <oops>",
    )
    client.force_login(support_admin)

    html = client.get(_url("conversation", "change", conversation.pk)).content.decode()

    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; reply" in html and "ValueError: &lt;oops&gt;" in html
    assert "refund_request</code> (score 0.812)" in html and "governance: <strong>deny</strong>" in html
    assert "needs &lt;identity&gt; verification" in html and "responder_ms 12.5 ms" in html
    # A tool's result shows which fields it read, never their values.
    assert "card_number" in html and "4111" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("as_superuser", [False, True])
def test_conversations_and_traces_cannot_be_added_changed_or_deleted_in_the_admin(
    as_superuser: bool, support_admin: User, client: Client
) -> None:
    user = UserFactory(username="root", is_superuser=True) if as_superuser else support_admin
    conversation = conversation_start()
    trace = TurnTrace.objects.create(conversation=conversation, status=TurnTrace.Status.DONE)
    client.force_login(user)

    assert client.get(_url("conversation", "add")).status_code == 403
    assert client.post(_url("conversation", "delete", conversation.pk), {"post": "yes"}).status_code == 403
    assert client.post(_url("turntrace", "delete", trace.pk), {"post": "yes"}).status_code == 403
    response = client.post(_url("conversation", "change", conversation.pk), {"customer_name": "Mallory"})
    assert response.status_code == 403
    bulk = client.post(
        _url("conversation", "changelist"), {"action": "delete_selected", "_selected_action": [conversation.pk]}
    )
    assert bulk.status_code in (200, 302)
    assert Conversation.objects.filter(pk=conversation.pk, customer_name="").exists()
    assert TurnTrace.objects.filter(pk=trace.pk).exists()


@pytest.mark.django_db
def test_an_outsider_sees_no_conversation_trace_or_intent(outsider: User, client: Client) -> None:
    client.force_login(outsider)
    for model in ("conversation", "turntrace", "intent", "promptversion"):
        assert client.get(_url(model, "changelist")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "queries"), [("conversation", 7), ("turntrace", 7)])
def test_the_conversation_and_trace_lists_cost_the_same_however_many_rows(
    model: str, queries: int, support_admin: User, client: Client, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    def rows(n: int) -> None:
        for _ in range(n):
            conversation = conversation_start()
            TurnTrace.objects.create(conversation=conversation, status=TurnTrace.Status.DONE, timings={"total_ms": 3})

    client.force_login(support_admin)
    rows(2)
    # session, user, permissions (2), count, page; and one filter's choices (CSAT scores; the configured intents).
    with django_assert_num_queries(queries):
        assert client.get(_url(model, "changelist")).status_code == 200
    rows(3)
    with django_assert_num_queries(queries):
        response = client.get(_url(model, "changelist"))
    assert len(response.context["cl"].result_list) == 5
