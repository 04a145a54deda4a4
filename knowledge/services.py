"""Knowledge sources and uploaded documents: every write, its permission check and its audit record.

Who may do what to a source:

- create, change, delete: the global model permissions (``knowledge.add_/change_/delete_knowledgesource``), held
  through role groups (support admin);
- approve, mark reviewed, retire: ``knowledge.approve_knowledgesource``, globally (support manager, support admin)
  or on that one source (a django-guardian object permission its owner and fallback owner get);
- re-index, upload documents: ``knowledge.reindex_knowledgesource``, globally or on that source (owners again).

``actor=None`` is the system (seed data, migrations' data steps) and may do everything.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from governance.audit import audit_record
from governance.models import EventType
from knowledge.exceptions import DocumentRefused, IngestionAlreadyActive, InvalidSourceChange, NotPermitted
from knowledge.ingestion import content_hash, document_delete, document_upsert
from knowledge.models import Audience, Document, IngestionRun, KnowledgeSource, Origin, SourceStatus
from knowledge.origins import (
    MAX_DOCUMENT_BYTES,
    raw_content_delete,
    raw_content_store,
    validate_origin_config,
)
from knowledge.parsers import normalise_content_type
from knowledge.runs import ingestion_runs_abandon_stale

User = AbstractBaseUser

ADD = "knowledge.add_knowledgesource"
CHANGE = "knowledge.change_knowledgesource"
DELETE = "knowledge.delete_knowledgesource"
APPROVE = "knowledge.approve_knowledgesource"
REINDEX = "knowledge.reindex_knowledgesource"
# Object permissions a source's owner and fallback owner hold on it.
OWNER_PERMISSIONS = (APPROVE, REINDEX)

# The fields source_update may change; status, approval and supersession have their own services.
UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "owner",
        "fallback_owner",
        "audience",
        "products",
        "version_scope",
        "confidence",
        "last_reviewed_on",
        "review_interval_days",
        "retire_after",
        "origin",
        "origin_config",
    }
)
# Wider audiences reach more people: widening an approved source's audience needs a new approval.
_AUDIENCE_REACH = {Audience.INTERNAL: 0, Audience.VERIFIED: 1, Audience.PUBLIC: 2}


# --- Permissions -----------------------------------------------------------------------------------------------------


def source_permitted(*, actor: User | None, permission: str, source: KnowledgeSource | None = None) -> bool:
    """Return whether the actor holds ``permission`` globally (a role) or on ``source`` (its owners)."""
    if actor is None:
        return True
    if not actor.is_active:
        return False
    return actor.has_perm(permission) or (source is not None and actor.has_perm(permission, source))


def _require(actor: User | None, permission: str, source: KnowledgeSource | None, doing: str) -> None:
    if not source_permitted(actor=actor, permission=permission, source=source):
        who = actor.get_username() if actor is not None else "system"
        target = f" {source.name!r}" if source is not None and source.pk else ""
        raise NotPermitted(f"{who} is not allowed to {doing} the knowledge source{target}.")


def _owner_ids(source: KnowledgeSource) -> set[int]:
    return {pk for pk in (source.owner_id, source.fallback_owner_id) if pk is not None}


def _owner_permissions_sync(source: KnowledgeSource, *, previous: set[int]) -> None:
    """Give the source's owners its object permissions, and take them from owners it no longer has."""
    from django.contrib.auth import get_user_model

    current = _owner_ids(source)
    users = get_user_model().objects.in_bulk(current | previous)
    for pk in previous - current:
        for permission in OWNER_PERMISSIONS:
            remove_perm(permission, users[pk], source)
    for pk in current - previous:
        for permission in OWNER_PERMISSIONS:
            assign_perm(permission, users[pk], source)


# --- Sources ---------------------------------------------------------------------------------------------------------


def _snapshot(source: KnowledgeSource) -> dict[str, Any]:
    data = model_to_dict(source, fields=[*UPDATABLE_FIELDS, "status", "superseded_by"])
    data.update(
        review_due_on=source.review_due_on,
        stale_on=source.stale_on,
        approved_by=source.approved_by_id,
        approved_at=source.approved_at,
    )
    return data


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: {"old": before.get(key), "new": value} for key, value in after.items() if before.get(key) != value}


def _save(source: KnowledgeSource) -> None:
    """Validate, derive the review dates and save (every save of a source comes through here)."""
    source.compute_review_dates()
    source.origin_config = validate_origin_config(source.origin, source.origin_config)
    source.full_clean(exclude=["review_due_on", "stale_on"])
    source.save()


