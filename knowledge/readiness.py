"""Knowledge's lines of the readiness report (governance.readiness), registered by KnowledgeConfig.ready().

Customers are served approved sources of their audience: anonymous visitors the public ones
(agent.responders.base.audience_for). So the report asks: does approved public content serve now, is any approved
source past its stale date (KNOWLEDGE_STALE_POLICY says whether it still answers), and did the last ingestion run of
each approved source go through without failures?
"""

from __future__ import annotations

from datetime import date

from django.db.models import OuterRef, Q, Subquery, Sum
from django.utils import timezone

from governance.readiness import ReadinessLine, Status, admin_url, problems_line
from knowledge.models import Audience, IngestionRun, KnowledgeSource, SourceStatus

SECTION = "Knowledge"
FINISHED = [IngestionRun.Status.DONE, IngestionRun.Status.DONE_WITH_ERRORS, IngestionRun.Status.FAILED]


def knowledge_readiness() -> list[ReadinessLine]:
    """Report on the approved knowledge sources: one query."""
    from knowledge.retrieval import stale_policy  # imported here: ready() stays light

    today, policy = timezone.localdate(), stale_policy()
    last_run = IngestionRun.objects.filter(source=OuterRef("pk"), status__in=FINISHED).order_by("-finished_at", "-pk")
    sources = list(
        KnowledgeSource.objects.filter(status=SourceStatus.APPROVED)
        .filter(Q(retire_after__isnull=True) | Q(retire_after__gt=today))
        .select_related("owner")
        .annotate(
            chunk_total=Sum("documents__chunk_count"),
            last_run_status=Subquery(last_run.values("status")[:1]),
            last_run_failed=Subquery(last_run.values("documents_failed")[:1]),
        )
        .order_by("name")
    )
    return [_serving(sources, today, policy), _freshness(sources, today, policy), _ingestion(sources)]


def _serving(sources: list[KnowledgeSource], today: date, policy: str) -> ReadinessLine:
    title = "Approved public knowledge serves anonymous visitors"
    serving = [
        s
        for s in sources
        if s.audience == Audience.PUBLIC and s.chunk_total and (s.stale_on > today or policy == "downrank")
    ]
    if serving:
        detail = f"{len(serving)} approved public sources with content ({sum(s.chunk_total for s in serving)} chunks)."
        return ReadinessLine(SECTION, title, Status.PASS, detail, admin_url(KnowledgeSource))
    detail = (
        "No approved, unexpired public source with ingested content: the agent can answer no question from "
        "knowledge. Approve a public source and re-index it."
    )
    return ReadinessLine(SECTION, title, Status.FAIL, detail, admin_url(KnowledgeSource))


def _freshness(sources: list[KnowledgeSource], today: date, policy: str) -> ReadinessLine:
    consequence = "no longer answers" if policy == "exclude" else "still answers, ranked down"
    problems: dict[object, str] = {}
    for s in sources:
        if s.stale_on <= today:
            problems[s.pk] = f"{s}: stale since {s.stale_on.isoformat()}, {consequence} (KNOWLEDGE_STALE_POLICY)"
        elif not s.owner.is_active:
            problems[s.pk] = f"{s}: its owner's account is inactive, so nobody reviews it"
    ok = f"{len(sources)} approved sources, none past its stale date." if sources else "No approved source yet."
    return problems_line(SECTION, "No approved knowledge source is past its stale date", problems, ok, KnowledgeSource)


def _ingestion(sources: list[KnowledgeSource]) -> ReadinessLine:
    problems: dict[object, str] = {}
    for s in sources:
        if s.last_run_status == IngestionRun.Status.FAILED:
            problems[s.pk] = f"{s}: its last ingestion run failed"
        elif s.last_run_failed:
            problems[s.pk] = f"{s}: {s.last_run_failed} documents failed in its last ingestion run"
    ran = [s for s in sources if s.last_run_status]
    ok = f"The last run of each of {len(ran)} sources went through." if ran else "No ingestion run yet."
    return problems_line(
        SECTION, "The last ingestion run of every approved source had no failures", problems, ok, KnowledgeSource
    )
