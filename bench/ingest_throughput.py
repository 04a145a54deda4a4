"""Ingestion throughput against the raw embedding model's, on the same texts, in the same run.

    python bench/throwaway_db.py -- .venv/bin/python bench/ingest_throughput.py \
        --corpus /tmp/steward-bench/tau2-banking/corpus [--limit 300] [--json OUT]

The texts are exactly what ingestion embeds: each document parsed and chunked by knowledge's own parser and
chunker, each chunk as ``chunk_texts_for_embedding``. Measured, in this order so that a change of machine load shows:
the raw model on all texts in one call (its own length-sorted batching: the best case), ``document_upsert`` of every
document into a throw-away source (parse, chunk, embed, swap, full-text vectors), the raw model once per document
(the batching ingestion can get when it embeds document by document), and the raw model on all texts again.
The target is ingestion at 80% or more of the raw model's chunks per second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from knowledge.chunking import chunk_sections  # noqa: E402
from knowledge.embeddings import get_embedder  # noqa: E402
from knowledge.ingestion import chunk_texts_for_embedding  # noqa: E402
from knowledge.management.commands.eval_retrieval import ingest, load_corpus, throwaway_source  # noqa: E402
from knowledge.parsers import parse  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents (0: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    documents = load_corpus(args.corpus)
    if args.limit:
        documents = documents[: args.limit]
    per_document = [
        [chunk_texts_for_embedding(draft, d["title"]) for draft in chunk_sections(parse(d["content"], "markdown"))]
        for d in documents
    ]
    texts = [text for group in per_document for text in group]
    embedder = get_embedder()
    embedder.embed(texts[:8])  # load the model outside the timings

    def timed(run) -> float:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    report: dict[str, object] = {"documents": len(documents), "chunks": len(texts), "load_before": os.getloadavg()}
    raw_first = timed(lambda: embedder.embed(texts))
    with throwaway_source("ingest-bench") as source:
        ingested = ingest(source, documents)
    if ingested.chunks != len(texts) or ingested.failed:
        print(
            f"warning: ingestion made {ingested.chunks} chunks ({len(ingested.failed)} failed), expected {len(texts)}"
        )
    raw_per_document = timed(lambda: [embedder.embed(group) for group in per_document])
    raw_second = timed(lambda: embedder.embed(texts))
    report["load_after"] = os.getloadavg()
    raw_rate = len(texts) / ((raw_first + raw_second) / 2)
    rates = {
        "raw_all_texts_first_chunks_per_s": len(texts) / raw_first,
        "raw_all_texts_second_chunks_per_s": len(texts) / raw_second,
        "raw_per_document_chunks_per_s": len(texts) / raw_per_document,
        "ingestion_chunks_per_s": ingested.chunks / ingested.seconds,
        "ingestion_documents_per_s": ingested.documents / ingested.seconds,
    }
    report.update({k: round(v, 1) for k, v in rates.items()})
    report["ingestion_vs_raw"] = round(rates["ingestion_chunks_per_s"] / raw_rate, 3)
    report["ingestion_vs_raw_per_document"] = round(
        rates["ingestion_chunks_per_s"] / rates["raw_per_document_chunks_per_s"], 3
    )
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
