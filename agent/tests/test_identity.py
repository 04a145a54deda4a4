"""Customer identity: signed tokens from the host site, logged-in accounts, email one-time codes; audited, never
lowered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from pytest_django import Settings

from agent.identity import (
    CODE_TTL,
    MAX_CODE_SENDS_PER_ADDRESS,
    MAX_CODE_SENDS_PER_CONVERSATION,
    MAX_FAILED_VERIFICATIONS,
    ChallengeExpired,
    IdentityConflict,
    IdentityNotConfigured,
    IdentityTokenBadSignature,
    IdentityTokenExpired,
    IdentityTokenMalformed,
    NoActiveChallenge,
    VerificationLocked,
    VerificationRateLimited,
    VerifiedIdentity,
    conversation_identify,
    email_challenge_start,
    email_challenge_verify,
    identity_from_token,
    identity_secret,
    identity_token_issue,
    identity_token_verify,
    principal_for,
    session_identity,
    verification_locked,
)
from agent.models import Conversation, EmailChallenge
from governance.models import AuditRecord, EventType, SecretKind
from governance.roles import ActorKind, Role, Verification
from governance.secrets import secret_create
from governance.tests.factories import UserFactory

SECRET = "brewline-shared-identity-secret-0123456789"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EMAIL = "jo.bean@example.com"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def host_site_token(header: dict, claims: dict, secret: str = SECRET) -> str:  # type: ignore[type-arg]
    """A token signed the way a host site's own JWT library would, independently of agent.identity."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def conversation_events(conversation: Conversation, decision: str = "") -> list[AuditRecord]:
    records = AuditRecord.objects.filter(event_type=EventType.CONVERSATION, conversation_id=str(conversation.pk))
    return list(records.filter(decision=decision) if decision else records)


def sent_code(index: int = -1) -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[index].body).group(1)  # type: ignore[union-attr]


@pytest.fixture
def conversation(db) -> Conversation:  # type: ignore[no-untyped-def]
    """An anonymous visitor's conversation."""
    return Conversation.objects.create()


