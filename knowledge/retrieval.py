"""Knowledge search: the one function the agent, the admin playground and the retrieval benchmark call.

Three methods over the chunks of the sources that may serve the caller:

- ``dense``: cosine distance between the query's MiniLM embedding and each chunk's, through the HNSW index
  (``ORDER BY embedding <=> q LIMIT n``, the only form pgvector serves from a ``vector_cosine_ops`` index);
- ``fulltext``: the chunk's weighted tsvector (title A, heading B, text C) against the query's words OR-ed together
  (``plainto``/``websearch_to_tsquery`` AND every word, which almost never matches a natural question), ranked with
  ``ts_rank_cd``, plus a bonus for chunks that also match ``websearch_to_tsquery`` (every word);
- ``hybrid`` (the default): both candidate lists, every candidate scored on *both* signals (the dense query also
  ranks its rows by full text, the full-text query also measures their cosine), fused by a weighted sum in which
  the cosine dominates. Equal-weight RRF lost to dense alone on both benchmarks; the DEV figures that chose this
  fusion are in docs/knowledge/retrieval.md.

Results are collapsed to documents: a document scores as its best chunk, and is represented by that chunk.

Every serving rule is in the WHERE clause of the candidate queries, before their LIMIT, so a filtered-out chunk
never takes a place in the top n: approved sources only, not past ``retire_after``, not stale (or, with
``KNOWLEDGE_STALE_POLICY = "downrank"``, stale ones kept with their score multiplied by ``STALE_FACTOR``), an
audience the caller may see, and a product scope that is empty or overlaps the caller's products.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TypedDict

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from governance import dry_run
from knowledge.embeddings import embed_query
from knowledge.models import Audience, FailedRetrieval, SourceStatus

DENSE, FULLTEXT, HYBRID = "dense", "fulltext", "hybrid"
METHODS = (DENSE, FULLTEXT, HYBRID)

# Who sees what: a customer never receives internal content, an unverified one never receives verified-only content.
VISIBLE_AUDIENCES: dict[str, tuple[str, ...]] = {
    Audience.PUBLIC: (Audience.PUBLIC,),
    Audience.VERIFIED: (Audience.PUBLIC, Audience.VERIFIED),
    Audience.INTERNAL: (Audience.PUBLIC, Audience.VERIFIED, Audience.INTERNAL),
}

STALE_POLICIES = ("exclude", "downrank")
# With KNOWLEDGE_STALE_POLICY = "downrank", a stale source's score is multiplied by this: it still answers when
# nothing fresh does, but any fresh chunk of similar relevance ranks above it.
STALE_FACTOR = 0.5

# A search whose best document score is under this is a failed retrieval (recorded; the agent should not answer
# from it). Chosen on DEV (docs/knowledge/retrieval.md, "Thresholds") so that at least 99% of answerable StackFAQ
# questions (95% for full text alone) pass and questions about another knowledge base's subject fail (98%).
FAILED_BELOW: dict[str, float] = {DENSE: 0.45, FULLTEXT: 0.2, HYBRID: 0.5}

# The full-text configuration of the chunks' search_vector (knowledge/ingestion.py builds it with the same one).
TS_CONFIG = "english"
# At most this many distinct query words go into the OR query: a pasted e-mail must not rank every chunk by 300 terms.
MAX_QUERY_TERMS = 64
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Tuning:
    """The knobs of candidate generation and fusion; the defaults are the values chosen on DEV.

    See docs/knowledge/retrieval.md ("Fusion") for the DEV figures behind each value.
    """

    candidates: int = 20  # rows each retriever contributes before fusion (at least 3 x k: see search)
    ef_search: int = 64  # HNSW search breadth (pgvector's default is 40)
    dense_weight: float = 1.0
    fulltext_weight: float = 0.5
    # ts_rank_cd is unbounded; it is squashed to [0, 1) by rank / (rank + rank_half).
    rank_half: float = 2.0
    # Added to the full-text score of a chunk that matches websearch_to_tsquery (every word): 0.1 changed nothing
    # on DEV, so it is off; the flag is still shown in the playground.
    strict_bonus: float = 0.0
    # ts_rank_cd weights of labels {D, C, B, A}; A = title, B = heading, C = text. PostgreSQL's default
    # {0.1, 0.2, 0.4, 1.0} lets a title word outweigh five in the text; a flatter title helps on DEV.
    label_weights: tuple[float, float, float, float] = (0.1, 0.2, 0.3, 0.5)
    rank_normalization: int = 1  # ts_rank_cd normalization flags: 1 divides by 1 + log(document length)
    # The OR query keeps its rarest words while the chunks expected to match stay under this (0: keep every word).
    rank_budget: int = 1000


DEFAULT_TUNING = Tuning()


class Citation(TypedDict):
    source: str
    source_id: int
    document_title: str
    url: str
    section: str
    last_reviewed: str  # ISO date of the source's last review
    version: str


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    source_id: int
    score: float
    text: str
    heading_path: str
    citation: Citation
    similarity: float | None = None  # cosine similarity to the query (None when the query was not embedded)
    fulltext_score: float = 0.0  # the squashed full-text rank, with the all-words bonus
    stale: bool = False


@dataclass
class SearchResult:
    query: str
    method: str
    hits: list[Hit]
    failed: bool
    best_score: float | None
    threshold: float
    embed_ms: float = 0.0
    prepare_ms: float = 0.0  # serving sources, query parsing and the transaction's settings: one round trip
    dense_ms: float = 0.0
    fulltext_ms: float = 0.0
    fuse_ms: float = 0.0
    fetch_ms: float = 0.0
    total_ms: float = 0.0
    candidates: int = 0


@dataclass(frozen=True)
class Candidate:
    """A chunk some retriever returned, with both signals measured."""

    chunk_id: int
    document_id: int
    source_id: int
    similarity: float | None
    rank: float
    strict: bool
    stale: bool = False


@dataclass
class _Prepared:
    """What one round trip computes before the candidate queries: the serving sources and the parsed queries."""

    source_ids: list[int]
    stale_source_ids: set[int]
    loose: str  # tsquery text: the query's words OR-ed (ranks the candidates)
    strict: str  # tsquery text: websearch_to_tsquery (every word)
    either: str  # tsquery text: selects the full-text candidates (the OR query, common words pruned at scale)
    timings: dict[str, float] = field(default_factory=dict)


def search(
    query: str,
    *,
    audience: str,
    products: Sequence[str] | None = None,
    k: int = 5,
    method: str = HYBRID,
    record_failure: bool = True,
    conversation_id: str = "",
    source_ids: Collection[int] | None = None,
    tuning: Tuning = DEFAULT_TUNING,
    vector: np.ndarray | None = None,
) -> SearchResult:
    """Return the ``k`` best documents (each as its best chunk) that ``audience`` may receive for ``query``.

    ``products`` narrows to sources whose product scope is empty or overlaps it (None: no product context).
    ``source_ids`` narrows further to those sources (the benchmark's throw-away source); it never widens.
    ``vector`` is ``query``'s embedding when the caller already has it (``embed_query(query)``: the configured
    embedder on that text alone); without it the query is embedded here.
    A result under ``FAILED_BELOW[method]`` has ``failed=True`` (its hits are still returned, for the playground)
    and, with ``record_failure``, leaves a FailedRetrieval row.
    """
    started = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if audience not in VISIBLE_AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(VISIBLE_AUDIENCES)}; got {audience!r}")
    if k < 1:
        raise ValueError("k must be at least 1")
    result = SearchResult(
        query=query, method=method, hits=[], failed=True, best_score=None, threshold=FAILED_BELOW[method]
    )
    # Chunks collapse to documents: each retriever brings at least three chunks per document asked for.
    tuning = replace(tuning, candidates=max(tuning.candidates, 3 * k))
    if method == FULLTEXT or not query.strip():
        vector = None
    elif vector is None:
        vector = embed_query(query)
        result.embed_ms = _ms_since(started)
    candidates = retrieve_candidates(
        query, vector, audience=audience, products=products, method=method, source_ids=source_ids, tuning=tuning
    )
    result.prepare_ms = candidates.timings.get("prepare", 0.0)
    result.dense_ms = candidates.timings.get("dense", 0.0)
    result.fulltext_ms = candidates.timings.get("fulltext", 0.0)
    result.candidates = len(candidates.rows)

    fuse_started = time.perf_counter()
    ranked = rank_documents(candidates.rows, method=method, tuning=tuning)[:k]
    result.fuse_ms = _ms_since(fuse_started)

    fetch_started = time.perf_counter()
    result.hits = _hits(ranked, tuning)
    result.fetch_ms = _ms_since(fetch_started)

    result.best_score = ranked[0][1] if ranked else None
    result.failed = result.best_score is None or result.best_score < result.threshold
    result.total_ms = _ms_since(started)
    # A test conversation's search (a dry run, governance/dry_run.py) never counts in the failed-retrievals report.
    if result.failed and record_failure and dry_run.current() is None:
        failed_retrieval_record(
            query=query,
            audience=audience,
            products=products,
            best_score=result.best_score,
            best_chunk_id=ranked[0][0].chunk_id if ranked else None,
            conversation_id=conversation_id,
        )
    return result


def failed_retrieval_record(
    *,
    query: str,
    audience: str,
    products: Sequence[str] | None,
    best_score: float | None,
    best_chunk_id: int | None,
    conversation_id: str,
) -> FailedRetrieval:
    """Record a search that found nothing good enough, for the failed-retrievals report and the source owners."""
    return FailedRetrieval.objects.create(
        query=query,
        audience=audience,
        products=list(products or []),
        best_score=best_score,
        best_chunk_id=best_chunk_id,
        conversation_id=conversation_id,
    )


# --- Candidates ---------------------------------------------------------------------------------------------------


@dataclass
class Candidates:
    rows: list[Candidate]
    timings: dict[str, float]


def retrieve_candidates(
    query: str,
    vector: np.ndarray | None,
    *,
    audience: str,
    products: Sequence[str] | None,
    method: str,
    source_ids: Collection[int] | None = None,
    tuning: Tuning = DEFAULT_TUNING,
) -> Candidates:
    """Run the candidate queries of ``method`` and return every candidate with both of its signals.

    One transaction, so that the ``SET LOCAL`` style settings (HNSW breadth, iterative scans, no JIT) end with it.
    """
    timings: dict[str, float] = {}
    by_chunk: dict[int, Candidate] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        prepared = _prepare(
            cursor, query, audience=audience, products=products, source_ids=source_ids, tuning=tuning, method=method
        )
        timings["prepare"] = prepared.timings["prepare"]
        if not prepared.source_ids:
            return Candidates([], timings)
        if method != FULLTEXT and vector is not None:
            started = time.perf_counter()
            for row in _dense(cursor, vector, prepared, tuning):
                by_chunk[row.chunk_id] = row
            timings["dense"] = _ms_since(started)
        if method != DENSE and prepared.either:
            started = time.perf_counter()
            for row in _fulltext(cursor, vector if method == HYBRID else None, prepared, tuning):
                by_chunk.setdefault(row.chunk_id, row)
            timings["fulltext"] = _ms_since(started)
    return Candidates(list(by_chunk.values()), timings)


def loose_query_text(query: str) -> str:
    """Return the query's distinct words joined with ``|`` (to_tsquery's OR), letters and digits only."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
        if len(seen) >= MAX_QUERY_TERMS:
            break
    return " | ".join(seen)


