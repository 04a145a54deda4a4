"""Tune retrieval on DEV query sets: candidate depth, full-text weighting, fusion and document aggregation.

    python bench/throwaway_db.py -- .venv/bin/python bench/tune_retrieval.py \
        --dataset stackfaq=/tmp/steward-bench/stackfaq/corpus:/tmp/steward-bench/stackfaq/dev.jsonl \
        --dataset banking=/tmp/steward-bench/tau2-banking/corpus:/tmp/steward-bench/tau2-banking/dev.jsonl \
        [--out /tmp/steward-bench/tune.json]

DEV sets only (never pass a TEST file). Each corpus is ingested once into a throw-away source; each query is
embedded once; the candidate SQL (knowledge.retrieval's own queries) runs once per full-text setting with the
deepest candidate list, and every fusion variant is then scored in Python on those candidates (a shallower depth is
simulated by cutting each retriever's list). Prints the single methods, the variants the issue asked about, the best
variants under the acceptance rule (hybrid at least as good as the best single method on recall@5 and MRR on every
dataset), and the failed-retrieval threshold analysis (best score with the relevant documents indexed vs. removed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import statistics
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from knowledge import retrieval  # noqa: E402
from knowledge.embeddings import get_embedder  # noqa: E402
from knowledge.management.commands.eval_retrieval import (  # noqa: E402
    EvalQuery,
    Ingested,
    ingest,
    load_corpus,
    load_queries,
    throwaway_source,
)
from knowledge.models import Audience  # noqa: E402
from knowledge.retrieval import Candidate, Tuning  # noqa: E402

MAX_DEPTH = 80
_STACK = ExitStack()  # the throw-away sources, deleted at exit
LABEL_WEIGHTS = {
    "pg-default(D.1,C.2,B.4,A1)": (0.1, 0.2, 0.4, 1.0),
    # title-down is the module's default
    "text-up(D.1,C.4,B.4,A1)": (0.1, 0.4, 0.4, 1.0),
    "title-down(D.1,C.2,B.3,A.5)": (0.1, 0.2, 0.3, 0.5),
    "flat(D.1,C.3,B.3,A.4)": (0.1, 0.3, 0.3, 0.4),
}
NORMALIZATIONS = {"none(0)": 0, "log-length(1)": 1, "length(2)": 2}
MODULE_SQL = "title-down(D.1,C.2,B.3,A.5) log-length(1)"  # the module's label weights and normalization
# Full-text rank budgets (prune_common_terms). The DEV tables hold ~2,450 chunks: 1000 is 40% of them, 25 is 1%,
# the share a budget of 1,000 is of a 100k-chunk table.
RANK_BUDGETS = (1000, 100, 25)


@dataclass
class QueryCandidates:
    query: EvalQuery
    dense: list[Candidate]  # in the dense query's order
    fulltext: list[Candidate]  # in the full-text query's order


@dataclass
class Dataset:
    name: str
    external_ids: dict[int, str]
    by_sql: dict[str, list[QueryCandidates]]
    # The same queries against another dataset's corpus (the module's settings): questions the index cannot answer.
    offdomain: list[QueryCandidates]


def ingest_all(specs: list[tuple[str, Path, Path]]) -> dict[Path, Ingested]:
    """Ingest each distinct corpus once into a throw-away source, then ANALYZE (prune_common_terms reads it)."""
    sources: dict[Path, Ingested] = {}
    for _, corpus, _ in specs:
        key = corpus.resolve()
        if key not in sources:
            sources[key] = ingest(_STACK.enter_context(throwaway_source("tune")), load_corpus(corpus))
            print(
                f"{corpus}: {sources[key].documents} documents, {sources[key].chunks} chunks in "
                f"{sources[key].seconds:.0f} s",
                flush=True,
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")
    retrieval._TERM_FREQUENCIES = (0.0, None)
    return sources


def collect(name: str, ingested: Ingested, queries_path: Path, other: Ingested | None) -> Dataset:
    """Collect every query's candidates, once per full-text setting, with the deepest candidate lists."""
    queries = load_queries(queries_path)
    vectors = get_embedder().embed([q.query for q in queries])
    settings = {
        f"{wname} {nname}": Tuning(
            candidates=MAX_DEPTH, ef_search=2 * MAX_DEPTH, label_weights=weights, rank_normalization=norm, rank_budget=0
        )
        for (wname, weights), (nname, norm) in itertools.product(LABEL_WEIGHTS.items(), NORMALIZATIONS.items())
    }
    for budget in RANK_BUDGETS:
        settings[f"{MODULE_SQL} budget={budget}"] = replace(
            retrieval.DEFAULT_TUNING, candidates=MAX_DEPTH, ef_search=2 * MAX_DEPTH, rank_budget=budget
        )
    by_sql = {
        label: [
            _candidates(query, vector, ingested.source.pk, tuning)
            for query, vector in zip(queries, vectors, strict=True)
        ]
        for label, tuning in settings.items()
    }
    offdomain = []
    if other is not None:
        tuning = replace(retrieval.DEFAULT_TUNING, candidates=MAX_DEPTH, ef_search=2 * MAX_DEPTH)
        offdomain = [
            _candidates(query, vector, other.source.pk, tuning) for query, vector in zip(queries, vectors, strict=True)
        ]
    return Dataset(name=name, external_ids=ingested.external_ids, by_sql=by_sql, offdomain=offdomain)


