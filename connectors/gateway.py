"""The governed boundary to outside systems: every read and write the agent makes goes through here.

- Reads return only the fields whose mapping lets this principal, at this verification level, read them; unmapped
  fields never leave this module. A read of a field that requires audit evidence is audited.
- Writes are checked against the write scope and allowed values first; refused writes and done writes are audited,
  done writes with old and new values.
- Health: a success or failure is recorded on the connector; a refused credential disables it and tells its owner.
- Idempotency: writes carry a key. Systems that honour it get retried on transient failures; for others a
  WriteReceipt (unique on the key) makes a repeated call return the first result instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.base import ADAPTERS, Adapter, ConnectorError, NotFound
from connectors.models import Connector, WriteReceipt
from connectors.snapshot import SnapshotReads
from governance import dry_run
from governance.audit import audit_record
from governance.authorization import check_field_write, field_rules
from governance.models import EventType, FieldMapping
from governance.policies import can_read_field
from governance.roles import ActorKind, Principal
from governance.secrets import secret_read

T = TypeVar("T")


class ConnectorUnavailable(ConnectorError):
    """The connector is disabled, missing, or misconfigured."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class FieldWriteRefused(ConnectorError):
    """Governance refused a write before it left Steward."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def require_own_record(principal: Principal, obj: str, object_id: str, raw: dict[str, Any]) -> None:
    """A customer acts only on their own records: raise NotFound (as for a missing record, so ids cannot be probed)
    unless the object's owner path names the customer the conversation verified. Fails closed. Staff are not
    limited here (their scopes are)."""
    if principal.kind != ActorKind.CUSTOMER:
        return
    owner_path = OWNER_PATHS.get(obj, "customer_id")
    if not principal.customer_id or str(raw.get(owner_path, "")) != str(principal.customer_id):
        raise NotFound(f"{obj} {object_id} is not one of this customer's records")


# Where each object names the customer it belongs to (in the adapter's flattened fields).
OWNER_PATHS: dict[str, str] = {
    "customer": "id",
    "order": "customer_id",
    "subscription": "customer_id",
    "ticket": "customer_id",
    "contact": "id",
    "conversation": "customer_id",
}


@dataclass
class GovernedRecord:
    """What a principal may see of one outside object."""

    system: str
    object: str
    object_id: str
    fields: dict[str, Any]
    withheld: list[str] = field(default_factory=list)  # mapped fields this principal may not read (names only)


def connector_for(*, key: str = "", family: str = "") -> Connector:
    """Return the enabled connector with ``key``, or the primary one of ``family``."""
    query = Connector.objects.select_related("credential")
    connector = query.filter(key=key).first() if key else query.filter(family=family, is_primary=True).first()
    if connector is None:
        raise ConnectorUnavailable(f"No connector {'named ' + key if key else 'is primary for ' + family}.")
    if not connector.enabled:
        raise ConnectorUnavailable(f"The connector {connector.name} is disabled: {connector.disabled_reason}")
    return connector


def adapter_for(connector: Connector, *, principal: Principal, purpose: str, conversation_id: str = "") -> Adapter:
    """Build the connector's adapter with its credential (the credential read is audited by governance.secrets)."""
    adapter_class = ADAPTERS.get(connector.adapter)
    if adapter_class is None:
        raise ConnectorUnavailable(f"The connector {connector.name} names an unknown adapter {connector.adapter!r}.")
    credential = None
    if connector.credential is not None:
        credential = secret_read(
            actor=principal, secret_or_name=connector.credential, purpose=purpose, conversation_id=conversation_id
        )
    adapter = adapter_class(connector, credential=credential)
    rehearsal = dry_run.current()
    if rehearsal is not None and rehearsal.snapshot is not None:
        # A regression suite with a recorded snapshot reads from it (or records into it): connectors/snapshot.py.
        return SnapshotReads(adapter, connector.key, rehearsal)  # type: ignore[return-value]
    return adapter


