"""seed_demo --traffic: days of demo customers through the real turn loop at simulated times, marked and removable.

One scenario, because loading the demo company is most of its cost: the whole seed_demo (real embeddings, Brewline
served over real HTTP by the command itself on a free port, the embedded helpdesk), two days of traffic, then the
refusal to load it twice, a real customer's chat next to it, and the removal.
"""

from __future__ import annotations

import socket
import uuid
from datetime import date, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Max
from django.utils import timezone
from helpdesk.models import FollowUp, Ticket

from agent.demo_traffic import traffic_plan
from agent.demo_traffic_scripts import FIRST_SCRIPTS
from agent.messages import conversation_start, message_store_customer
from agent.models import Conversation, Message, TurnTrace
from agent.turn import run_turn
from analytics.models import AnalyticsEvent, EventKind, MetricRollup
from governance.audit import audit_verify
from governance.demo import seed_governance
from governance.models import ApprovalRequest, AuditRecord, SecretKind
from governance.secrets import secret_create

MONDAY = date(2026, 11, 30)


def test_the_plan_is_the_same_for_the_same_seed_and_busier_on_weekdays() -> None:
    plan = traffic_plan(days=28, per_day=5, seed=7, today=MONDAY)
    assert plan == traffic_plan(days=28, per_day=5, seed=7, today=MONDAY)
    assert plan != traffic_plan(days=28, per_day=5, seed=8, today=MONDAY)
    assert [visit.at for visit in plan] == sorted(visit.at for visit in plan)
    days = [timezone.localdate(visit.at) for visit in plan]
    assert min(days) == MONDAY - timedelta(days=28) and max(days) == MONDAY - timedelta(days=1)
    weekdays = sum(day.weekday() < 5 for day in days) / 20
    weekends = sum(day.weekday() >= 5 for day in days) / 8
    assert weekdays > 1.5 * weekends
    assert [visit.script for visit in plan[: len(FIRST_SCRIPTS)]] == list(FIRST_SCRIPTS)
    assert all(visit.rates for visit in plan[: len(FIRST_SCRIPTS)])
    assert sum(not visit.picked_up for visit in plan) == 1  # the console keeps one escalation waiting


