"""The rollout admin: lists without a query per row, permissioned sign-off actions, evaluation on demand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from governance.metrics import METRIC_PROVIDERS
from governance.models import AuditRecord, ChannelRollout, EventType, GateCriterion, GateEvaluation, GateSignOff
from governance.tests.factories import UserFactory
from governance.tests.test_gates import ChannelRolloutFactory, GateCriterionFactory, RolloutGateFactory

CHANNELS = reverse("admin:governance_channelrollout_changelist")
GATES = reverse("admin:governance_rolloutgate_changelist")


def _evaluation(channel: ChannelRollout, outcome: str = "blocked") -> GateEvaluation:
    return GateEvaluation.objects.create(
        channel=channel,
        evaluated_at=timezone.now(),
        stage_before=channel.stage,
        stage_after=channel.stage,
        outcome=outcome,
        reason="sign-off missing: Support owner",
        results=[
            {"gate_stage": 2, "kind": "entry", "text": "regression_pass_rate (7 days): no data yet", "met": False}
        ],
    )


@pytest.mark.django_db
def test_the_channel_list_shows_each_last_evaluation_without_a_query_per_row(
    client, support_admin, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    for name in ("web_chat", "email", "sms", "whatsapp"):
        channel = ChannelRolloutFactory(channel=name)
        _evaluation(channel, "held")
        _evaluation(channel, "blocked")
    client.force_login(support_admin)
    with django_assert_max_num_queries(7):
        response = client.get(CHANNELS)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("Promotion blocked") == 4
    assert reverse("admin:governance_readiness") in page


@pytest.mark.django_db
def test_the_gate_list_shows_criteria_and_missing_sign_offs_without_a_query_per_row(
    client, support_manager, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    for name in ("web_chat", "email", "sms"):
        gate = RolloutGateFactory(channel=ChannelRolloutFactory(channel=name), required_signoffs=["support_owner"])
        GateCriterionFactory(gate=gate)
        GateCriterionFactory(gate=gate, kind="rollback", metric="reopen_rate")
    client.force_login(support_manager)
    with django_assert_max_num_queries(10):
        response = client.get(GATES)
    page = response.content.decode()
    assert page.count("1 entry, 1 rollback") == 3 and page.count("missing: Support owner") == 3


@pytest.mark.django_db
def test_a_manager_signs_off_a_gate_with_the_list_action(client, support_manager) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory(required_signoffs=["support_owner"])
    client.force_login(support_manager)
    response = client.post(GATES, {"action": "sign_off_support_owner", "_selected_action": [gate.pk]}, follow=True)
    assert "Gave 1 sign-off(s)." in response.content.decode()
    assert GateSignOff.objects.get().signed_by == support_manager

    response = client.post(
        GATES, {"action": "sign_off_permission_scope_review", "_selected_action": [gate.pk]}, follow=True
    )
    assert "does not ask for a permission scope review sign-off" in response.content.decode()

    client.post(GATES, {"action": "withdraw_sign_offs", "_selected_action": [gate.pk]})
    assert not GateSignOff.objects.exists()
    assert [r.event_type for r in AuditRecord.objects.filter(event_type__startswith="gate.sign")] == [
        EventType.GATE_SIGNED_OFF,
        EventType.GATE_SIGNOFF_REVOKED,
    ]


@pytest.mark.django_db
def test_sign_off_actions_are_offered_only_to_people_who_may_sign_off(client, qa_reviewer) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory(required_signoffs=["support_owner"])
    viewer = UserFactory(username="vic_viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_rolloutgate"))
    client.force_login(viewer)
    response = client.get(GATES)
    assert response.context["action_form"] is None  # no action at all is offered
    client.post(GATES, {"action": "sign_off_support_owner", "_selected_action": [gate.pk]})
    assert not GateSignOff.objects.exists()

    client.force_login(qa_reviewer)
    assert client.get(GATES).status_code == 403


@pytest.mark.django_db
def test_evaluate_now_runs_the_gates_and_reports_the_outcome(client, support_manager, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gate = RolloutGateFactory()
    GateCriterionFactory(gate=gate)
    monkeypatch.setitem(METRIC_PROVIDERS, "regression_pass_rate", lambda query: 0.99)
    client.force_login(support_manager)
    response = client.post(CHANNELS, {"action": "evaluate_now", "_selected_action": [gate.channel_id]}, follow=True)
    assert "web_chat: promoted at stage 2 — entry criterion met" in response.content.decode().lower()
    assert ChannelRollout.objects.get().stage == 2
    assert AuditRecord.objects.get(event_type=EventType.GATE_PROMOTED).actor_label == "mo_manager"

    client.post(CHANNELS, {"action": "roll_back_one_stage", "_selected_action": [gate.channel_id]})
    assert ChannelRollout.objects.get().stage == 1


@pytest.mark.django_db
def test_a_gate_and_its_criteria_are_saved_through_the_audited_service(client, support_admin) -> None:  # type: ignore[no-untyped-def]
    channel = ChannelRolloutFactory()
    form = {
        "channel": channel.pk,
        "stage": 2,
        "required_signoffs": ["support_owner"],
        "traffic_percent": 25,
        "criteria-TOTAL_FORMS": 1,
        "criteria-INITIAL_FORMS": 0,
        "criteria-0-kind": "entry",
        "criteria-0-metric": "qa_pass_rate",
        "criteria-0-intent": "",
        "criteria-0-comparator": "gte",
        "criteria-0-threshold": "90",
        "criteria-0-window_days": 7,
        "signoffs-TOTAL_FORMS": 0,
        "signoffs-INITIAL_FORMS": 0,
    }
    client.force_login(support_admin)
    url = reverse("admin:governance_rolloutgate_add")
    response = client.post(url, form)
    assert response.status_code == 200
    assert "write 0.9 for 90 %" in response.content.decode()

    response = client.post(url, {**form, "criteria-0-threshold": "0.9"})
    assert response.status_code == 302
    criterion = GateCriterion.objects.get()
    assert (criterion.gate.required_signoffs, criterion.threshold) == (["support_owner"], Decimal("0.9"))
    created = AuditRecord.objects.filter(event_type=EventType.CONFIG_CREATED).values_list("subject_type", flat=True)
    assert sorted(created) == ["governance.gatecriterion", "governance.rolloutgate"]


@pytest.mark.django_db
def test_saving_a_channel_changes_its_traffic_but_never_its_stage(client, support_admin) -> None:  # type: ignore[no-untyped-def]
    channel = ChannelRolloutFactory(stage=3)
    client.force_login(support_admin)
    url = reverse("admin:governance_channelrollout_change", args=[channel.pk])
    response = client.post(url, {"channel": "renamed", "stage": 5, "traffic_percent": 40})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.channel, channel.stage, channel.traffic_percent) == ("web_chat", 3, 40)
    change = AuditRecord.objects.get(event_type=EventType.CONFIG_CHANGED)
    assert change.changes["traffic_percent"] == {"old": 100, "new": 40} and "stage" not in change.changes


@pytest.mark.django_db
def test_an_evaluation_reads_as_evidence(client, support_manager) -> None:  # type: ignore[no-untyped-def]
    evaluation = _evaluation(ChannelRolloutFactory())
    client.force_login(support_manager)
    response = client.get(reverse("admin:governance_gateevaluation_change", args=[evaluation.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "regression_pass_rate (7 days): no data yet" in page and "not met" in page
    assert 'name="_save"' not in page