def call(connector: Connector, operation: Callable[[], T]) -> T:
    """Run one outside call and record the connector's health from its outcome."""
    try:
        result = operation()
    except ConnectorError as exc:
        connector_record_failure(connector, exc)
        raise
    connector_record_success(connector)
    return result


def connector_record_success(connector: Connector) -> None:
    if connector.consecutive_failures or connector.last_success_at is None or _stale(connector.last_success_at):
        Connector.objects.filter(pk=connector.pk).update(last_success_at=timezone.now(), consecutive_failures=0)


def _stale(moment: Any) -> bool:
    return (timezone.now() - moment).total_seconds() > 60  # avoid a write per call on a busy connector


def connector_record_failure(connector: Connector, error: ConnectorError) -> None:
    """Record a failure; a refused credential disables the connector and tells its owner (audited)."""
    from django.db.models import F

    if getattr(error, "status", None) == 404:
        return  # a missing record is an answer, not a sick connector
    Connector.objects.filter(pk=connector.pk).update(
        last_error_at=timezone.now(), last_error=str(error)[:2000], consecutive_failures=F("consecutive_failures") + 1
    )
    if error.auth:
        connector_disable(connector=connector, actor=None, reason=f"credential refused: {error}")


@transaction.atomic
def connector_disable(*, connector: Connector, actor: Any, reason: str) -> bool:
    """Disable a connector and tell its owners; return whether this call disabled it."""
    if Connector.objects.filter(pk=connector.pk, enabled=True).update(enabled=False, disabled_reason=reason) != 1:
        return False
    audit_record(
        actor=actor,
        event_type=EventType.CONFIG_CHANGED,
        subject=connector,
        fields=["enabled"],
        changes={"enabled": {"old": True, "new": False}},
        reason=reason,
    )
    recipients = [u.email for u in (connector.owner, connector.fallback_owner) if u is not None and u.email]
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"[Steward] Connector {connector.name} disabled",
                message=f"Steward disabled the connector {connector.name} ({connector.key}): {reason}\n\n"
                "Fix the credential, then enable it again in the admin (Connectors).",
                from_email=None,
                recipient_list=recipients,
                fail_silently=True,
            )
        )
    return True


def governed_read(
    *,
    principal: Principal,
    connector: Connector,
    obj: str,
    object_id: str,
    conversation_id: str = "",
    turn_id: str = "",
) -> GovernedRecord:
    """Read one object and return only the fields this principal may read.

    A customer may only read their own records: the object's owner path (OWNER_PATHS, e.g. an order's
    ``customer_id``) must name the customer the conversation verified; otherwise the record is "not found" — the
    same answer as a record that does not exist, so ids cannot be probed. Fails closed when the path is missing.
    """
    adapter = adapter_for(connector, principal=principal, purpose=f"read {obj}", conversation_id=conversation_id)
    raw = call(connector, lambda: adapter.read_object(obj, object_id))
    require_own_record(principal, obj, object_id, raw)
    rules = field_rules(connector.key, obj)
    visible, withheld = {}, []
    for path, rule in rules.items():
        if path not in raw:
            continue
        if can_read_field(rule, principal).allowed:
            visible[path] = raw[path]
        else:
            withheld.append(path)
    evidence = list(
        FieldMapping.objects.filter(
            system=connector.key, object=obj, audit_evidence_required=True, field_path__in=list(visible)
        ).values_list("field_path", flat=True)
    )
    if evidence:
        with transaction.atomic():
            audit_record(
                actor=principal,
                event_type=EventType.FIELD_READ,
                subject_type=f"{connector.key}.{obj}",
                subject_id=object_id,
                conversation_id=conversation_id,
                turn_id=turn_id,
                fields=sorted(evidence),
                sources=[connector.key],
                data={"values": {path: visible[path] for path in evidence}},
            )
    return GovernedRecord(
        system=connector.key, object=obj, object_id=object_id, fields=visible, withheld=sorted(withheld)
    )


