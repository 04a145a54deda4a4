"""Knowledge search: the serving rules in every method, citations, failed retrievals and the hybrid ranking."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from knowledge.embeddings import embed_query
from knowledge.ingestion import document_upsert
from knowledge.models import Audience, FailedRetrieval, KnowledgeSource, SourceStatus
from knowledge.retrieval import (
    DENSE,
    FAILED_BELOW,
    FULLTEXT,
    HYBRID,
    METHODS,
    STALE_FACTOR,
    Candidate,
    TermFrequencies,
    prune_common_terms,
    rank_documents,
    search,
)
from knowledge.tests.factories import KnowledgeSourceFactory

pytestmark = pytest.mark.django_db

TODAY = date.today()

DESCALING = """# Descaling your espresso machine

Descale the Brewline Duo every two months with the citric descaling powder: dissolve one sachet in a litre of
water, pour it into the tank and run the descaling programme until the tank is empty. Rinse twice with fresh water.
"""
RETURNS = """# Returns and refunds

You can return any unopened item within 30 days of delivery for a full refund to the original payment method.
Opened items can be returned within 14 days for store credit.
"""
SHIPPING = """# Shipping times

Orders ship from our Rotterdam warehouse within one working day. Delivery takes two to four working days in the EU
and five to eight days to the United Kingdom.
"""
GRINDER = """# Adjusting the grind size

Turn the hopper clockwise for a finer grind and anticlockwise for a coarser one. Espresso needs a fine setting
between 4 and 8; a French press needs a coarse setting above 20.

## Cleaning the burrs

Remove the hopper, unscrew the upper burr and brush the coffee oils away once a month. Never wash burrs in water.
"""
PASSWORD = """# Resetting your password

Click "Forgot password" on the sign-in page and enter your email address. The reset link is valid for one hour.
"""
REFUND_OVERRIDE = """# Refund overrides (staff only)