def stale_policy() -> str:
    policy = getattr(settings, "KNOWLEDGE_STALE_POLICY", "exclude")
    if policy not in STALE_POLICIES:
        raise ImproperlyConfigured(f"KNOWLEDGE_STALE_POLICY must be one of {', '.join(STALE_POLICIES)}; got {policy!r}")
    return policy


def _serving_sources_sql(
    *, audience: str, products: Sequence[str] | None, source_ids: Collection[int] | None, stale: str
) -> tuple[str, list[object]]:
    """Return the SELECT of the ids of sources that may serve, and its parameters.

    ``stale`` is "exclude" (fresh sources only), "include" (fresh and stale) or "only" (the stale ones).
    """
    today = timezone.localdate()
    where = [
        "status = %s",
        "(retire_after IS NULL OR retire_after > %s)",
        "audience = ANY(%s)",
    ]
    params: list[object] = [SourceStatus.APPROVED, today, list(VISIBLE_AUDIENCES[audience])]
    if stale == "exclude":
        where.append("stale_on > %s")
        params.append(today)
    elif stale == "only":
        where.append("stale_on <= %s")
        params.append(today)
    if products:
        where.append("(cardinality(products) = 0 OR products && %s::varchar[])")
        params.append(list(products))
    if source_ids is not None:
        where.append("id = ANY(%s)")
        params.append(list(source_ids))
    return "SELECT id FROM knowledge_knowledgesource WHERE " + " AND ".join(where), params


