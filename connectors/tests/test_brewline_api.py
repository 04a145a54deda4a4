"""Brewline's API, the demo company's in-house system: token authentication, every endpoint, idempotent writes and
refunds, conflicts with the record's state, and bad input answered with 400/422, never a 500."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from brewline.demo import seed_brewline
from brewline.models import ApiToken, Customer, CustomerNote, FollowUpTask, Order, OrderItem, Refund, Subscription

TOKEN = "brewline-test-token-0123456789"
API = "/brewline-api/v1"


def _client(token: str | None = TOKEN) -> APIClient:
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def api(db) -> APIClient:  # type: ignore[no-untyped-def]
    seed_brewline(TOKEN, customers=12, orders=40)
    return _client()


# --- Authentication --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Token not-a-token", "Bearer " + TOKEN, "Token", "Token a b"],
    ids=["none", "unknown token", "other scheme", "no token", "two tokens"],
)
def test_a_request_without_a_valid_token_is_refused_with_401(api: APIClient, authorization: str | None) -> None:
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get(f"{API}/customers/C-1001")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token realm="brewline"'
    assert "name" not in response.json()


def test_a_revoked_token_is_refused_with_401(api: APIClient) -> None:
    ApiToken.objects.filter(token_hash=ApiToken.hash_token(TOKEN)).update(revoked=True)
    response = api.get(f"{API}/health")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_only_the_hash_of_a_token_is_stored(api: APIClient) -> None:
    token = ApiToken.objects.get()
    assert TOKEN not in token.token_hash and len(token.token_hash) == 64


def test_the_health_endpoint_answers_a_valid_token(api: APIClient) -> None:
    response = api.get(f"{API}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "system": "brewline", "version": "v1"}


# --- Customers -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["email=Mara.Lindqvist@Example.com", "phone=%2B44 7700-900101", "external_id=C-1001"],
    ids=["email, any case", "phone, spaced", "external id"],
)
def test_a_customer_is_found_by_email_phone_or_external_id(api: APIClient, query: str) -> None:
    response = api.get(f"{API}/customers?{query}")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"id": "C-1001", "name": "Mara Lindqvist", "email": "mara.lindqvist@example.com", "phone": "+447700900101"}
    ]


def test_a_search_without_criteria_is_refused_not_a_listing_of_everyone(api: APIClient) -> None:
    assert api.get(f"{API}/customers").status_code == 400
    assert api.get(f"{API}/customers?email=nobody@example.com").json() == {"results": [], "count": 0}


def test_a_customer_reads_with_address_history_and_card_on_file(api: APIClient) -> None:
    customer = api.get(f"{API}/customers/C-1001").json()
    assert customer["tier"] == "vip" and customer["region"] == "UK"
    assert customer["shipping_address"]["formatted"] == "14 Kiln Lane, Leeds, LS1 4AP, GB"
    assert customer["support_history"][0]["channel"] == "chat"
    assert customer["payment_method"] == {"brand": "visa", "last4": "4242"}
    assert Decimal(customer["lifetime_value"]) > 0


def test_an_unknown_customer_is_a_json_404(api: APIClient) -> None:
    response = api.get(f"{API}/customers/C-9999")
    assert response.status_code == 404
    assert response.json() == {"detail": "No customer C-9999.", "code": "not_found"}


def test_a_patch_changes_the_tier_and_the_address_given_as_one_line(api: APIClient) -> None:
    response = api.patch(
        f"{API}/customers/C-1001",
        {"tier": "plus", "shipping_address": "7 Roastery Row, Flat 2, York, YO1 7HH, gb"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["tier"] == "plus"
    assert response.json()["shipping_address"] == {
        "line1": "7 Roastery Row",
        "line2": "Flat 2",
        "city": "York",
        "postcode": "YO1 7HH",
        "country": "GB",
        "formatted": "7 Roastery Row, Flat 2, York, YO1 7HH, GB",
    }
    assert Customer.objects.get(external_id="C-1001").ship_city == "York"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": "gold"}, "tier"),
        ({"lifetime_value": "0"}, "lifetime_value"),
        ({"shipping_address": "just a street"}, "shipping_address"),
        ({"shipping_address": {"line1": "1 A St", "city": "York"}}, "shipping_address"),
        ({"shipping_address": "1 A St, York, YO1, GBR"}, "shipping_address"),
        ({"email": "not-an-email"}, "email"),
        ({}, "non_field_errors"),
    ],
)
def test_a_patch_with_bad_fields_is_a_400_naming_them(api: APIClient, body: dict, field: str) -> None:
    response = api.patch(f"{API}/customers/C-1001", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_note_a_tag_and_a_follow_up_task_are_added(api: APIClient) -> None:
    note = api.post(f"{API}/customers/C-1002/notes", {"text": "Asked about decaf."}, format="json")
    assert note.status_code == 201 and note.json()["id"].startswith("N-")
    for _ in range(2):  # a tag is added once
        tags = api.post(f"{API}/customers/C-1002/tags", {"tag": "vip-prospect"}, format="json")
        assert tags.status_code == 200
    assert tags.json()["tags"].count("vip-prospect") == 1
    task = api.post(
        f"{API}/customers/C-1002/tasks", {"title": "Call back", "due_at": "2030-01-02T09:00:00Z"}, format="json"
    )
    assert task.status_code == 201 and task.json()["due_at"].startswith("2030-01-02T09:00")
    assert CustomerNote.objects.count() == 1 and FollowUpTask.objects.count() == 1


def test_a_customers_orders_list_newest_first(api: APIClient) -> None:
    body = api.get(f"{API}/customers/C-1001/orders?limit=2").json()
    assert body["count"] == 3
    assert [order["id"] for order in body["results"]] == ["BL-10043", "BL-10042"]
    assert body["results"][1]["shipping"] == {
        "status": "in_transit",
        "tracking_number": body["results"][1]["shipping"]["tracking_number"],
    }
    assert api.get(f"{API}/customers/C-1001/orders?limit=0").status_code == 400


# --- Orders ----------------------------------------------------------------------------------------------------------


def test_an_order_reads_with_items_totals_and_tracking(api: APIClient) -> None:
    order = api.get(f"{API}/orders/BL-10042").json()
    assert order["customer_id"] == "C-1001" and order["status"] == "shipped"
    assert [item["sku"] for item in order["items"]] == ["BL-ETH-250", "BL-MUG-01"]
    assert order["totals"] == {
        "subtotal": "39.00",
        "shipping": "4.50",
        "total": "43.50",
        "refunded": "0.00",
        "refundable": "43.50",
    }
    assert order["shipping"]["status"] == "in_transit" and order["shipping"]["carrier"] == "Royal Mail"
    assert order["shipping"]["tracking_number"] in order["shipping"]["tracking_url"]


def test_an_unshipped_order_can_be_sent_elsewhere(api: APIClient) -> None:
    address = {"line1": "1 New Street", "city": "Leeds", "postcode": "LS2 8AA", "country": "gb"}
    response = api.post(f"{API}/orders/BL-10043/address", address, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["shipping"]["address"]["formatted"] == "1 New Street, Leeds, LS2 8AA, GB"


def test_a_shipped_order_cannot_change_address_409(api: APIClient) -> None:
    address = {"line1": "1 New Street", "city": "Leeds", "postcode": "LS2 8AA", "country": "GB"}
    response = api.post(f"{API}/orders/BL-10042/address", address, format="json")
    assert response.status_code == 409
    assert "already shipped" in response.json()["detail"]
    assert Order.objects.get(number="BL-10042").ship_line1 == "14 Kiln Lane"


# --- Subscriptions ---------------------------------------------------------------------------------------------------


def test_a_subscription_pauses_resumes_and_cancels(api: APIClient) -> None:
    assert api.get(f"{API}/subscriptions/SUB-2001").json()["status"] == "active"
    paused = api.post(f"{API}/subscriptions/SUB-2001/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused" and paused.json()["paused_at"]
    assert api.post(f"{API}/subscriptions/SUB-2001/pause").json()["status"] == "paused"  # again: no change
    resumed = api.patch(f"{API}/subscriptions/SUB-2001", {"status": "active"}, format="json")
    assert resumed.json()["status"] == "active" and resumed.json()["next_charge_date"]
    cancelled = api.post(f"{API}/subscriptions/SUB-2001/cancel")
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["next_charge_date"] is None
    assert api.post(f"{API}/subscriptions/SUB-2001/resume").status_code == 409


def test_a_subscription_status_must_be_a_known_one(api: APIClient) -> None:
    response = api.patch(f"{API}/subscriptions/SUB-2001", {"status": "frozen"}, format="json")
    assert response.status_code == 400 and "status" in response.json()


# --- Refunds ---------------------------------------------------------------------------------------------------------


def _refund(client: APIClient, key: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/refunds", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_refunds_go_up_to_the_refundable_remainder_and_no_further(api: APIClient) -> None:
    first = _refund(api, "k1", order_id="BL-10061", amount="10.00", reason="damaged")
    assert first.status_code == 201
    assert first.json()["amount"] == "10.00" and first.json()["id"].startswith("RF-")
    too_much = _refund(api, "k2", order_id="BL-10061", amount="999.00")
    assert too_much.status_code == 422 and "left to refund" in too_much.json()["detail"]
    rest = _refund(api, "k3", order_id="BL-10061")  # no amount: the whole remainder
    order = api.get(f"{API}/orders/BL-10061").json()
    assert Decimal(rest.json()["amount"]) == Decimal(order["totals"]["total"]) - 10
    assert order["totals"]["refundable"] == "0.00"
    assert _refund(api, "k4", order_id="BL-10061", amount="1.00").status_code == 422


def test_a_repeated_refund_with_the_same_key_returns_the_first_refund(api: APIClient) -> None:
    first = _refund(api, "same-key", order_id="BL-10061", amount="5.00")
    again = _refund(api, "same-key", order_id="BL-10061", amount="7.00")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Refund.objects.count() == 1


def test_a_refund_key_used_for_another_order_is_refused(api: APIClient) -> None:
    assert _refund(api, "key-x", order_id="BL-10061", amount="5.00").status_code == 201
    assert _refund(api, "key-x", order_id="BL-10041", amount="5.00").status_code == 422


def test_a_refund_of_an_unknown_order_is_404(api: APIClient) -> None:
    assert _refund(api, "k", order_id="BL-1", amount="5.00").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_with_one_key_refund_once() -> None:
    seed_brewline(TOKEN, customers=6, orders=20)
    answers: list[int] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        try:
            barrier.wait()
            answers.append(_refund(_client(), "one-key", order_id="BL-10061", amount="5.00").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 200, 200, 201]
    assert Refund.objects.count() == 1


# --- Idempotent writes -----------------------------------------------------------------------------------------------


def test_a_write_repeated_with_its_key_is_answered_once(api: APIClient) -> None:
    url = f"{API}/customers/C-1003/notes"
    first = api.post(url, {"text": "Called about BL-10061."}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    again = api.post(url, {"text": "Called about BL-10061."}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert CustomerNote.objects.count() == 1
    other = api.post(url, {"text": "Something else."}, format="json", HTTP_IDEMPOTENCY_KEY="note-1")
    assert other.status_code == 422 and "different request" in other.json()["detail"]


def test_a_failed_write_keeps_no_key_so_a_corrected_retry_runs(api: APIClient) -> None:
    url = f"{API}/orders/BL-10043/address"
    bad = api.post(url, {"line1": "1 New Street"}, format="json", HTTP_IDEMPOTENCY_KEY="addr-1")
    assert bad.status_code == 400
    good = {"line1": "1 New Street", "city": "Leeds", "postcode": "LS2 8AA", "country": "GB"}
    assert api.post(url, good, format="json", HTTP_IDEMPOTENCY_KEY="addr-2").status_code == 200
    assert api.post(f"{API}/subscriptions/SUB-2004/resume", HTTP_IDEMPOTENCY_KEY="r-1").status_code == 409
    assert api.post(f"{API}/subscriptions/SUB-2003/pause", HTTP_IDEMPOTENCY_KEY="r-1").status_code == 200


# --- Bad input -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "expected"),
    [
        ("post", "/refunds", b"{not json", "application/json", 400),
        ("post", "/refunds", b"[1, 2]", "application/json", 400),
        ("post", "/refunds", b'{"order_id": "BL-10061", "amount": "-5"}', "application/json", 400),
        ("post", "/refunds", b'{"order_id": "BL-10061", "amount": "1e400"}', "application/json", 400),
        ("post", "/refunds", b'{"order_id": "BL-10061", "amount": "abc"}', "application/json", 400),
        ("post", "/refunds", b'{"order_id": "BL-10061", "amount": 5, "extra": 1}', "application/json", 400),
        ("post", "/refunds", b'{"order_id": "BL-\\u0000", "amount": 5}', "application/json", 400),
        ("post", "/refunds", b"order_id=BL-10061", "application/x-www-form-urlencoded", 415),
        ("patch", "/customers/C-1001", b'{"plan": "a\\u0000b"}', "application/json", 400),
        ("patch", "/customers/C-1001", b'{"shipping_address": 42}', "application/json", 400),
        ("post", "/customers/C-1001/notes", b'{"text": ""}', "application/json", 400),
        ("post", "/customers/C-1001/tags", b'{"tag": "<script>"}', "application/json", 400),
        ("post", "/customers/C-1001/tasks", b'{"title": "x", "due_at": "tomorrow"}', "application/json", 400),
        ("get", "/customers/C-1001%00", b"", "application/json", 404),
        ("get", "/orders/..%2F..%2Fadmin", b"", "application/json", 404),
        ("get", "/customers?email=%00", b"", "application/json", 400),
        ("delete", "/customers/C-1001", b"", "application/json", 405),
    ],
)
def test_bad_input_is_a_clear_4xx_never_a_500(
    api: APIClient, method: str, path: str, body: bytes, content_type: str, expected: int
) -> None:
    response = getattr(api, method)(API + path, data=body, content_type=content_type)
    assert response.status_code == expected


def test_an_overlong_idempotency_key_is_a_400(api: APIClient) -> None:
    response = api.post(f"{API}/customers/C-1001/notes", {"text": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 400


# --- Seed ------------------------------------------------------------------------------------------------------------


def _counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (ApiToken, Customer, Order, OrderItem, Subscription))


@pytest.mark.django_db
def test_the_demo_data_seeds_deterministically_and_once() -> None:
    made = seed_brewline(TOKEN)
    assert made == {"api tokens": 1, "customers": 300, "orders": 3000, "order items": made["order items"],
                    "subscriptions": made["subscriptions"]}  # fmt: skip
    first = _counts()
    assert seed_brewline(TOKEN) == dict.fromkeys(made, 0)
    assert _counts() == first
    states = dict(Order.objects.filter(number__lt="BL-10100").values_list("number", "shipping_status"))
    assert states == {
        "BL-10041": "delivered",
        "BL-10042": "in_transit",
        "BL-10043": "not_shipped",
        "BL-10051": "delayed",
        "BL-10052": "delivered",
        "BL-10061": "delivered",
        "BL-10062": "in_transit",
        "BL-10071": "not_shipped",
        "BL-10072": "not_shipped",
        "BL-10081": "not_shipped",
    }
    # The same random draws every time: the hundredth generated order is always the same one.
    sample = Order.objects.get(number="BL-10199")
    assert (sample.customer.external_id, sample.total) == ("C-1064", Decimal("62.00"))
