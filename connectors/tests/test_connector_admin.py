"""The connector admin: a list that costs the same whatever its length, a health badge, permissioned actions that
report what they did, saves through the audited services, owners who edit only their own connector, and write
receipts nobody edits."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from connectors.admin import connector_health
from connectors.demo import BREWLINE_CRM_CONFIG
from connectors.models import Connector, WriteReceipt
from connectors.services import connector_create, connector_may_change, connector_update
from connectors.tests.scripted_server import Reply, ScriptedServer
from governance.exceptions import NotPermitted
from governance.models import AuditRecord, EventType, SecretKind
from governance.secrets import secret_create
from governance.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:connectors_connector_changelist")
TOKEN_VALUE = "brewline-token-never-shown"


def _change_url(connector: Connector) -> str:
    return reverse("admin:connectors_connector_change", args=[connector.pk])


def _connector(
    key: str, *, owner: User | None = None, base_url: str = "http://127.0.0.1:9/api", **extra: Any
) -> Connector:
    owner = owner or UserFactory()
    credential = secret_create(
        actor=None, name=f"{key}_token", kind=SecretKind.ENCRYPTED, owner=owner, value=TOKEN_VALUE
    )
    return connector_create(
        actor=None,
        key=key,
        name=f"System {key}",
        family="crm",
        adapter="rest_crm",
        owner=owner,
        base_url=base_url,
        credential=credential,
        config=copy.deepcopy(BREWLINE_CRM_CONFIG),
        **extra,
    )


def _form(connector: Connector, **overrides: Any) -> dict[str, Any]:
    data = {
        "key": connector.key,
        "name": connector.name,
        "family": connector.family,
        "adapter": connector.adapter,
        "is_primary": "on" if connector.is_primary else "",
        "base_url": connector.base_url,
        "credential": connector.credential_id or "",
        "timeout_seconds": connector.timeout_seconds,
        "config": json.dumps(connector.config),
        "owner": connector.owner_id,
        "fallback_owner": connector.fallback_owner_id or "",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value != ""}


def _action(client: Client, action: str, *connectors: Connector) -> Any:
    return client.post(CHANGELIST, {"action": action, "_selected_action": [c.pk for c in connectors]}, follow=True)


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- The list --------------------------------------------------------------------------------------------------------


def test_the_list_renders_with_the_same_number_of_queries_however_many_connectors(
    support_admin: User, client: Client, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    client.force_login(support_admin)
    _connector("one")
    _connector("two")
    # session, user, user and group permissions, count, full count, page (owners joined).
    with django_assert_num_queries(7):
        assert client.get(CHANGELIST).status_code == 200
    _connector("three")
    _connector("four")
    with django_assert_num_queries(7):
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 4


def test_an_owner_lists_only_their_connectors_at_a_fixed_cost(
    support_agent: User, client: Client, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    mine = [_connector("mine", owner=support_agent)]
    _connector("theirs")
    client.force_login(support_agent)
    client.get(CHANGELIST)  # django-guardian caches the permission's content type for the process
    # As an admin's list, plus one query for the connectors the owner holds the object permission on.
    with django_assert_num_queries(8):
        response = client.get(CHANGELIST)
    mine += [_connector("mine2", owner=support_agent), _connector("mine3", owner=support_agent)]
    with django_assert_num_queries(8):
        response = client.get(CHANGELIST)
    assert sorted(c.key for c in response.context["cl"].result_list) == sorted(c.key for c in mine)


def test_an_outsider_is_refused_the_list(outsider: User, client: Client) -> None:
    _connector("one")
    client.force_login(outsider)
    assert client.get(CHANGELIST).status_code == 403


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ({}, "unknown"),
        ({"last_success_at": timezone.now()}, "healthy"),
        ({"last_success_at": timezone.now(), "consecutive_failures": 1, "last_error": "503"}, "degraded"),
        ({"consecutive_failures": 4, "last_error": "timed out"}, "failing"),
        ({"enabled": False, "disabled_reason": "credential refused", "last_success_at": timezone.now()}, "disabled"),
    ],
)
def test_the_health_badge_says_how_each_connector_is_doing(
    support_admin: User, client: Client, values: dict[str, Any], state: str
) -> None:
    connector = _connector("one")
    Connector.objects.filter(pk=connector.pk).update(**values)
    connector.refresh_from_db()
    assert connector_health(connector).state == state
    client.force_login(support_admin)
    html = client.get(CHANGELIST).content.decode()
    assert f"connector-health-{state}" in html
    if values.get("last_error"):
        assert values["last_error"] in html  # in the badge's title
    if values.get("disabled_reason"):
        assert values["disabled_reason"] in html


# --- Actions ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def health_server() -> Iterator[ScriptedServer]:
    with ScriptedServer([Reply(body={"status": "ok"})]).running() as server:
        yield server


@pytest.fixture
def refusing_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(
        [Reply(status=401, body={"detail": "The token is not valid or has been revoked."})]
    ).running() as server:
        yield server


def test_check_health_now_reports_each_connector_and_a_refused_one_is_disabled(
    support_admin: User,
    client: Client,
    health_server: ScriptedServer,
    refusing_server: ScriptedServer,
    django_capture_on_commit_callbacks: Any,
) -> None:
    healthy = _connector("healthy", base_url=health_server.url)
    refused = _connector("refused", base_url=refusing_server.url)
    client.force_login(support_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(client, "check_health", healthy, refused)
    messages = _messages(response)
    assert "System healthy: healthy, it answered." in messages
    assert any(m.startswith("System refused: failed.") and "credential refused (401)" in m for m in messages)
    assert [r.path for r in health_server.received] == ["/health"]
    assert health_server.received[0].headers["Authorization"] == f"Token {TOKEN_VALUE}"
    healthy.refresh_from_db()
    refused.refresh_from_db()
    assert connector_health(healthy).state == "healthy"
    assert not refused.enabled and refused.disabled_reason.startswith("credential refused")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [refused.owner.email]


def test_enable_clears_the_reason_and_is_audited(support_admin: User, client: Client) -> None:
    connector = _connector("one")
    Connector.objects.filter(pk=connector.pk).update(enabled=False, disabled_reason="credential refused (401)")
    client.force_login(support_admin)
    response = _action(client, "enable", connector)
    assert _messages(response) == ["Enabled: System one."]
    connector.refresh_from_db()
    assert connector.enabled and connector.disabled_reason == ""
    record = AuditRecord.objects.filter(event_type=EventType.CONFIG_CHANGED, subject_id=str(connector.pk)).get()
    assert record.actor_user_id == support_admin.pk
    assert record.changes["enabled"] == {"old": False, "new": True}
    assert record.changes["disabled_reason"] == {"old": "credential refused (401)", "new": ""}
    assert _messages(_action(client, "enable", connector)) == ["Already enabled: System one."]


def test_disable_tells_the_owners(support_admin: User, client: Client, django_capture_on_commit_callbacks: Any) -> None:
    connector = _connector("one")
    client.force_login(support_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = _action(client, "disable", connector)
    assert _messages(response) == ["Disabled (owners told): System one."]
    connector.refresh_from_db()
    assert not connector.enabled and connector.disabled_reason == "disabled by ada_admin in the admin"
    assert len(mail.outbox) == 1


def test_the_actions_need_the_change_permission(client: Client) -> None:
    viewer = UserFactory(username="vic_viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_connector"))
    connector = _connector("one")
    Connector.objects.filter(pk=connector.pk).update(enabled=False, disabled_reason="credential refused")
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["action_form"] is None  # no action it may take: no action menu at all
    _action(client, "enable", connector)
    connector.refresh_from_db()
    assert not connector.enabled


def test_an_owners_action_skips_connectors_that_are_not_theirs(support_agent: User, client: Client) -> None:
    mine = _connector("mine", owner=support_agent)
    theirs = _connector("theirs")
    for connector in (mine, theirs):
        Connector.objects.filter(pk=connector.pk).update(enabled=False, disabled_reason="x")
    client.force_login(support_agent)
    _action(client, "enable", mine, theirs)  # theirs is not even in the owner's list: it cannot be selected
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.enabled and not theirs.enabled


# --- The form --------------------------------------------------------------------------------------------------------


def test_adding_a_connector_is_audited_and_its_owner_may_edit_it(support_admin: User, client: Client) -> None:
    owner = UserFactory(username="olga_owner")
    credential = secret_create(actor=None, name="crm_token", kind=SecretKind.ENCRYPTED, owner=owner, value="v")
    client.force_login(support_admin)
    data = {
        "key": "acme_crm",
        "name": "Acme CRM",
        "family": "crm",
        "adapter": "rest_crm",
        "base_url": "https://crm.acme.example/api",
        "credential": credential.pk,
        "timeout_seconds": 5,
        "config": json.dumps(BREWLINE_CRM_CONFIG),
        "owner": owner.pk,
    }
    response = client.post(reverse("admin:connectors_connector_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    connector = Connector.objects.get(key="acme_crm")
    assert connector.config == BREWLINE_CRM_CONFIG
    record = AuditRecord.objects.get(event_type=EventType.CONFIG_CREATED, subject_type="connectors.connector")
    assert record.actor_user_id == support_admin.pk
    assert connector_may_change(owner, connector)
    assert not connector_may_change(UserFactory(), connector)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ("{not json", "Enter a valid JSON."),
        (
            json.dumps({"health_check": {"path": "/health"}, "operations": {"refund": {"path": "/r"}}}),
            "not a crm operation",
        ),
        (json.dumps({"auth": {"scheme": "Token"}}), "health_check: is required"),
    ],
)
def test_an_invalid_config_is_shown_on_the_form(support_admin: User, client: Client, config: str, error: str) -> None:
    connector = _connector("one")
    client.force_login(support_admin)
    response = client.post(_change_url(connector), _form(connector, config=config))
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors["config"])
    connector.refresh_from_db()
    assert connector.config == BREWLINE_CRM_CONFIG


def test_an_adapter_of_another_family_is_refused(support_admin: User, client: Client) -> None:
    connector = _connector("one")
    client.force_login(support_admin)
    response = client.post(_change_url(connector), _form(connector, adapter="rest_commerce"))
    assert "speaks to commerce systems, not crm" in str(response.context["adminform"].form.errors)


def test_an_owner_edits_their_connector_and_the_change_is_audited(support_agent: User, client: Client) -> None:
    connector = _connector("mine", owner=support_agent)
    other = _connector("theirs")
    client.force_login(support_agent)
    page = client.get(_change_url(connector))
    assert page.status_code == 200
    assert "owner" not in page.context["adminform"].form.fields  # what it is and who owns it: for admins
    data = {"name": "Renamed", "base_url": "https://crm.example/v2", "timeout_seconds": 3,
            "credential": connector.credential_id, "config": json.dumps(connector.config)}  # fmt: skip
    assert client.post(_change_url(connector), data).status_code == 302
    connector.refresh_from_db()
    assert (connector.name, connector.base_url) == ("Renamed", "https://crm.example/v2")
    record = AuditRecord.objects.filter(event_type=EventType.CONFIG_CHANGED, subject_id=str(connector.pk)).get()
    assert record.actor_user_id == support_agent.pk and set(record.fields) == {
        "base_url",
        "name",
        "timeout_seconds",
        "updated_at",
    }
    assert client.get(_change_url(other)).status_code == 302  # not in their list: "does not exist"
    assert client.post(_change_url(other), _form(other, name="Hijacked")).status_code == 302
    other.refresh_from_db()
    assert other.name == "System theirs"


def test_an_owner_may_not_hand_over_or_retype_their_connector(support_agent: User) -> None:
    connector = _connector("mine", owner=support_agent)
    with pytest.raises(NotPermitted, match="Only a support admin may change adapter, owner"):
        connector_update(actor=support_agent, connector=connector, owner=UserFactory(), adapter="rest_commerce")
    with pytest.raises(NotPermitted, match="not yours"):
        connector_update(actor=support_agent, connector=_connector("theirs"), name="Mine now")


def test_a_new_owner_takes_over_the_object_permission() -> None:
    first, second = UserFactory(), UserFactory()
    connector = _connector("one", owner=first)
    connector_update(actor=None, connector=connector, owner=second)
    assert connector_may_change(second, connector)
    assert not connector_may_change(User.objects.get(pk=first.pk), connector)


def test_the_credential_is_shown_by_name_and_its_value_never(support_admin: User, client: Client) -> None:
    connector = _connector("one")
    client.force_login(support_admin)
    html = client.get(_change_url(connector)).content.decode()
    assert "one_token" in html and TOKEN_VALUE not in html


def test_deleting_a_connector_is_audited(support_admin: User, client: Client) -> None:
    connector = _connector("one")
    client.force_login(support_admin)
    response = client.post(reverse("admin:connectors_connector_delete", args=[connector.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Connector.objects.exists()
    assert AuditRecord.objects.filter(event_type=EventType.CONFIG_DELETED, subject_type="connectors.connector").exists()


# --- Write receipts --------------------------------------------------------------------------------------------------


def test_write_receipts_are_listed_and_never_edited(
    support_admin: User, client: Client, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    connector = _connector("one")
    for n in range(3):
        WriteReceipt.objects.create(idempotency_key=f"k{n}", connector=connector, operation="refund")
    client.force_login(support_admin)
    changelist = reverse("admin:connectors_writereceipt_changelist")
    with django_assert_num_queries(7):  # session, user, permissions (2), count, full count, page (connector joined)
        assert client.get(changelist).status_code == 200
    receipt = WriteReceipt.objects.first()
    assert client.get(reverse("admin:connectors_writereceipt_add")).status_code == 403
    url = reverse("admin:connectors_writereceipt_change", args=[receipt.pk])
    assert client.post(url, {"state": "done"}).status_code == 403
    assert client.get(url).status_code == 200  # read-only view


def test_support_admins_hold_the_connector_permissions(support_admin: User, support_manager: User) -> None:
    assert support_admin.has_perm("connectors.change_connector")
    assert support_admin.has_perm("connectors.view_writereceipt")
    assert not support_manager.has_perm("connectors.change_connector")
