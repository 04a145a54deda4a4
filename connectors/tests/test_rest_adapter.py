"""The generic REST adapter: against Brewline's API over real HTTP (the live server), through the governed gateway,
with the demo company's governance; and against a misbehaving local server for every way a system can fail."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core import mail

from brewline.demo import seed_brewline
from brewline.models import ApiToken, Customer, CustomerNote, FollowUpTask, Order, Refund, Subscription
from connectors import actions
from connectors.adapters.rest import RestCommerceAdapter, RestCRMAdapter
from connectors.adapters.rest_config import lookup, parse_config, parse_json_path
from connectors.base import ADAPTERS, Address, ConnectorError, NotFound
from connectors.demo import BREWLINE_COMMERCE_CONFIG, BREWLINE_CRM_CONFIG, seed_connector_rows
from connectors.gateway import FieldWriteRefused, adapter_for, governed_read, governed_write
from connectors.models import Connector, WriteReceipt
from connectors.tests.scripted_server import Reply, ScriptedServer
from governance.approvals import approval_request_approve, approval_request_create
from governance.demo import seed_governance
from governance.dry_run import DryRun, dry_run
from governance.executors import ExecutionContext
from governance.models import ActionPolicy, ApprovalRequest, ApprovalStatus, AuditRecord, EventType
from governance.roles import Principal, Verification

BASE_DIR = Path(__file__).resolve().parents[2]


def _demo_rows() -> str:
    """Seed the demo company's governance and connector rows; return the Brewline token."""
    seed_governance()
    _, token = seed_connector_rows()
    assert token is not None
    return token


def _connector(key: str) -> Connector:
    return Connector.objects.select_related("credential", "owner").get(key=key)


@pytest.fixture
def brewline(live_server) -> dict[str, Connector]:  # type: ignore[no-untyped-def]
    """The demo connectors pointed at Brewline served by the live server (a transactional database)."""
    token = _demo_rows()
    seed_brewline(token, customers=12, orders=40)
    Connector.objects.filter(key__in=["demo_crm", "demo_commerce"]).update(
        base_url=f"{live_server.url}/brewline-api/v1"
    )
    return {"crm": _connector("demo_crm"), "commerce": _connector("demo_commerce")}


def _events(event_type: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(event_type=event_type).order_by("seq"))


# --- Governed reads over real HTTP -----------------------------------------------------------------------------------