def _prepare(
    cursor,  # type: ignore[no-untyped-def]
    query: str,
    *,
    audience: str,
    products: Sequence[str] | None,
    source_ids: Collection[int] | None,
    tuning: Tuning,
    method: str = HYBRID,
) -> _Prepared:
    """Set the transaction's search settings, resolve the serving sources and parse the query, in one round trip.

    The source ids then reach the candidate queries as a constant array: with a constant the planner estimates
    from the column statistics how many chunks they hold, and chooses the HNSW index when they are most of the
    table and an exact scan of the few when they are not (an ``= ANY(ARRAY(subquery))`` hides that from it).
    The tsqueries come back as text and go in as constants for the same reason, and so that they are parsed once
    rather than once per row ranked.
    """
    started = time.perf_counter()
    policy = stale_policy()
    serving_sql, serving_params = _serving_sources_sql(
        audience=audience,
        products=products,
        source_ids=source_ids,
        stale="include" if policy == "downrank" else "exclude",
    )
    stale_sql, stale_params = "SELECT NULL::bigint WHERE false", []
    if policy == "downrank":
        stale_sql, stale_params = _serving_sources_sql(
            audience=audience, products=products, source_ids=source_ids, stale="only"
        )
    loose = loose_query_text(query)
    cursor.execute(
        # hnsw.iterative_scan (pgvector 0.8): when the WHERE clause rejects rows found by the index, keep walking
        # the graph instead of returning fewer than LIMIT rows; relaxed_order may return them slightly out of
        # order, which does not matter as every candidate is re-scored in Python. JIT compilation (on by default
        # here) costs more than the whole query at these sizes.
        f"""
        SELECT set_config('hnsw.ef_search', %s, true),
               set_config('hnsw.iterative_scan', 'relaxed_order', true),
               set_config('jit', 'off', true),
               to_tsquery(%s::regconfig, %s)::text,
               websearch_to_tsquery(%s::regconfig, %s)::text,
               ARRAY({serving_sql}),
               ARRAY({stale_sql})
        """,
        [str(tuning.ef_search), TS_CONFIG, loose, TS_CONFIG, query, *serving_params, *stale_params],
    )
    *_, loose_tsquery, strict_tsquery, serving, stale = cursor.fetchone()
    # The OR query selects the full-text candidates (a chunk that matches every word matches one of them;
    # websearch's own query adds rows only when it negates a word, "-fee", which customers do not type), with its
    # most common words left out at scale; every candidate is still *ranked* with all the words. Pruned to nothing,
    # there is no full-text candidate query.
    either = loose_tsquery
    if tuning.rank_budget:
        either = prune_common_terms(
            loose_tsquery, _term_frequencies(cursor), tuning.rank_budget, keep_rarest=method == FULLTEXT
        )
    return _Prepared(
        source_ids=list(serving),
        stale_source_ids={s for s in stale if s is not None},
        loose=loose_tsquery,
        strict=strict_tsquery,
        either=either,
        timings={"prepare": _ms_since(started)},
    )


