"""`manage.py eval_retrieval`: figures for the three methods in one run, on a throw-away source it always removes."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from knowledge.ingestion import document_upsert
from knowledge.management.commands import eval_retrieval
from knowledge.models import Chunk, Document, KnowledgeSource
from knowledge.tests.factories import KnowledgeSourceFactory

pytestmark = pytest.mark.django_db

DOCUMENTS = {
    "descale": (
        "Descaling the espresso machine",
        "Dissolve one citric sachet in a litre of water and run the programme.",
    ),
    "returns": ("Returns", "Unopened items can be returned within 30 days for a full refund."),
    "shipping": ("Shipping", "Orders ship from Rotterdam within one working day; EU delivery takes two to four days."),
}
QUERIES = [
    {"query": "how do I remove limescale from my coffee machine", "relevant": ["descale"]},
    {"query": "can I get my money back", "relevant": ["returns"], "note": "extra keys are ignored"},
    {"query": "when will my parcel arrive", "relevant": ["shipping", "returns"]},
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    for key, (title, content) in DOCUMENTS.items():
        (directory / f"{key}.json").write_text(json.dumps({"id": key, "title": title, "content": content}))
    return directory


def write_queries(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_it_measures_every_method_and_writes_the_json_figures(tmp_path: Path, corpus: Path) -> None:
    queries = write_queries(tmp_path, [json.dumps(q) for q in QUERIES[:2]] + ["", json.dumps(QUERIES[2])])
    out = tmp_path / "figures.json"
    stdout = StringIO()

    call_command("eval_retrieval", corpus=corpus, queries=queries, k=10, json=out, stdout=stdout)

    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"fulltext", "dense", "hybrid"}
    for figures in report["methods"].values():
        assert set(figures) >= {"recall@1", "recall@5", "recall@10", "mrr", "p50_ms", "p95_ms", "queries"}
        assert figures["queries"] == 3
        assert 0.0 <= figures["recall@1"] <= figures["recall@5"] <= figures["recall@10"] <= 1.0
        assert 0.0 < figures["p50_ms"] <= figures["p95_ms"]
    # Three documents: every relevant one is within the first 10, and "parcel" finds shipping first.
    assert report["methods"]["hybrid"]["recall@10"] == 1.0
    assert report["methods"]["dense"]["mrr"] == 1.0
    assert report["corpus"]["documents"] == 3
    table = stdout.getvalue()
    assert "recall@5" in table and "hybrid" in table and "fulltext" in table


def test_it_removes_its_throwaway_source_and_never_touches_other_sources(tmp_path: Path, corpus: Path) -> None:
    kept = KnowledgeSourceFactory(name="Help centre")
    document_upsert(source=kept, external_id="a", title="Returns", content="Refunds in 30 days.", content_type="text")
    chunks_before = list(Chunk.objects.values_list("pk", "text"))
    users_before = get_user_model().objects.count()
    queries = write_queries(tmp_path, [json.dumps(QUERIES[0])])

    call_command("eval_retrieval", corpus=corpus, queries=queries, methods="dense", stdout=StringIO())

    assert list(KnowledgeSource.objects.all()) == [kept]
    assert list(Chunk.objects.values_list("pk", "text")) == chunks_before
    assert Document.objects.count() == 1
    assert get_user_model().objects.count() == users_before


def test_it_removes_its_throwaway_source_when_the_run_fails(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("search exploded")

    monkeypatch.setattr(eval_retrieval, "evaluate", boom)
    queries = write_queries(tmp_path, [json.dumps(QUERIES[0])])

    with pytest.raises(RuntimeError, match="search exploded"):
        call_command("eval_retrieval", corpus=corpus, queries=queries, stdout=StringIO())

    assert not KnowledgeSource.objects.exists()
    assert not Chunk.objects.exists()


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"query": "refund", "relevant": ["returns"]', "line 2: not valid JSON"),
        ('{"query": "refund"}', 'line 2: "relevant" must be a non-empty list'),
        ('{"query": "", "relevant": ["returns"]}', 'line 2: "query" must be a non-empty string'),
        ('["refund", ["returns"]]', "line 2: expected an object"),
    ],
)
def test_a_malformed_query_line_is_an_error_naming_its_line(
    tmp_path: Path, corpus: Path, bad_line: str, message: str
) -> None:
    queries = write_queries(tmp_path, [json.dumps(QUERIES[0]), bad_line])

    with pytest.raises(CommandError, match=message):
        call_command("eval_retrieval", corpus=corpus, queries=queries, stdout=StringIO())

    assert not KnowledgeSource.objects.exists()  # refused before anything was created


def test_it_refuses_an_unknown_method(tmp_path: Path, corpus: Path) -> None:
    queries = write_queries(tmp_path, [json.dumps(QUERIES[0])])

    with pytest.raises(CommandError, match="--methods"):
        call_command("eval_retrieval", corpus=corpus, queries=queries, methods="dense,bm25", stdout=StringIO())


def test_a_corpus_document_without_its_fields_is_an_error_naming_the_file(tmp_path: Path, corpus: Path) -> None:
    (corpus / "broken.json").write_text(json.dumps({"id": "broken", "content": "no title"}))
    queries = write_queries(tmp_path, [json.dumps(QUERIES[0])])

    with pytest.raises(CommandError, match="broken.json"):
        call_command("eval_retrieval", corpus=corpus, queries=queries, stdout=StringIO())