def test_a_verified_customer_sees_only_the_mapped_fields_they_may_read(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    record = governed_read(principal=verified_customer, connector=brewline["crm"], obj="customer", object_id="C-1001")
    assert record.fields == {
        "name": "Mara Lindqvist",
        "email": "mara.lindqvist@example.com",
        "plan": "Roaster's Choice, fortnightly",
        "region": "UK",
        "renewal_date": record.fields["renewal_date"],
        "shipping_address": "14 Kiln Lane, Leeds, LS1 4AP, GB",
    }
    assert record.withheld == ["account_owner", "lifecycle_stage", "lifetime_value", "tier"]
    # Read from the API (the connector's config maps them) but mapped by no FieldMapping: never seen, never named.
    for unmapped in ("phone", "tags", "last_contact", "payment_method"):
        assert unmapped not in record.fields and unmapped not in record.withheld
    assert "4242" not in json.dumps(record.fields)


def test_a_field_above_the_customers_verification_is_withheld_and_named(  # type: ignore[no-untyped-def]
    brewline, email_verified_customer, anonymous_visitor
) -> None:
    record = governed_read(
        principal=email_verified_customer, connector=brewline["crm"], obj="customer", object_id="C-1002"
    )
    assert set(record.fields) == {"name", "email", "plan", "region"}
    assert {"renewal_date", "shipping_address"} <= set(record.withheld)
    # A customer reads only their own record; to anyone else it does not exist (ids cannot be probed).
    for stranger in (anonymous_visitor, email_verified_customer):
        with pytest.raises(NotFound):
            governed_read(principal=stranger, connector=brewline["crm"], obj="customer", object_id="C-1001")


def test_a_read_of_an_evidence_field_is_audited_with_its_value(  # type: ignore[no-untyped-def]
    brewline, verified_customer, email_verified_customer
) -> None:
    governed_read(principal=email_verified_customer, connector=brewline["crm"], obj="customer", object_id="C-1002")
    assert _events(EventType.FIELD_READ) == []  # the evidence fields were withheld: nothing was read
    governed_read(
        principal=verified_customer,
        connector=brewline["crm"],
        obj="customer",
        object_id="C-1001",
        conversation_id="conv-7",
    )
    (record,) = _events(EventType.FIELD_READ)
    assert record.fields == ["shipping_address"]
    assert (record.subject_type, record.subject_id, record.conversation_id) == ("demo_crm.customer", "C-1001", "conv-7")
    assert record.data == {"values": {"shipping_address": "14 Kiln Lane, Leeds, LS1 4AP, GB"}}


def test_an_order_reads_into_the_field_paths_governance_maps(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    record = governed_read(
        principal=verified_customer, connector=brewline["commerce"], obj="order", object_id="BL-10042"
    )
    tracking = Order.objects.get(number="BL-10042").tracking_number
    assert {key: value for key, value in record.fields.items() if key != "items"} == {
        "status": "shipped",
        "shipping.status": "in_transit",
        "shipping.tracking_number": tracking,
        "total": "43.50",
    }
    assert [item["sku"] for item in record.fields["items"]] == ["BL-ETH-250", "BL-MUG-01"]


def test_an_unknown_record_is_not_found_and_the_connector_stays_healthy(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        governed_read(principal=verified_customer, connector=brewline["commerce"], obj="order", object_id="BL-1")
    assert _connector("demo_commerce").consecutive_failures == 0


# --- Governed writes over real HTTP ----------------------------------------------------------------------------------


def test_an_allowed_write_is_made_and_audited_with_old_and_new_values(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    new = "7 Roastery Row, York, YO1 7HH, GB"
    result = governed_write(
        principal=verified_customer,
        connector=brewline["crm"],
        obj="customer",
        object_id="C-1001",
        field_path="shipping_address",
        value=new,
        idempotency_key="write-1",
    )
    assert result == new  # as Brewline reports it back
    assert Customer.objects.get(external_id="C-1001").ship_city == "York"
    (record,) = _events(EventType.FIELD_WRITE)
    assert record.changes == {"shipping_address": {"old": "14 Kiln Lane, Leeds, LS1 4AP, GB", "new": new}}
    assert record.data == {"idempotency_key": "write-1"} and record.decision == "allow"
    assert not WriteReceipt.objects.exists()  # Brewline de-duplicates by the key itself


def test_in_a_dry_run_a_field_write_is_recorded_not_made_and_leaves_no_evidence_of_a_change(  # type: ignore[no-untyped-def]
    brewline, verified_customer
) -> None:
    rehearsal = DryRun()
    with dry_run(rehearsal):
        result = governed_write(
            principal=verified_customer,
            connector=brewline["crm"],
            obj="customer",
            object_id="C-1001",
            field_path="shipping_address",
            value="7 Roastery Row, York, YO1 7HH, GB",
            idempotency_key="write-dry",
        )
    assert result["dry_run"] is True
    assert [w["idempotency_key"] for w in rehearsal.writes] == ["write-dry"]
    assert Customer.objects.get(external_id="C-1001").ship_city == "Leeds"
    assert not _events(EventType.FIELD_WRITE)


def test_a_subscription_is_paused_by_writing_its_status(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    governed_write(
        principal=verified_customer,
        connector=brewline["commerce"],
        obj="subscription",
        object_id="SUB-2001",
        field_path="status",
        value="paused",
        idempotency_key="pause-1",
    )
    assert Subscription.objects.get(number="SUB-2001").status == "paused"
    (record,) = _events(EventType.FIELD_WRITE)
    assert record.changes == {"status": {"old": "active", "new": "paused"}}


# --- Every operation over real HTTP ----------------------------------------------------------------------------------


def _adapter(connector: Connector) -> Any:
    return adapter_for(connector, principal=Principal.system("test"), purpose="test")


def test_the_crm_operations_reach_the_demo_system(brewline) -> None:  # type: ignore[no-untyped-def]
    crm = _adapter(brewline["crm"])
    assert isinstance(crm, RestCRMAdapter) and crm.honours_idempotency
    (found,) = crm.find_customers(email="MARA.LINDQVIST@example.com")
    assert (found.id, found.name) == ("C-1001", "Mara Lindqvist")
    assert crm.find_customers(phone="+44 7700 900101")[0].id == "C-1001"
    assert crm.find_customers(external_id="C-9999") == []
    note_id = crm.add_note("C-1001", "Asked about BL-10042.", idempotency_key="note-k")
    assert crm.add_note("C-1001", "Asked about BL-10042.", idempotency_key="note-k") == note_id  # a repeat: once
    crm.add_tag("C-1001", "needs-callback", idempotency_key="tag-k")
    task_id = crm.create_task("C-1001", "Call back", None, idempotency_key="task-k")
    assert note_id.startswith("N-") and task_id.startswith("T-")
    assert CustomerNote.objects.count() == 1 and FollowUpTask.objects.count() == 1
    assert "needs-callback" in Customer.objects.get(external_id="C-1001").tags
    crm.health_check()


def test_the_commerce_operations_reach_the_demo_system(brewline) -> None:  # type: ignore[no-untyped-def]
    commerce = _adapter(brewline["commerce"])
    assert isinstance(commerce, RestCommerceAdapter)
    orders = commerce.list_orders("C-1001")
    assert [(o.id, o.status) for o in orders] == [
        ("BL-10043", "processing"),
        ("BL-10042", "shipped"),
        ("BL-10041", "delivered"),
    ]
    assert orders[1].total == "43.50" and orders[1].currency == "GBP"
    assert commerce.pause_subscription("SUB-2003", idempotency_key="p")["status"] == "paused"
    assert commerce.resume_subscription("SUB-2003", idempotency_key="r")["status"] == "active"
    assert commerce.cancel_subscription("SUB-2003", idempotency_key="c") == {
        "id": "SUB-2003",
        "status": "cancelled",
        "next_charge_date": None,
    }
    address = Address(line1="1 New Street", city="Leeds", postcode="LS2 8AA", country="GB")
    changed = commerce.change_shipping_address("BL-10043", address, idempotency_key="a1")
    assert changed["shipping.address"] == "1 New Street, Leeds, LS2 8AA, GB"
    with pytest.raises(ConnectorError) as shipped:
        commerce.change_shipping_address("BL-10042", address, idempotency_key="a2")
    assert shipped.value.status == 409 and shipped.value.permanent and "already shipped" in str(shipped.value)
    refund = commerce.refund("BL-10061", Decimal("12.00"), reason="damaged", idempotency_key="rf")
    assert (refund.amount, refund.currency, refund.status) == (Decimal("12.00"), "USD", "succeeded")


def test_a_refund_approved_by_a_manager_runs_once_in_the_worker_and_the_remote_honours_its_key(  # type: ignore[no-untyped-def]
    brewline, support_manager, celery_worker_process
) -> None:
    # Priya (C-1003) owns BL-10061: a customer's actions only ever touch their own orders.
    verified_customer = Principal.customer(verification=Verification.IDENTITY_VERIFIED, customer_id="C-1003")
    policy = ActionPolicy.objects.get(action="refund")
    request = approval_request_create(
        actor=verified_customer,
        policy=policy,
        arguments={"order_id": "BL-10061", "amount": "20.00", "reason": "arrived damaged"},
        principal=verified_customer,
        reason="above the automated ceiling",
    )
    approval_request_approve(request_id=request.pk, actor=support_manager, note="goodwill")  # queued after commit
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if request.status not in (ApprovalStatus.APPROVED, ApprovalStatus.EXECUTING):
            break
        time.sleep(0.2)
    assert request.status == ApprovalStatus.EXECUTED, (request.error, celery_worker_process.log_tail())
    refund = Refund.objects.get()
    assert refund.idempotency_key == str(request.idempotency_key) and refund.amount == Decimal("20.00")
    assert request.result["result"]["id"] == refund.number

    # The same execution again (a redelivered task, a retry after a timeout): the remote returns the first refund.
    again = actions.refund(
        ExecutionContext(
            action="refund",
            arguments=request.arguments,
            principal=verified_customer,
            idempotency_key=str(request.idempotency_key),
        )
    )
    assert again == {
        "connector": "demo_commerce",
        "result": {"id": refund.number, "amount": "20.00", "currency": "USD", "status": "succeeded"},
    }
    assert Refund.objects.count() == 1
    assert ApprovalRequest.objects.get().status == ApprovalStatus.EXECUTED


def test_a_revoked_credential_disables_the_connector_tells_its_owners_and_is_audited(  # type: ignore[no-untyped-def]
    brewline, verified_customer
) -> None:
    ApiToken.objects.update(revoked=True)
    with pytest.raises(ConnectorError) as refused:
        governed_read(principal=verified_customer, connector=brewline["crm"], obj="customer", object_id="C-1001")
    assert refused.value.auth and refused.value.status == 401
    connector = _connector("demo_crm")
    assert not connector.enabled and connector.disabled_reason.startswith("credential refused")
    (message,) = mail.outbox
    assert set(message.to) == {"maya.ops@brewline.example", "omar.lead@brewline.example"}
    assert "Brewline CRM" in message.subject
    disabled = [r for r in _events(EventType.CONFIG_CHANGED) if r.subject_id == str(connector.pk)]
    assert disabled[-1].changes == {"enabled": {"old": True, "new": False}}
    assert _connector("demo_commerce").enabled  # only the connector whose call was refused


# --- Failure modes against a misbehaving server ----------------------------------------------------------------------

CUSTOMER_JSON = {
    "id": "C-1001",
    "name": "Mara Lindqvist",
    "email": "mara.lindqvist@example.com",
    "phone": "+447700900101",
    "plan": "Roaster's Choice, fortnightly",
    "region": "UK",
    "lifecycle_stage": "active",
    "renewal_date": "2030-01-01",
    "account_owner": "Omar Haddad",
    "tier": "vip",
    "shipping_address": {"formatted": "14 Kiln Lane, Leeds, LS1 4AP, GB"},
    "lifetime_value": "176.50",
    "tags": [],
    "support_history": [],
}
ORDER_JSON = {
    "id": "BL-10042",
    "customer_id": "C-1001",
    "status": "shipped",
    "placed_at": "2030-01-01T10:00:00+00:00",
    "currency": "GBP",
    "items": [{"sku": "BL-ETH-250", "name": "Ethiopia Guji, 250 g", "quantity": 2}],
    "totals": {"total": "43.50", "refundable": "43.50"},
    "shipping": {
        "status": "in_transit",
        "carrier": "Royal Mail",
        "tracking_number": "RM123456789GB",
        "tracking_url": None,
        "estimated_delivery": None,
        "address": {"formatted": "14 Kiln Lane, Leeds, LS1 4AP, GB"},
    },
}


@pytest.fixture
def demo_rows(db) -> None:  # type: ignore[no-untyped-def]
    _demo_rows()


@pytest.fixture
def scripted(demo_rows) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Point a demo connector at a local server answering from a script: ``scripted("demo_crm", [Reply(...)])``."""
    servers: list[Any] = []

    def start(key: str, replies: list[Reply], *, honours_idempotency: bool = True) -> tuple[ScriptedServer, Connector]:
        server = ScriptedServer(replies)
        context = server.running()
        context.__enter__()
        servers.append(context)
        config = copy.deepcopy(_connector(key).config)
        config["honours_idempotency"] = honours_idempotency
        Connector.objects.filter(key=key).update(base_url=server.url, timeout_seconds=0.3, config=config)
        return server, _connector(key)

    yield start
    for context in servers:
        context.__exit__(None, None, None)


def _read_order(principal: Principal, connector: Connector) -> Any:
    return governed_read(principal=principal, connector=connector, obj="order", object_id="BL-10042")


def test_a_read_that_times_out_is_retried_and_a_later_answer_is_used(scripted, verified_customer) -> None:  # type: ignore[no-untyped-def]
    server, connector = scripted("demo_commerce", [Reply(delay=1.0), Reply(body=ORDER_JSON)])
    assert _read_order(verified_customer, connector).fields["status"] == "shipped"
    assert len(server.requests("GET")) == 2


def test_a_read_that_keeps_timing_out_fails_clearly_after_three_tries(scripted, verified_customer) -> None:  # type: ignore[no-untyped-def]
    server, connector = scripted("demo_commerce", [Reply(delay=1.0)])
    with pytest.raises(ConnectorError, match="timed out") as failed:
        _read_order(verified_customer, connector)
    assert not failed.value.permanent
    assert len(server.requests("GET")) == 3
    connector.refresh_from_db()
    assert connector.consecutive_failures == 1 and "timed out" in connector.last_error and connector.enabled


def _write_address(principal: Principal, connector: Connector, key: str) -> Any:
    return governed_write(
        principal=principal,
        connector=connector,
        obj="customer",
        object_id="C-1001",
        field_path="shipping_address",
        value="7 Roastery Row, York, YO1 7HH, GB",
        idempotency_key=key,
    )


def test_a_write_that_times_out_is_never_retried_when_the_system_does_not_deduplicate(  # type: ignore[no-untyped-def]
    scripted, verified_customer
) -> None:
    server, connector = scripted(
        "demo_crm", [Reply(body=CUSTOMER_JSON), Reply(delay=1.0), Reply(body=CUSTOMER_JSON)], honours_idempotency=False
    )
    with pytest.raises(ConnectorError, match="timed out"):
        _write_address(verified_customer, connector, "w-1")
    assert len(server.requests("PATCH")) == 1
    assert WriteReceipt.objects.get(idempotency_key="w-1").state == WriteReceipt.State.UNKNOWN
    # Asked again with the same key, it refuses rather than risk writing twice: a person checks the system.
    with pytest.raises(ConnectorError, match="already attempted with this key"):
        _write_address(verified_customer, connector, "w-1")
    assert len(server.requests("PATCH")) == 1
    assert not _events(EventType.FIELD_WRITE)


def test_a_write_that_times_out_is_retried_with_its_key_when_the_system_deduplicates(  # type: ignore[no-untyped-def]
    scripted, verified_customer
) -> None:
    server, connector = scripted("demo_crm", [Reply(body=CUSTOMER_JSON), Reply(delay=1.0), Reply(body=CUSTOMER_JSON)])
    _write_address(verified_customer, connector, "w-2")
    patches = server.requests("PATCH")
    assert len(patches) == 2
    assert {p.headers["Idempotency-Key"] for p in patches} == {"w-2"}
    assert patches[0].body == {"shipping_address": "7 Roastery Row, York, YO1 7HH, GB"}
    assert patches[0].headers["Authorization"].startswith("Token ")


def test_a_429_waits_as_long_as_retry_after_says(scripted, verified_customer) -> None:  # type: ignore[no-untyped-def]
    server, connector = scripted(
        "demo_commerce",
        [Reply(status=429, body={"detail": "slow down"}, headers={"Retry-After": "1"}), Reply(body=ORDER_JSON)],
    )
    started = time.monotonic()
    assert _read_order(verified_customer, connector).fields["total"] == "43.50"
    assert time.monotonic() - started >= 1.0
    assert len(server.requests()) == 2


def test_a_5xx_is_retried_then_fails_with_a_clear_error(scripted, verified_customer) -> None:  # type: ignore[no-untyped-def]
    server, connector = scripted("demo_commerce", [Reply(status=503, body={"detail": "maintenance"})])
    with pytest.raises(ConnectorError) as failed:
        _read_order(verified_customer, connector)
    assert failed.value.status == 503 and "maintenance" in str(failed.value)
    assert "Brewline orders and subscriptions (demo_commerce) read order" in str(failed.value)
    assert len(server.requests()) == 3


def test_malformed_json_is_a_connector_error(scripted, verified_customer) -> None:  # type: ignore[no-untyped-def]
    _, connector = scripted("demo_commerce", [Reply(body=b"<html>Bad gateway</html>")])
    with pytest.raises(ConnectorError, match="not valid JSON"):
        _read_order(verified_customer, connector)


def test_schema_drift_names_the_missing_path(scripted, verified_customer) -> None:  # type: ignore[no-untyped-def]
    drifted = {key: value for key, value in ORDER_JSON.items() if key != "shipping"}
    _, connector = scripted("demo_commerce", [Reply(body=drifted)])
    with pytest.raises(ConnectorError, match=r"the answer has no 'shipping\.status'"):
        _read_order(verified_customer, connector)
    assert _connector("demo_commerce").consecutive_failures == 1


def test_a_write_outside_the_write_scope_is_refused_before_any_request_and_audited(  # type: ignore[no-untyped-def]
    scripted, verified_customer
) -> None:
    server, connector = scripted("demo_crm", [Reply(body=CUSTOMER_JSON)])
    for field_path, value in [("tier", "vip"), ("phone", "+15555550100"), ("shipping_address", "<script>")]:
        with pytest.raises(FieldWriteRefused):
            governed_write(
                principal=verified_customer,
                connector=connector,
                obj="customer",
                object_id="C-1001",
                field_path=field_path,
                value=value,
                idempotency_key=f"refused-{field_path}",
            )
    assert server.received == []
    refused = _events(EventType.FIELD_WRITE_REFUSED)
    assert [r.fields for r in refused] == [["tier"], ["phone"], ["shipping_address"]]
    assert refused[0].data == {"attempted": "vip"} and "no write scope" in refused[0].reason
    assert not _events(EventType.SECRET_READ)  # the credential was not even read


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500, body=b"Internal Server Error"),
        Reply(status=400, body={"detail": "bad"}),
        Reply(status=404, body={"detail": "No order"}),
        Reply(status=403, body={"detail": "no"}),
        Reply(body=b"\xff\xfe not utf-8"),
        Reply(body=[1, 2, 3]),
        Reply(body="a string"),
        Reply(body=None),
        Reply(body={"status": "shipped", "items": [], "totals": [], "shipping": "nope"}),
        Reply(delay=1.0),
    ],
    ids=["500", "400", "404", "403", "not utf-8", "a list", "a string", "null", "wrong types", "timeout"],
)
def test_nothing_but_a_connector_error_leaves_the_gateway(scripted, verified_customer, reply: Reply) -> None:  # type: ignore[no-untyped-def]
    _, connector = scripted("demo_commerce", [reply])
    with pytest.raises(ConnectorError):
        _read_order(verified_customer, connector)


def test_a_closed_port_is_a_connector_error(demo_rows, verified_customer) -> None:  # type: ignore[no-untyped-def]
    Connector.objects.filter(key="demo_commerce").update(base_url="http://127.0.0.1:9", timeout_seconds=0.3)
    with pytest.raises(ConnectorError):
        _read_order(verified_customer, _connector("demo_commerce"))


# --- Configuration ---------------------------------------------------------------------------------------------------


def test_the_demo_configs_are_valid_for_their_families() -> None:
    assert parse_config(BREWLINE_CRM_CONFIG, family="crm").honours_idempotency
    assert set(parse_config(BREWLINE_COMMERCE_CONFIG, family="commerce").objects) == {"order", "subscription"}
    assert ADAPTERS["rest_crm"] is RestCRMAdapter and ADAPTERS["rest_commerce"] is RestCommerceAdapter


def test_every_mistake_in_a_config_is_named_with_where_it_is() -> None:
    config = {
        "auht": {},
        "auth": {"scheme": "Token"},
        "honours_idempotency": "yes",
        "health_check": {"path": "health"},
        "objects": {
            "customer": {
                "read": {"path": "/customers/{customer}", "fields": {"name": "a..b"}},
                "write": {"path": "/customers/{id}", "fields": {"tier": "items[0]"}},
            },
            "order": {},
        },
        "operations": {
            "refund": {"path": "/refunds"},
            "find_customers": {"method": "FETCH", "path": "/customers", "query": {"q": "name"}, "fields": {"x": "x"}},
            "add_note": {"path": "/customers/{customer_id}/notes", "body": {"text": "text"}},
        },
    }
    problems = RestCRMAdapter.config_errors(config)
    expected = [
        "config: unknown key 'auht'",
        "auth.header: name the header",
        "honours_idempotency: must be true or false",
        "health_check.path: is required and starts with /",
        "objects.customer.read.path: {customer} is not an argument here (arguments: id)",
        "objects.customer.read.fields.name: 'a..b' is not a JSON path",
        "objects.customer.write.fields.tier: a request body path is dotted names only",
        "objects.order: give a read, a write or both",
        "operations.refund: not a crm operation",
        "operations.find_customers.method: 'FETCH' is not one of",
        "operations.find_customers: 'name' (for 'q') is not an argument here",
        "operations.find_customers.fields: map id to their JSON paths",
        "operations.find_customers.fields.x: find_customers reads only id, email, name",
        "operations.find_customers.list: give the JSON path of the list",
        "operations.add_note.fields: map id to their JSON paths",
    ]
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)
    assert RestCRMAdapter.config_errors(BREWLINE_CRM_CONFIG) == []
    assert RestCommerceAdapter.config_errors(BREWLINE_CRM_CONFIG) != []  # CRM operations are not commerce ones
    assert RestCRMAdapter.config_errors("not an object") == ["config: must be an object"]


def test_an_adapter_with_an_invalid_config_fails_as_a_permanent_connector_error(demo_rows) -> None:  # type: ignore[no-untyped-def]
    Connector.objects.filter(key="demo_crm").update(config={"health_check": {}})
    with pytest.raises(ConnectorError, match="REST configuration is invalid: health_check.path") as invalid:
        _adapter(_connector("demo_crm"))
    assert invalid.value.permanent


DOCUMENT = {"items": [{"sku": "A"}, {"sku": "B"}], "totals": {"total": "9.50", "none": None}}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("items[0].sku", (True, "A")),
        ("items.1.sku", (True, "B")),
        ("items[2].sku", (False, None)),
        ("items[2].sku?", (False, None)),
        ("totals.total", (True, "9.50")),
        ("totals.none", (True, None)),
        ("totals.total.deeper", (False, None)),
        ("", (True, DOCUMENT)),
    ],
)
def test_json_paths_reach_into_objects_and_lists(path: str, expected: tuple[bool, Any]) -> None:
    assert lookup(DOCUMENT, path) == expected
    assert parse_json_path("a.b[0][1].c") == ("a", "b", 0, 1, "c")


def test_ids_cannot_climb_out_of_their_path_segment_and_writes_carry_key_and_token() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "N-1"})

    connector = Connector(
        key="x",
        name="X",
        family="crm",
        adapter="rest_crm",
        base_url="https://crm.example/api/v2",
        config=BREWLINE_CRM_CONFIG,
    )
    adapter = RestCRMAdapter(connector, credential="s3cret", transport=httpx.MockTransport(answer))
    assert adapter.add_note("../../admin", "hi", idempotency_key="k-1") == "N-1"
    (request,) = seen
    assert request.url.raw_path == b"/api/v2/customers/..%2F..%2Fadmin/notes"
    assert request.headers["Authorization"] == "Token s3cret" and request.headers["Idempotency-Key"] == "k-1"
    assert json.loads(request.content) == {"text": "hi"}
    with pytest.raises(ConnectorError, match="needs an email"):
        adapter.find_customers()


def test_no_part_of_steward_imports_the_demo_system() -> None:
    """Steward reaches Brewline over HTTP only; connectors/demo.py seeds it, the demo traffic's cast picks the
    customers who play its visits (seeding, never a turn), and these tests test it."""
    allowed = {BASE_DIR / "connectors" / "demo.py", BASE_DIR / "agent" / "demo_traffic_cast.py"}
    offenders = [
        str(path.relative_to(BASE_DIR))
        for app in ("agent", "connectors", "governance", "knowledge", "analytics")
        for path in (BASE_DIR / app).rglob("*.py")
        if path not in allowed
        and "tests" not in path.parts
        and re.search(r"^\s*(from|import)\s+brewline\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_a_customer_cannot_refund_someone_elses_order(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    # C-1001 asks to refund Priya's order: refused as "not found", before anything is sent to the remote.
    with pytest.raises(NotFound):
        actions.refund(
            ExecutionContext(
                action="refund",
                arguments={"order_id": "BL-10061", "amount": "5.00"},
                principal=verified_customer,
                idempotency_key="someone-else-1",
            )
        )
    assert not Refund.objects.exists()


def test_subscription_executors_act_only_on_the_customers_own_subscription(brewline, verified_customer) -> None:  # type: ignore[no-untyped-def]
    def run(executor, subscription_id: str, key: str):  # type: ignore[no-untyped-def]
        return executor(
            ExecutionContext(
                action=executor.__name__,
                arguments={"subscription_id": subscription_id},
                principal=verified_customer,
                idempotency_key=key,
            )
        )

    assert run(actions.subscription_pause, "SUB-2001", "pause-1")["result"]["status"] == "paused"
    assert run(actions.subscription_resume, "SUB-2001", "resume-1")["result"]["status"] == "active"
    with pytest.raises(NotFound):  # SUB-2003 is Priya's, not Mara's
        run(actions.subscription_cancel, "SUB-2003", "cancel-1")
