"""The admin search playground: what the agent would retrieve, for staff who may read chunks, and no one else."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import include, path, reverse

from config.urls import urlpatterns as project_urlpatterns
from governance.tests.factories import UserFactory
from knowledge.ingestion import document_upsert
from knowledge.models import Audience, FailedRetrieval
from knowledge.tests.factories import KnowledgeSourceFactory

# The line config/urls.py needs, before the admin's own URLs (see knowledge/urls_admin.py).
urlpatterns = [path("admin/knowledge/playground/", include("knowledge.urls_admin")), *project_urlpatterns]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

SHIPPING = "# Shipping times\n\nOrders ship from our Rotterdam warehouse within one working day."
OVERRIDES = "# Refund overrides\n\nAgents may approve refunds outside the window up to 50 euros."


@pytest.fixture
def knowledge_base() -> None:
    public = KnowledgeSourceFactory(name="Help centre", audience=Audience.PUBLIC)
    internal = KnowledgeSourceFactory(name="Staff handbook", audience=Audience.INTERNAL)
    for source, key, title, content in (
        (public, "shipping", "Shipping times", SHIPPING),
        (internal, "overrides", "Refund overrides", OVERRIDES),
    ):
        document_upsert(source=source, external_id=key, title=title, content=content, content_type="markdown")


@pytest.fixture
def chunk_reader():  # type: ignore[no-untyped-def]
    user = UserFactory(username="rita_reader")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="knowledge", codename="view_chunk"))
    return user


def url(**params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("knowledge_playground") + (f"?{query}" if query else "")


def test_it_shows_a_reader_what_the_agent_would_retrieve_with_scores_citations_and_timings(
    client, chunk_reader, knowledge_base
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(chunk_reader)

    response = client.get(url(q="when+does+my+order+ship", audience="public", method="hybrid", k="5"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Shipping times" in page and "Help centre" in page
    assert "Rotterdam warehouse" in page
    assert "embed" in page and "total" in page and " ms" in page
    result = response.context["result"]
    assert result.hits[0].citation["document_title"] == "Shipping times"
    assert not FailedRetrieval.objects.exists()  # playground searches are never recorded


def test_the_audience_picked_applies_exactly_as_for_the_agent(client, chunk_reader, knowledge_base) -> None:  # type: ignore[no-untyped-def]
    client.force_login(chunk_reader)

    public = client.get(url(q="approve+refunds+outside+the+window", audience="public", method="fulltext", k="5"))
    internal = client.get(url(q="approve+refunds+outside+the+window", audience="internal", method="fulltext", k="5"))

    assert "Refund overrides" not in public.content.decode()
    assert internal.context["result"].hits[0].citation["document_title"] == "Refund overrides"


def test_an_empty_form_renders_without_searching(client, chunk_reader) -> None:  # type: ignore[no-untyped-def]
    client.force_login(chunk_reader)

    response = client.get(url())

    assert response.status_code == 200
    assert response.context["result"] is None


def test_a_superuser_may_use_it(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(username="root_user", is_superuser=True))

    assert client.get(url(q="shipping", audience="public", method="dense", k="3")).status_code == 200


def test_it_refuses_staff_without_the_chunk_permission(client, outsider) -> None:  # type: ignore[no-untyped-def]
    client.force_login(outsider)

    assert client.get(url(q="shipping", audience="public", method="hybrid", k="5")).status_code == 403


def test_it_sends_a_visitor_who_is_not_staff_to_the_admin_login(client) -> None:  # type: ignore[no-untyped-def]
    reader = UserFactory(username="not_staff", is_staff=False)
    reader.user_permissions.add(Permission.objects.get(content_type__app_label="knowledge", codename="view_chunk"))
    client.force_login(reader)

    response = client.get(url(q="shipping"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_it_sends_an_anonymous_visitor_to_the_admin_login(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(url(q="shipping"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
