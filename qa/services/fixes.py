"""Fix requests to knowledge owners, and flags people put on conversations for QA."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from agent.models import Conversation
from governance.audit import Actor, audit_record
from governance.models import AuditRecord, EventType
from knowledge.models import Document, KnowledgeSource
from qa.exceptions import InvalidInput, NotPermitted
from qa.models import ConversationFlag, FixRequest, FixStatus, Review

ADD_FIX = "qa.add_fixrequest"
CHANGE_FIX = "qa.change_fixrequest"
FLAG = "qa.add_conversationflag"
# The knowledge services' audit decisions that mean "the owner checked this source again" (knowledge/services.py).
REVIEWED_DECISIONS = ("reviewed", "approved")


def owner_of(source: KnowledgeSource) -> AbstractBaseUser | None:
    """Return who answers for ``source``: its owner, or its fallback owner when the owner's account is inactive."""
    if source.owner.is_active:
        return source.owner
    fallback = source.fallback_owner
    return fallback if fallback is not None and fallback.is_active else None


def _mail_owner(fix: FixRequest) -> None:
    recipients = sorted(
        {u.email for u in (fix.owner, fix.source.fallback_owner if fix.source else None) if u and u.email}
    )
    if not recipients:
        return
    what = f"the knowledge source “{fix.source.name}”" if fix.source else f"a missing source on “{fix.missing_topic}”"
    link = settings.SITE_URL.rstrip("/") + reverse("admin:qa_fixrequest_change", args=[fix.pk])
    body = (
        f"A QA reviewer asks for a fix to {what}"
        f"{f' (document: {fix.document.title})' if fix.document else ''}.\n\n{fix.note}\n\n"
        f"The request: {link}\nIt closes by itself once the source is marked reviewed."
    )
    # After commit, as connectors.gateway does: no mail for a request that was rolled back. A mail server that is
    # down must not undo the request (it is in admin either way).
    transaction.on_commit(
        lambda: send_mail(
            subject=f"[Steward] Fix request: {fix.source.name if fix.source else fix.missing_topic}"[:200],
            message=body,
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )
    )


def _fix_target(
    source: KnowledgeSource | None, document: Document | None, missing_topic: str, owner: AbstractBaseUser | None
) -> AbstractBaseUser:
    if source is None and not missing_topic.strip():
        raise InvalidInput({"source": "Pick the cited source, or “missing source” with a topic."})
    if document is not None and (source is None or document.source_id != source.pk):
        raise InvalidInput({"document": "That document is not in the chosen source."})
    target = owner_of(source) if source is not None else owner
    if target is None or not target.is_active:
        raise InvalidInput({"owner": "Nobody active owns this: pick who should write it."})
    return target


@transaction.atomic
def fix_request_create(
    *,
    actor: AbstractBaseUser,
    note: str,
    review: Review | None = None,
    conversation: Conversation | None = None,
    source: KnowledgeSource | None = None,
    document: Document | None = None,
    missing_topic: str = "",
    owner: AbstractBaseUser | None = None,
) -> FixRequest:
    """Ask the owner of ``source`` (or ``owner``, for a missing source) to fix it; they are e-mailed after commit."""
    if not (actor.is_active and actor.has_perm(ADD_FIX)):
        raise NotPermitted("You may not ask source owners for fixes.")
    if not str(note or "").strip():
        raise InvalidInput({"note": "Say what is wrong or missing."})
    target = _fix_target(source, document, missing_topic, owner)
    fix = FixRequest.objects.create(
        source=source,
        document=document,
        missing_topic="" if source is not None else missing_topic.strip()[:300],
        owner=target,
        review=review,
        conversation=conversation or (review.item.conversation if review is not None else None),
        note=str(note).strip()[:4000],
        requested_by=actor,
    )
    audit_record(
        actor=actor,
        event_type=EventType.QA_FIX_REQUESTED,
        subject=fix,
        conversation_id=str(fix.conversation_id or ""),
        decision="qa.fix_requested",
        reason=fix.note[:500],
        sources=[source.name] if source is not None else [],
        data={"owner": target.pk, "document": document.pk if document else None, "missing_topic": fix.missing_topic},
    )
    _mail_owner(fix)
    return fix


def may_close(user: AbstractBaseUser, fix: FixRequest) -> bool:
    """Owners close their own requests; QA staff with the change permission close any."""
    mine = user.pk in (fix.owner_id, fix.source.fallback_owner_id if fix.source else None)
    return bool(user.is_active and (mine or user.has_perm(CHANGE_FIX)))


@transaction.atomic
def fix_request_close(*, fix: FixRequest, actor: Actor, reason: str) -> bool:
    """Close an open fix request; return False when it was already closed (someone else closed it first)."""
    if isinstance(actor, AbstractBaseUser) and not may_close(actor, fix):
        raise NotPermitted("Only the source's owners close this request.")
    now = timezone.now()
    closed = FixRequest.objects.filter(pk=fix.pk, status=FixStatus.OPEN).update(
        status=FixStatus.CLOSED, closed_at=now, close_reason=reason[:300]
    )
    if closed != 1:
        return False
    audit_record(
        actor=actor,
        event_type=EventType.QA_FIX_CLOSED,
        subject=fix,
        conversation_id=str(fix.conversation_id or ""),
        decision="qa.fix_closed",
        reason=reason,
    )
    return True


def _reviewed_since() -> Exists:
    # The knowledge services audit "reviewed" / "approved" on the source in the same transaction as the change.
    return Exists(
        AuditRecord.objects.filter(
            event_type=EventType.CONFIG_CHANGED,
            subject_type=KnowledgeSource._meta.label_lower,
            subject_id=Cast(OuterRef("source_id"), output_field=CharField()),
            decision__in=REVIEWED_DECISIONS,
            created_at__gt=OuterRef("created_at"),
        )
    )


def fix_requests_close_reviewed(*, actor: Actor = None) -> int:
    """Close the open requests whose source was marked reviewed (or approved) after they were made; return how many."""
    due = FixRequest.objects.filter(status=FixStatus.OPEN, source__isnull=False).filter(_reviewed_since())
    closed = 0
    for fix in due.select_related("source"):
        closed += fix_request_close(fix=fix, actor=actor, reason="the source was reviewed after the request")
    return closed


@transaction.atomic
def conversation_flag(
    *, conversation: Conversation, actor: AbstractBaseUser, note: str = ""
) -> tuple[ConversationFlag, bool]:
    """Flag a conversation for QA (once per person); return the flag and whether it is new."""
    if not (actor.is_active and actor.has_perm(FLAG)):
        raise NotPermitted("You may not flag conversations for QA.")
    if conversation.is_test:
        raise InvalidInput({"conversation": "Test conversations are not reviewed."})
    flag, created = ConversationFlag.objects.get_or_create(
        conversation=conversation, flagged_by=actor, defaults={"note": str(note or "").strip()[:2000]}
    )
    if created:
        audit_record(
            actor=actor,
            event_type=EventType.QA_FLAGGED,
            subject=flag,
            conversation_id=str(conversation.pk),
            decision="qa.flagged",
            reason=flag.note,
        )
    return flag, created