@dataclass(frozen=True)
class TermFrequencies:
    """How many chunks there are and the share of them holding each common lexeme (PostgreSQL's statistics)."""

    rows: float
    share: dict[str, float]
    floor: float  # the share assumed for a lexeme that is not among the common ones

    def expected_matches(self, lexemes: Iterable[str]) -> float:
        missing = 1.0
        for lexeme in lexemes:
            missing *= 1.0 - self.share.get(lexeme, self.floor)
        return self.rows * (1.0 - missing)


_TERM_FREQUENCIES: tuple[float, TermFrequencies | None] = (0.0, None)
TERM_FREQUENCIES_TTL = 300.0  # seconds; ANALYZE (autovacuum) refreshes the statistics themselves
_LEXEME = re.compile(r"'((?:[^']|'')*)'")


def _term_frequencies(cursor) -> TermFrequencies | None:  # type: ignore[no-untyped-def]
    """Return the chunks' lexeme statistics (``pg_stats.most_common_elems``), cached per process for a while.

    ANALYZE keeps, for a tsvector column, the lexemes found in the most rows and the share of rows holding each
    (then the minimum and maximum of those shares, then the share of nulls). None before the first ANALYZE.
    """
    global _TERM_FREQUENCIES
    fetched_at, cached = _TERM_FREQUENCIES
    if time.monotonic() - fetched_at < TERM_FREQUENCIES_TTL:
        return cached
    cursor.execute(
        """
        SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples
        FROM pg_class c LEFT JOIN pg_stats s
          ON s.schemaname = current_schema() AND s.tablename = c.relname AND s.attname = 'search_vector'
        WHERE c.oid = 'knowledge_chunk'::regclass
        """
    )
    lexemes, shares, rows = cursor.fetchone()
    cached = None
    if lexemes and shares and rows and rows > 0:
        cached = TermFrequencies(
            rows=float(rows), share=dict(zip(lexemes, shares[: len(lexemes)], strict=True)), floor=float(shares[-3])
        )
    _TERM_FREQUENCIES = (time.monotonic(), cached)
    return cached


