"""The support dashboard's pages: who may see them, the period and filters (bad ones answer 400), the metric cards
against ``analytics_report``, the drill-down's conversations, the CSV exports, and the panels beside the metrics."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agent.messages import conversation_start
from analytics.models import EventKind
from analytics.report import REPORT_METRICS, analytics_report, slices_not_narrowed
from dashboard.drilldown import DRILLDOWNS, drill_summary
from dashboard.filters import Filters
from dashboard.selectors import metric_series_read
from dashboard.tests.facts import days_ago, period, record, support_fortnight, support_week
from governance.models import ApprovalRequest, ApprovalStatus, ChannelRollout, GateCriterion, RolloutGate
from governance.models.gates import Comparator, CriterionKind
from governance.tests.factories import ApprovalRequestFactory
from knowledge.models import Chunk, Document, FailedRetrieval
from knowledge.tests.factories import KnowledgeSourceFactory

pytestmark = pytest.mark.django_db

HOME = "/dashboard/"


@pytest.fixture
def manager_client(client: Client, support_manager) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(support_manager)
    return client


@pytest.fixture
def week() -> dict[str, Any]:
    return support_week()


def card(html: str, name: str) -> dict[str, str]:
    """The data attributes of one metric card."""
    match = re.search(rf'data-metric-card="{name}" data-value="([^"]*)" data-n="(\d+)"', html)
    assert match, f"no card for {name}"
    return {"value": match.group(1), "n": match.group(2)}


def csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- Who may see it ------------------------------------------------------------------------------------------------

PAGES = [HOME, "/dashboard/metrics/containment_rate/", "/dashboard/metrics/containment_rate/conversations/"]


@pytest.mark.parametrize("url", PAGES)
def test_an_anonymous_visitor_is_sent_to_log_in_first(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("url", PAGES)
def test_a_support_agent_may_not_see_the_dashboard(client: Client, support_agent, url: str) -> None:  # type: ignore[no-untyped-def]
    client.force_login(support_agent)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_managers_and_admins_see_the_dashboard(client: Client, support_manager, support_admin, url: str) -> None:  # type: ignore[no-untyped-def]
    for user in (support_manager, support_admin):
        client.force_login(user)
        assert client.get(url).status_code == 200


# --- Cards ---------------------------------------------------------------------------------------------------------


def test_every_report_metric_has_a_card_with_the_figure_the_report_gives_for_the_range(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    html = manager_client.get(HOME, period(week)).content.decode()
    report = analytics_report(start=week["from"], end=week["to"])["metrics"]

    for name in REPORT_METRICS:
        shown = card(html, name)
        row = report[name]
        if row["value"] is None:
            assert shown["value"] == ""
        else:
            assert float(shown["value"]) == pytest.approx(row["value"])
            assert int(shown["n"]) == row["n"]
    assert card(html, "containment_rate") == {"value": "0.8", "n": "5"}  # every channel: the e-mail too
    assert "95% interval" in html and "80.0%" in html


def test_a_channel_narrows_the_cards_and_the_figures_still_match_the_report(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    html = manager_client.get(HOME, period(week, channel="web_chat")).content.decode()
    report = analytics_report(start=week["from"], end=week["to"], channel="web_chat")["metrics"]

    assert card(html, "containment_rate") == {"value": "0.75", "n": "4"}
    assert report["containment_rate"]["value"] == 0.75
    assert float(card(html, "failed_retrieval_rate")["value"]) == report["failed_retrieval_rate"]["value"] == 0.5
    assert float(card(html, "csat_ai")["value"]) == report["csat_ai"]["value"] == 4.5


def test_an_intent_narrows_the_cards_to_its_conversations(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    html = manager_client.get(HOME, period(week, intent="refund_request")).content.decode()
    assert card(html, "containment_rate") == {"value": "0.5", "n": "2"}


def test_a_metric_with_nothing_in_the_period_is_unknown_and_says_why(manager_client) -> None:  # type: ignore[no-untyped-def]
    html = manager_client.get(HOME).content.decode()
    assert card(html, "containment_rate") == {"value": "", "n": "0"}
    block = html.split('data-metric-card="containment_rate"', 1)[1].split("</article>", 1)[0]
    assert "unknown" in block and "nothing in this period to compute it from" in block


def test_a_slice_a_metric_is_not_narrowed_by_leaves_it_unknown_never_the_unsliced_figure(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    params = period(week, stage="3")
    html = manager_client.get(HOME, params).content.decode()
    drill = manager_client.get("/dashboard/metrics/qa_pass_rate/conversations/", params).content.decode()

    assert card(html, "qa_pass_rate") == {"value": "", "n": "0"}
    assert "not narrowed by stage" in html.split('data-metric-card="qa_pass_rate"', 1)[1].split("</article>", 1)[0]
    assert "this metric is not narrowed by stage" in drill and "data-conversation" not in drill
    assert card(html, "containment_rate") == {"value": "0.5", "n": "2"}  # the conversations of stage-3 turns


# --- Bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "Enter a valid date"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "before it starts"),
        ({"from": "2020-01-01", "to": "2022-01-01"}, "at most 366"),
        ({"channel": "web chat!"}, "slug"),
        ({"stage": "9"}, "Select a valid choice"),
        ({"intent": "refund<script>"}, "letters, digits"),
        ({"to": "2999-01-01"}, "after today"),
        ({"to": "0001-01-01"}, "no data before 2000-01-01"),
    ],
)
def test_bad_filters_show_the_page_with_the_error_and_a_400(manager_client, params, message) -> None:  # type: ignore[no-untyped-def]
    for url in PAGES:
        response = manager_client.get(url, params)
        assert response.status_code == 400
        assert message in response.content.decode()
        assert "These filters cannot be shown" in response.content.decode()


def test_a_sliced_period_is_held_to_a_quarter(manager_client) -> None:  # type: ignore[no-untyped-def]
    start = (timezone.localdate() - timedelta(days=120)).isoformat()
    assert manager_client.get(HOME, {"from": start}).status_code == 200
    response = manager_client.get(HOME, {"from": start, "intent": "refund_request"})
    assert response.status_code == 400
    assert "at most 92 days" in response.content.decode()


def test_an_unknown_metric_is_404_and_an_unknown_format_or_page_is_400(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    assert manager_client.get("/dashboard/metrics/no_such_metric/").status_code == 404
    assert manager_client.get("/dashboard/metrics/no_such_metric/conversations/").status_code == 404
    assert manager_client.get("/dashboard/metrics/containment_rate/", {"format": "xml"}).status_code == 400
    drill = "/dashboard/metrics/containment_rate/conversations/"
    assert manager_client.get(drill, period(week, page="0")).status_code == 400
    response = manager_client.get(drill, period(week, page="2"))
    assert response.status_code == 400
    assert "There is no page 2" in response.content.decode()


# --- Drill-down ----------------------------------------------------------------------------------------------------


def _listed(html: str) -> dict[str, bool]:
    """The drill-down's rows: conversation id → counted in the numerator."""
    rows = re.findall(r'<tr( class="dashboard-counted")? data-conversation="([^"]+)">', html)
    return {cid: bool(counted) for counted, cid in rows}


