"""Who the customer is and how sure we are: signed identity tokens, logged-in accounts, email one-time codes.

Three ways up from anonymous (``governance.roles.Verification``), never down:

- a **signed identity token** from the host site (identity verified): a JWT (RFC 7519) signed with HS256 (HMAC-SHA256,
  RFC 7518 §3.2) under a secret shared with the host site, carrying the customer's id (``sub``), email and expiry
  (``exp``). Any JWT library can issue one; ``identity_token_issue`` does it for the demo page and the tests;
- a **logged-in Django user** with a linked customer id (identity verified): ``session_identity``;
- an **email one-time code** (email verified): ``email_challenge_start`` / ``email_challenge_verify``.

The services take no ``actor``: the actor is always the conversation's customer, so they derive it
(``principal_for``) and write it into the audit record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from agent.models import Conversation, EmailChallenge
from analytics.events import event_record
from analytics.models import EventKind
from governance import dry_run
from governance.audit import audit_record
from governance.exceptions import SecretNotFound
from governance.models import EventType
from governance.roles import Principal, Verification
from governance.secrets import secret_read

logger = logging.getLogger(__name__)

DEFAULT_IDENTITY_SECRET_NAME = "identity_token_secret"
# A token that stays valid for longer than this is refused: a host site should mint one per page view, and a token
# copied into a log or a support ticket should not open the account for weeks.
MAX_TOKEN_TTL = timedelta(hours=24)
MAX_TOKEN_LENGTH = 4096
# The attribute of a Django user that holds their customer id in the CRM. Linking accounts to customers is not done
# here: a project that links them adds the field (a custom user model) or a property of that name.
LINKED_CUSTOMER_ID_ATTRIBUTE = "customer_id"

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
# Sends of a code, per hour: per conversation (a customer asking again and again), and per address across all
# conversations (someone using Steward to flood a stranger's inbox).
MAX_CODE_SENDS_PER_CONVERSATION = 3
MAX_CODE_SENDS_PER_ADDRESS = 5
CODE_SEND_WINDOW = timedelta(hours=1)
# Wrong codes a conversation may enter before it is locked and handed over to a person. With 6-digit codes that is a
# 5 in 1,000,000 chance of guessing, however many codes are sent.
MAX_FAILED_VERIFICATIONS = 5

_JWT_HEADER = {"alg": "HS256", "typ": "JWT"}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_CODE_HASH_SALT = "steward.agent.identity.email_code"


# --- Errors ------------------------------------------------------------------------------------------------------


class IdentityError(Exception):
    """Base of the agent's identity errors; the message is fit to show a support admin (never a secret or a code)."""


class IdentityNotConfigured(IdentityError):
    """Signed identity tokens are not set up: no secret of the configured name."""


class IdentityTokenError(IdentityError):
    """A signed identity token was refused."""


class IdentityTokenMalformed(IdentityTokenError):
    """The token is not a well-formed HS256 JWT with the claims we need."""


class IdentityTokenBadSignature(IdentityTokenError):
    """The token's signature does not match: altered, or signed with another secret."""


class IdentityTokenExpired(IdentityTokenError):
    """The token was valid but its ``exp`` has passed."""


class IdentityConflict(IdentityError):
    """The conversation is already verified as another customer."""


class VerificationError(IdentityError):
    """An email one-time code could not be sent or checked."""


class VerificationLocked(VerificationError):
    """Too many wrong codes: the conversation may not try again and goes to a person."""


class VerificationRateLimited(VerificationError):
    """Too many codes were sent to this conversation or this address in the last hour."""


class NoActiveChallenge(VerificationError):
    """No code is waiting to be entered: none was sent, or the last one was already used."""


class ChallengeExpired(NoActiveChallenge):
    """The last code sent has expired."""


