"""Bad input on the QA pages and the suites' admin views is answered with a page or a clear refusal, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

HUGE = "9" * 30  # past PostgreSQL's bigint: a lookup must not reach the database with it


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", f"/qa/?rule={HUGE}&status=nonsense", {}),
        ("get", f"/qa/items/{HUGE}/", {}),
        ("post", f"/qa/items/{HUGE}/review/", {"label-resolved": "maybe"}),
        ("post", f"/qa/items/{HUGE}/settle/", {"review": HUGE}),
        ("get", f"/qa/reviews/{HUGE}/fix-request/", {}),
        ("post", f"/qa/reviews/{HUGE}/regression-case/", {"suite": "x"}),
        ("post", "/qa/flag/00000000-0000-0000-0000-000000000000/", {"note": "x" * 10_000}),
        ("get", f"/admin/suites/regressionsuite/{HUGE}/export/", {}),
        ("post", f"/admin/suites/regressionsuite/{HUGE}/run/", {}),
        ("post", f"/admin/suites/regressionsuite/{HUGE}/import/", {}),
        ("get", f"/admin/suites/suiterun/{HUGE}/progress/", {}),
    ],
)
def test_bad_ids_and_values_are_answered_without_a_server_error(support_manager, method: str, url: str, data) -> None:  # type: ignore[no-untyped-def]
    response = getattr(_client(support_manager), method)(url, data)
    assert response.status_code < 500, (url, response.status_code)