def _candidates(query: EvalQuery, vector, source_id: int, tuning: Tuning) -> QueryCandidates:  # type: ignore[no-untyped-def]
    with transaction.atomic(), connection.cursor() as cursor:
        prepared = retrieval._prepare(
            cursor, query.query, audience=Audience.INTERNAL, products=None, source_ids=[source_id], tuning=tuning
        )
        dense = retrieval._dense(cursor, vector, prepared, tuning)
        fulltext = retrieval._fulltext(cursor, vector, prepared, tuning) if prepared.either else []
    return QueryCandidates(query=query, dense=dense, fulltext=fulltext)


# --- Fusion variants (the module keeps only the chosen one) ---------------------------------------------------------

Scorer = Callable[[Sequence[Candidate]], list[float]]


def weighted_sum(wf: float, half: float, bonus: float, normalise: bool = False) -> Scorer:
    def score(cands: Sequence[Candidate]) -> list[float]:
        t = Tuning(rank_half=half, strict_bonus=bonus)
        sims = [c.similarity or 0.0 for c in cands]
        fts = [retrieval.fulltext_score(c, t) for c in cands]
        if normalise:  # min-max within the query's candidates
            sims, fts = _minmax(sims), _minmax(fts)
        return [s + wf * f for s, f in zip(sims, fts, strict=True)]

    return score


def _minmax(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 0.0 for v in values]


def rrf(wd: float, wf: float, k: int) -> Scorer:
    """Reciprocal rank fusion over the union, weighted per list (Cormack et al. 2009, with weights)."""

    def score(cands: Sequence[Candidate]) -> list[float]:
        scores = [0.0] * len(cands)
        lists = (
            (wd, [c.similarity if c.similarity is not None else -1.0 for c in cands]),
            (wf, [c.rank if c.rank > 0 else -1.0 for c in cands]),
        )
        for weight, values in lists:
            order = sorted(range(len(cands)), key=lambda i: -values[i])
            for position, index in enumerate(order, start=1):
                if values[index] >= 0:
                    scores[index] += weight / (k + position)
        return scores

    return score


def dense_only(cands: Sequence[Candidate]) -> list[float]:
    return [c.similarity or 0.0 for c in cands]


def fulltext_only(half: float = 0.5, bonus: float = 0.1) -> Scorer:
    return lambda cands: [retrieval.fulltext_score(c, Tuning(rank_half=half, strict_bonus=bonus)) for c in cands]