# --- Signed identity tokens ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedIdentity:
    """A customer identity we have proof of: from a signed token (``method="token"``) or a login (``"session"``)."""

    customer_id: str
    email: str = ""
    expires_at: datetime | None = None
    method: str = "token"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # JWTs use unpadded base64url (RFC 7515 §2); "+" and "/" are refused too, so a signature has one spelling.
    if not _BASE64URL.fullmatch(text):
        raise IdentityTokenMalformed("The identity token is not a signed token (a part is empty or not base64url).")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise IdentityTokenMalformed("The identity token is not a signed token (a part is not base64url).") from None


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise IdentityNotConfigured("The identity token secret is empty.")
    return key


def _signature(signing_input: str, secret: str | bytes) -> bytes:
    return hmac.new(_key(secret), signing_input.encode("ascii"), hashlib.sha256).digest()


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(text))
    except (UnicodeDecodeError, ValueError):
        raise IdentityTokenMalformed(f"The identity token's {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise IdentityTokenMalformed(f"The identity token's {what} is not a JSON object.")
    return value


def identity_token_issue(
    customer_id: str, email: str, *, secret: str | bytes, ttl_seconds: int, now: datetime | None = None
) -> str:
    """Return a signed identity token (an HS256 JWT) for a customer, valid for ``ttl_seconds``.

    For the demo page and the tests; a real host site signs the same token with its own JWT library.
    """
    if not 0 < ttl_seconds <= MAX_TOKEN_TTL.total_seconds():
        raise ValueError(f"ttl_seconds must be from 1 to {int(MAX_TOKEN_TTL.total_seconds())}.")
    if not str(customer_id).strip():
        raise ValueError("An identity token needs a customer id.")
    issued = int((now or timezone.now()).timestamp())
    payload = {"sub": str(customer_id), "email": email, "iat": issued, "exp": issued + ttl_seconds}
    compact = partial(json.dumps, separators=(",", ":"), sort_keys=True)
    signing_input = f"{_b64encode(compact(_JWT_HEADER).encode())}.{_b64encode(compact(payload).encode())}"
    return f"{signing_input}.{_b64encode(_signature(signing_input, secret))}"


def identity_token_verify(token: str, *, secret: str | bytes, now: datetime | None = None) -> VerifiedIdentity:
    """Return the identity a signed token proves; raise an ``IdentityTokenError`` saying why it does not.

    The signature is checked (in constant time) before anything in the token is trusted, then the header (only
    HS256: a token cannot pick a weaker algorithm, RFC 8725 §2.1), then the claims: ``sub`` (the customer id) is
    required, ``email`` must be an address when present, ``exp`` is required and not more than MAX_TOKEN_TTL ahead.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise IdentityTokenMalformed("The identity token is empty, not text, or too long.")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise IdentityTokenMalformed("The identity token is not a signed token (it needs three dot-separated parts).")
    header_b64, payload_b64, signature_b64 = parts
    given = _b64decode(signature_b64)
    if not hmac.compare_digest(_signature(f"{header_b64}.{payload_b64}", secret), given):
        raise IdentityTokenBadSignature(
            "The identity token's signature does not match: it was altered or signed with another secret."
        )
    header = _json_part(header_b64, "header")
    # "typ" is optional and compared case-insensitively (RFC 7519 §5.1).
    if header.get("alg") != "HS256" or str(header.get("typ", "JWT")).upper() != "JWT":
        raise IdentityTokenMalformed("The identity token must be a JWT signed with HS256.")
    return _identity_from_claims(_json_part(payload_b64, "payload"), now or timezone.now())


def _identity_from_claims(claims: dict[str, Any], now: datetime) -> VerifiedIdentity:
    sub, email, exp = claims.get("sub"), claims.get("email") or "", claims.get("exp")
    if isinstance(sub, bool) or not isinstance(sub, str | int) or not str(sub).strip() or len(str(sub)) > 100:
        raise IdentityTokenMalformed("The identity token needs a customer id (sub) of 1 to 100 characters.")
    if not isinstance(email, str):
        raise IdentityTokenMalformed("The identity token's email is not text.")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise IdentityTokenMalformed("The identity token's email is not an email address.") from None
    try:
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise TypeError
        expires_at = datetime.fromtimestamp(exp, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # not a number, NaN, or past year 9999
        raise IdentityTokenMalformed("The identity token needs an expiry (exp, seconds since the epoch).") from None
    if expires_at <= now:
        raise IdentityTokenExpired(f"The identity token expired at {expires_at.isoformat()}.")
    if expires_at - now > MAX_TOKEN_TTL:
        raise IdentityTokenMalformed(
            f"The identity token is valid for too long: at most {int(MAX_TOKEN_TTL.total_seconds())} seconds."
        )
    return VerifiedIdentity(customer_id=str(sub).strip(), email=email, expires_at=expires_at, method="token")


def identity_secret(*, purpose: str, conversation_id: str = "") -> str:
    """Return the secret shared with the host site for identity tokens; the read is audited (never the value).

    The secret is the ``SecretReference`` named by the setting ``STEWARD_IDENTITY_SECRET_NAME`` (default
    ``identity_token_secret``), read through ``governance.secrets.secret_read``. In development (``DEBUG``) with no
    secret of that name, it falls back to a key derived from ``SECRET_KEY`` so that the demo page works with no set-up;
    in production a missing secret raises ``IdentityNotConfigured``. A secret that exists but cannot be read (its
    environment variable is unset) raises ``SecretUnavailable`` in both modes: that is a broken deployment.
    """
    name = getattr(settings, "STEWARD_IDENTITY_SECRET_NAME", DEFAULT_IDENTITY_SECRET_NAME)
    try:
        return secret_read(actor=None, secret_or_name=name, purpose=purpose, conversation_id=conversation_id)
    except SecretNotFound:
        if settings.DEBUG:
            return salted_hmac("steward.agent.identity.development", "identity token secret").hexdigest()
        raise IdentityNotConfigured(
            f"Signed identity tokens need a secret named {name!r} (admin → Secrets), shared with the host site."
        ) from None


def identity_from_token(token: str, *, conversation_id: str = "") -> VerifiedIdentity:
    """Verify a host site's token with the configured secret (read and audited for this conversation)."""
    secret = identity_secret(purpose="verify a customer's signed identity token", conversation_id=conversation_id)
    return identity_token_verify(token, secret=secret)


def session_identity(user: Any) -> VerifiedIdentity | None:
    """Return the identity of a logged-in Django user who is linked to a customer, else None.

    Only a linked user counts as identity verified: the link is the user's ``customer_id`` attribute
    (``LINKED_CUSTOMER_ID_ATTRIBUTE``). Making that link is out of scope here; without it nobody is verified this way.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return None
    customer_id = str(getattr(user, LINKED_CUSTOMER_ID_ATTRIBUTE, "") or "").strip()
    if not customer_id or len(customer_id) > 100:
        return None
    return VerifiedIdentity(customer_id=customer_id, email=getattr(user, "email", "") or "", method="session")


# --- The conversation's identity -----------------------------------------------------------------------------------


def principal_for(conversation: Conversation) -> Principal:
    """Return the customer's principal at the conversation's verification level (the agent's tools run with it).

    An anonymous conversation's principal carries no customer id, even if one was noted: an unproven claim must not
    scope a read.
    """
    verified = conversation.verification >= Verification.EMAIL_VERIFIED
    return Principal.customer(
        verification=conversation.verification,
        customer_id=(conversation.customer_id or None) if verified else None,
    )


def verification_locked(conversation: Conversation) -> bool:
    """Tell whether the conversation entered too many wrong codes (read from the instance: refresh it if stale)."""
    return conversation.failed_verifications >= MAX_FAILED_VERIFICATIONS


def _masked_email(email: str) -> str:
    # The audit log outlives transcripts (they are masked by retention), so it keeps only a hint of the address.
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _copy_identity(target: Conversation, source: Conversation) -> None:
    for name in ("customer_id", "customer_email", "verification", "verified_at", "failed_verifications", "updated_at"):
        setattr(target, name, getattr(source, name))


def _identity_fields(conversation: Conversation) -> dict[str, Any]:
    return {name: getattr(conversation, name) for name in ("customer_id", "customer_email", "verification")}


def _audited_changes(before: dict[str, Any], after: Conversation) -> dict[str, dict[str, Any]]:
    """Return ``{field: {old, new}}`` for the identity fields that differ, emails masked for the audit log."""
    changes = {}
    for name, old in before.items():
        new = getattr(after, name)
        if new != old:
            shown = _masked_email if name == "customer_email" else (lambda value: value)
            changes[name] = {"old": shown(old), "new": shown(new)}
    return changes


@transaction.atomic
def conversation_identify(*, conversation: Conversation, identity: VerifiedIdentity) -> Conversation:
    """Mark the conversation identity verified as ``identity``'s customer; audited. Never lowers the level.

    Idempotent: the same customer again (a reconnecting widget sends its token again) changes and audits nothing,
    unless the email changed. A conversation already verified as another customer raises ``IdentityConflict``: the
    transcript holds that customer's data, so a new identity needs a new conversation.
    """
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    old_level = locked.verification
    if old_level == Verification.IDENTITY_VERIFIED and locked.customer_id != identity.customer_id:
        logger.warning(
            "Conversation %s: refused identity %s, it is verified as another customer.", locked.pk, identity.method
        )
        raise IdentityConflict("This conversation is already verified as another customer; start a new conversation.")
    before = _identity_fields(locked)
    locked.customer_id = identity.customer_id
    locked.customer_email = identity.email or locked.customer_email
    locked.verification = Verification.IDENTITY_VERIFIED
    if changes := _audited_changes(before, locked):
        if old_level < Verification.IDENTITY_VERIFIED:
            locked.verified_at = timezone.now()
        locked.save(update_fields=[*changes, "verified_at", "updated_at"])
        audit_record(
            actor=principal_for(locked),
            event_type=EventType.CONVERSATION,
            subject=locked,
            conversation_id=str(locked.pk),
            decision="identified",
            reason=f"Identity verified by {'a signed token' if identity.method == 'token' else 'a logged-in account'}.",
            fields=sorted(changes),
            changes=changes,
            data={"method": identity.method, "previous_level": old_level},
        )
        _verification_event(locked, EventKind.VERIFICATION_PASSED, method=identity.method)
    _copy_identity(conversation, locked)
    return locked


# --- Email one-time codes ------------------------------------------------------------------------------------------


def _code_hash(code: str, salt: str) -> str:
    # A keyed HMAC (SECRET_KEY) with a per-challenge salt, not a slow password hash: a 6-digit code has 10**6 values,
    # so no work factor stops a brute force of a leaked row, but without SECRET_KEY the rows alone give nothing. The
    # attempt limit is what protects the live code.
    digest = salted_hmac(_CODE_HASH_SALT, f"{salt}${code}", algorithm="sha256").hexdigest()
    return f"hmac_sha256${salt}${digest}"


def _code_matches(code: str, stored: str) -> bool:
    _, salt, _ = (stored.split("$", 2) + ["", ""])[:3]
    return bool(salt) and constant_time_compare(_code_hash(code, salt), stored)


def _normalised_email(email: str) -> str:
    email = BaseUserManager.normalize_email((email or "").strip())
    validate_email(email)  # ValidationError: the turn loop asks again
    return email


def _send_code(email: str, code: str) -> None:
    minutes = int(CODE_TTL.total_seconds() // 60)
    send_mail(
        subject=f"Your verification code: {code}",
        message=f"Your verification code is {code}.\n\nIt expires in {minutes} minutes. If you did not ask for it, "
        "ignore this email.",
        from_email=None,  # DEFAULT_FROM_EMAIL
        recipient_list=[email],
        fail_silently=False,
    )


@transaction.atomic
def email_challenge_start(*, conversation: Conversation, email: str) -> EmailChallenge:
    """Send a one-time code to ``email`` for this conversation; audited (without the code).

    The code is sent when the transaction commits (never while it holds the audit lock); a sending failure then
    raises to the caller, and the send still counts towards the limits. Raise ``VerificationLocked`` after too many
    wrong codes, ``VerificationRateLimited`` past MAX_CODE_SENDS_PER_CONVERSATION / MAX_CODE_SENDS_PER_ADDRESS an
    hour (refusals are not audited: a flood must not become a flood of audit records), ``ValidationError`` for a bad
    address. A new code supersedes the ones sent before: only the latest can be entered.
    """
    email = _normalised_email(email)
    # Row lock: concurrent starts of one conversation queue here, so the per-conversation limit holds exactly.
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if verification_locked(locked):
        raise VerificationLocked("Too many wrong codes were entered in this conversation.")
    since = timezone.now() - CODE_SEND_WINDOW
    if EmailChallenge.objects.filter(conversation=locked, created_at__gte=since).count() >= (
        MAX_CODE_SENDS_PER_CONVERSATION
    ):
        raise VerificationRateLimited("Too many codes were sent in this conversation; try again in an hour.")
    # Across conversations there is no common row to lock: two concurrent starts may overshoot by one, harmlessly.
    # A dry run (a test conversation) sends no e-mail, so the address limit does not apply to it, and its codes do not
    # count against a real customer's address either.
    run = dry_run.current()
    if run is None and (
        EmailChallenge.objects.filter(email__iexact=email, created_at__gte=since, conversation__is_test=False).count()
        >= MAX_CODE_SENDS_PER_ADDRESS
    ):
        raise VerificationRateLimited("Too many codes were sent to this address; try again in an hour.")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    challenge = EmailChallenge.objects.create(
        conversation=locked,
        email=email,
        code_hash=_code_hash(code, secrets.token_urlsafe(12)),
        expires_at=timezone.now() + CODE_TTL,
    )
    audit_record(
        actor=principal_for(locked),
        event_type=EventType.CONVERSATION,
        subject=locked,
        conversation_id=str(locked.pk),
        decision="code_sent",
        reason="One-time code sent by email.",
        data={"challenge": challenge.pk, "email": _masked_email(email), "expires_at": challenge.expires_at},
    )
    if run is not None:
        run.code_sent(email, code)  # nothing is e-mailed: the suite runner types the code for its scripted customer
    else:
        transaction.on_commit(partial(_send_code, email, code))
    return challenge


def email_challenge_verify(*, conversation: Conversation, code: str) -> bool:
    """Check a code against the conversation's latest challenge; return whether it was right.

    Right: the conversation becomes email verified with that address (a higher level is kept), audited "verified".
    Wrong: ``failed_verifications`` goes up by one and it is audited; the wrong code that reaches
    MAX_FAILED_VERIFICATIONS raises ``VerificationLocked`` (and so does every later call) — hand over to a person.
    No code pending raises ``NoActiveChallenge`` (``ChallengeExpired`` when the last one expired); neither counts as
    a wrong code. Spaces and hyphens in ``code`` are ignored; anything else that is not the code counts as wrong, so
    the caller decides which messages are meant as codes. A locked conversation raises without writing anything.

    Not one ``@transaction.atomic``, on purpose: a wrong code must be counted and audited even though the call ends
    in an exception, so the counting commits first and the exception is raised after. Call it outside a transaction
    (or catch ``VerificationLocked`` inside it), or an outer rollback would forget the wrong codes.
    """
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        outcome = "locked" if verification_locked(locked) else _check_code(locked, code)
    _copy_identity(conversation, locked)
    if outcome == "verified":
        return True
    if outcome == "wrong":
        return False
    if outcome == "expired":
        raise ChallengeExpired("The code has expired; ask for a new one.")
    if outcome == "none":
        raise NoActiveChallenge("No code is waiting to be entered; ask for one first.")
    raise VerificationLocked("Too many wrong codes were entered in this conversation.")


def _check_code(locked: Conversation, code: str) -> str:
    """Check ``code`` under the conversation's row lock; return verified / wrong / locked / expired / none."""
    challenge = EmailChallenge.objects.filter(conversation=locked).order_by("-created_at", "-pk").first()
    if challenge is None or challenge.verified_at is not None:
        return "none"
    now = timezone.now()
    if challenge.expires_at <= now:
        return "expired"
    EmailChallenge.objects.filter(pk=challenge.pk).update(attempts=F("attempts") + 1)
    entered = "".join(ch for ch in str(code) if not ch.isspace() and ch != "-")
    if _code_matches(entered, challenge.code_hash):
        EmailChallenge.objects.filter(pk=challenge.pk).update(verified_at=now)
        _mark_email_verified(locked, challenge.email, now)
        return "verified"
    # Conditional as well as locked: a count that is already at the limit never goes past it.
    Conversation.objects.filter(pk=locked.pk, failed_verifications__lt=MAX_FAILED_VERIFICATIONS).update(
        failed_verifications=F("failed_verifications") + 1, updated_at=now
    )
    locked.refresh_from_db(fields=["failed_verifications", "updated_at"])
    now_locked = verification_locked(locked)
    audit_record(
        actor=principal_for(locked),
        event_type=EventType.CONVERSATION,
        subject=locked,
        conversation_id=str(locked.pk),
        decision="verification_locked" if now_locked else "verification_failed",
        reason="Wrong one-time code"
        + (f"; {MAX_FAILED_VERIFICATIONS} wrong codes, verification locked." if now_locked else "."),
        data={"challenge": challenge.pk, "failed_verifications": locked.failed_verifications},
    )
    _verification_event(locked, EventKind.VERIFICATION_FAILED, method="email_code", locked=now_locked)
    return "locked" if now_locked else "wrong"


def _mark_email_verified(locked: Conversation, email: str, now: datetime) -> None:
    """Raise the conversation to email verified with ``email`` (never lower it) and audit it."""
    before = _identity_fields(locked)
    if locked.verification < Verification.EMAIL_VERIFIED:
        locked.verification, locked.customer_email, locked.verified_at = Verification.EMAIL_VERIFIED, email, now
        locked.save(update_fields=["verification", "customer_email", "verified_at", "updated_at"])
    elif locked.verification == Verification.EMAIL_VERIFIED and locked.customer_email.lower() != email.lower():
        # Another address proven: the customer id found for the old one (a CRM lookup) no longer applies.
        locked.customer_email, locked.customer_id, locked.verified_at = email, "", now
        locked.save(update_fields=["customer_email", "customer_id", "verified_at", "updated_at"])
    # Identity verified already: a code is weaker proof, so the level and the identity's email stay as they are.
    changes = _audited_changes(before, locked)
    audit_record(
        actor=principal_for(locked),
        event_type=EventType.CONVERSATION,
        subject=locked,
        conversation_id=str(locked.pk),
        decision="verified",
        reason="Email verified by one-time code."
        + ("" if changes else " The conversation was already verified at this level or higher; nothing changed."),
        fields=sorted(changes),
        changes=changes,
        data={"method": "email_code", "email": _masked_email(email), "level": locked.verification},
    )
    _verification_event(locked, EventKind.VERIFICATION_PASSED, method="email_code")


def _verification_event(conversation: Conversation, kind: str, **data: Any) -> None:
    if conversation.is_test:
        return  # test conversations never count in analytics
    event_record(kind=kind, conversation_id=str(conversation.pk), channel=conversation.channel, data=data)