def prune_common_terms(
    loose_tsquery: str, frequencies: TermFrequencies | None, budget: int, *, keep_rarest: bool = False
) -> str:
    """Keep the query's rarest lexemes while the chunks expected to match fit ``budget``.

    When not even the rarest fits, return "" (no full-text candidate query: the dense candidates still carry the
    full-text rank), or that rarest lexeme alone with ``keep_rarest`` (the full-text-only method needs candidates;
    the matching rows are then capped, see _fulltext).

    ts_rank_cd costs a few microseconds per matching row: at 100k chunks a question with "account" in it would rank
    a third of the table. Only which rows become full-text candidates is pruned (rarest words first: an IDF cut,
    with the planner's own statistics as document frequencies); the candidates are ranked with every word, and the
    dense candidates are ranked by full text whatever their words. Pruning the ranking too lost 0.06 MRR on the
    banking DEV tasks, whose rarest words are the customer's name and numbers.
    """
    if frequencies is None or not loose_tsquery:
        return loose_tsquery
    lexemes = [match.replace("''", "'") for match in _LEXEME.findall(loose_tsquery)]
    if _LEXEME.sub("", loose_tsquery).replace("|", "").strip():
        return loose_tsquery  # not a plain OR of lexemes (a word the parser split into a phrase): leave it
    kept: list[str] = []
    for lexeme in sorted(dict.fromkeys(lexemes), key=lambda lex: frequencies.share.get(lex, frequencies.floor)):
        if frequencies.expected_matches([*kept, lexeme]) > budget:
            if not kept and keep_rarest:
                kept.append(lexeme)
            break
        kept.append(lexeme)
    if len(kept) == len(set(lexemes)):
        return loose_tsquery
    return " | ".join("'" + lexeme.replace("'", "''") + "'" for lexeme in kept)


