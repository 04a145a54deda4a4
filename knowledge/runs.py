"""Ingestion runs: walk a source's origin and bring its documents up to date, saving progress as it goes.

A run is claimed with a conditional update (queued -> running), so a redelivered task never runs it twice; the partial
unique constraint on IngestionRun allows one queued-or-running run per source. Each document is read, parsed and
chunked on its own (knowledge.ingestion.document_prepare): one broken file is recorded in the run's errors and the
others go on; an unchanged file is not embedded again, so a run stopped by its time limit is resumed cheaply by
running it again. The chunks of several documents are embedded together (documents_write), then each document is
written in its own transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.audit import audit_record
from governance.models import EventType
from knowledge.exceptions import OriginError
from knowledge.ingestion import PreparedDocument, document_delete, document_prepare, documents_write
from knowledge.models import Document, DocumentStatus, IngestionRun, KnowledgeSource
from knowledge.origins import ORIGINS, DocumentUnreadable, Listing, RawDocument, title_from_content

logger = logging.getLogger(__name__)

# The task's limits (knowledge.tasks): a big folder embeds for minutes, far over the default 60 s of other tasks.
INGEST_SOFT_TIME_LIMIT = 30 * 60
INGEST_TIME_LIMIT = INGEST_SOFT_TIME_LIMIT + 60
# A run still "running" this long after it started lost its worker (killed past the hard limit, machine gone); a run
# "queued" this long lost its message. Either blocks the source's next run until marked failed.
RUNNING_ABANDONED_AFTER = timedelta(seconds=INGEST_TIME_LIMIT + 60)
QUEUED_ABANDONED_AFTER = timedelta(hours=1)
MAX_RECORDED_ERRORS = 200  # per run; the counters still count them all
# Chunks of several documents embedded in one call, so that the embedder fills its batches with texts of similar
# lengths. On the banking benchmark corpus (docs/benchmarks.md) the model computes 1.30x the useful tokens when called
# once per document (padding), 1.06x in calls of 256 chunks, 1.035x of 512, 1.008x all at once. 512 chunks are
# about 25 s of embedding: what a time limit can lose, and how often the admin's progress moves at most.
EMBED_BATCH_CHUNKS = 512


def ingestion_run_claim(*, run_id: int) -> IngestionRun | None:
    """Move a queued run to running and return it, or return None if it is not queued (someone else has it)."""
    claimed = IngestionRun.objects.filter(pk=run_id, status=IngestionRun.Status.QUEUED).update(
        status=IngestionRun.Status.RUNNING, started_at=timezone.now()
    )
    if claimed != 1:
        return None
    return IngestionRun.objects.select_related("source").get(pk=run_id)


def ingestion_runs_abandon_stale(*, source: KnowledgeSource) -> int:
    """Mark the source's runs that lost their worker or their message as failed; return how many."""
    now = timezone.now()
    return IngestionRun.objects.filter(
        Q(status=IngestionRun.Status.RUNNING, started_at__lt=now - RUNNING_ABANDONED_AFTER)
        | Q(status=IngestionRun.Status.QUEUED, created_at__lt=now - QUEUED_ABANDONED_AFTER),
        source=source,
    ).update(
        status=IngestionRun.Status.FAILED,
        finished_at=now,
        errors=[{"external_id": "", "reason": "abandoned: its worker or its queue message was lost"}],
    )


class _Progress:
    """The run's counters, written to its row after every document so the admin shows them live."""

    FIELDS = [
        "documents_total",
        "documents_done",
        "documents_failed",
        "documents_unchanged",
        "documents_removed",
        "errors",
    ]

    def __init__(self, run: IngestionRun) -> None:
        self.run = run

    def save(self) -> None:
        IngestionRun.objects.filter(pk=self.run.pk).update(**{name: getattr(self.run, name) for name in self.FIELDS})

    def failed(self, external_id: str, reason: str) -> None:
        self.run.documents_failed += 1
        if len(self.run.errors) < MAX_RECORDED_ERRORS:
            self.run.errors = [*self.run.errors, {"external_id": external_id, "reason": reason[:1000]}]

    def outcome(self, document: Document, *, ingested_before: datetime | None) -> None:
        if document.status == DocumentStatus.FAILED:
            self.failed(document.external_id, document.error)
        elif ingested_before is not None and document.ingested_at == ingested_before:
            self.run.documents_unchanged += 1
        else:
            self.run.documents_done += 1


