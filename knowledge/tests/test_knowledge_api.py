"""Knowledge REST API: staff only; create a source, upload documents, read ingestion status, re-index, search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from fpdf import FPDF
from rest_framework.test import APIClient

from governance.models import AuditRecord
from governance.tests.factories import UserFactory
from knowledge.models import IngestionRun, KnowledgeSource, Origin, SourceStatus
from knowledge.origins import raw_storage_name
from knowledge.tests.factories import KnowledgeSourceFactory, grant_knowledge_role_permissions

pytestmark = pytest.mark.django_db

RETURNS = "# Returns\n\nUnopened grinders can be returned within 30 days of delivery for a full refund.\n"


@pytest.fixture(autouse=True)
def _setup(db, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grant_knowledge_role_permissions()
    settings.MEDIA_ROOT = str(tmp_path / "media")


def client_for(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def admin_client(support_admin) -> APIClient:  # type: ignore[no-untyped-def]
    return client_for(support_admin)


@pytest.fixture
def source(support_agent):  # type: ignore[no-untyped-def]
    from knowledge.services import _owner_permissions_sync

    source = KnowledgeSourceFactory(name="API help", owner=support_agent, origin=Origin.API)
    _owner_permissions_sync(source, previous=set())
    return source


def upload_url(source) -> str:  # type: ignore[no-untyped-def]
    return f"/api/knowledge/sources/{source.pk}/documents/"


# --- Access ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/knowledge/sources/"),
        ("post", "/api/knowledge/sources/1/documents/"),
        ("get", "/api/knowledge/sources/1/ingestion/"),
        ("post", "/api/knowledge/sources/1/reindex/"),
        ("get", "/api/knowledge/search/?q=refund"),
    ],
)
def test_anonymous_and_non_staff_users_are_refused(method: str, path: str) -> None:
    customer = UserFactory(username="casey_customer", is_staff=False)
    for user in (None, customer):
        # 403 for anonymous too: session authentication comes first, and it sends no WWW-Authenticate challenge.
        assert getattr(client_for(user), method)(path).status_code == 403, user


# --- Creating sources ------------------------------------------------------------------------------------------------


def test_an_admin_creates_a_draft_source(admin_client, support_agent) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        "/api/knowledge/sources/",
        {"name": "Grinder FAQ", "kind": "faq", "owner": support_agent.pk, "audience": "verified"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["audience"], body["origin"], body["freshness"]) == (
        "draft",
        "verified",
        "api",
        "fresh",
    )
    assert KnowledgeSource.objects.get(pk=body["id"]).owner == support_agent


def test_an_agent_may_not_create_a_source(support_agent) -> None:  # type: ignore[no-untyped-def]
    response = client_for(support_agent).post(
        "/api/knowledge/sources/", {"name": "Mine", "kind": "faq", "owner": support_agent.pk}, format="json"
    )
    assert response.status_code == 403
    assert "not allowed to create" in response.json()["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "X", "kind": "novel", "owner": 1}, "kind"),
        ({"name": "X", "kind": "faq", "owner": 999999}, "owner"),
        ({"name": "X", "kind": "faq", "owner": 1, "origin": "folder"}, "detail"),
        (
            {"name": "X", "kind": "faq", "owner": 1, "origin": "url_list", "origin_config": {"urls": ["ftp://x"]}},
            "detail",
        ),
    ],
)
def test_bad_source_input_is_a_400(admin_client, support_admin, payload: dict, field: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    payload = {**payload, "owner": support_admin.pk if payload["owner"] == 1 else payload["owner"]}
    response = admin_client.post("/api/knowledge/sources/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_duplicate_name_is_a_400(admin_client, source, support_admin) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        "/api/knowledge/sources/", {"name": source.name, "kind": "faq", "owner": support_admin.pk}, format="json"
    )
    assert response.status_code == 400
    assert "name" in response.json()


# --- Uploading documents ---------------------------------------------------------------------------------------------


def test_json_content_is_ingested_and_stored(admin_client, source, settings) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        upload_url(source),
        {"external_id": "returns", "title": "Returns", "content": RETURNS, "content_type": "markdown"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["chunk_count"], body["content_type"]) == ("ready", 1, "markdown")
    assert (Path(settings.MEDIA_ROOT) / raw_storage_name(source.pk, "returns")).read_text() == RETURNS
    record = AuditRecord.objects.get(subject_type="knowledge.document", subject_id=str(body["id"]))
    assert (record.event_type, record.decision, record.data["external_id"]) == ("config.changed", "ready", "returns")

    again = admin_client.post(
        upload_url(source), {"external_id": "returns", "title": "Returns", "content": RETURNS + "More."}, format="json"
    )
    assert again.status_code == 400  # no content type and no file name to guess it from
    replaced = admin_client.post(
        upload_url(source),
        {"external_id": "returns", "title": "Returns", "content": RETURNS + "\nMore.", "content_type": "md"},
        format="json",
    )
    assert replaced.status_code == 200


def test_a_multipart_file_is_ingested_with_its_name_as_id(source, support_agent) -> None:  # type: ignore[no-untyped-def]
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 10, "Descale the machine every three months.")
    upload = SimpleUploadedFile("manual.pdf", bytes(pdf.output()), content_type="application/pdf")

    # The owner uploads to their own source (an object permission).
    response = client_for(support_agent).post(upload_url(source), {"file": upload}, format="multipart")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["external_id"], body["title"], body["content_type"], body["status"]) == (
        "manual.pdf",
        "manual.pdf",
        "pdf",
        "ready",
    )


def test_an_outsider_may_not_upload(source, outsider) -> None:  # type: ignore[no-untyped-def]
    response = client_for(outsider).post(
        upload_url(source), {"external_id": "x", "content": "x", "content_type": "text"}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("big.md", b"a" * (10 * 1024 * 1024 + 1), "text/markdown"), "larger than 10 MB"),
        (SimpleUploadedFile("notes.docx", b"PK\x03\x04", "application/msword"), "Unknown content type"),
        (SimpleUploadedFile("latin1.txt", "café".encode("latin-1"), "text/plain"), "not valid UTF-8"),
        (SimpleUploadedFile("broken.pdf", b"%PDF-1.7 garbage", "application/pdf"), "not a readable PDF"),
    ],
)
def test_bad_files_are_a_clear_400(admin_client, source, upload, message: str) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(upload_url(source), {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert message in json.dumps(response.json())


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "either a file"),
        ({"content": "x", "content_type": "text"}, "external_id"),
        ({"external_id": "a", "content": "x", "content_type": "pdf"}, "multipart"),
        ({"external_id": "a", "content": "nul \x00 byte", "content_type": "text"}, "Null characters"),
    ],
)
def test_bad_json_uploads_are_a_clear_400(admin_client, source, payload: dict, message: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    response = admin_client.post(upload_url(source), payload, format="json")
    assert response.status_code == 400
    assert message in json.dumps(response.json())


def test_a_json_body_over_the_request_limit_is_a_400_that_says_what_to_do(admin_client, source, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    payload = {"external_id": "a", "content": "word " * 1000, "content_type": "text"}
    response = admin_client.post(upload_url(source), payload, format="json")
    assert response.status_code == 400
    assert "multipart" in response.json()["detail"]


def test_malformed_json_is_a_400(admin_client, source) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(upload_url(source), b'{"external_id": ', content_type="application/json")
    assert response.status_code == 400


def test_a_folder_source_takes_no_uploads(admin_client) -> None:  # type: ignore[no-untyped-def]
    folder = KnowledgeSourceFactory(name="Folder", origin=Origin.FOLDER, origin_config={"path": "/srv/help"})
    response = admin_client.post(
        upload_url(folder), {"external_id": "a", "content": "x", "content_type": "text"}, format="json"
    )
    assert response.status_code == 400
    assert "only be uploaded to upload or API sources" in response.json()["detail"]


def test_an_unknown_source_is_a_404(admin_client) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.post(
        "/api/knowledge/sources/999999/documents/", {"external_id": "a", "content": "x"}, format="json"
    )
    assert response.status_code == 404


# --- Status and re-indexing ------------------------------------------------------------------------------------------


def test_ingestion_status_shows_documents_and_runs(admin_client, source, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    admin_client.post(
        upload_url(source), {"external_id": "r", "content": RETURNS, "content_type": "markdown"}, format="json"
    )
    admin_client.post(upload_url(source), {"file": SimpleUploadedFile("b.pdf", b"%PDF-1 no")}, format="multipart")
    with django_capture_on_commit_callbacks(execute=False):
        queued = admin_client.post(f"/api/knowledge/sources/{source.pk}/reindex/")
    assert queued.status_code == 202
    with django_capture_on_commit_callbacks(execute=False):
        again = admin_client.post(f"/api/knowledge/sources/{source.pk}/reindex/")
    assert again.status_code == 409

    response = admin_client.get(f"/api/knowledge/sources/{source.pk}/ingestion/")

    assert response.status_code == 200
    body = response.json()
    assert body["documents"] == {"pending": 0, "ready": 1, "failed": 1}
    assert body["chunks"] == 1
    assert [run["status"] for run in body["runs"]] == [IngestionRun.Status.QUEUED]
    assert body["source"]["id"] == source.pk


# --- Search ----------------------------------------------------------------------------------------------------------


def test_search_returns_hits_with_citations(admin_client, source) -> None:  # type: ignore[no-untyped-def]
    assert source.status == SourceStatus.APPROVED
    admin_client.post(
        upload_url(source), {"external_id": "r", "title": "Returns", "content": RETURNS, "content_type": "md"}
    )

    response = admin_client.get("/api/knowledge/search/", {"q": "can I return my grinder for a refund", "k": 3})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["hits"], body
    hit = body["hits"][0]
    assert "30 days" in hit["text"]
    assert hit["citation"]["source"] == source.name and hit["citation"]["document_title"] == "Returns"
    assert isinstance(body["failed"], bool)


@pytest.mark.parametrize("query", [{}, {"q": "x", "audience": "everyone"}, {"q": "x", "k": 0}])
def test_bad_search_input_is_a_400(admin_client, query: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    assert admin_client.get("/api/knowledge/search/", query).status_code == 400


# --- Schema ----------------------------------------------------------------------------------------------------------


def test_the_schema_documents_the_endpoints(admin_client) -> None:  # type: ignore[no-untyped-def]
    response = admin_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert {
        "/api/knowledge/sources/",
        "/api/knowledge/sources/{source_id}/documents/",
        "/api/knowledge/sources/{source_id}/ingestion/",
        "/api/knowledge/sources/{source_id}/reindex/",
        "/api/knowledge/search/",
    } <= set(paths)
    upload = paths["/api/knowledge/sources/{source_id}/documents/"]["post"]
    assert {"multipart/form-data", "application/json"} <= set(upload["requestBody"]["content"])