def documents(cands: Sequence[Candidate], scores: list[float], second: float) -> list[tuple[int, float]]:
    per: dict[int, list[float]] = {}
    for c, s in zip(cands, scores, strict=True):
        per.setdefault(c.document_id, []).append(s)
    out = []
    for doc, values in per.items():
        values.sort(reverse=True)
        out.append((doc, values[0] + (second * values[1] if len(values) > 1 else 0.0)))
    out.sort(key=lambda p: -p[1])
    return out


def pool(qc: QueryCandidates, depth: int, which: str) -> list[Candidate]:
    if which == "dense":
        return qc.dense[:depth]
    if which == "fulltext":
        return qc.fulltext[:depth]
    seen: dict[int, Candidate] = {c.chunk_id: c for c in qc.dense[:depth]}
    for c in qc.fulltext[:depth]:
        seen.setdefault(c.chunk_id, c)
    return list(seen.values())


def evaluate(
    dataset: Dataset, sql: str, scorer: Scorer, *, depth: int, which: str, second: float = 0.0
) -> dict[str, float]:
    r1, r5, r10, mrr = [], [], [], []
    for qc in dataset.by_sql[sql]:
        cands = pool(qc, depth, which)
        ranked = [dataset.external_ids[d] for d, _ in documents(cands, scorer(cands), second)] if cands else []
        rel = qc.query.relevant
        r1.append(len(rel.intersection(ranked[:1])) / len(rel))
        r5.append(len(rel.intersection(ranked[:5])) / len(rel))
        r10.append(len(rel.intersection(ranked[:10])) / len(rel))
        mrr.append(next((1 / i for i, d in enumerate(ranked[:10], 1) if d in rel), 0.0))
    return {
        "recall@1": statistics.fmean(r1),
        "recall@5": statistics.fmean(r5),
        "recall@10": statistics.fmean(r10),
        "mrr": statistics.fmean(mrr),
    }


def _line(label: str, figures: dict[str, dict[str, float]]) -> str:
    cells = "  ".join(
        f"{name}: R@5 {f['recall@5']:.3f} MRR {f['mrr']:.3f} R@1 {f['recall@1']:.3f}" for name, f in figures.items()
    )
    return f"{label:<58} {cells}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", required=True, help="NAME=CORPUS_DIR:DEV_QUERIES.jsonl")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cache", type=Path, help="pickle of the collected candidates: written, or read if present")
    args = parser.parse_args(argv)
    if args.cache and args.cache.exists():
        with open(args.cache, "rb") as handle:
            return report_on(pickle.load(handle), args.out)
    specs = []
    for spec in args.dataset:
        name, _, paths = spec.partition("=")
        corpus, _, queries = paths.partition(":")
        if "test" in Path(queries).name.lower():
            raise SystemExit("tune on DEV only: a TEST query file was given")
        specs.append((name, Path(corpus), Path(queries)))
    with _STACK:
        sources = ingest_all(specs)
        datasets = []
        for name, corpus, queries in specs:
            others = [ingested for path, ingested in sources.items() if path != corpus.resolve()]
            datasets.append(collect(name, sources[corpus.resolve()], queries, others[0] if others else None))
    if args.cache:
        with open(args.cache, "wb") as handle:
            pickle.dump(datasets, handle)
    return report_on(datasets, args.out)