@pytest.fixture
def start(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Start an email challenge and deliver its mail, as the commit would."""

    def start(conversation: Conversation, email: str = EMAIL) -> EmailChallenge:
        with django_capture_on_commit_callbacks(execute=True):
            return email_challenge_start(conversation=conversation, email=email)

    return start


# --- Signed identity tokens ----------------------------------------------------------------------------------------


def test_an_issued_token_verifies_as_its_customer() -> None:
    token = identity_token_issue("C-1001", EMAIL, secret=SECRET, ttl_seconds=600, now=NOW)

    identity = identity_token_verify(token, secret=SECRET, now=NOW + timedelta(seconds=599))

    assert identity == VerifiedIdentity(
        customer_id="C-1001", email=EMAIL, expires_at=NOW + timedelta(seconds=600), method="token"
    )


def test_a_token_is_a_standard_hs256_jwt_a_host_site_can_sign_with_any_library() -> None:
    token = identity_token_issue("C-1001", EMAIL, secret=SECRET, ttl_seconds=60, now=NOW)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    exp = int((NOW + timedelta(minutes=5)).timestamp())

    from_host = host_site_token({"typ": "JWT", "alg": "HS256"}, {"sub": 42, "email": EMAIL, "exp": exp})

    assert header == {"alg": "HS256", "typ": "JWT"}
    assert identity_token_verify(from_host, secret=SECRET, now=NOW).customer_id == "42"


def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = identity_token_issue("C-1001", EMAIL, secret=SECRET, ttl_seconds=600, now=NOW).split(".")
    forged = _b64(json.dumps({"sub": "C-1", "email": EMAIL, "exp": int(NOW.timestamp()) + 600}).encode())

    with pytest.raises(IdentityTokenBadSignature):
        identity_token_verify(f"{header}.{forged}.{signature}", secret=SECRET, now=NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = identity_token_issue("C-1001", EMAIL, secret="someone-elses-secret", ttl_seconds=600, now=NOW)

    with pytest.raises(IdentityTokenBadSignature, match="altered or signed with another secret"):
        identity_token_verify(token, secret=SECRET, now=NOW)


def test_an_expired_token_is_refused() -> None:
    token = identity_token_issue("C-1001", EMAIL, secret=SECRET, ttl_seconds=600, now=NOW)

    with pytest.raises(IdentityTokenExpired, match="expired at 2025-03-01T12:10:00"):
        identity_token_verify(token, secret=SECRET, now=NOW + timedelta(seconds=600))


EXP = int(NOW.timestamp()) + 600


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "empty"),
        (None, "not text"),
        ("x" * 5000, "too long"),
        ("only-one-part", "three dot-separated parts"),
        ("a.b.c.d", "three dot-separated parts"),
        ("a.b.not base64!", "not base64url"),
        ("..", "empty"),
        (host_site_token({"alg": "none"}, {"sub": "C-1", "exp": EXP}).rsplit(".", 1)[0] + ".", "empty"),
        ("a.b.c+/", "not base64url"),
        (host_site_token({"alg": "none"}, {"sub": "C-1", "exp": EXP}), "signed with HS256"),
        (host_site_token({"alg": "HS512", "typ": "JWT"}, {"sub": "C-1", "exp": EXP}), "signed with HS256"),
        (host_site_token({"alg": "HS256"}, ["C-1"]), "not a JSON object"),  # type: ignore[arg-type]
        (host_site_token({"alg": "HS256"}, {"exp": EXP}), "customer id (sub)"),
        (host_site_token({"alg": "HS256"}, {"sub": " ", "exp": EXP}), "customer id (sub)"),
        (host_site_token({"alg": "HS256"}, {"sub": True, "exp": EXP}), "customer id (sub)"),
        (host_site_token({"alg": "HS256"}, {"sub": "C-1"}), "needs an expiry"),
        (host_site_token({"alg": "HS256"}, {"sub": "C-1", "exp": "soon"}), "needs an expiry"),
        (host_site_token({"alg": "HS256"}, {"sub": "C-1", "exp": 1e300}), "needs an expiry"),
        (host_site_token({"alg": "HS256"}, {"sub": "C-1", "exp": EXP, "email": "not-an-email"}), "not an email"),
        (host_site_token({"alg": "HS256"}, {"sub": "C-1", "exp": EXP + 2 * 86400}), "valid for too long"),
    ],
)
def test_a_malformed_token_is_refused_with_the_reason(token: str, message: str) -> None:
    with pytest.raises(IdentityTokenMalformed, match=re.escape(message)):
        identity_token_verify(token, secret=SECRET, now=NOW)


def test_issuing_refuses_a_token_valid_for_more_than_a_day() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        identity_token_issue("C-1001", EMAIL, secret=SECRET, ttl_seconds=2 * 86400)


@pytest.mark.django_db
def test_the_identity_secret_is_the_configured_secret_and_its_read_is_audited(
    support_admin, settings: Settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    settings.STEWARD_IDENTITY_SECRET_NAME = "brewline_identity"
    monkeypatch.setenv("BREWLINE_IDENTITY_SECRET", SECRET)
    secret_create(
        actor=support_admin,
        name="brewline_identity",
        kind=SecretKind.ENVIRONMENT,
        env_var="BREWLINE_IDENTITY_SECRET",
        owner=support_admin,
    )

    value = identity_secret(purpose="verify a customer's identity token", conversation_id="conv-1")

    assert value == SECRET
    read = AuditRecord.objects.get(event_type=EventType.SECRET_READ)
    assert (read.subject_type, read.reason, read.conversation_id) == (
        "governance.secretreference",
        "verify a customer's identity token",
        "conv-1",
    )
    assert SECRET not in json.dumps([read.reason, read.data, read.changes])


@pytest.mark.django_db
def test_a_host_site_token_is_verified_with_the_configured_secret(settings: Settings) -> None:
    settings.DEBUG = True  # the development key: no secret configured
    secret = identity_secret(purpose="sign a token for the demo page")
    token = identity_token_issue("C-1001", EMAIL, secret=secret, ttl_seconds=300)

    identity = identity_from_token(token, conversation_id="conv-1")

    assert identity.customer_id == "C-1001"
    with pytest.raises(IdentityTokenBadSignature):
        identity_from_token(identity_token_issue("C-1001", EMAIL, secret="guess", ttl_seconds=300))


@pytest.mark.django_db
def test_without_the_secret_development_falls_back_to_a_key_derived_from_secret_key(settings: Settings) -> None:
    settings.DEBUG = True

    first, second = identity_secret(purpose="demo page"), identity_secret(purpose="demo page")

    assert first == second and len(first) >= 32
    assert settings.SECRET_KEY not in first


@pytest.mark.django_db
def test_without_the_secret_production_refuses_identity_tokens(settings: Settings) -> None:
    settings.DEBUG = False

    with pytest.raises(IdentityNotConfigured, match="'identity_token_secret'"):
        identity_secret(purpose="verify")


# --- Logged-in accounts ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_logged_in_user_is_identity_verified_only_when_linked_to_a_customer() -> None:
    linked = UserFactory(username="jo_customer", email=EMAIL)
    linked.customer_id = "C-1001"  # the link a project adds (a custom user model field or property)
    unlinked = UserFactory(username="nobody")
    inactive = UserFactory(username="gone", is_active=False)
    inactive.customer_id = "C-1002"

    assert session_identity(linked) == VerifiedIdentity(customer_id="C-1001", email=EMAIL, method="session")
    assert session_identity(unlinked) is None
    assert session_identity(inactive) is None
    assert session_identity(AnonymousUser()) is None
    assert session_identity(None) is None


# --- The conversation's identity -----------------------------------------------------------------------------------


def test_an_anonymous_conversation_identified_by_a_token_becomes_identity_verified(conversation) -> None:  # type: ignore[no-untyped-def]
    conversation_identify(
        conversation=conversation, identity=VerifiedIdentity(customer_id="C-1001", email=EMAIL, method="token")
    )

    conversation.refresh_from_db()
    assert (conversation.customer_id, conversation.customer_email) == ("C-1001", EMAIL)
    assert conversation.verification == Verification.IDENTITY_VERIFIED
    assert conversation.verified_at is not None
    [record] = conversation_events(conversation, "identified")
    assert record.actor_kind == ActorKind.CUSTOMER and record.actor_label == "customer C-1001"
    assert record.changes["verification"] == {"old": 0, "new": 2}
    assert record.changes["customer_email"] == {"old": "", "new": "j***@example.com"}
    assert record.data == {"method": "token", "previous_level": 0}


def test_identifying_the_same_customer_again_changes_and_audits_nothing(conversation) -> None:  # type: ignore[no-untyped-def]
    identity = VerifiedIdentity(customer_id="C-1001", email=EMAIL)
    conversation_identify(conversation=conversation, identity=identity)
    verified_at = Conversation.objects.get(pk=conversation.pk).verified_at

    conversation_identify(conversation=conversation, identity=identity)

    assert Conversation.objects.get(pk=conversation.pk).verified_at == verified_at
    assert len(conversation_events(conversation, "identified")) == 1


def test_a_conversation_verified_as_one_customer_refuses_another(conversation) -> None:  # type: ignore[no-untyped-def]
    conversation_identify(conversation=conversation, identity=VerifiedIdentity(customer_id="C-1001", email=EMAIL))

    with pytest.raises(IdentityConflict):
        conversation_identify(conversation=conversation, identity=VerifiedIdentity(customer_id="C-6666"))

    assert Conversation.objects.get(pk=conversation.pk).customer_id == "C-1001"


def test_the_principal_carries_the_conversations_level_and_a_customer_id_only_once_verified(conversation) -> None:  # type: ignore[no-untyped-def]
    conversation.customer_id = "C-claimed"  # noted, not proven
    anonymous = principal_for(conversation)
    conversation_identify(conversation=conversation, identity=VerifiedIdentity(customer_id="C-1001"))
    verified = principal_for(conversation)

    assert (anonymous.kind, anonymous.verification, anonymous.customer_id) == (ActorKind.CUSTOMER, 0, None)
    assert (verified.verification, verified.customer_id) == (Verification.IDENTITY_VERIFIED, "C-1001")
    assert verified.roles == frozenset({Role.CUSTOMER})


# --- Email one-time codes ------------------------------------------------------------------------------------------


def test_a_code_is_emailed_and_only_its_salted_hash_is_stored(conversation, start) -> None:  # type: ignore[no-untyped-def]
    challenge = start(conversation)

    [message] = mail.outbox
    code = sent_code()
    assert message.to == [EMAIL]
    assert code in message.subject
    assert code not in challenge.code_hash and challenge.code_hash.startswith("hmac_sha256$")
    assert challenge.expires_at == pytest.approx(timezone.now() + CODE_TTL, abs=timedelta(seconds=5))
    [record] = conversation_events(conversation, "code_sent")
    assert record.data["email"] == "j***@example.com"
    assert code not in json.dumps([record.reason, record.data]) and EMAIL not in json.dumps(record.data)


def test_two_challenges_never_share_a_stored_hash_even_for_the_same_code(conversation, start) -> None:  # type: ignore[no-untyped-def]
    first, second = start(conversation), start(conversation)

    assert first.code_hash.split("$")[1] != second.code_hash.split("$")[1]


def test_the_right_code_makes_the_conversation_email_verified(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation, "Jo.Bean@EXAMPLE.com")

    assert email_challenge_verify(conversation=conversation, code=f" {sent_code()[:3]} {sent_code()[3:]} ") is True

    assert conversation.verification == Verification.EMAIL_VERIFIED  # the instance is refreshed too
    conversation.refresh_from_db()
    assert conversation.verification == Verification.EMAIL_VERIFIED
    assert conversation.customer_email == "Jo.Bean@example.com"
    assert conversation.verified_at is not None
    [record] = conversation_events(conversation, "verified")
    assert record.changes["verification"] == {"old": 0, "new": 1}
    assert record.data["method"] == "email_code"
    assert EmailChallenge.objects.get().verified_at is not None


def test_a_used_code_cannot_be_used_again(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    email_challenge_verify(conversation=conversation, code=sent_code())

    with pytest.raises(NoActiveChallenge):
        email_challenge_verify(conversation=conversation, code=sent_code())


def test_a_new_code_supersedes_the_one_sent_before(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    start(conversation)
    first, second = sent_code(0), sent_code(1)
    if first == second:
        pytest.skip("the two random codes happen to be equal")

    assert email_challenge_verify(conversation=conversation, code=first) is False
    assert email_challenge_verify(conversation=conversation, code=second) is True


def test_wrong_codes_are_counted_and_audited(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    wrong = "000000" if sent_code() != "000000" else "111111"

    assert email_challenge_verify(conversation=conversation, code=wrong) is False
    assert email_challenge_verify(conversation=conversation, code="not a code") is False

    conversation.refresh_from_db()
    assert conversation.failed_verifications == 2
    assert conversation.verification == Verification.ANONYMOUS
    assert EmailChallenge.objects.get().attempts == 2
    records = conversation_events(conversation, "verification_failed")
    assert [r.data["failed_verifications"] for r in records] == [1, 2]


def test_the_wrong_code_that_reaches_the_limit_locks_verification(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    right = sent_code()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(MAX_FAILED_VERIFICATIONS - 1):
        assert email_challenge_verify(conversation=conversation, code=wrong) is False
    assert not verification_locked(conversation)

    with pytest.raises(VerificationLocked):
        email_challenge_verify(conversation=conversation, code=wrong)

    assert verification_locked(conversation)
    with pytest.raises(VerificationLocked):
        email_challenge_verify(conversation=conversation, code=right)
    with pytest.raises(VerificationLocked):
        email_challenge_start(conversation=conversation, email=EMAIL)
    conversation.refresh_from_db()
    assert conversation.failed_verifications == MAX_FAILED_VERIFICATIONS
    assert conversation.verification == Verification.ANONYMOUS
    assert len(conversation_events(conversation, "verification_locked")) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_codes_never_count_past_the_limit() -> None:
    conversation = Conversation.objects.create(failed_verifications=MAX_FAILED_VERIFICATIONS - 2)
    email_challenge_start(conversation=conversation, email=EMAIL)  # committed: the mail goes out at once
    wrong = "000000" if sent_code() != "000000" else "111111"
    outcomes: list[str] = []
    gate = threading.Barrier(6)

    def guess() -> None:
        try:
            gate.wait()
            try:
                outcomes.append(str(email_challenge_verify(conversation=conversation, code=wrong)))
            except VerificationLocked:
                outcomes.append("locked")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["False"] + ["locked"] * 5
    assert Conversation.objects.get(pk=conversation.pk).failed_verifications == MAX_FAILED_VERIFICATIONS
    assert EmailChallenge.objects.get().attempts == 2


def test_an_expired_code_is_refused_without_counting_as_wrong(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    EmailChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(ChallengeExpired, match="expired"):
        email_challenge_verify(conversation=conversation, code=sent_code())

    conversation.refresh_from_db()
    assert conversation.verification == Verification.ANONYMOUS
    assert conversation.failed_verifications == 0


def test_verifying_before_any_code_was_sent_is_refused(conversation) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoActiveChallenge, match="ask for one first"):
        email_challenge_verify(conversation=conversation, code="123456")


def test_codes_sent_to_one_conversation_are_limited_per_hour(conversation, start) -> None:  # type: ignore[no-untyped-def]
    for _ in range(MAX_CODE_SENDS_PER_CONVERSATION):
        start(conversation)

    with pytest.raises(VerificationRateLimited, match="in this conversation"):
        start(conversation)

    assert len(mail.outbox) == MAX_CODE_SENDS_PER_CONVERSATION
    EmailChallenge.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    start(conversation)  # an hour later
    assert len(mail.outbox) == MAX_CODE_SENDS_PER_CONVERSATION + 1


def test_codes_sent_to_one_address_are_limited_per_hour_across_conversations(db, start) -> None:  # type: ignore[no-untyped-def]
    for _ in range(MAX_CODE_SENDS_PER_ADDRESS):
        start(Conversation.objects.create())

    with pytest.raises(VerificationRateLimited, match="to this address"):
        start(Conversation.objects.create(), EMAIL.upper())

    assert len(mail.outbox) == MAX_CODE_SENDS_PER_ADDRESS


def test_a_bad_address_is_refused(conversation, start) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        start(conversation, "not an address")

    assert mail.outbox == [] and not EmailChallenge.objects.exists()


# --- Never lowered -------------------------------------------------------------------------------------------------


def test_an_email_code_never_lowers_an_identity_verified_conversation(conversation, start) -> None:  # type: ignore[no-untyped-def]
    conversation_identify(conversation=conversation, identity=VerifiedIdentity(customer_id="C-1001", email=EMAIL))
    start(conversation, "someone.else@example.com")

    assert email_challenge_verify(conversation=conversation, code=sent_code()) is True

    conversation.refresh_from_db()
    assert conversation.verification == Verification.IDENTITY_VERIFIED
    assert (conversation.customer_id, conversation.customer_email) == ("C-1001", EMAIL)
    [record] = conversation_events(conversation, "verified")
    assert record.changes == {} and "nothing changed" in record.reason


def test_a_token_raises_an_email_verified_conversation_to_identity_verified(conversation, start) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    email_challenge_verify(conversation=conversation, code=sent_code())

    conversation_identify(
        conversation=conversation, identity=VerifiedIdentity(customer_id="C-1001", email="jo@brewline.example")
    )

    conversation.refresh_from_db()
    assert conversation.verification == Verification.IDENTITY_VERIFIED
    assert (conversation.customer_id, conversation.customer_email) == ("C-1001", "jo@brewline.example")
    [record] = conversation_events(conversation, "identified")
    assert record.data["previous_level"] == Verification.EMAIL_VERIFIED


def test_proving_another_address_replaces_the_email_and_forgets_the_customer_id_found_for_the_old_one(
    conversation, start
) -> None:  # type: ignore[no-untyped-def]
    start(conversation)
    email_challenge_verify(conversation=conversation, code=sent_code())
    Conversation.objects.filter(pk=conversation.pk).update(customer_id="C-1001")  # a CRM lookup by the first address

    start(conversation, "jo.other@example.com")
    email_challenge_verify(conversation=conversation, code=sent_code())

    conversation.refresh_from_db()
    assert conversation.verification == Verification.EMAIL_VERIFIED
    assert (conversation.customer_email, conversation.customer_id) == ("jo.other@example.com", "")