def _prepare_one(
    source: KnowledgeSource, raw: RawDocument, progress: _Progress, ingested: dict[str, datetime | None]
) -> PreparedDocument | None:
    """Read and prepare one document; return it if it needs embedding, else record its outcome and return None."""
    try:
        content, content_type = raw.load()
    except DocumentUnreadable as exc:
        progress.failed(raw.external_id, str(exc))
        return None
    title = raw.title
    if raw.title_from_content:
        title = title_from_content(content, content_type) or raw.title
    prepared = document_prepare(
        source=source,
        external_id=raw.external_id,
        title=title,
        content=content,
        content_type=content_type,
        url=raw.url,
        version=raw.version,
    )
    if isinstance(prepared, Document):  # unchanged, or unreadable
        progress.outcome(prepared, ingested_before=ingested.get(raw.external_id))
        return None
    return prepared


def _write(pending: list[PreparedDocument], progress: _Progress, ingested: dict[str, datetime | None]) -> None:
    """Embed the pending documents together and write them one by one, recording each outcome as it lands."""
    for document in documents_write(pending):
        progress.outcome(document, ingested_before=ingested.get(document.external_id))
        progress.save()
    pending.clear()


def _ingest(source: KnowledgeSource, listing: Listing, progress: _Progress) -> None:
    # When each document was last embedded: unchanged documents keep that time (document_prepare skips them).
    ingested = dict(source.documents.values_list("external_id", "ingested_at"))
    pending: list[PreparedDocument] = []
    for raw in listing.documents:
        prepared = _prepare_one(source, raw, progress, ingested)
        if prepared is None:
            progress.save()
            continue
        pending.append(prepared)
        if sum(len(item.drafts) for item in pending) >= EMBED_BATCH_CHUNKS:
            _write(pending, progress, ingested)
    _write(pending, progress, ingested)


def _remove_missing(source: KnowledgeSource, listing: Listing, progress: _Progress) -> None:
    listed = {raw.external_id for raw in listing.documents}
    for document in source.documents.exclude(external_id__in=listed):
        document_delete(document=document)
        progress.run.documents_removed += 1
    progress.save()


def ingestion_run_execute(*, run: IngestionRun) -> IngestionRun:
    """Walk the claimed run's origin, ingest each document, remove documents gone from a complete origin."""
    source = run.source
    progress = _Progress(run)
    try:
        with ORIGINS[source.origin](source) as listing:
            run.documents_total = len(listing.documents)
            progress.save()
            _ingest(source, listing, progress)
            if listing.complete:
                _remove_missing(source, listing, progress)
    except OriginError as exc:
        progress.failed("", str(exc))
        return ingestion_run_finish(run=run, status=IngestionRun.Status.FAILED)
    status = IngestionRun.Status.DONE_WITH_ERRORS if run.documents_failed else IngestionRun.Status.DONE
    return ingestion_run_finish(run=run, status=status)


@transaction.atomic
def ingestion_run_finish(*, run: IngestionRun, status: str, reason: str = "") -> IngestionRun:
    """Record the run's end and its counts, and audit it (the system did it on someone's request)."""
    if reason:
        _Progress(run).failed("", reason)
    run.status = status
    run.finished_at = timezone.now()
    run.save(update_fields=[*_Progress.FIELDS, "status", "finished_at"])
    data: dict[str, Any] = {
        "run": run.pk,
        "status": status,
        "total": run.documents_total,
        "done": run.documents_done,
        "failed": run.documents_failed,
        "unchanged": run.documents_unchanged,
        "removed": run.documents_removed,
    }
    audit_record(
        actor=None,
        event_type=EventType.SYSTEM,
        subject=run.source,
        decision=status,
        reason=f"knowledge ingestion run {run.pk} finished",
        data=data,
    )
    logger.info("knowledge ingestion run finished", extra=data)
    return run