def report_on(datasets: list[Dataset], out: Path | None) -> int:
    base_sql = "pg-default(D.1,C.2,B.4,A1) log-length(1)"
    report: dict[str, object] = {}

    def run(label: str, sql: str, scorer: Scorer, depth: int, which: str, second: float = 0.0) -> dict:  # type: ignore[type-arg]
        figures = {d.name: evaluate(d, sql, scorer, depth=depth, which=which, second=second) for d in datasets}
        report[label] = figures
        return figures

    print("\n== Single methods (depth 80) ==")
    singles: dict[str, dict[str, dict[str, float]]] = {}
    singles["dense"] = run("dense", base_sql, dense_only, MAX_DEPTH, "dense")
    print(_line("dense", singles["dense"]))
    for sql in next(iter(datasets)).by_sql:
        for half, bonus in itertools.product((0.5,), (0.0, 0.1)):
            label = f"fulltext {sql} bonus {bonus}"
            figures = run(label, sql, fulltext_only(half, bonus), MAX_DEPTH, "fulltext")
            print(_line(label, figures))
            singles.setdefault("fulltext", figures)
            if sum(f["mrr"] for f in figures.values()) > sum(f["mrr"] for f in singles["fulltext"].values()):
                singles["fulltext"] = figures
    best_single = {
        d.name: {m: max(singles[s][d.name][m] for s in ("dense", "fulltext")) for m in ("recall@5", "mrr")}
        for d in datasets
    }

    print("\n== Named variants (depth 40 unless said) ==")
    named = {
        "RRF equal (k=60)": (base_sql, rrf(1, 1, 60), 40, 0.0),
        "RRF dense 1 / full text 0.5 (k=60)": (base_sql, rrf(1, 0.5, 60), 40, 0.0),
        "RRF dense 1 / full text 0.25 (k=60)": (base_sql, rrf(1, 0.25, 60), 40, 0.0),
        "RRF dense 1 / full text 0.25 (k=20)": (base_sql, rrf(1, 0.25, 20), 40, 0.0),
        "score: cos + 0.25 ft (pg weights, half 0.5)": (base_sql, weighted_sum(0.25, 0.5, 0.1), 40, 0.0),
        "score: same, min-max per query": (base_sql, weighted_sum(0.25, 0.5, 0.1, True), 40, 0.0),
        "score: cos + 1.0 ft (pg weights, half 0.5)": (base_sql, weighted_sum(1.0, 0.5, 0.1), 40, 0.0),
        "CHOSEN: cos + 0.5 ft (title-down, half 2), depth 20": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.0), 20, 0.0),
        "chosen, min-max per query": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.0, True), 20, 0.0),
        "chosen, pg default label weights": (base_sql, weighted_sum(0.5, 2.0, 0.0), 20, 0.0),
        "chosen, doc = best + 0.1 x second chunk": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.0), 20, 0.1),
        "chosen, all-words bonus 0.1": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.1), 20, 0.0),
        "chosen, depth 10": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.0), 10, 0.0),
        "chosen, depth 40": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.0), 40, 0.0),
        "chosen, depth 80": (MODULE_SQL, weighted_sum(0.5, 2.0, 0.0), 80, 0.0),
        **{
            f"chosen, rank budget {b}": (f"{MODULE_SQL} budget={b}", weighted_sum(0.5, 2.0, 0.0), 20, 0.0)
            for b in RANK_BUDGETS
        },
    }
    for label, (sql, scorer, depth, second) in named.items():
        print(_line(label, run(label, sql, scorer, depth, "hybrid", second)))

    print("\n== Grid (weighted sum) ==")
    grid = []
    for sql in [s for s in next(iter(datasets)).by_sql if "length(2)" not in s and "budget" not in s]:
        for wf, half, bonus, second, depth, norm in itertools.product(
            (0.3, 0.4, 0.5, 0.6, 0.75, 1.0),
            (1.0, 2.0, 3.0, 4.0),
            (0.0, 0.1),
            (0.0, 0.1),
            (20, 40),
            (False, True),
        ):
            scorer = weighted_sum(wf, half, bonus, norm)
            figures = {d.name: evaluate(d, sql, scorer, depth=depth, which="hybrid", second=second) for d in datasets}
            ok = all(figures[n][m] >= best_single[n][m] - 1e-9 for n in figures for m in ("recall@5", "mrr"))
            gain = sum(figures[n][m] / best_single[n][m] - 1 for n in figures for m in ("recall@5", "mrr"))
            grid.append(
                (
                    ok,
                    gain,
                    f"{sql} wf={wf} half={half} bonus={bonus} second={second} depth={depth} minmax={norm}",
                    figures,
                )
            )
    grid.sort(key=lambda row: (row[0], row[1]), reverse=True)
    for ok, gain, label, figures in grid[:25]:
        print(("OK " if ok else "-- ") + f"{gain:+.3f} " + _line(label, figures))
    report["grid_top"] = [{"ok": ok, "gain": gain, "label": label, "figures": f} for ok, gain, label, f in grid[:50]]

    print("\n== Module defaults ==")
    t = retrieval.DEFAULT_TUNING
    default_sql = f"{MODULE_SQL} budget={t.rank_budget}" if t.rank_budget else MODULE_SQL
    assert LABEL_WEIGHTS[MODULE_SQL.split()[0]] == t.label_weights and t.rank_normalization == 1
    module = {}
    for method in retrieval.METHODS:
        module[method] = {
            d.name: evaluate(
                d,
                default_sql,
                lambda c, m=method: retrieval.chunk_scores(c, method=m, tuning=t),
                depth=t.candidates,
                which={"dense": "dense", "fulltext": "fulltext", "hybrid": "hybrid"}[method],
            )
            for d in datasets
        }
        print(_line(f"module {method}", module[method]))
    report["module"] = module

    print("\n== Threshold: best document score with the relevant documents indexed vs removed ==")
    report["threshold"] = thresholds(datasets, default_sql, t)
    if out:
        out.write_text(json.dumps(report, indent=1))
    return 0