def test_even_a_weekend_plays_the_first_scripts_an_escalation_a_question_and_an_approval() -> None:
    for seed in range(40):
        plan = traffic_plan(days=2, per_day=5, seed=seed, today=MONDAY)  # Saturday and Sunday, the quietest days
        assert [visit.script.kind for visit in plan[:3]] == ["escalation", "knowledge", "approval"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--traffic", "0"], "must be 1 to"),
        (["--traffic", "a week"], "not a whole number"),
        (["--traffic", "2", "--per-day", "1000"], "must be 1 to"),
        (["--traffic", "2", "--replace", "--if-absent"], "contradict"),
        (["--replace"], "go with --traffic"),
    ],
)
def test_bad_traffic_arguments_are_refused_before_anything_is_loaded(arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", *arguments)


@pytest.fixture
def brewline_address(settings) -> str:  # type: ignore[no-untyped-def]
    """SITE_URL on a free local port: the demo connectors point there, and nothing answers until seed_demo serves
    Brewline there itself while the traffic plays (as under `make run`, before daphne starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.SITE_URL = f"http://127.0.0.1:{port}"
    return settings.SITE_URL


@pytest.fixture
def host_site_secret(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The identity token secret shared with the host site: the traffic's signed-in customers come with a token."""
    seed_governance()
    monkeypatch.setenv("STEWARD_TEST_IDENTITY_SECRET", "a-test-identity-secret-shared-with-the-host-site")
    secret_create(
        actor=None,
        name="identity_token_secret",
        kind=SecretKind.ENVIRONMENT,
        env_var="STEWARD_TEST_IDENTITY_SECRET",
        owner=get_user_model().objects.get(username="maya.ops"),
    )


def _seed(*arguments: str) -> str:
    out = StringIO()
    call_command("seed_demo", *arguments, stdout=out)
    return out.getvalue()


def _demo_ids() -> list[str]:
    return [str(pk) for pk in Conversation.objects.filter(is_demo=True).values_list("pk", flat=True)]


@pytest.mark.django_db(transaction=True)
def test_two_days_of_demo_traffic_play_through_the_turn_loop_at_simulated_times_and_are_removable(
    brewline_address, host_site_secret
) -> None:  # type: ignore[no-untyped-def]
    started = timezone.now()
    today = timezone.localdate()

    output = _seed("--traffic", "2", "--per-day", "5")

    assert not time_machine.escape_hatch.is_travelling() and timezone.now() >= started
    assert "demo conversations" in output
    ids = _demo_ids()
    assert len(ids) >= 3 and Conversation.objects.count() == len(ids)  # every conversation it made is marked
    events = AnalyticsEvent.objects.filter(conversation_id__in=ids)
    days = {timezone.localdate(at) for at in events.values_list("created_at", flat=True)}
    assert {today - timedelta(days=2), today - timedelta(days=1)} <= days
    # Real turns: every demo conversation has turn traces, and every turn was answered.
    assert set(TurnTrace.objects.filter(conversation_id__in=ids).values_list("conversation_id", flat=True)) == {
        uuid.UUID(pk) for pk in ids
    }
    assert (
        events.filter(kind=EventKind.TURN_ANSWERED).count() == TurnTrace.objects.filter(conversation_id__in=ids).count()
    )
    # A person picked an escalation up, wrote, and closed it; its ticket was solved in the helpdesk.
    sam = get_user_model().objects.get(username="sam.support")
    assert events.filter(kind=EventKind.HUMAN_TOOK_OVER, data__user=sam.pk).exists()
    assert events.filter(kind=EventKind.HUMAN_REPLIED, data__user=sam.pk).exists()
    assert events.filter(kind=EventKind.CLOSED, data__by=sam.pk, data__from="human").exists()
    assert Ticket.objects.filter(status=Ticket.RESOLVED_STATUS).exists()
    # Customers rated; a manager approved an approval request and it was executed (a refund over real HTTP).
    assert events.filter(kind=EventKind.CSAT).exists()
    assert Conversation.objects.filter(is_demo=True, csat_score__isnull=False).exists()
    assert events.filter(kind=EventKind.APPROVAL_DECIDED, data__outcome="executed").exists()
    # Every row carries its simulated moment, in the past: none was stamped with the time the command ran.
    simulated_before = started - timedelta(minutes=4)
    for rows in (
        Conversation.objects.filter(is_demo=True),
        Message.objects.filter(conversation_id__in=ids),
        TurnTrace.objects.filter(conversation_id__in=ids),
        events,
        AuditRecord.objects.filter(conversation_id__in=ids),
        ApprovalRequest.objects.filter(conversation_id__in=ids),
    ):
        assert rows.aggregate(latest=Max("created_at"))["latest"] < simulated_before, rows.model.__name__
    ticket_ids = Conversation.objects.exclude(ticket_id="").values_list("ticket_id", flat=True)
    tickets = Ticket.objects.filter(pk__in=[int(ticket) for ticket in ticket_ids])
    assert tickets.exists() and tickets.aggregate(latest=Max("modified"))["latest"] < simulated_before
    assert FollowUp.objects.filter(ticket__in=tickets).aggregate(latest=Max("date"))["latest"] < simulated_before
    assert audit_verify().ok
    # The seeded days are rolled up for the dashboard.
    assert MetricRollup.objects.filter(day=today - timedelta(days=1), metric="csat").exists()

    with pytest.raises(CommandError, match="already loaded"):
        _seed("--traffic", "2")
    assert "left as it is" in _seed("--traffic", "2", "--if-absent")
    assert len(_demo_ids()) == len(ids)

    # A real customer's chat next to the demo traffic.
    other = conversation_start()
    message_store_customer(conversation_id=other.pk, client_id=uuid.uuid4(), text="How long does delivery take?")
    run_turn(str(other.pk))
    demo_tickets = list(tickets.values_list("pk", flat=True))
    demo_audit = AuditRecord.objects.filter(conversation_id__in=ids).count()

    output = _seed("--remove-traffic")

    assert "audit records stay" in output
    assert not Conversation.objects.filter(is_demo=True).exists()
    assert not AnalyticsEvent.objects.filter(conversation_id__in=ids).exists()
    assert not Message.objects.filter(conversation_id__in=ids).exists()
    assert not ApprovalRequest.objects.filter(conversation_id__in=ids).exists()
    assert not Ticket.objects.filter(pk__in=demo_tickets).exists()
    assert Conversation.objects.filter(pk=other.pk).exists()
    assert AnalyticsEvent.objects.filter(conversation_id=str(other.pk), kind=EventKind.TURN_ANSWERED).exists()
    assert AuditRecord.objects.filter(conversation_id__in=ids).count() == demo_audit  # evidence stays
    assert audit_verify().ok
    assert not MetricRollup.objects.filter(day=today - timedelta(days=1), metric="csat", n__gt=0).exists()
