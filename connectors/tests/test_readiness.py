"""Connectors' lines of the readiness report: the primary helpdesk connector and the queues tickets go to."""

from __future__ import annotations

import pytest
from helpdesk.models import Queue

from connectors.helpdesk_schema import QUEUES, ensure_helpdesk_schema
from connectors.models import Connector, Family
from connectors.readiness import CONNECTOR_TITLE, QUEUES_TITLE, helpdesk_readiness
from governance.readiness import READINESS_CHECKS, Status
from governance.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def helpdesk(adapter: str = "helpdesk_embedded", **fields: object) -> Connector:
    values: dict[str, object] = {
        "key": "helpdesk",
        "name": "Embedded helpdesk",
        "family": Family.HELPDESK,
        "adapter": adapter,
        "is_primary": True,
        "owner": UserFactory(),
    }
    values.update(fields)
    return Connector.objects.create(**values)


def lines() -> dict[str, object]:
    return {line.title: line for line in helpdesk_readiness()}


def test_an_enabled_embedded_helpdesk_with_its_queues_passes(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    ensure_helpdesk_schema()
    connector = helpdesk()

    with django_assert_num_queries(2):
        report = lines()

    assert report[CONNECTOR_TITLE].status == Status.PASS
    assert report[CONNECTOR_TITLE].detail == "Embedded helpdesk (helpdesk_embedded)."
    assert report[CONNECTOR_TITLE].fix_url.endswith(f"?id__in={connector.pk}")
    assert report[QUEUES_TITLE].status == Status.PASS
    assert report[QUEUES_TITLE].detail == f"All {len(QUEUES)} queues exist."


def test_without_a_primary_helpdesk_connector_nothing_can_be_handed_over() -> None:
    helpdesk(is_primary=False)  # configured, but not the one the agent uses

    report = lines()

    assert (
        report[CONNECTOR_TITLE].status == Status.FAIL
        and "No primary helpdesk connector" in report[CONNECTOR_TITLE].detail
    )
    assert report[QUEUES_TITLE].status == Status.FAIL


def test_a_disabled_connector_fails_with_its_reason() -> None:
    ensure_helpdesk_schema()
    helpdesk(enabled=False, disabled_reason="token revoked")

    assert lines()[CONNECTOR_TITLE].detail == "Embedded helpdesk: disabled (token revoked)."


def test_a_connector_whose_calls_fail_or_whose_adapter_is_missing_fails() -> None:
    connector = helpdesk(adapter="zendesk", consecutive_failures=3, last_error="HTTP 401")
    assert lines()[CONNECTOR_TITLE].detail == "Embedded helpdesk: its last 3 calls failed (HTTP 401)."

    Connector.objects.filter(pk=connector.pk).update(adapter="freshdesk", consecutive_failures=0)
    assert lines()[CONNECTOR_TITLE].detail == "Embedded helpdesk: its adapter 'freshdesk' is not installed."


def test_missing_queues_of_the_embedded_helpdesk_are_named() -> None:
    ensure_helpdesk_schema()
    Queue.objects.filter(slug__in=["vip", "compliance"]).delete()
    helpdesk()

    line = lines()[QUEUES_TITLE]

    assert line.status == Status.FAIL
    assert line.detail.startswith(
        "Missing queues: vip, compliance; run connectors.helpdesk_schema.ensure_helpdesk_schema()"
    )


def test_an_outside_helpdesk_keeps_its_own_queues() -> None:
    helpdesk(adapter="zendesk", name="Zendesk")  # no local queue at all

    assert lines()[QUEUES_TITLE].status == Status.PASS


def test_the_connectors_app_registers_its_check() -> None:
    assert READINESS_CHECKS["helpdesk"] is helpdesk_readiness
