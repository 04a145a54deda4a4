"""Measure retrieval on a public dataset: full text, dense and hybrid side by side, in one run.

    python manage.py eval_retrieval --corpus DIR --queries FILE.jsonl [--k 10] [--json OUT] [--methods ...]

The corpus (``*.json`` files ``{"id", "title", "content"}``) is ingested with ``document_upsert`` into a throw-away
source created for the run (approved, internal audience, fresh: no serving rule filters it out) and deleted at the
end, whatever happens; the other sources' rows are never read or written, as every search is restricted to it
(``search(..., source_ids=[it])``). Each query line is ``{"query", "relevant": [document ids]}`` (other keys are
ignored, blank lines skipped). Recall is per document: a chunk found counts for its document, and recall@k is the
share of a query's relevant documents among the first k documents, averaged over queries; MRR is over the first
``--k`` documents. Latency is the wall time of ``search`` (query embedding included), methods interleaved query by
query so that a busy machine slows them alike. Run it on a development or staging database: while it runs, the
throw-away source is visible to internal searches there.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.models import Audience, Document, DocumentStatus, KnowledgeSource, SourceKind, SourceStatus
from knowledge.retrieval import METHODS, search

RECALL_AT = (1, 5, 10)
WARM_UP_QUERIES = 3


@dataclass(frozen=True)
class EvalQuery:
    line: int
    query: str
    relevant: frozenset[str]


@dataclass
class Ingested:
    source: KnowledgeSource
    external_ids: dict[int, str]  # document pk -> corpus id
    documents: int
    failed: list[str]
    chunks: int
    seconds: float


def load_queries(path: Path) -> list[EvalQuery]:
    """Read the JSONL query file; a malformed line is an error naming its number."""
    queries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CommandError(f"cannot read the queries file {path}: {exc.strerror}") from None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CommandError(f'{path} line {number}: expected an object with "query" and "relevant"')
        query, relevant = record.get("query"), record.get("relevant")
        if not isinstance(query, str) or not query.strip():
            raise CommandError(f'{path} line {number}: "query" must be a non-empty string')
        if not isinstance(relevant, list) or not relevant or not all(isinstance(r, str) for r in relevant):
            raise CommandError(f'{path} line {number}: "relevant" must be a non-empty list of document ids')
        queries.append(EvalQuery(line=number, query=query, relevant=frozenset(relevant)))
    if not queries:
        raise CommandError(f"{path} has no queries")
    return queries


def load_corpus(directory: Path) -> list[dict[str, str]]:
    """Read every ``*.json`` document of the corpus directory, sorted by file name."""
    if not directory.is_dir():
        raise CommandError(f"the corpus {directory} is not a directory")
    documents = []
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"cannot read the corpus document {path}: {exc}") from None
        if not isinstance(record, dict) or not all(
            isinstance(record.get(key), str) for key in ("id", "title", "content")
        ):
            raise CommandError(f'{path}: expected an object with string "id", "title" and "content"')
        documents.append({key: record[key] for key in ("id", "title", "content")})
    if not documents:
        raise CommandError(f"the corpus {directory} has no *.json documents")
    return documents


@contextmanager
def throwaway_source(label: str = "eval-retrieval", **fields: Any) -> Iterator[KnowledgeSource]:
    """Create an approved, internal, fresh source (and an inactive owner) for one run; delete both at the end.

    Not through the governed source services on purpose: nothing in it ever answers a customer, it lives for the
    length of a benchmark, and an audit record per run would only be noise.
    """
    name = f"{label}-{uuid.uuid4().hex[:12]}"
    owner = get_user_model().objects.create(username=name, is_active=False)
    source = KnowledgeSource(
        name=name,
        kind=SourceKind.FAQ,
        owner=owner,
        audience=Audience.INTERNAL,
        status=SourceStatus.APPROVED,
        last_reviewed_on=date.today(),
        **fields,  # e.g. a folder origin for the ingestion benchmark
    )
    source.compute_review_dates()
    source.save()
    try:
        yield source
    finally:
        KnowledgeSource.objects.filter(pk=source.pk).delete()  # documents and chunks cascade
        get_user_model().objects.filter(pk=owner.pk).delete()


def ingest(source: KnowledgeSource, documents: list[dict[str, str]]) -> Ingested:
    """Ingest the corpus into ``source`` with the production ingestion path."""
    from knowledge.ingestion import document_upsert

    started = time.perf_counter()
    failed = []
    for document in documents:
        result = document_upsert(
            source=source,
            external_id=document["id"],
            title=document["title"],
            content=document["content"],
            content_type="markdown",
        )
        if result.status != DocumentStatus.READY:
            failed.append(f"{document['id']}: {result.error}")
    seconds = time.perf_counter() - started
    rows = Document.objects.filter(source=source).values_list("pk", "external_id", "chunk_count")
    return Ingested(
        source=source,
        external_ids={pk: external_id for pk, external_id, _ in rows},
        documents=len(rows),
        failed=failed,
        chunks=sum(count for _, _, count in rows),
        seconds=seconds,
    )


def evaluate(
    queries: list[EvalQuery], ingested: Ingested, *, methods: list[str], k: int
) -> dict[str, dict[str, float | int]]:
    """Run every query with every method (interleaved) and return the metrics per method."""
    depth = max(k, *RECALL_AT)
    ranked: dict[str, list[list[str]]] = {method: [] for method in methods}
    latencies: dict[str, list[float]] = {method: [] for method in methods}
    for query in queries[:WARM_UP_QUERIES]:  # load the model, warm the index pages
        for method in methods:
            _search(query.query, ingested, method, depth)
    for position, query in enumerate(queries):
        order = methods[position % len(methods) :] + methods[: position % len(methods)]
        for method in order:
            started = time.perf_counter()
            documents = _search(query.query, ingested, method, depth)
            latencies[method].append((time.perf_counter() - started) * 1000.0)
            ranked[method].append(documents)
    return {method: metrics(queries, ranked[method], latencies[method], k=k) for method in methods}


def _search(query: str, ingested: Ingested, method: str, depth: int) -> list[str]:
    result = search(
        query,
        audience=Audience.INTERNAL,
        k=depth,
        method=method,
        record_failure=False,
        source_ids=[ingested.source.pk],
    )
    return [ingested.external_ids[hit.document_id] for hit in result.hits]


def metrics(
    queries: list[EvalQuery], ranked: list[list[str]], latencies: list[float], *, k: int
) -> dict[str, float | int]:
    """Return recall@1/5/10 (and @k), MRR within the first k documents and latency percentiles."""
    out: dict[str, float | int] = {}
    for cutoff in sorted({*RECALL_AT, k}):
        out[f"recall@{cutoff}"] = statistics.fmean(
            len(q.relevant.intersection(r[:cutoff])) / len(q.relevant) for q, r in zip(queries, ranked, strict=True)
        )
    out["mrr"] = statistics.fmean(_reciprocal_rank(q.relevant, r[:k]) for q, r in zip(queries, ranked, strict=True))
    out["p50_ms"] = percentile(latencies, 50)
    out["p95_ms"] = percentile(latencies, 95)
    out["queries"] = len(queries)
    return out


def _reciprocal_rank(relevant: frozenset[str], documents: list[str]) -> float:
    for position, document in enumerate(documents, start=1):
        if document in relevant:
            return 1.0 / position
    return 0.0


def percentile(values: list[float], pct: float) -> float:
    """Return the pct-th percentile, linearly interpolated (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * pct / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Command(BaseCommand):
    help = "Measure full-text, dense and hybrid retrieval on a corpus directory and a JSONL query file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--corpus", type=Path, required=True, help='directory of {"id","title","content"} files')
        parser.add_argument("--queries", type=Path, required=True, help='JSONL: {"query","relevant":[ids]} per line')
        parser.add_argument("--k", type=int, default=10, help="documents retrieved per query (MRR cut-off)")
        parser.add_argument("--json", type=Path, help="also write the figures to this file")
        parser.add_argument("--methods", default=",".join(("fulltext", "dense", "hybrid")), help="comma-separated")

    def handle(self, *args: Any, **options: Any) -> None:
        methods = [m.strip() for m in options["methods"].split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise CommandError(f"--methods takes {', '.join(METHODS)}; got {options['methods']!r}")
        if options["k"] < 1:
            raise CommandError("--k must be at least 1")
        queries = load_queries(options["queries"])
        documents = load_corpus(options["corpus"])
        corpus_ids = {d["id"] for d in documents}
        missing = sum(1 for q in queries for r in q.relevant if r not in corpus_ids)
        if missing:
            self.stderr.write(f"warning: {missing} relevant ids are not in the corpus (they count as not found)")
        with throwaway_source() as source:
            self.stdout.write(f"Ingesting {len(documents)} documents into the throw-away source {source.name}…")
            ingested = ingest(source, documents)
            for failure in ingested.failed:
                self.stderr.write(f"not ingested: {failure}")
            self.stdout.write(
                f"{ingested.documents} documents, {ingested.chunks} chunks in {ingested.seconds:.1f} s; "
                f"{len(queries)} queries"
            )
            figures = evaluate(queries, ingested, methods=methods, k=options["k"])
        self.stdout.write(format_table(figures, options["k"]))
        if options["json"]:
            report = {
                "methods": figures,
                "k": options["k"],
                "corpus": {
                    "path": str(options["corpus"]),
                    "documents": ingested.documents,
                    "chunks": ingested.chunks,
                    "failed": len(ingested.failed),
                    "ingest_seconds": round(ingested.seconds, 2),
                },
                "queries": str(options["queries"]),
            }
            options["json"].write_text(json.dumps(report, indent=2) + "\n")
            self.stdout.write(f"Wrote {options['json']}")


def format_table(figures: dict[str, dict[str, float | int]], k: int) -> str:
    columns = [f"recall@{c}" for c in sorted({*RECALL_AT, k})] + ["mrr", "p50_ms", "p95_ms", "queries"]
    lines = [f"{'method':<10}" + "".join(f"{c:>11}" for c in columns)]
    for method, values in figures.items():
        cells = []
        for column in columns:
            value = values[column]
            cells.append(f"{value:>11d}" if isinstance(value, int) else f"{value:>11.3f}")
        lines.append(f"{method:<10}" + "".join(cells))
    return "\n".join(lines)
