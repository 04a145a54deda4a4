"""Search latency at ~100k chunks: the banking corpus ingested once, then repeated with variations.

    python bench/throwaway_db.py -- .venv/bin/python bench/synth_chunks.py \
        --corpus /tmp/steward-bench/tau2-banking/corpus --chunks 100000 \
        [--queries /tmp/steward-bench/tau2-banking/dev.jsonl] [--json /tmp/steward-bench/latency.json]

Run it through bench/throwaway_db.py: the rows live in a database that is dropped at the end (the script also puts
them in a throw-away source that it deletes, and refuses a database whose name does not start with ``bench_``).

1. The corpus is ingested with ``document_upsert`` (real chunks, embeddings and weighted tsvectors).
2. Copies are added until there are ``--chunks`` chunks. Copy r of a chunk gets a document title suffixed with a
   variant label, its sentences rotated by r (so that its tsvector positions differ), and its embedding plus
   Gaussian noise re-normalised (cosine ~0.93 to the original): near-duplicates, the hard case for an HNSW graph and
   for OR-ed full text. Rows go in with COPY; the tsvectors are computed in SQL with the weights of ingestion.
3. ``ANALYZE``, then every query runs with every method (interleaved), timed around ``search()`` (query embedding
   included), with the parts ``search`` reports. Queries: the document titles of a fixed sample (short, like a
   customer's question) and, with ``--queries``, a JSONL file's ``query`` fields.
4. EXPLAIN (ANALYZE, BUFFERS) of the dense and full-text candidate queries as ``search`` sends them, and the recall
   of the HNSW scan against an exact scan for several ``hnsw.ef_search`` values.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from knowledge import retrieval  # noqa: E402
from knowledge.embeddings import get_embedder  # noqa: E402
from knowledge.management.commands.eval_retrieval import (  # noqa: E402
    ingest,
    load_corpus,
    load_queries,
    percentile,
    throwaway_source,
)
from knowledge.models import Audience, Document, DocumentStatus, KnowledgeSource  # noqa: E402
from knowledge.retrieval import Candidate, Tuning, search  # noqa: E402

NOISE = 0.02  # per-dimension sigma on a unit vector of 384 dimensions: cosine to the original about 0.93
PARTS = ("embed_ms", "prepare_ms", "dense_ms", "fulltext_ms", "fuse_ms", "fetch_ms", "total_ms")


def synthesize(source: KnowledgeSource, public: KnowledgeSource, target: int, public_copies: int) -> int:
    """Add varied copies of ``source``'s chunks (with their documents) until there are ``target`` chunks.

    The first ``public_copies`` copies go to ``public`` (a public-audience source): a public search then passes the
    WHERE clause for a few percent of the rows only, the selective case of the HNSW scan.
    """
    rng = np.random.default_rng(0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.id, d.external_id, d.title, c.position, c.heading_path, c.text, c.token_count, c.embedding::text,"
            " c.embedding_model FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id"
            " WHERE c.source_id = %s ORDER BY d.id, c.position",
            [source.pk],
        )
        base = cursor.fetchall()
    documents: dict[int, tuple[str, str]] = {row[0]: (row[1], row[2]) for row in base}
    copies = max(0, -(-(target - len(base)) // len(base)))  # ceiling
    total = len(base)
    connection.ensure_connection()
    raw = connection.connection  # the psycopg connection: COPY is not in Django's cursor API
    for copy in range(1, copies + 1):
        owner = public if copy <= public_copies else source
        with transaction.atomic(), raw.cursor() as cursor:
            twins = Document.objects.bulk_create(
                [
                    Document(
                        source=owner,
                        external_id=f"{external_id}#{copy}",
                        title=f"{title} (variant {copy})",
                        status=DocumentStatus.READY,
                    )
                    for external_id, title in documents.values()
                ]
            )
            ids = {doc_id: twin.pk for doc_id, twin in zip(documents, twins, strict=True)}
            with cursor.copy(
                "COPY knowledge_chunk (document_id, source_id, position, heading_path, text, token_count, embedding,"
                " embedding_model) FROM STDIN"
            ) as out:
                for doc_id, _, _, position, heading, text, tokens, vector, model in base:
                    if total >= target:
                        break
                    vec = np.asarray(json.loads(vector), dtype=np.float32)
                    vec = vec + rng.normal(0, NOISE, vec.shape).astype(np.float32)
                    vec /= np.linalg.norm(vec)
                    sentences = text.split(". ")
                    shift = copy % len(sentences)
                    varied = ". ".join(sentences[shift:] + sentences[:shift])
                    out.write_row((ids[doc_id], owner.pk, position, heading, varied, tokens, _vector(vec), model))
                    total += 1
            cursor.execute(
                # The weights of knowledge.ingestion.search_vector_expression: title A, heading path B, text C.
                "UPDATE knowledge_chunk c SET search_vector ="
                " setweight(to_tsvector('english', coalesce(d.title, '')), 'A')"
                " || setweight(to_tsvector('english', coalesce(c.heading_path, '')), 'B')"
                " || setweight(to_tsvector('english', coalesce(c.text, '')), 'C')"
                " FROM knowledge_document d WHERE d.id = c.document_id AND c.search_vector IS NULL"
                " AND c.source_id = %s",
                [owner.pk],
            )
        if copy % 5 == 0 or copy == copies:
            print(f"  copy {copy}/{copies}: {total} chunks", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")
        cursor.execute("ANALYZE knowledge_document")
    return total


def _vector(vec: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vec) + "]"


def measure(queries: list[str], audience: str, source_ids: list[int]) -> dict[str, dict[str, float]]:
    """Time every query with every method (interleaved) and return p50/p95 of each part and of the wall time."""
    methods = list(retrieval.METHODS)
    parts: dict[str, dict[str, list[float]]] = {m: {p: [] for p in PARTS} for m in methods}

    def run(query: str, method: str):  # type: ignore[no-untyped-def]
        return search(query, audience=audience, method=method, record_failure=False, source_ids=source_ids)

    for query in queries[:5]:
        for method in methods:
            run(query, method)
    for position, query in enumerate(queries):
        for method in methods[position % 3 :] + methods[: position % 3]:
            started = time.perf_counter()
            result = run(query, method)
            wall = (time.perf_counter() - started) * 1000.0
            for part in PARTS:
                parts[method][part].append(wall if part == "total_ms" else getattr(result, part))
    out: dict[str, dict[str, float]] = {}
    for method, values in parts.items():
        out[method] = {"queries": len(queries)}
        for part, series in values.items():
            out[method][f"{part[:-3]}_p50_ms"] = round(percentile(series, 50), 2)
            out[method][f"{part[:-3]}_p95_ms"] = round(percentile(series, 95), 2)
    return out


_VECTOR_LITERAL = re.compile(r"'\[[^\]]{100,}\]'::vector")


def explain(query: str, audience: str, source_ids: list[int]) -> dict[str, str]:
    """Return EXPLAIN (ANALYZE, BUFFERS) of the candidate queries exactly as ``search`` sends them."""
    captured: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        # The full-text method always runs its candidate query (hybrid skips it when no word is selective).
        for method in ("dense", "fulltext"):
            search(query, audience=audience, method=method, record_failure=False, source_ids=source_ids)
    prepare = next((s, p) for s, p in captured if "set_config" in s)
    dense = next((s, p) for s, p in captured if "ORDER BY c.embedding <=>" in s)
    fulltext = next((s, p) for s, p in captured if "@@ %(either)s" in s)
    plans = {}
    for name, (sql, params) in (("dense", dense), ("fulltext", fulltext)):
        for scan in ("relaxed_order", "off"):
            if name == "fulltext" and scan == "off":
                continue
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(*prepare)
                cursor.execute("SELECT set_config('hnsw.iterative_scan', %s, true)", [scan])
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            plans[name if scan == "relaxed_order" else f"{name} (iterative_scan off)"] = _VECTOR_LITERAL.sub(
                "'[…384 floats…]'::vector", plan
            )
    return plans


def hnsw_recall(queries: list[str], audience: str, source_ids: list[int], k: int = 10) -> dict[str, object]:
    """Compare the dense candidates (HNSW) with an exact scan, per ef_search.

    The copies are near-duplicates, so two measures: recall of the exact top-k chunk ids (which copy of a passage
    comes first is down to the noise), and recall of the exact top-k *passages* (a copy counts for its original,
    what a reader sees), with the ratio of summed cosine similarities (HNSW / exact) and the dense query's p50.
    """
    vectors = get_embedder().embed(queries)

    def dense(query: str, vector: np.ndarray, tuning: Tuning, exact: bool) -> tuple[list[Candidate], float]:
        with transaction.atomic(), connection.cursor() as cursor:
            prepared = retrieval._prepare(
                cursor, query, audience=audience, products=None, source_ids=source_ids, tuning=tuning
            )
            if exact:
                cursor.execute("SET LOCAL enable_indexscan = off")
            started = time.perf_counter()
            rows = retrieval._dense(cursor, vector, prepared, tuning)
            return sorted(rows, key=lambda c: -(c.similarity or 0))[:k], (time.perf_counter() - started) * 1000

    truth = [dense(q, v, Tuning(candidates=k), exact=True)[0] for q, v in zip(queries, vectors, strict=True)]
    runs = {
        ef: [
            dense(q, v, Tuning(candidates=k, ef_search=ef), exact=False) for q, v in zip(queries, vectors, strict=True)
        ]
        for ef in (40, 64, 80, 160)
    }
    ids = {c.chunk_id for rows in truth for c in rows} | {
        c.chunk_id for r in runs.values() for rows, _ in r for c in rows
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, split_part(d.external_id, '#', 1) || ':' || c.position FROM knowledge_chunk c"
            " JOIN knowledge_document d ON d.id = c.document_id WHERE c.id = ANY(%s::bigint[])",
            [list(ids)],
        )
        passage = dict(cursor.fetchall())
    out: dict[str, object] = {}
    for ef, results in runs.items():
        chunk_recall, passage_recall, ratio = [], [], []
        for (got, _), exact in zip(results, truth, strict=True):
            chunk_recall.append(len({c.chunk_id for c in got} & {c.chunk_id for c in exact}) / k)
            wanted = {passage[c.chunk_id] for c in exact}
            passage_recall.append(len(wanted & {passage[c.chunk_id] for c in got}) / len(wanted))
            ratio.append(sum(c.similarity or 0 for c in got) / sum(c.similarity or 0 for c in exact))
        out[f"ef_search={ef}"] = {
            "chunk_recall@10": round(statistics.fmean(chunk_recall), 3),
            "passage_recall@10": round(statistics.fmean(passage_recall), 3),
            "similarity_ratio": round(statistics.fmean(ratio), 4),
            "dense_p50_ms": round(percentile([ms for _, ms in results], 50), 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--public-copies", type=int, default=2, help="copies put in a public source (selective case)")
    parser.add_argument("--queries", type=Path, help="JSONL with a query field per line (optional)")
    parser.add_argument("--sample", type=int, default=200, help="document titles used as short queries")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--threads-variant", type=int, default=1, help="also measure with this many embedder threads")
    args = parser.parse_args(argv)
    if not connection.settings_dict["NAME"].startswith("bench_"):
        raise SystemExit("run this through bench/throwaway_db.py: it writes ~100k rows")
    documents = load_corpus(args.corpus)
    sample = random.Random(0).sample(documents, min(args.sample, len(documents)))
    query_sets = {"titles": [d["title"].removeprefix("Internal: ") for d in sample]}
    if args.queries:
        query_sets["file"] = [q.query for q in load_queries(args.queries)]
    report: dict[str, object] = {}
    with throwaway_source("synth") as source, throwaway_source("synth-public") as public:
        KnowledgeSource.objects.filter(pk=public.pk).update(audience=Audience.PUBLIC)
        started = time.perf_counter()
        ingested = ingest(source, documents)
        print(f"ingested {ingested.documents} documents, {ingested.chunks} chunks in {ingested.seconds:.0f} s")
        report["chunks"] = synthesize(source, public, args.chunks, args.public_copies)
        with connection.cursor() as cursor:
            cursor.execute("SELECT source_id, count(*) FROM knowledge_chunk GROUP BY source_id")
            report["chunks_per_source"] = {str(k): v for k, v in cursor.fetchall()}
        print(f"{report['chunks']} chunks after {time.perf_counter() - started:.0f} s: {report['chunks_per_source']}")
        sources = [source.pk, public.pk]
        scenarios = {"internal (all rows pass)": Audience.INTERNAL, "public (a few % of rows pass)": Audience.PUBLIC}
        report["load_before"] = os.getloadavg()
        for scenario, audience in scenarios.items():
            for name, queries in query_sets.items():
                key = f"latency {scenario}, {name} queries"
                report[key] = measure(queries, audience, sources)
                print(key, json.dumps(report[key], indent=1), flush=True)
        if args.threads_variant:
            # The same with a one-thread query embedder (STEWARD_EMBEDDING_THREADS=1): on two busy cores the
            # two-thread session spends its time waiting for its second thread.
            settings.STEWARD_EMBEDDING_THREADS = args.threads_variant
            get_embedder.cache_clear()
            for name, queries in query_sets.items():
                key = f"latency internal (all rows pass), {name} queries, {args.threads_variant}-thread embedder"
                report[key] = measure(queries, Audience.INTERNAL, sources)
                print(key, json.dumps(report[key], indent=1), flush=True)
        report["load_after"] = os.getloadavg()
        query = query_sets["titles"][0]
        for scenario, audience in scenarios.items():
            for name, plan in explain(query, audience, sources).items():
                report[f"explain {scenario}: {name}"] = plan
                print(f"--- EXPLAIN {scenario}: {name} ({query!r})\n{plan}", flush=True)
            report[f"hnsw recall {scenario}"] = hnsw_recall(query_sets["titles"][:50], audience, sources)
            print(scenario, json.dumps(report[f"hnsw recall {scenario}"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
