"""The ROI view: contained conversations and automated actions valued with the configured costs, the running cost
prorated, per intent, and "not computable" wherever an input or the traffic is missing; the cost settings' admin;
who may see the pages."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agent.models import Conversation, Intent
from analytics.models import AnalyticsEvent, EventKind
from dashboard.models import CostSettings
from dashboard.roi import NO_TRAFFIC, NOT_CONFIGURED, Window, roi_report, traffic_measure
from governance.metrics import MetricQuery, metric_read
from governance.models import AuditRecord, EventType
from governance.tests.factories import ActionPolicyFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = date(2025, 3, 31)
MARCH = Window.of_days(date(2025, 3, 1), TODAY)  # 31 days
IN_MARCH = timezone.make_aware(datetime(2025, 3, 15, 12))


def _event(
    kind: str, conversation: str, *, intent: str = "", channel: str = "web_chat", at: datetime = IN_MARCH, **data: Any
) -> None:
    AnalyticsEvent.objects.create(
        kind=kind, conversation_id=conversation, channel=channel, intent=intent, data=data, created_at=at
    )


def _conversation(
    name: str, *, intent: str = "shipping_times", closed: bool = True, reached: str = "", channel: str = "web_chat"
) -> None:
    """A conversation the agent answered about ``intent``; maybe closed, maybe after reaching a person."""
    _event(EventKind.TURN_ANSWERED, name, intent=intent, channel=channel)
    if reached:
        _event(reached, name, channel=channel)
    if closed:
        _event(EventKind.CLOSED, name, channel=channel)


def _executed(name: str, action: str, *, intent: str = "pause_subscription", reason: str = "executed") -> None:
    _event(EventKind.ACTION_EXECUTED, name, intent=intent, action=action, decision="allow", reason=reason)


def _costs(**fields: Any) -> CostSettings:
    values = {"currency": "EUR", **fields}
    costs = CostSettings(**values)
    costs.full_clean()
    costs.save()
    return costs


def test_contained_conversations_are_worth_the_human_contact_cost() -> None:
    for name in ("a", "b", "c", "d"):
        _conversation(name)
    _conversation("escalated", reached=EventKind.ESCALATED)
    _conversation("taken", reached=EventKind.HUMAN_TOOK_OVER)
    _conversation("open", closed=False)  # not ended: answered, never contained
    _costs(human_contact_cost=Decimal("6.50"), agent_minute_cost=Decimal("1"), minutes_per_human_contact=10)

    roi = roi_report(MARCH)

    assert (roi.counts.conversations, roi.counts.closed, roi.counts.contained) == (7, 6, 4)
    assert roi.contained_value.amount == Decimal("26.00")  # 4 × 6.50: the contact cost wins over 10 min × 1


def test_without_a_contact_cost_contained_conversations_are_worth_the_minutes_a_person_would_spend() -> None:
    _conversation("a")
    _conversation("b")
    _costs(agent_minute_cost=Decimal("0.80"), minutes_per_human_contact=Decimal("7.5"))

    assert roi_report(MARCH).contained_value.amount == Decimal("12.00")  # 2 × 7.5 min × 0.80


def test_automated_actions_save_their_minutes_at_the_agent_minute_cost() -> None:
    ActionPolicyFactory(action="subscription_pause")
    ActionPolicyFactory(action="address_change")
    _executed("a", "subscription_pause")
    _executed("b", "subscription_pause")
    _executed("c", "address_change", intent="change_address")
    # A lookup is part of answering, and an approval is a person's decision: neither is an automated action.
    _executed("d", "order_status_lookup", intent="where_is_my_order", reason="read-only lookup")
    _event(EventKind.APPROVAL_REQUESTED, "e", action="refund", decision="needs_approval")
    _costs(
        agent_minute_cost=Decimal("0.50"),
        default_minutes_saved_per_action=3,
        minutes_saved_per_action={"subscription_pause": 4},
    )

    roi = roi_report(MARCH)

    assert roi.counts.actions == {"subscription_pause": 2, "address_change": 1}
    assert roi.actions_value.amount == Decimal("5.50")  # (2 × 4 + 1 × 3 default) min × 0.50


def test_an_action_nobody_gave_minutes_to_is_not_computable_and_says_which() -> None:
    _executed("a", "subscription_pause")
    _costs(agent_minute_cost=Decimal("0.50"))

    value = roi_report(MARCH).actions_value

    assert value.amount is None and "subscription_pause" in value.why


def test_the_monthly_running_cost_is_prorated_to_the_period_and_to_a_channels_share() -> None:
    _conversation("a", channel="web_chat")
    for name in ("b", "c", "d"):
        _conversation(name, channel="email")
    _costs(monthly_running_cost=Decimal("365.25"), model_cost_per_conversation=Decimal("0.10"))  # 12 a day
    ten_days = Window.of_days(date(2025, 3, 10), date(2025, 3, 19))

    assert roi_report(ten_days).running_cost.amount == Decimal("120")  # 365.25 × 10 ÷ 30.4375
    assert roi_report(MARCH).running_cost.amount == Decimal("372")
    web_chat = roi_report(Window.of_days(date(2025, 3, 10), date(2025, 3, 19), "web_chat"))
    assert web_chat.running_cost.amount == Decimal("30")  # a quarter of the conversations
    assert web_chat.model_cost.amount == Decimal("0.10")


def test_net_saving_and_payback_from_value_cost_and_setup_cost() -> None:
    for name in range(40):
        _conversation(f"c{name}")
    _costs(
        human_contact_cost=Decimal("20"),
        model_cost_per_conversation=Decimal("0.25"),
        monthly_running_cost=Decimal("365.25"),  # 12 a day
        setup_cost=Decimal("1000"),
    )

    roi = roi_report(MARCH)

    assert roi.value.amount == Decimal("800")
    assert roi.cost.amount == Decimal("382")  # 40 × 0.25 + 31 days × 12
    assert roi.net.amount == Decimal("418")
    assert roi.net_per_month.amount == pytest.approx(Decimal("410.4153"), abs=Decimal("0.0001"))  # × 30.4375 ÷ 31
    assert roi.payback.months == pytest.approx(Decimal("2.4366"), abs=Decimal("0.0001"))
    assert roi.payback.text() == "2.4 months"


def test_an_agent_that_costs_more_than_it_saves_never_pays_back() -> None:
    _conversation("a")
    _costs(human_contact_cost=Decimal("5"), model_cost_per_conversation=0, monthly_running_cost=1000, setup_cost=10)

    roi = roi_report(MARCH)

    assert roi.net.amount < 0
    assert roi.payback.never and roi.payback.text() == "never at this rate"


def test_per_intent_rows_show_which_workloads_pay_for_themselves() -> None:
    Intent.objects.create(name="shipping_times", label="Shipping times", examples=["x"])
    for name in ("s1", "s2", "s3"):
        _conversation(name, intent="shipping_times")
    _conversation("r1", intent="refund_request", reached=EventKind.ESCALATED)
    # One conversation about two intents counts under both; the total counts it once.
    _event(EventKind.TURN_ANSWERED, "s3", intent="refund_request")
    _costs(human_contact_cost=Decimal("4"), model_cost_per_conversation=Decimal("1"), monthly_running_cost=0)

    roi = roi_report(MARCH)

    rows = {row.intent: row for row in roi.intents}
    shipping, refund = rows["shipping_times"], rows["refund_request"]
    assert shipping.label == "Shipping times" and refund.label == "refund_request"  # no Intent row: its name
    assert (shipping.counts.conversations, shipping.counts.contained, shipping.net.amount) == (3, 3, Decimal("9"))
    assert (refund.counts.conversations, refund.counts.closed, refund.counts.contained) == (2, 2, 1)
    assert (refund.value.amount, refund.model_cost.amount, refund.net.amount) == (Decimal("4"), 2, Decimal("2"))
    assert [row.intent for row in roi.intents] == ["shipping_times", "refund_request"]  # highest net first
    assert roi.counts.conversations == 4


def test_with_nothing_configured_every_amount_is_not_computable_and_the_counts_still_show() -> None:
    _conversation("a")
    _executed("b", "subscription_pause")

    roi = roi_report(MARCH)

    assert roi.costs is None and roi.counts.contained == 1
    for money in (roi.value, roi.cost, roi.net, roi.net_per_month, roi.running_cost, roi.intents[0].net):
        assert money.amount is None and NOT_CONFIGURED in money.why
    assert roi.payback.months is None and not roi.payback.never


def test_without_traffic_the_value_and_the_net_are_not_computable_but_the_cost_is() -> None:
    _costs(human_contact_cost=5, model_cost_per_conversation=1, monthly_running_cost=Decimal("365.25"), setup_cost=1)

    roi = roi_report(MARCH)

    assert roi.value.why == NO_TRAFFIC and roi.net.amount is None and roi.payback.months is None
    assert roi.cost.amount == Decimal("372")
    assert roi.intents == []


def test_test_conversations_never_count() -> None:
    suite_run = Conversation.objects.create(is_test=True)
    _conversation(str(suite_run.pk))
    _executed(str(suite_run.pk), "subscription_pause")
    _conversation("real")

    traffic = traffic_measure(MARCH)

    assert (traffic.total.conversations, traffic.total.contained, traffic.total.actions) == (1, 1, {})
    assert traffic.by_intent["shipping_times"].conversations == 1


def test_containment_agrees_with_the_metric_the_gates_read() -> None:
    now = timezone.now()
    for name, reached in (("a", ""), ("b", EventKind.ESCALATED), ("c", "")):
        _event(EventKind.TURN_ANSWERED, name, at=now)
        if reached:
            _event(reached, name, at=now)
        _event(EventKind.CLOSED, name, at=now)
    _event(EventKind.TRAFFIC_TO_PERSON, "held", at=now)
    _event(EventKind.CLOSED, "held", at=now)

    gate = metric_read(MetricQuery("web_chat", "containment_rate", window_days=7))
    counts = traffic_measure(Window.last_days(7, "web_chat")).total

    assert (counts.contained, counts.closed) == (gate.part, gate.n) == (2, 3)


def test_the_report_takes_the_same_queries_however_much_traffic(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    _costs(human_contact_cost=1)
    _conversation("a")
    with django_assert_num_queries(7):
        roi_report(MARCH)
    for name in range(20):
        _conversation(f"more{name}", intent=f"intent_{name % 4}")
        _executed(f"more{name}", "subscription_pause", intent=f"intent_{name % 4}")

    with django_assert_num_queries(7):
        roi_report(MARCH)


# --- The cost settings' admin ------------------------------------------------------------------------------------


def _admin_form(**overrides: Any) -> dict[str, Any]:
    return {
        "currency": "eur",
        "human_contact_cost": "6.50",
        "agent_minute_cost": "0.60",
        "minutes_per_human_contact": "",
        "model_cost_per_conversation": "0.02",
        "monthly_running_cost": "400",
        "setup_cost": "",
        "default_minutes_saved_per_action": "3",
        "minutes_saved_per_action": "{}",
        **overrides,
    }


@pytest.fixture
def superuser(db) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(username="root", is_superuser=True)


def test_costs_saved_in_admin_are_audited_and_the_currency_upper_cased(superuser: User, client: Client) -> None:
    client.force_login(superuser)

    response = client.post(reverse("admin:dashboard_costsettings_add"), _admin_form())

    assert response.status_code == 302, response.context["adminform"].form.errors
    costs = CostSettings.current()
    assert costs is not None and costs.currency == "EUR" and costs.human_contact_cost == Decimal("6.50")
    assert AuditRecord.objects.filter(
        event_type=EventType.CONFIG_CREATED, subject_type="dashboard.costsettings"
    ).exists()
    # One row: "add" opens it (a second one is never added), and the list goes straight to it too.
    adding = client.get(reverse("admin:dashboard_costsettings_add"))
    assert adding.status_code == 302 and adding.url == reverse("admin:dashboard_costsettings_change", args=[1])
    client.post(reverse("admin:dashboard_costsettings_add"), _admin_form())
    assert CostSettings.objects.count() == 1
    listing = client.get(reverse("admin:dashboard_costsettings_changelist"))
    assert listing.status_code == 302 and listing.url == reverse("admin:dashboard_costsettings_change", args=[1])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("human_contact_cost", "-1", "cannot be negative"),
        ("monthly_running_cost", "-0.01", "cannot be negative"),
        ("default_minutes_saved_per_action", "-2", "cannot be negative"),
        ("currency", "euro", "three-letter"),
        ("currency", "E1R", "three-letter"),
        ("minutes_saved_per_action", '{"subscription_pause": -4}', "0 or more"),
        ("minutes_saved_per_action", '{"teleport": 4}', "no action policy named teleport"),
        ("minutes_saved_per_action", "[4]", "Give an object"),
    ],
)
def test_bad_costs_in_admin_are_form_errors_never_saved(
    superuser: User, client: Client, field: str, value: str, message: str
) -> None:
    ActionPolicyFactory(action="subscription_pause")
    client.force_login(superuser)

    response = client.post(reverse("admin:dashboard_costsettings_add"), _admin_form(**{field: value}))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not CostSettings.objects.exists()


# --- The page ----------------------------------------------------------------------------------------------------


def _roi_url(**params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("dashboard:roi") + (f"?{query}" if query else "")


def test_the_page_shows_amounts_in_the_currency_and_per_intent(support_manager: User, client: Client) -> None:
    Intent.objects.create(name="shipping_times", label="Shipping times", examples=["x"])
    now = timezone.now()
    _event(EventKind.TURN_ANSWERED, "a", intent="shipping_times", at=now)
    _event(EventKind.CLOSED, "a", at=now)
    _costs(
        human_contact_cost=Decimal("1250"),
        model_cost_per_conversation=0,
        monthly_running_cost=Decimal("365.25"),
        setup_cost=Decimal("2400"),
    )
    client.force_login(support_manager)

    response = client.get(_roi_url())

    assert response.status_code == 200
    text = response.content.decode()
    assert "1,250.00 EUR" in text  # contained value
    assert "360.00 EUR" in text  # the running cost of the default 30 days, 12 a day
    assert "Shipping times" in text and "Payback:" in text
    assert response.context["report"].window.days == 30


def test_the_page_says_costs_are_not_configured_and_shows_no_amount(support_manager: User, client: Client) -> None:
    _event(EventKind.TURN_ANSWERED, "a", at=timezone.now())
    client.force_login(support_manager)

    text = client.get(_roi_url()).content.decode()

    assert "Costs are not configured" in text and "not computable" in text
    assert " EUR" not in text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2025-03-10", "to": "2025-03-01"}, "before it starts"),
        ({"from": "yesterday"}, "Enter a valid date"),
        ({"to": "2999-01-01"}, "after today"),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "at most 366 days"),
        ({"channel": "web chat!"}, "slug"),
    ],
)
def test_a_bad_period_or_channel_is_a_400_with_the_reason(
    support_manager: User, client: Client, params: dict[str, str], message: str
) -> None:
    client.force_login(support_manager)

    response = client.get(_roi_url(**params))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert "report" not in response.context


@pytest.mark.parametrize("page", ["dashboard:roi", "dashboard:roadmap"])
def test_an_anonymous_visitor_is_sent_to_log_in(client: Client, page: str) -> None:
    response = client.get(reverse(page))

    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


@pytest.mark.parametrize("page", ["dashboard:roi", "dashboard:roadmap"])
def test_a_support_agent_may_not_see_the_pages(support_agent: User, client: Client, page: str) -> None:
    client.force_login(support_agent)

    assert client.get(reverse(page)).status_code == 403


@pytest.mark.parametrize("page", ["dashboard:roi", "dashboard:roadmap"])
def test_a_support_admin_may_see_the_pages(support_admin: User, client: Client, page: str) -> None:
    client.force_login(support_admin)

    assert client.get(reverse(page)).status_code == 200


def test_days_outside_the_period_do_not_count() -> None:
    _conversation("march")
    _event(EventKind.TURN_ANSWERED, "april", at=IN_MARCH + timedelta(days=20))
    _event(EventKind.CLOSED, "april", at=IN_MARCH + timedelta(days=20))

    assert traffic_measure(MARCH).total.conversations == 1
