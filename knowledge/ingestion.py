"""Ingest one document: parse, chunk, embed, and swap its chunks in one transaction.

The slow part (parsing and embedding) runs outside any transaction; the swap (delete the old chunks, insert the new
ones, fill their full-text vectors, mark the document ready) is one short transaction under a row lock on the
document, so a reader sees either the old chunks or the new ones, never a mix and never none. A document that fails
to parse keeps serving its previous chunks; only its status and error change.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.postgres.search import SearchVector
from django.db import models, transaction
from django.db.models import Value
from django.utils import timezone

from knowledge.chunking import ChunkDraft, chunk_sections, format_heading_path
from knowledge.embeddings import EmbeddingError, get_embedder
from knowledge.models import Chunk, Document, DocumentStatus, KnowledgeSource
from knowledge.parsers import ParseError, normalise_content_type, parse

# Full-text configuration of chunk search vectors; retrieval must query with the same one.
SEARCH_CONFIG = "english"


def content_hash(content: str | bytes) -> str:
    """Return the sha256 of the raw content (text as UTF-8)."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(raw).hexdigest()


def embedding_text(*, title: str, heading_path: str, text: str) -> str:
    """Return what is embedded for a passage: its document title and heading path give the text its context."""
    return "\n".join(part for part in (title, heading_path, text) if part)


def chunk_texts_for_embedding(chunk: Any, title: str | None = None) -> str:
    """Return the text embedded for a chunk (a ``Chunk`` row or a ``ChunkDraft``).

    ``title`` defaults to the chunk's document title (select_related("document") to avoid a query per chunk).
    """
    heading = chunk.heading_path
    if not isinstance(heading, str):
        heading = format_heading_path(heading)
    if title is None:
        title = chunk.document.title
    return embedding_text(title=title, heading_path=heading, text=chunk.text)


def search_vector_expression(title: str) -> SearchVector:
    """Return the weighted full-text vector of a chunk: title A, heading path B, text C."""
    return (
        SearchVector(Value(title, output_field=models.TextField()), weight="A", config=SEARCH_CONFIG)
        + SearchVector("heading_path", weight="B", config=SEARCH_CONFIG)
        + SearchVector("text", weight="C", config=SEARCH_CONFIG)
    )


def _document_for(*, source: KnowledgeSource, external_id: str, defaults: dict[str, Any]) -> tuple[Document, list[str]]:
    """Return the document (created if new) with its metadata updated, and the names of the fields that changed.

    ``content_type`` is only set on creation: it changes with the chunks, once the new content has been read.
    """
    document, created = Document.objects.get_or_create(source=source, external_id=external_id, defaults=defaults)
    if created:
        return document, []
    changed = [name for name, value in defaults.items() if name != "content_type" and getattr(document, name) != value]
    for name in changed:
        setattr(document, name, defaults[name])
    if changed:
        document.save(update_fields=[*changed, "updated_at"])
    return document, changed


def _mark_failed(document: Document, reason: str) -> Document:
    """Record why the document could not be (re-)ingested; its chunks, hash and type are left as they were."""
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.FAILED, error=reason[:2000], updated_at=timezone.now()
    )
    document.status = DocumentStatus.FAILED
    document.error = reason[:2000]
    return document


def document_upsert(
    *,
    source: KnowledgeSource,
    external_id: str,
    title: str,
    content: str | bytes,
    content_type: str,
    url: str = "",
    version: str = "",
    force: bool = False,
) -> Document:
    """Create or update a document and (re-)embed it unless its content is unchanged and it already serves.

    Returns the document; on failure its ``status`` is FAILED and ``error`` says why (nothing is raised), so a batch
    carries on with its other documents.
    """
    kind = normalise_content_type(content_type) or content_type[:16]
    digest = content_hash(content)
    title = (title or external_id)[:500]
    document, changed = _document_for(
        source=source,
        external_id=external_id,
        defaults={"title": title, "url": url, "version": version, "content_type": kind},
    )
    # The title is part of what is embedded (chunk_texts_for_embedding), and the type decides how the bytes are read:
    # a change of either is a re-embedding even when the bytes are the same.
    unchanged = (
        document.status == DocumentStatus.READY
        and document.content_hash == digest
        and document.content_type == kind
        and "title" not in changed
    )
    if unchanged and not force:
        return document
    try:
        drafts = chunk_sections(parse(content, kind))
        vectors = get_embedder().embed([chunk_texts_for_embedding(draft, title) for draft in drafts])
    except ParseError as exc:
        return _mark_failed(document, exc.reason)
    except EmbeddingError as exc:
        return _mark_failed(document, f"embedding failed: {exc}")
    return _replace_chunks(
        document=document, drafts=drafts, vectors=vectors, digest=digest, content_type=kind, title=title
    )


@transaction.atomic
def _replace_chunks(
    *, document: Document, drafts: list[ChunkDraft], vectors: Any, digest: str, content_type: str, title: str
) -> Document:
    document = Document.objects.select_for_update().get(pk=document.pk)
    model_id = get_embedder().model_id
    Chunk.objects.filter(document=document).delete()
    Chunk.objects.bulk_create(
        [
            Chunk(
                document=document,
                source_id=document.source_id,
                position=draft.position,
                heading_path=draft.heading,
                text=draft.text,
                token_count=draft.token_count,
                embedding=vector,
                embedding_model=model_id,
            )
            for draft, vector in zip(drafts, vectors, strict=True)
        ],
        batch_size=500,
    )
    # Title comes from the document: an UPDATE cannot reference a joined column, so it is passed as a value.
    Chunk.objects.filter(document=document).update(search_vector=search_vector_expression(title))
    document.status = DocumentStatus.READY
    document.error = ""
    document.chunk_count = len(drafts)
    document.content_hash = digest
    document.content_type = content_type
    document.ingested_at = timezone.now()
    document.save(
        update_fields=["status", "error", "chunk_count", "content_hash", "content_type", "ingested_at", "updated_at"]
    )
    return document


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete a document and its chunks (a file removed from its folder, an item gone from the helpdesk)."""
    Document.objects.filter(pk=document.pk).delete()