def _vector_literal(vector: np.ndarray) -> str:
    # tolist() makes the Python floats in one call: the same text as repr(float(x)) per element, a little faster
    # (0.28 -> 0.23 ms for 384 dimensions here).
    return "[" + ",".join(map(repr, vector.tolist())) + "]"


# ts_rank_cd(weights, vector, query, normalization); a chunk without a search_vector ranks 0.
RANK_SQL = "coalesce(ts_rank_cd(%(label_weights)s::float4[], c.search_vector, %(loose)s::tsquery, %(norm)s), 0)"


def _common_params(prepared: _Prepared, tuning: Tuning) -> dict[str, object]:
    return {
        "sources": prepared.source_ids,
        "loose": prepared.loose,
        "strict": prepared.strict,
        "either": prepared.either,
        "label_weights": list(tuning.label_weights),
        "norm": tuning.rank_normalization,
        "n": tuning.candidates,
    }


def _dense(cursor, vector: np.ndarray, prepared: _Prepared, tuning: Tuning) -> list[Candidate]:  # type: ignore[no-untyped-def]
    """Return the nearest chunks by cosine distance (HNSW), each also ranked by full text."""
    cursor.execute(
        f"""
        SELECT c.id, c.document_id, c.source_id, c.embedding <=> %(vector)s::vector AS distance,
               {RANK_SQL} AS rank,
               coalesce(c.search_vector @@ %(strict)s::tsquery, false) AS strict
        FROM knowledge_chunk c
        WHERE c.source_id = ANY(%(sources)s::bigint[])
        ORDER BY c.embedding <=> %(vector)s::vector
        LIMIT %(n)s
        """,
        {**_common_params(prepared, tuning), "vector": _vector_literal(vector)},
    )
    return [_candidate(row, prepared) for row in cursor.fetchall()]


def _fulltext(cursor, vector: np.ndarray | None, prepared: _Prepared, tuning: Tuning) -> list[Candidate]:  # type: ignore[no-untyped-def]
    """Return the chunks best ranked by full text (GIN), each also measured by cosine when there is a vector.

    The cosine is computed after the LIMIT (the outer join), for ``candidates`` rows, not for every match.
    """
    distance = "c.embedding <=> %(vector)s::vector" if vector is not None else "NULL::float8"
    cursor.execute(
        # The innermost LIMIT bounds the rows ranked when the statistics underestimate the matches (or the
        # full-text method kept a common word); like OFFSET 0 it also keeps that query from being flattened into
        # the ORDER BY, which would compute ts_rank_cd once per reference to it. Rows come back best first.
        f"""
        SELECT t.id, t.document_id, t.source_id, {distance} AS distance, t.rank, t.strict
        FROM (
            SELECT m.*, m.rank / (m.rank + %(half)s) + CASE WHEN m.strict THEN %(bonus)s ELSE 0 END AS score
            FROM (
                SELECT c.id, c.document_id, c.source_id, {RANK_SQL} AS rank,
                       c.search_vector @@ %(strict)s::tsquery AS strict
                FROM knowledge_chunk c
                WHERE c.search_vector @@ %(either)s::tsquery AND c.source_id = ANY(%(sources)s::bigint[])
                LIMIT %(cap)s
            ) m
            ORDER BY score DESC, m.id
            LIMIT %(n)s
        ) t
        JOIN knowledge_chunk c ON c.id = t.id
        ORDER BY t.score DESC, t.id
        """,
        {
            **_common_params(prepared, tuning),
            "vector": _vector_literal(vector) if vector is not None else None,
            "half": tuning.rank_half,
            "bonus": tuning.strict_bonus,
            "cap": 2 * tuning.rank_budget if tuning.rank_budget else None,
        },
    )
    return [_candidate(row, prepared) for row in cursor.fetchall()]


