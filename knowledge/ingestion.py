"""Ingest documents: parse, chunk, embed, and swap each document's chunks in one transaction.

The slow part (parsing and embedding) runs outside any transaction; the swap (delete the old chunks, insert the new
ones with their full-text vectors, mark the document ready) is one short transaction under a row lock on the
document, so a reader sees either the old chunks or the new ones, never a mix and never none. A document that fails
to parse or to embed keeps serving its previous chunks; only its status and error change.

One document: ``document_upsert``. Many (an ingestion run): ``document_prepare`` each, then ``documents_write`` a
batch of them: their chunks are embedded in one call, which is what keeps ingestion near the model's own speed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
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


def search_vector_expression(*, title: str, heading_path: str, text: str) -> SearchVector:
    """Return the weighted full-text vector of a chunk: title A, heading path B, text C.

    Of values rather than columns, so that it is computed in the chunk's INSERT.
    """
    return (
        SearchVector(Value(title, output_field=models.TextField()), weight="A", config=SEARCH_CONFIG)
        + SearchVector(Value(heading_path, output_field=models.TextField()), weight="B", config=SEARCH_CONFIG)
        + SearchVector(Value(text, output_field=models.TextField()), weight="C", config=SEARCH_CONFIG)
    )


def _document_for(*, source: KnowledgeSource, external_id: str, defaults: dict[str, Any]) -> tuple[Document, list[str]]:
    """Return the document (created if new) with its metadata updated, and the names of the fields that changed.

    ``content_type`` is only set on creation: it changes with the chunks, once the new content has been read. A new
    title is only set on the instance: it is saved with the chunks embedded with it (or with the failure), so that a
    run stopped in between (its time limit) leaves the old title, and the next run sees the change again.
    """
    document, created = Document.objects.get_or_create(source=source, external_id=external_id, defaults=defaults)
    if created:
        return document, []
    changed = [name for name, value in defaults.items() if name != "content_type" and getattr(document, name) != value]
    for name in changed:
        setattr(document, name, defaults[name])
    if set(changed) - {"title"}:
        document.save(update_fields=[name for name in changed if name != "title"] + ["updated_at"])
    return document, changed


def _mark_failed(document: Document, reason: str) -> Document:
    """Record why the document could not be (re-)ingested; its chunks, hash and type are left as they were."""
    document.status = DocumentStatus.FAILED
    document.error = reason[:2000]
    document.save(update_fields=["title", "status", "error", "updated_at"])
    return document


@dataclass
class PreparedDocument:
    """A document whose new content is parsed and chunked, waiting for its embeddings."""

    document: Document
    drafts: list[ChunkDraft]
    digest: str
    content_type: str
    title: str

    def texts(self) -> list[str]:
        return [chunk_texts_for_embedding(draft, self.title) for draft in self.drafts]


def document_prepare(
    *,
    source: KnowledgeSource,
    external_id: str,
    title: str,
    content: str | bytes,
    content_type: str,
    url: str = "",
    version: str = "",
    force: bool = False,
) -> Document | PreparedDocument:
    """Create or update a document's row and parse and chunk its content, unless it is unchanged and serving.

    Returns the document itself when there is nothing to embed: its content is unchanged (it keeps serving), or it
    cannot be read (it is FAILED with the reason, and its previous chunks keep serving). Otherwise the prepared
    document, for ``documents_write``.
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
    except ParseError as exc:
        return _mark_failed(document, exc.reason)
    return PreparedDocument(document=document, drafts=drafts, digest=digest, content_type=kind, title=title)


def documents_write(prepared: list[PreparedDocument]) -> Iterator[Document]:
    """Embed the chunks of all the prepared documents together, then swap each one's chunks in its own transaction.

    Yields each document once written: READY, or FAILED if its embedding failed (its previous chunks keep serving).
    One call for many documents lets the embedder fill its batches with texts of similar lengths; a failure of that
    call is narrowed down to the documents that fail alone.
    """
    for item, vectors in zip(prepared, _embed(prepared), strict=True):
        if isinstance(vectors, str):
            yield _mark_failed(item.document, vectors)
        else:
            yield document_chunks_replace(prepared=item, vectors=vectors)


def _embed(prepared: list[PreparedDocument]) -> list[np.ndarray | str]:
    """Return each document's chunk vectors, or why embedding them failed."""
    texts = [text for item in prepared for text in item.texts()]
    if not texts:
        return [np.zeros((0, get_embedder().dimensions), dtype=np.float32) for _ in prepared]
    try:
        matrix = get_embedder().embed(texts)
    except EmbeddingError as exc:
        if len(prepared) == 1:
            return [f"embedding failed: {exc}"]
        # Each document alone, as if it had been ingested by itself: only the ones that fail that way are failed.
        return [_embed([item])[0] for item in prepared]
    return np.split(matrix, np.cumsum([len(item.drafts) for item in prepared])[:-1])


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
    carries on with its other documents. An ingestion run prepares many documents and embeds them together instead.
    """
    prepared = document_prepare(
        source=source,
        external_id=external_id,
        title=title,
        content=content,
        content_type=content_type,
        url=url,
        version=version,
        force=force,
    )
    if isinstance(prepared, Document):
        return prepared
    (document,) = documents_write([prepared])
    return document


@transaction.atomic
def document_chunks_replace(*, prepared: PreparedDocument, vectors: np.ndarray) -> Document:
    """Swap the document's chunks for the prepared ones, with their full-text vectors, and mark it READY."""
    document = Document.objects.select_for_update().get(pk=prepared.document.pk)
    document.title = prepared.title
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
                # Computed in the INSERT: an UPDATE afterwards would write every row twice, and each new row
                # version goes into the HNSW and GIN indexes again.
                search_vector=search_vector_expression(
                    title=prepared.title, heading_path=draft.heading, text=draft.text
                ),
            )
            for draft, vector in zip(prepared.drafts, vectors, strict=True)
        ],
        batch_size=500,
    )
    document.status = DocumentStatus.READY
    document.error = ""
    document.chunk_count = len(prepared.drafts)
    document.content_hash = prepared.digest
    document.content_type = prepared.content_type
    document.ingested_at = timezone.now()
    fields = ["title", "status", "error", "chunk_count", "content_hash", "content_type", "ingested_at", "updated_at"]
    document.save(update_fields=fields)
    return document


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete a document and its chunks (a file removed from its folder, an item gone from the helpdesk)."""
    Document.objects.filter(pk=document.pk).delete()