def governed_write(
    *,
    principal: Principal,
    connector: Connector,
    obj: str,
    object_id: str,
    field_path: str,
    value: Any,
    idempotency_key: str,
    conversation_id: str = "",
    turn_id: str = "",
) -> Any:
    """Write one mapped field if the write scope and allowed values let this principal; audit old and new values."""
    verdict = check_field_write(actor=principal, system=connector.key, obj=obj, field_path=field_path, value=value)
    subject = f"{connector.key}.{obj}"
    if not verdict.allowed:
        with transaction.atomic():
            audit_record(
                actor=principal,
                event_type=EventType.FIELD_WRITE_REFUSED,
                subject_type=subject,
                subject_id=object_id,
                conversation_id=conversation_id,
                turn_id=turn_id,
                fields=[field_path],
                decision="deny",
                reason=verdict.reason,
                data={"attempted": value},
            )
        raise FieldWriteRefused(f"Not allowed to change {field_path}: {verdict.reason}.")
    adapter = adapter_for(
        connector, principal=principal, purpose=f"write {obj}.{field_path}", conversation_id=conversation_id
    )
    current = call(connector, lambda: adapter.read_object(obj, object_id))
    require_own_record(principal, obj, object_id, current)
    old = current.get(field_path)
    result = idempotent(
        connector,
        f"write:{obj}.{field_path}",
        idempotency_key,
        lambda: adapter.write_field(obj, object_id, field_path, value, idempotency_key=idempotency_key),
        remote_dedupes=adapter.honours_idempotency,
    )
    if dry_run.current() is not None:
        return result  # nothing was written (idempotent recorded the would-be write): no evidence of a change
    with transaction.atomic():
        audit_record(
            actor=principal,
            event_type=EventType.FIELD_WRITE,
            subject_type=subject,
            subject_id=object_id,
            conversation_id=conversation_id,
            turn_id=turn_id,
            fields=[field_path],
            decision="allow",
            reason=verdict.reason,
            changes={field_path: {"old": old, "new": value}},
            data={"idempotency_key": idempotency_key},
            sources=[connector.key],
        )
    return result


def idempotent(
    connector: Connector, operation: str, idempotency_key: str, run: Callable[[], Any], *, remote_dedupes: bool
) -> Any:
    """Run an outside write at most once per idempotency key.

    When the remote side de-duplicates by the key (Stripe's Idempotency-Key), it is simply called. Otherwise a
    WriteReceipt is claimed first (unique on the key): a repeat returns the stored result; a write whose outcome is
    unknown (timeout, 5xx) is never repeated automatically — a person checks the outside system.

    In a dry run (a test conversation, governance/dry_run.py) nothing is called: the would-be write is recorded and
    a stand-in result marked ``dry_run`` is returned, with no id, so callers carry on without claiming a record.
    """
    rehearsal = dry_run.current()
    if rehearsal is not None:
        return rehearsal.write(connector=connector.key, operation=operation, idempotency_key=idempotency_key)
    if remote_dedupes:
        return call(connector, run)
    try:
        with transaction.atomic():
            receipt = WriteReceipt.objects.create(
                idempotency_key=idempotency_key, connector=connector, operation=operation
            )
    except IntegrityError:
        existing = WriteReceipt.objects.get(idempotency_key=idempotency_key)
        if existing.state == WriteReceipt.State.DONE:
            return existing.result.get("value")
        raise ConnectorError(
            f"{operation} was already attempted with this key and its outcome is "
            f"{existing.get_state_display().lower()}; check {connector.name}.",
            permanent=True,
        ) from None
    try:
        result = call(connector, run)
    except ConnectorError as exc:
        if exc.permanent or getattr(exc, "rejected", False):
            receipt.delete()  # refused before acting (4xx, 429, our own validation): nothing happened
        else:
            WriteReceipt.objects.filter(pk=receipt.pk).update(state=WriteReceipt.State.UNKNOWN)
        raise
    WriteReceipt.objects.filter(pk=receipt.pk).update(
        state=WriteReceipt.State.DONE, result={"value": _jsonable(result)}
    )
    return result


def _jsonable(value: Any) -> Any:
    import dataclasses
    import json

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))