def test_the_drill_down_lists_exactly_the_conversations_behind_the_figure(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    url = reverse("dashboard:conversations", args=["containment_rate"])
    html = manager_client.get(url, period(week, channel="web_chat")).content.decode()

    web = week["web"]
    assert _listed(html) == {str(c.pk): c != web[3] for c in web}  # not the e-mail one, not the one before
    assert reverse("console:detail", args=[web[0].pk]) in html
    assert "4 rows" in html and "<strong>3</strong> never reached a person" in html


def test_a_conversation_counted_on_two_days_is_two_rows_as_in_the_daily_figures(manager_client) -> None:  # type: ignore[no-untyped-def]
    conversation = conversation_start(channel="web_chat")
    record(days_ago(2), EventKind.CLOSED, conversation)
    record(days_ago(1), EventKind.CLOSED, conversation)  # reopened and closed again the next day
    params = {"from": days_ago(3).isoformat(), "channel": "web_chat"}

    html = manager_client.get(HOME, params).content.decode()
    drill = manager_client.get("/dashboard/metrics/containment_rate/conversations/", params).content.decode()

    assert card(html, "containment_rate")["n"] == "2"
    assert drill.count(f'data-conversation="{conversation.pk}"') == 2


# The QA metrics have no review in the fortnight: their lists are checked empty against an n of 0.
WITHOUT_DATA = {"escalation_accuracy", "policy_breach_rate", "qa_coverage", "qa_pass_rate"}


@pytest.mark.parametrize("name", sorted(DRILLDOWNS))
def test_every_conversation_list_numbers_the_cards_sample_and_numerator(name: str) -> None:
    support_fortnight()
    for filters in (Filters(days_ago(20), timezone.localdate()), Filters(days_ago(20), days_ago(1), stage=3)):
        series = metric_series_read(name, filters)
        if name in WITHOUT_DATA or filters.stage and slices_not_narrowed(name, stage=3):
            assert drill_summary(DRILLDOWNS[name].rows(filters))["n"] == series.total.n == 0
            continue
        summary = drill_summary(DRILLDOWNS[name].rows(filters))
        assert summary["n"] == series.total.n > 0
        if series.unit == "rate":
            assert summary["counted"] == series.total.numerator
        else:
            assert summary["average"] == pytest.approx(series.total.value)


def test_the_escalation_drill_down_marks_the_conversations_escalated(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    url = reverse("dashboard:conversations", args=["escalation_rate"])
    html = manager_client.get(url, period(week)).content.decode()
    web = week["web"]
    assert _listed(html) == {str(c.pk): c == web[3] for c in web}


def test_the_drill_down_of_a_day_lists_that_day_only(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    day = days_ago(3).isoformat()
    url = reverse("dashboard:conversations", args=["containment_rate"])
    html = manager_client.get(url, {"from": day, "to": day}).content.decode()
    assert set(_listed(html)) == {str(week["web"][0].pk), str(week["web"][1].pk), str(week["mail"].pk)}


def test_the_drill_down_is_paginated(manager_client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(53):
        record(days_ago(1), EventKind.CLOSED, conversation_start(channel="web_chat"))
    url = reverse("dashboard:conversations", args=["containment_rate"])
    params = {"from": days_ago(2).isoformat()}

    first = manager_client.get(url, params).content.decode()
    second = manager_client.get(url, {**params, "page": "2"}).content.decode()

    assert len(_listed(first)) == 50 and len(_listed(second)) == 3
    assert not set(_listed(first)) & set(_listed(second))
    assert "Page 1 of 2" in first


def test_the_drill_down_exports_every_row_as_csv(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    url = reverse("dashboard:conversations", args=["containment_rate"])
    response = manager_client.get(url, period(week, channel="web_chat", format="csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert rows[0] == ["day", "conversation_id", "at", "in_numerator", "figure", "console_url"]
    by_id = {row[1]: row for row in rows[1:]}
    assert set(by_id) == {str(c.pk) for c in week["web"]}
    assert by_id[str(week["web"][3].pk)][3] == "no" and by_id[str(week["web"][0].pk)][3] == "yes"
    assert by_id[str(week["web"][0].pk)][5].endswith(reverse("console:detail", args=[week["web"][0].pk]))


def test_an_average_lists_each_figure(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    url = reverse("dashboard:conversations", args=["csat_ai"])
    response = manager_client.get(url, period(week, format="csv"))
    figures = {row[1]: row[4] for row in csv_rows(response)[1:]}
    assert figures == {str(week["web"][0].pk): "5.0", str(week["web"][1].pk): "4.0"}


def test_a_metric_without_conversations_points_to_its_evidence(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    url = reverse("dashboard:conversations", args=["regression_pass_rate"])
    response = manager_client.get(url, period(week))
    assert response.status_code == 200
    assert reverse("admin:suites_suiterun_changelist") in response.content.decode()
    assert manager_client.get(url, period(week, format="csv")).status_code == 404


# --- The series page and its CSV -----------------------------------------------------------------------------------


def test_the_series_page_lists_each_day_linked_to_its_conversations(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    response = manager_client.get("/dashboard/metrics/containment_rate/", period(week))
    html = response.content.decode()
    assert response.status_code == 200
    day = days_ago(2).isoformat()
    assert f"from={day}&amp;to={day}" in html
    # No inline script (a strict Content-Security-Policy stays possible): scripts are files or the series' JSON.
    scripts = re.findall(r"<script[^>]*>", html)
    assert '<script id="dashboard-series" type="application/json">' in scripts
    assert all("src=" in tag or 'type="application/json"' in tag for tag in scripts)


def test_the_series_exports_one_row_per_day_with_a_header(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    response = manager_client.get(
        "/dashboard/metrics/containment_rate/", period(week, channel="web_chat", format="csv")
    )
    rows = csv_rows(response)

    assert rows[0] == ["day", "metric", "channel", "value", "n", "numerator", "low", "high", "why"]
    assert len(rows) == 1 + 7
    by_day = {row[0]: row for row in rows[1:]}
    assert by_day[days_ago(2).isoformat()][3:6] == ["0.5", "2", "1"]
    assert by_day[days_ago(3).isoformat()][3:6] == ["1.0", "2", "2"]
    assert by_day[days_ago(5).isoformat()][3:5] == ["", "0"]


# --- The panels ----------------------------------------------------------------------------------------------------


def test_each_channel_shows_its_stage_and_gate_criteria_against_their_thresholds(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    rollout = ChannelRollout.objects.create(channel="web_chat", stage=2)
    into_two = RolloutGate.objects.create(channel=rollout, stage=2)
    into_three = RolloutGate.objects.create(channel=rollout, stage=3)
    GateCriterion.objects.create(
        gate=into_two,
        kind=CriterionKind.ROLLBACK,
        metric="containment_rate",
        comparator=Comparator.AT_MOST,
        threshold=Decimal("0.2"),
        window_days=7,
    )
    GateCriterion.objects.create(
        gate=into_three,
        kind=CriterionKind.ENTRY,
        metric="containment_rate",
        comparator=Comparator.AT_LEAST,
        threshold=Decimal("0.9"),
        window_days=7,
        min_sample=10,
    )

    html = manager_client.get(HOME, period(week)).content.decode()
    panel = html.split('data-channel="web_chat"', 1)[1].split("</table>", 1)[0]

    assert "2 · CRM context lookup" in panel
    assert "into 2" in panel and "at most 0.2" in panel
    assert "into 3" in panel and "at least 0.9" in panel
    assert "0.750" in panel  # 3 of the 4 web conversations closed this week stayed with the AI
    assert "4 / 10" in panel and "too small" in panel


def test_top_intents_count_conversations_and_show_their_containment(manager_client, week) -> None:  # type: ignore[no-untyped-def]
    html = manager_client.get(HOME, period(week)).content.decode()
    section = html.split('id="intents-heading"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"where_is_my_order</a></td>\s*<td>2</td>\s*<td><a [^>]*>100.0%", section)
    assert re.search(r"refund_request</a></td>\s*<td>2</td>\s*<td><a [^>]*>50.0%", section)


def _chunk_of(source) -> Chunk:  # type: ignore[no-untyped-def]
    document = Document.objects.create(source=source, external_id="delivery.md", title="Delivery times")
    return Chunk.objects.create(
        document=document, source=source, position=0, text="Delivery", embedding=[0.0] * 384, embedding_model="test"
    )


def test_failed_queries_are_grouped_by_their_text_with_links_to_fix_or_create_knowledge(manager_client) -> None:  # type: ignore[no-untyped-def]
    source = KnowledgeSourceFactory(name="Shipping")
    chunk = _chunk_of(source)
    FailedRetrieval.objects.create(query="Where is my parcel?", audience="public", best_chunk=chunk)
    FailedRetrieval.objects.create(query="  where is   my PARCEL ", audience="public")
    FailedRetrieval.objects.create(query="Do you ship to Mars?", audience="public")

    html = manager_client.get(HOME).content.decode()
    section = html.split('id="failed-heading"', 1)[1].split("</section>", 1)[0]

    assert re.search(r"where is my parcel</td>\s*<td>2</td>", section)
    assert re.search(r"do you ship to mars</td>\s*<td>1</td>", section)
    assert reverse("admin:knowledge_knowledgesource_change", args=[source.pk]) in section
    assert reverse("admin:knowledge_knowledgesource_add") in section


def test_sources_past_their_review_date_are_listed_with_a_link_to_fix_them(manager_client) -> None:  # type: ignore[no-untyped-def]
    stale = KnowledgeSourceFactory(name="Old returns policy", last_reviewed_on=date.today() - timedelta(days=400))
    due = KnowledgeSourceFactory(name="Shipping rates", last_reviewed_on=date.today() - timedelta(days=190))
    KnowledgeSourceFactory(name="Fresh FAQ")

    html = manager_client.get(HOME).content.decode()
    section = html.split('id="sources-heading"', 1)[1].split("</section>", 1)[0]

    assert section.index("Old returns policy") < section.index("Shipping rates")
    assert "Fresh FAQ" not in section
    assert reverse("admin:knowledge_knowledgesource_change", args=[stale.pk]) in section
    assert reverse("admin:knowledge_knowledgesource_change", args=[due.pk]) in section
    assert "Stale" in section and "Review due" in section


def test_the_approval_backlog_lists_pending_requests_oldest_first(manager_client) -> None:  # type: ignore[no-untyped-def]
    newer = ApprovalRequestFactory()
    older = ApprovalRequestFactory()
    # created_at is stamped on insert (auto_now_add): set back here as if the request had waited five hours.
    ApprovalRequest.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=5))
    ApprovalRequestFactory(status=ApprovalStatus.REJECTED)

    html = manager_client.get(HOME).content.decode()
    section = html.split('id="approvals-heading"', 1)[1].split("</section>", 1)[0]

    assert '<span class="console-count">2</span>' in section
    older_link = reverse("admin:governance_approvalrequest_change", args=[older.pk])
    newer_link = reverse("admin:governance_approvalrequest_change", args=[newer.pk])
    assert section.index(older_link) < section.index(newer_link)
    assert "5\xa0hours" in section


def test_action_outcomes_are_counted_per_tier_in_the_period(manager_client) -> None:  # type: ignore[no-untyped-def]
    lookup = {"action": "order_lookup", "decision": "allow", "reason": "read-only lookup", "tier": "read_only"}
    refund = {"action": "refund", "decision": "deny", "reason": "over the ceiling", "tier": "automated"}
    record(days_ago(2), EventKind.ACTION_EXECUTED, "c1", **lookup)
    record(days_ago(2), EventKind.ACTION_EXECUTED, "c2", **lookup)
    record(days_ago(3), EventKind.ACTION_DENIED, "c3", **refund)
    record(days_ago(60), EventKind.ACTION_EXECUTED, "c4", **lookup)  # before the period

    html = manager_client.get(HOME).content.decode()
    section = html.split('id="outcomes-heading"', 1)[1].split("</section>", 1)[0]

    read_only = section.split('data-tier="read_only"', 1)[1].split("</tr>", 1)[0]
    automated = section.split('data-tier="automated"', 1)[1].split("</tr>", 1)[0]
    # Columns: executed, failed, not found, denied, rejected, expired, awaiting approval, all.
    assert [cell.split("</td>")[0] for cell in read_only.split("<td>")[1:]] == ["2", "0", "0", "0", "0", "0", "0", "2"]
    assert [cell.split("</td>")[0] for cell in automated.split("<td>")[1:]] == ["0", "0", "0", "1", "0", "0", "0", "1"]
    assert section.index('data-tier="read_only"') < section.index('data-tier="automated"')  # policy order