@transaction.atomic
def source_create(*, actor: User | None, owner: User, name: str, kind: str, **fields: Any) -> KnowledgeSource:
    """Create a source as a draft (it serves nothing until approved); its owners get their object permissions."""
    _require(actor, ADD, None, "create")
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise InvalidSourceChange(f"Unknown or protected source fields: {', '.join(sorted(unknown))}.")
    source = KnowledgeSource(name=name, kind=kind, owner=owner, status=SourceStatus.DRAFT, **fields)
    _save(source)
    _owner_permissions_sync(source, previous=set())
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_CREATED,
        subject=source,
        changes=_changes({}, _snapshot(source)),
    )
    return source


@transaction.atomic
def source_update(*, actor: User | None, source: KnowledgeSource, data: dict[str, Any]) -> KnowledgeSource:
    """Change a source's fields; widening an approved source's audience sends it back to draft for approval."""
    _require(actor, CHANGE, source, "change")
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise InvalidSourceChange(f"Unknown or protected source fields: {', '.join(sorted(unknown))}.")
    current = KnowledgeSource.objects.select_for_update().get(pk=source.pk)
    before, owners_before = _snapshot(current), _owner_ids(current)
    for name, value in data.items():
        setattr(current, name, value)
    reason = ""
    widened = _AUDIENCE_REACH[current.audience] > _AUDIENCE_REACH[before["audience"]]
    if widened and current.status == SourceStatus.APPROVED:
        current.status, current.approved_by, current.approved_at = SourceStatus.DRAFT, None, None
        reason = f"audience widened from {before['audience']} to {current.audience}: needs approval again"
    _save(current)
    _owner_permissions_sync(current, previous=owners_before)
    changes = _changes(before, _snapshot(current))
    if changes:
        audit_record(
            actor=actor,
            event_type=EventType.CONFIG_CHANGED,
            subject=current,
            fields=sorted(changes),
            changes=changes,
            reason=reason,
        )
    return current


def _transition(
    source: KnowledgeSource, actor: User | None, *, permission: str, doing: str
) -> tuple[KnowledgeSource, dict[str, Any]]:
    _require(actor, permission, source, doing)
    current = KnowledgeSource.objects.select_for_update().get(pk=source.pk)
    return current, _snapshot(current)


def _audit_transition(
    actor: User | None, source: KnowledgeSource, before: dict[str, Any], *, decision: str, reason: str = ""
) -> None:
    changes = _changes(before, _snapshot(source))
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_CHANGED,
        subject=source,
        fields=sorted(changes),
        changes=changes,
        decision=decision,
        reason=reason,
    )


@transaction.atomic
def source_approve(*, actor: User | None, source: KnowledgeSource, note: str = "") -> KnowledgeSource:
    """Approve a draft or retired source for serving; approving counts as a review (the freshness clock restarts)."""
    current, before = _transition(source, actor, permission=APPROVE, doing="approve")
    if current.status == SourceStatus.APPROVED:
        raise InvalidSourceChange(f"{current.name!r} is already approved.")
    if current.superseded_by_id is not None:
        raise InvalidSourceChange(
            f"{current.name!r} was superseded by {current.superseded_by.name!r}; approve that source instead."
        )
    current.status = SourceStatus.APPROVED
    current.approved_by = actor if isinstance(actor, AbstractBaseUser) else None
    current.approved_at = timezone.now()
    current.last_reviewed_on = timezone.localdate()
    _save(current)
    _audit_transition(actor, current, before, decision="approved", reason=note)
    return current


@transaction.atomic
def source_mark_reviewed(
    *, actor: User | None, source: KnowledgeSource, reviewed_on: date | None = None, note: str = ""
) -> KnowledgeSource:
    """Record that the owner checked the content: the review and stale dates move forward."""
    current, before = _transition(source, actor, permission=APPROVE, doing="mark as reviewed")
    reviewed_on = reviewed_on or timezone.localdate()
    if reviewed_on > timezone.localdate():
        raise InvalidSourceChange("A review date cannot be in the future.")
    current.last_reviewed_on = reviewed_on
    _save(current)
    _audit_transition(actor, current, before, decision="reviewed", reason=note)
    return current


@transaction.atomic
def source_retire(
    *,
    actor: User | None,
    source: KnowledgeSource,
    superseded_by: KnowledgeSource | None = None,
    reason: str = "",
) -> KnowledgeSource:
    """Stop serving a source, optionally in favour of another (which must itself not be retired)."""
    current, before = _transition(source, actor, permission=APPROVE, doing="retire")
    if current.status == SourceStatus.RETIRED:
        raise InvalidSourceChange(f"{current.name!r} is already retired.")
    if superseded_by is not None:
        if superseded_by.pk == current.pk:
            raise InvalidSourceChange("A source cannot be superseded by itself.")
        if superseded_by.status == SourceStatus.RETIRED:
            raise InvalidSourceChange(f"{superseded_by.name!r} is retired itself.")
    current.status = SourceStatus.RETIRED
    current.superseded_by = superseded_by
    _save(current)
    _audit_transition(actor, current, before, decision="retired", reason=reason)
    return current