def _candidate(row: tuple, prepared: _Prepared) -> Candidate:  # type: ignore[type-arg]
    chunk_id, document_id, source_id, distance, rank, strict = row
    return Candidate(
        chunk_id=chunk_id,
        document_id=document_id,
        source_id=source_id,
        similarity=None if distance is None else 1.0 - float(distance),
        rank=float(rank),
        strict=bool(strict),
        stale=source_id in prepared.stale_source_ids,
    )


# --- Fusion (pure) ------------------------------------------------------------------------------------------------


def fulltext_score(candidate: Candidate, tuning: Tuning = DEFAULT_TUNING) -> float:
    """Squash ts_rank_cd to [0, 1) and add the all-words bonus."""
    squashed = candidate.rank / (candidate.rank + tuning.rank_half) if candidate.rank > 0 else 0.0
    return squashed + (tuning.strict_bonus if candidate.strict else 0.0)


def chunk_scores(candidates: Sequence[Candidate], *, method: str, tuning: Tuning = DEFAULT_TUNING) -> list[float]:
    """Score each candidate for ``method`` (same order as ``candidates``)."""
    if method == DENSE:
        scores = [c.similarity if c.similarity is not None else 0.0 for c in candidates]
    elif method == FULLTEXT:
        scores = [fulltext_score(c, tuning) for c in candidates]
    else:
        scores = [
            tuning.dense_weight * (c.similarity if c.similarity is not None else 0.0)
            + tuning.fulltext_weight * fulltext_score(c, tuning)
            for c in candidates
        ]
    return [s * STALE_FACTOR if c.stale else s for c, s in zip(candidates, scores, strict=True)]


def rank_documents(
    candidates: Iterable[Candidate], *, method: str, tuning: Tuning = DEFAULT_TUNING
) -> list[tuple[Candidate, float]]:
    """Collapse scored chunks to documents: each document as its best chunk, best document first."""
    candidates = list(candidates)
    scores = chunk_scores(candidates, method=method, tuning=tuning)
    per_document: dict[int, list[tuple[float, Candidate]]] = {}
    for candidate, score in zip(candidates, scores, strict=True):
        per_document.setdefault(candidate.document_id, []).append((score, candidate))
    ranked: list[tuple[Candidate, float]] = []
    for chunks in per_document.values():
        best = min(chunks, key=lambda pair: (-pair[0], pair[1].chunk_id))
        ranked.append((best[1], best[0]))
    ranked.sort(key=lambda pair: (-pair[1], pair[0].chunk_id))
    return ranked


# --- Hits ---------------------------------------------------------------------------------------------------------


def _hits(ranked: Sequence[tuple[Candidate, float]], tuning: Tuning) -> list[Hit]:
    """Load the text and citation of the ranked chunks (one query; raw SQL, as the ORM doubled its cost)."""
    if not ranked:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.id, c.text, c.heading_path, d.title, d.url, d.version, s.name, s.last_reviewed_on
            FROM knowledge_chunk c
            JOIN knowledge_document d ON d.id = c.document_id
            JOIN knowledge_knowledgesource s ON s.id = c.source_id
            WHERE c.id = ANY(%s::bigint[])
            """,
            [[candidate.chunk_id for candidate, _ in ranked]],
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
    hits = []
    for candidate, score in ranked:
        if candidate.chunk_id not in rows:  # re-ingested between the candidate query and this one
            continue
        text, heading_path, title, url, version, source_name, last_reviewed = rows[candidate.chunk_id]
        hits.append(
            Hit(
                chunk_id=candidate.chunk_id,
                document_id=candidate.document_id,
                source_id=candidate.source_id,
                score=score,
                text=text,
                heading_path=heading_path,
                citation=Citation(
                    source=source_name,
                    source_id=candidate.source_id,
                    document_title=title,
                    url=url,
                    section=heading_path,
                    last_reviewed=_iso(last_reviewed),
                    version=version,
                ),
                similarity=candidate.similarity,
                fulltext_score=fulltext_score(candidate, tuning),
                stale=candidate.stale,
            )
        )
    return hits


def _iso(day: date | None) -> str:
    return day.isoformat() if day else ""


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