Agents may approve a refund outside the 30-day window up to 50 euros without a manager when the customer has
ordered more than five times.
"""

CORPUS = {
    "descaling": ("How to descale the espresso machine", DESCALING),
    "returns": ("Returns and refunds", RETURNS),
    "shipping": ("Shipping times", SHIPPING),
    "grinder": ("Grinder settings and care", GRINDER),
    "password": ("Resetting your password", PASSWORD),
}


def add(source: KnowledgeSource, key: str, title: str, content: str, **kwargs: str):  # type: ignore[no-untyped-def]
    document = document_upsert(
        source=source, external_id=f"{key}.md", title=title, content=content, content_type="markdown", **kwargs
    )
    assert document.status == "ready", document.error
    return document


@pytest.fixture
def help_centre() -> KnowledgeSource:
    source = KnowledgeSourceFactory(name="Brewline help centre", audience=Audience.PUBLIC)
    for key, (title, content) in CORPUS.items():
        add(source, key, title, content)
    return source


def source_with(content: str = REFUND_OVERRIDE, title: str = "Refund overrides", **fields: object) -> KnowledgeSource:
    source = KnowledgeSourceFactory(**fields)
    add(source, "doc", title, content)
    return source


def served_sources(query: str, **kwargs: object) -> set[int]:
    return {hit.source_id for hit in search(query, record_failure=False, k=10, **kwargs).hits}  # type: ignore[arg-type]


# --- Audience ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("audience", [Audience.PUBLIC, Audience.VERIFIED])
def test_an_internal_chunk_never_reaches_a_customer_search(help_centre, method: str, audience: str) -> None:  # type: ignore[no-untyped-def]
    internal = source_with(name="Staff refund rules", audience=Audience.INTERNAL)

    served = served_sources("approve a refund outside the 30-day window", audience=audience, method=method)

    assert internal.pk not in served
    assert help_centre.pk in served


@pytest.mark.parametrize("method", METHODS)
def test_an_internal_search_sees_internal_chunks(help_centre, method: str) -> None:  # type: ignore[no-untyped-def]
    internal = source_with(name="Staff refund rules", audience=Audience.INTERNAL)

    result = search("approve a refund outside the 30-day window", audience=Audience.INTERNAL, method=method)

    assert result.hits[0].source_id == internal.pk


@pytest.mark.parametrize("method", METHODS)
def test_verified_content_reaches_verified_and_internal_callers_but_not_the_public(method: str) -> None:
    verified = source_with(name="Account help", audience=Audience.VERIFIED)
    query = "refund outside the window"

    assert verified.pk not in served_sources(query, audience=Audience.PUBLIC, method=method)
    assert verified.pk in served_sources(query, audience=Audience.VERIFIED, method=method)
    assert verified.pk in served_sources(query, audience=Audience.INTERNAL, method=method)


# --- Status, freshness, retirement ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("status", [SourceStatus.DRAFT, SourceStatus.RETIRED])
def test_a_draft_or_retired_source_never_serves(method: str, status: str) -> None:
    source = source_with(name="Not serving", status=status)

    assert source.pk not in served_sources("refund outside the 30-day window", audience="internal", method=method)


@pytest.mark.parametrize("method", METHODS)
def test_a_source_past_its_retire_after_date_never_serves(method: str) -> None:
    yesterday = source_with(name="Retired yesterday", retire_after=TODAY - timedelta(days=1))
    today = source_with(name="Retires today", retire_after=TODAY)
    tomorrow = source_with(name="Retires tomorrow", retire_after=TODAY + timedelta(days=1))

    served = served_sources("refund outside the 30-day window", audience="internal", method=method)

    assert yesterday.pk not in served
    assert today.pk not in served
    assert tomorrow.pk in served


def stale_source(**fields: object) -> KnowledgeSource:
    # Reviewed 400 days ago with a 180-day interval: due 220 days ago, stale 190 days ago.
    return source_with(last_reviewed_on=TODAY - timedelta(days=400), review_interval_days=180, **fields)


@pytest.mark.parametrize("method", METHODS)
def test_a_stale_source_never_serves_by_default(method: str) -> None:
    stale = stale_source(name="Stale rules")
    assert stale.stale_on <= TODAY

    assert stale.pk not in served_sources("refund outside the 30-day window", audience="internal", method=method)


@pytest.mark.parametrize("method", METHODS)
def test_with_the_downrank_policy_a_stale_source_ranks_below_a_fresh_one(settings, method: str) -> None:  # type: ignore[no-untyped-def]
    settings.KNOWLEDGE_STALE_POLICY = "downrank"
    stale = stale_source(name="Stale rules")
    fresh = source_with(name="Fresh rules")

    hits = search("refund outside the 30-day window", audience="internal", method=method, record_failure=False).hits

    assert [h.source_id for h in hits[:2]] == [fresh.pk, stale.pk]
    assert hits[1].stale and not hits[0].stale
    assert hits[1].score == pytest.approx(hits[0].score * STALE_FACTOR, rel=1e-3)


def test_an_unknown_stale_policy_is_a_configuration_error(settings) -> None:  # type: ignore[no-untyped-def]
    from django.core.exceptions import ImproperlyConfigured

    settings.KNOWLEDGE_STALE_POLICY = "ignore"
    with pytest.raises(ImproperlyConfigured, match="KNOWLEDGE_STALE_POLICY"):
        search("refund", audience="public")


# --- Products ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_products_narrow_to_sources_for_those_products_or_for_all(method: str) -> None:
    grinder = source_with(name="Grinder manual", products=["grinder-one"], content=GRINDER, title="Grinder care")
    duo = source_with(name="Duo manual", products=["duo"], content=GRINDER, title="Grinder care")
    every = source_with(name="All products", products=[], content=GRINDER, title="Grinder care")
    query = "how do I clean the burrs"

    served = served_sources(query, audience="public", products=["grinder-one", "kettle"], method=method)
    assert served == {grinder.pk, every.pk}
    assert served_sources(query, audience="public", method=method) == {grinder.pk, duo.pk, every.pk}


def test_source_ids_narrow_the_search_but_never_widen_it(help_centre) -> None:  # type: ignore[no-untyped-def]
    draft = source_with(name="Draft rules", status=SourceStatus.DRAFT)
    other = source_with(name="Other rules")

    served = served_sources("refund", audience="internal", source_ids=[help_centre.pk, draft.pk])

    assert served == {help_centre.pk}
    assert other.pk not in served


# --- Results -------------------------------------------------------------------------------------------------------


def test_a_hit_cites_source_title_url_section_last_review_and_version() -> None:
    source = KnowledgeSourceFactory(name="Grinder manual", last_reviewed_on=TODAY - timedelta(days=10))
    add(source, "grinder", "Grinder settings and care", GRINDER, url="https://help.example.com/grinder", version="2.1")

    hit = search("how do I clean the burrs of my grinder", audience="public").hits[0]

    assert hit.citation == {
        "source": "Grinder manual",
        "source_id": source.pk,
        "document_title": "Grinder settings and care",
        "url": "https://help.example.com/grinder",
        "section": "Adjusting the grind size › Cleaning the burrs",
        "last_reviewed": (TODAY - timedelta(days=10)).isoformat(),
        "version": "2.1",
    }
    assert hit.heading_path == hit.citation["section"]
    assert "brush the coffee oils" in hit.text


def test_hits_are_distinct_documents_best_first(help_centre) -> None:  # type: ignore[no-untyped-def]
    result = search("espresso grind and descaling", audience="public", k=5)

    assert len({h.document_id for h in result.hits}) == len(result.hits) == 5
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("there is white limescale in my espresso machine, how do I remove it", "How to descale the espresso machine"),
        ("can I send back something I opened last week and get my money back?", "Returns and refunds"),
        ("how long does delivery to London take", "Shipping times"),
        ("the burrs are oily, how do I clean them", "Grinder settings and care"),
        ("I forgot my login, how do I get back in?", "Resetting your password"),
    ],
)
def test_hybrid_puts_the_right_document_first(help_centre, query: str, title: str) -> None:  # type: ignore[no-untyped-def]
    result = search(query, audience="public", method=HYBRID)

    assert result.hits[0].citation["document_title"] == title
    assert not result.failed


def test_a_bare_keyword_query_still_finds_its_document(help_centre) -> None:  # type: ignore[no-untyped-def]
    # Three words with no question around them score low on cosine (so this one is a failed retrieval), but the
    # full-text signal still puts the one document that names them first.
    result = search("citric acid sachet", audience="public", method=HYBRID, record_failure=False)

    assert result.hits[0].citation["document_title"] == "How to descale the espresso machine"
    assert result.hits[0].fulltext_score > 0


def test_a_search_reports_its_timings(help_centre) -> None:  # type: ignore[no-untyped-def]
    result = search("how long does delivery take", audience="public")

    assert result.embed_ms > 0 and result.dense_ms > 0 and result.fulltext_ms > 0 and result.fuse_ms >= 0
    assert result.total_ms >= result.embed_ms + result.dense_ms + result.fulltext_ms


def test_a_search_given_the_querys_vector_ranks_as_if_it_had_embedded_it(help_centre) -> None:  # type: ignore[no-untyped-def]
    query = "how long does delivery take"

    embedded_here = search(query, audience="public", record_failure=False)
    given = search(query, audience="public", record_failure=False, vector=embed_query(query))

    assert given.embed_ms == 0.0  # not embedded a second time
    assert [(hit.chunk_id, hit.score) for hit in given.hits] == [
        (hit.chunk_id, hit.score) for hit in embedded_here.hits
    ]


def test_a_search_runs_a_fixed_number_of_queries(help_centre, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    search("warm the embedder up", audience="public", record_failure=False)
    # Savepoint, prepare (sources, tsqueries, settings), dense, full text, release; then the hits' rows.
    with django_assert_num_queries(6):
        search("how long does delivery take", audience="public", record_failure=False)


# --- Failed retrievals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_an_unanswerable_query_is_a_failed_retrieval_and_is_recorded(help_centre, method: str) -> None:  # type: ignore[no-untyped-def]
    query = "what is the airspeed velocity of an unladen swallow"

    result = search(query, audience="verified", products=["duo"], method=method, conversation_id="conv-42")

    assert result.failed
    assert result.best_score is None or result.best_score < FAILED_BELOW[method]
    record = FailedRetrieval.objects.get()
    assert (record.query, record.audience, record.products, record.conversation_id) == (
        query,
        "verified",
        ["duo"],
        "conv-42",
    )
    assert record.best_score == result.best_score
    assert record.best_chunk_id == (result.hits[0].chunk_id if result.hits else None)


def test_a_failed_retrieval_still_returns_its_hits_for_the_playground(help_centre) -> None:  # type: ignore[no-untyped-def]
    result = search("what is the airspeed velocity of an unladen swallow", audience="public", method=DENSE)

    assert result.failed and result.hits


def test_nothing_is_recorded_when_recording_is_off_or_the_search_succeeds(help_centre) -> None:  # type: ignore[no-untyped-def]
    search("what is the airspeed velocity of an unladen swallow", audience="public", record_failure=False)
    assert not search("how do I descale my espresso machine", audience="public").failed

    assert not FailedRetrieval.objects.exists()


def test_a_search_with_nothing_to_serve_fails_without_hits() -> None:
    result = search("how do I descale my espresso machine", audience="public", method=FULLTEXT)

    assert result.failed and result.hits == [] and result.best_score is None
    assert FailedRetrieval.objects.get().best_chunk is None


def test_it_refuses_an_unknown_method_or_audience() -> None:
    with pytest.raises(ValueError, match="method"):
        search("refund", audience="public", method="bm25")
    with pytest.raises(ValueError, match="audience"):
        search("refund", audience="everyone")


# --- Fusion (pure) -------------------------------------------------------------------------------------------------


def candidate(chunk: int, document: int, similarity: float, rank: float = 0.0, stale: bool = False) -> Candidate:
    return Candidate(
        chunk_id=chunk,
        document_id=document,
        source_id=1,
        similarity=similarity,
        rank=rank,
        strict=False,
        stale=stale,
    )


def test_a_document_scores_as_its_best_chunk_and_is_represented_by_it() -> None:
    ranked = rank_documents([candidate(1, 10, 0.5), candidate(2, 10, 0.7), candidate(3, 20, 0.6)], method=DENSE)

    assert [(c.chunk_id, round(s, 3)) for c, s in ranked] == [(2, 0.7), (3, 0.6)]


def test_full_text_lifts_a_close_second_but_cosine_dominates() -> None:
    lifted = rank_documents([candidate(1, 10, 0.60, rank=0.0), candidate(2, 20, 0.58, rank=2.0)], method=HYBRID)
    kept = rank_documents([candidate(1, 10, 0.80, rank=0.0), candidate(2, 20, 0.50, rank=2.0)], method=HYBRID)

    assert [c.document_id for c, _ in lifted] == [20, 10]
    assert [c.document_id for c, _ in kept] == [10, 20]


def test_the_or_query_keeps_its_rarest_words_while_the_expected_matches_fit_the_budget() -> None:
    frequencies = TermFrequencies(rows=100_000, share={"account": 0.4, "save": 0.05, "open": 0.02}, floor=0.001)

    pruned = prune_common_terms("'open' | 'save' | 'account' | 'isa'", frequencies, budget=5_000)

    # isa (0.1%, not among the common lexemes) and open (2%) match ~2,100 rows; with save, ~7,000.
    assert pruned == "'isa' | 'open'"
    # Nothing selective enough: no full-text candidates, unless the full-text method needs the rarest word anyway.
    assert prune_common_terms("'account' | 'save'", frequencies, budget=10) == ""
    assert prune_common_terms("'account' | 'save'", frequencies, budget=10, keep_rarest=True) == "'save'"
    assert prune_common_terms("'open' | 'isa'", frequencies, budget=10_000) == "'open' | 'isa'"
    assert prune_common_terms("'open' | 'save'", None, budget=10) == "'open' | 'save'"  # no statistics yet
    assert prune_common_terms("'e' <-> 'mail'", frequencies, budget=10) == "'e' <-> 'mail'"  # not a plain OR
