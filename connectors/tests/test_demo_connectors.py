"""The demo company's connectors: seeded once through the audited services, with an encrypted token that the Brewline
system accepts, and a second run that writes nothing at all."""

from __future__ import annotations

import pytest
from django.conf import settings

from brewline.models import ApiToken, Customer, Order
from connectors.demo import DemoSeedError, seed_connectors
from connectors.models import Connector, Family
from connectors.services import connector_may_change
from governance.audit import audit_verify
from governance.demo import seed_governance
from governance.models import AuditRecord, EventType, SecretKind, SecretReference
from governance.secrets import secret_read

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (
        SecretReference.objects.count(),
        Connector.objects.count(),
        AuditRecord.objects.count(),
        ApiToken.objects.count(),
        Customer.objects.count(),
        Order.objects.count(),
    )


def test_seeding_creates_the_token_the_connectors_and_the_brewline_data_once() -> None:
    seed_governance()
    made = seed_connectors()
    assert made["secrets"] == 1 and made["connectors"] == 2
    assert made["brewline customers"] == 300 and made["brewline orders"] == 3000
    first = _counts()

    assert seed_connectors() == {"secrets": 0, "connectors": 0}  # nothing to do: not even an audited secret read
    assert _counts() == first

    secret = SecretReference.objects.get(name="brewline_api_token")
    assert secret.kind == SecretKind.ENCRYPTED
    token = secret_read(actor=None, secret_or_name=secret, purpose="test")
    assert token not in secret.ciphertext
    assert ApiToken.objects.get().token_hash == ApiToken.hash_token(token)  # Brewline accepts the stored token

    crm, commerce = Connector.objects.get(key="demo_crm"), Connector.objects.get(key="demo_commerce")
    assert (crm.family, crm.adapter, crm.is_primary) == (Family.CRM, "rest_crm", True)
    assert (commerce.family, commerce.adapter, commerce.is_primary) == (Family.COMMERCE, "rest_commerce", True)
    assert crm.base_url == f"{settings.SITE_URL}/brewline-api/v1" and crm.credential == secret
    assert crm.owner.username == "maya.ops" and crm.fallback_owner.username == "omar.lead"
    assert connector_may_change(crm.owner, crm)
    created = AuditRecord.objects.filter(event_type=EventType.CONFIG_CREATED, subject_type="connectors.connector")
    assert created.count() == 2
    assert audit_verify().ok


def test_a_later_run_reads_the_stored_token_when_brewline_needs_seeding_again() -> None:
    seed_governance()
    seed_connectors()
    ApiToken.objects.all().delete()  # e.g. Brewline's side was reset: Steward's stored token is unknown there
    made = seed_connectors()
    assert made["brewline api tokens"] == 1 and made["brewline customers"] == 0
    token = secret_read(actor=None, secret_or_name="brewline_api_token", purpose="test")
    assert ApiToken.objects.get().token_hash == ApiToken.hash_token(token)
    reads = AuditRecord.objects.filter(event_type=EventType.SECRET_READ, reason="demo seed")
    assert reads.count() == 1


def test_seeding_without_the_governance_owners_says_what_to_run_first() -> None:
    with pytest.raises(DemoSeedError, match="run seed_governance first"):
        seed_connectors()