@transaction.atomic
def source_delete(*, actor: User | None, source: KnowledgeSource) -> None:
    """Delete a source with its documents, chunks, runs and stored uploads; audit its last values."""
    _require(actor, DELETE, source, "delete")
    snapshot, pk = _snapshot(source), source.pk
    external_ids = list(source.documents.values_list("external_id", flat=True))
    # Guardian's object permissions point at the source by a generic key: nothing cascades to them.
    UserObjectPermission.objects.filter(
        content_type=ContentType.objects.get_for_model(KnowledgeSource), object_pk=str(pk)
    ).delete()
    source.delete()
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_DELETED,
        subject_type=KnowledgeSource._meta.label_lower,
        subject_id=str(pk),
        changes={key: {"old": value, "new": None} for key, value in snapshot.items()},
        data={"documents": len(external_ids)},
    )
    transaction.on_commit(lambda: [raw_content_delete(source_id=pk, external_id=e) for e in external_ids])


@transaction.atomic
def source_reindex(*, actor: User | None, source: KnowledgeSource) -> IngestionRun:
    """Queue an ingestion run of the source (one at a time); the task starts once this transaction commits."""
    from knowledge.tasks import ingest_source

    _require(actor, REINDEX, source, "re-index")
    ingestion_runs_abandon_stale(source=source)
    try:
        with transaction.atomic():
            run = IngestionRun.objects.create(
                source=source, requested_by=actor if isinstance(actor, AbstractBaseUser) else None
            )
    except IntegrityError:
        raise IngestionAlreadyActive(f"{source.name!r} is already being indexed; wait for that run to end.") from None
    audit_record(
        actor=actor,
        event_type=EventType.SYSTEM,
        subject=source,
        decision="reindex_queued",
        reason=f"knowledge ingestion run {run.pk} queued",
        data={"run": run.pk},
    )
    transaction.on_commit(lambda: ingest_source.delay(run.pk))
    return run


# --- Uploaded and pushed documents -----------------------------------------------------------------------------------


def document_upload(
    *,
    actor: User | None,
    source: KnowledgeSource,
    external_id: str,
    title: str,
    content: bytes | str,
    content_type: str,
    url: str = "",
    version: str = "",
) -> Document:
    """Keep an uploaded document's raw content and ingest it now; return the document (FAILED with the reason if
    it could not be read; a previous version keeps serving).

    Not one transaction: embedding takes seconds and must not hold the audit chain's lock. The content is stored
    first, so a re-index can always rebuild the document; the audit record follows the ingestion.
    """
    _require(actor, REINDEX, source, "upload documents to")
    if source.origin not in (Origin.UPLOAD, Origin.API):
        raise DocumentRefused(
            f"{source.name!r} takes its documents from its {source.get_origin_display().lower()}; "
            "documents can only be uploaded to upload or API sources."
        )
    kind = normalise_content_type(content_type)
    if kind is None:
        raise DocumentRefused(f"Unknown content type {content_type!r}: send markdown, html, text or pdf.")
    size = len(content.encode("utf-8") if isinstance(content, str) else content)
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(f"The document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB.")
    if not external_id.strip() or len(external_id) > 500:
        raise DocumentRefused("external_id must be 1 to 500 characters.")
    raw_content_store(source_id=source.pk, external_id=external_id, content=content)
    document = document_upsert(
        source=source,
        external_id=external_id,
        title=title,
        content=content,
        content_type=kind,
        url=url,
        version=version,
    )
    with transaction.atomic():
        audit_record(
            actor=actor,
            event_type=EventType.CONFIG_CHANGED,
            subject=document,
            decision=document.status,
            reason=document.error,
            data={"source": source.pk, "external_id": external_id, "content_hash": content_hash(content)},
        )
    return document


@transaction.atomic
def document_remove(*, actor: User | None, document: Document) -> None:
    """Delete an uploaded document, its chunks and its stored content."""
    _require(actor, REINDEX, document.source, "remove documents from")
    source_id, external_id = document.source_id, document.external_id
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_DELETED,
        subject=document,
        data={"source": source_id, "external_id": external_id, "title": document.title},
    )
    document_delete(document=document)
    transaction.on_commit(lambda: raw_content_delete(source_id=source_id, external_id=external_id))