def thresholds(datasets: list[Dataset], sql: str, t: Tuning) -> dict[str, object]:
    out: dict[str, object] = {}
    for method in retrieval.METHODS:
        for d in datasets:
            present, absent = [], []
            for qc in d.by_sql[sql]:
                cands = pool(qc, t.candidates, {"dense": "dense", "fulltext": "fulltext"}.get(method, "hybrid"))
                ranked = retrieval.rank_documents(cands, method=method, tuning=t)
                if not ranked:
                    continue
                relevant = qc.query.relevant
                if d.external_ids[ranked[0][0].document_id] in relevant:
                    present.append(ranked[0][1])
                rest = [(c, s) for c, s in ranked if d.external_ids[c.document_id] not in relevant]
                if rest:
                    absent.append(rest[0][1])
            offdomain = []
            for qc in d.offdomain:
                cands = pool(qc, t.candidates, {"dense": "dense", "fulltext": "fulltext"}.get(method, "hybrid"))
                ranked = retrieval.rank_documents(cands, method=method, tuning=t)
                offdomain.append(ranked[0][1] if ranked else 0.0)
            best = None
            for cut in sorted(set(round(x, 3) for x in present + absent)):
                tpr = sum(p >= cut for p in present) / max(len(present), 1)
                tnr = sum(a < cut for a in absent) / max(len(absent), 1)
                if best is None or (tpr + tnr) / 2 > best[1]:
                    best = (cut, (tpr + tnr) / 2, tpr, tnr)
            pct = (
                {f"present_p{p}": retrieval_percentile(present, p) for p in (1, 2, 5, 10, 25, 50)}
                | {f"absent_p{p}": retrieval_percentile(absent, p) for p in (50, 75, 90, 95)}
                | {f"offdomain_p{p}": retrieval_percentile(offdomain, p) for p in (50, 90, 95, 99)}
            )
            cut = retrieval.FAILED_BELOW[method]
            at_module = {
                "threshold": cut,
                "answerable_passing": sum(p >= cut for p in present) / max(len(present), 1),
                "gold_removed_failing": sum(a < cut for a in absent) / max(len(absent), 1),
                "offdomain_failing": sum(o < cut for o in offdomain) / max(len(offdomain), 1),
            }
            out[f"{method} {d.name}"] = {"best_balanced": best, **pct, "module": at_module}
            print(
                f"{method:<9} {d.name:<10} balanced-best cut={best}  "
                + " ".join(f"{k}={v:.3f}" for k, v in pct.items())
                + "  at FAILED_BELOW: "
                + " ".join(f"{k}={v:.3f}" for k, v in at_module.items())
            )
    return out


def retrieval_percentile(values: list[float], pct: float) -> float:
    from knowledge.management.commands.eval_retrieval import percentile

    return percentile(values, pct)


if __name__ == "__main__":
    sys.exit(main())
