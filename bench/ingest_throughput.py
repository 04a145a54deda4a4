"""Ingestion throughput against the raw embedding model's, on the same texts, in the same run.

    python bench/throwaway_db.py -- .venv/bin/python bench/ingest_throughput.py \
        --corpus /tmp/steward-bench/tau2-banking/corpus [--limit 300] [--rounds 2] [--single] [--json OUT]

The corpus documents are written to a temporary folder as Markdown files (``# <title>`` then the content), and each
round ingests that folder through the real path: a folder source, an ``IngestionRun``, the task's own function
(``knowledge.tasks.ingest_source``: claim, list, read, parse, chunk, embed in batches across documents, one
transaction per document, progress, audit). The raw model is timed on exactly the texts that run embeds (each file's
title, parse and chunks as ingestion makes them, each chunk as ``chunk_texts_for_embedding``), all in one call (its
own length-sorted batching: the best case).

Raw and ingestion alternate — raw, run, raw, run, …, raw — and each run is compared with the mean of the raw timings
either side of it, so that a change of machine load during the benchmark shows instead of skewing the ratio. Also
timed: a second run over the unchanged folder (everything skipped), and with ``--single`` ``document_upsert`` document
by document (the path of an upload), against the raw model called once per document.
The target is ingestion at 80% or more of the raw model's chunks per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from knowledge.chunking import chunk_sections  # noqa: E402
from knowledge.embeddings import get_embedder  # noqa: E402
from knowledge.ingestion import chunk_texts_for_embedding, document_upsert  # noqa: E402
from knowledge.management.commands.eval_retrieval import load_corpus, throwaway_source  # noqa: E402
from knowledge.models import Chunk, IngestionRun, KnowledgeSource, Origin  # noqa: E402
from knowledge.origins import title_from_content  # noqa: E402
from knowledge.parsers import parse  # noqa: E402
from knowledge.tasks import ingest_source  # noqa: E402


def write_folder(documents: list[dict[str, str]], folder: Path) -> list[tuple[str, str, str]]:
    """Write each document as ``<id>.md``; return (file name, title, content) as ingestion will read them."""
    files = []
    for document in documents:
        name, content = f"{document['id']}.md", f"# {document['title']}\n\n{document['content']}"
        (folder / name).write_text(content, encoding="utf-8")
        files.append((name, title_from_content(content, "markdown") or name, content))
    return files


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def run_ingestion(source: KnowledgeSource) -> tuple[IngestionRun, float]:
    run = IngestionRun.objects.create(source=source)
    seconds = timed(lambda: ingest_source(run.pk))
    run.refresh_from_db()
    return run, seconds


def check(source: KnowledgeSource, run: IngestionRun, texts: list[str]) -> None:
    """Warn when the run did not embed exactly the texts the raw model was timed on."""
    stored = [
        chunk_texts_for_embedding(chunk) for chunk in Chunk.objects.filter(source=source).select_related("document")
    ]
    if run.status != IngestionRun.Status.DONE or sorted(stored) != sorted(texts):
        print(f"warning: run {run.status}, {len(stored)} chunks for {len(texts)} texts, errors {run.errors[:3]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents (0: all)")
    parser.add_argument("--rounds", type=int, default=2, help="ingestion runs, each between two raw timings")
    parser.add_argument("--single", action="store_true", help="also time document_upsert document by document")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    documents = load_corpus(args.corpus)
    if args.limit:
        documents = documents[: args.limit]
    with tempfile.TemporaryDirectory(prefix="steward-ingest-bench-") as tmp:
        folder = Path(tmp)
        files = write_folder(documents, folder)
        # The folder roots a source may read (STEWARD_KNOWLEDGE_FOLDER_ROOTS) are widened to this folder only.
        settings.KNOWLEDGE_FOLDER_ROOTS = [*settings.KNOWLEDGE_FOLDER_ROOTS, str(folder)]
        per_document = [
            [chunk_texts_for_embedding(draft, title) for draft in chunk_sections(parse(content, "markdown"))]
            for _, title, content in files
        ]
        report = measure(folder, per_document, rounds=args.rounds)
        if args.single:
            raw_rate = statistics.mean(report["raw_chunks_per_s"])
            report.update(measure_single(files, per_document, raw_rate=raw_rate))
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def measure(folder: Path, per_document: list[list[str]], *, rounds: int) -> dict[str, Any]:
    """Time the raw model and ingestion runs alternately: raw, run, raw, run, …, raw."""
    texts = [text for group in per_document for text in group]
    embedder = get_embedder()
    embedder.embed(texts[:32])  # load the model outside the timings
    report: dict[str, Any] = {"documents": len(per_document), "chunks": len(texts), "load": [os.getloadavg()[0]]}
    raw = [timed(lambda: embedder.embed(texts))]
    runs, unchanged = [], []
    for _ in range(rounds):
        with throwaway_source("ingest-bench", origin=Origin.FOLDER, origin_config={"path": str(folder)}) as source:
            run, seconds = run_ingestion(source)
            check(source, run, texts)
            again, unchanged_seconds = run_ingestion(source)
            if again.documents_unchanged != len(per_document):
                print(f"warning: the second run found {again.documents_unchanged} documents unchanged")
        runs.append(seconds)
        unchanged.append(unchanged_seconds)
        report["load"].append(os.getloadavg()[0])
        raw.append(timed(lambda: embedder.embed(texts)))
        report["load"].append(os.getloadavg()[0])
    # Same texts, so the ratio of rates is the inverse ratio of times; each run against the raw timings beside it.
    ratios = [((raw[i] + raw[i + 1]) / 2) / seconds for i, seconds in enumerate(runs)]
    report.update(
        raw_chunks_per_s=[round(len(texts) / seconds, 1) for seconds in raw],
        run_chunks_per_s=[round(len(texts) / seconds, 1) for seconds in runs],
        run_documents_per_s=[round(len(per_document) / seconds, 1) for seconds in runs],
        run_vs_raw=[round(ratio, 3) for ratio in ratios],
        run_vs_raw_overall=round(statistics.mean(raw) / statistics.mean(runs), 3),
        unchanged_run_seconds=[round(seconds, 2) for seconds in unchanged],
    )
    report["load"] = [round(load, 2) for load in report["load"]]
    return report


def measure_single(
    files: list[tuple[str, str, str]], per_document: list[list[str]], *, raw_rate: float
) -> dict[str, Any]:
    """Time document_upsert one document at a time, and the raw model called once per document."""
    embedder = get_embedder()
    texts = sum(len(group) for group in per_document)
    with throwaway_source("upsert-bench") as source:
        started = time.perf_counter()
        for name, title, content in files:
            document_upsert(source=source, external_id=name, title=title, content=content, content_type="markdown")
        upsert = time.perf_counter() - started
    per_call = timed(lambda: [embedder.embed(group) for group in per_document])
    return {
        "upsert_one_by_one_chunks_per_s": round(texts / upsert, 1),
        "raw_per_document_chunks_per_s": round(texts / per_call, 1),
        "upsert_one_by_one_vs_raw": round((texts / upsert) / raw_rate, 3),
    }


if __name__ == "__main__":
    sys.exit(main())
