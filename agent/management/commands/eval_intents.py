"""Measure the embedded responder's intent router on a public dataset.

    python manage.py eval_intents --dataset clinc150 --path .../clinc150/data/data_full.json [--split dev|test]
    python manage.py eval_intents --dataset banking77 --path .../banking77/banking_data
    python manage.py eval_intents --dataset bitext --path .../Bitext_Sample_Customer_Support_Training_Dataset.csv

CLINC150 and BANKING77: the router's example table is the dataset's TRAIN split (an in-memory table, never Intent
rows), optionally ``--shots N`` examples per intent (sampled with ``--seed``) to match the size of an intent an admin
configures. TOP_K and the out-of-scope threshold are chosen on DEV, then the report is on ``--split`` (test by
default): in-scope accuracy (a rejected in-scope query counts as wrong), closed-set accuracy (no threshold), macro-F1
over the in-scope intents, OOS recall and the in-scope false-positive rate (in-scope queries rejected as out of
scope), both at the DEV-tuned threshold and with the product's own settings (TOP_K, router.default_threshold). The
DEV threshold is the highest whose in-scope false-positive rate on DEV is at most ``--target-fpr`` (5%, eval README
section 3). Calibration: a logistic fit of "routing right" on score and margin over DEV, and the expected calibration
error of the product's CALIBRATION.

Splits (eval README section 4): CLINC150 DEV = val + oos_val, TEST = test + oos_test (train is the table, oos_train is
not used); BANKING77 DEV = 10% of train, stratified, seed 0 (the rest is the table), TEST = test (no out-of-scope
queries, so only in-scope figures and the share the default threshold would reject); Bitext has no split of its own:
DEV = rows at even 0-based positions, TEST = odd.

Bitext: the table is the demo company's intents (agent.demo), routed with their configured thresholds; Bitext's
intents are mapped onto them by BITEXT_TO_DEMO below. Reported: accuracy on the mapped rows, recall of the human
route for contact_human_agent (and contact_customer_service), and how often rows with no demo intent (cancel an order,
leave a review...) were sent to an action or a person instead of the knowledge route.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agent.responders.router import (
    CALIBRATION,
    THRESHOLD_BASE,
    THRESHOLD_PER_DOUBLING,
    TOP_K,
    IntentSpec,
    IntentTable,
)
from knowledge.embeddings import get_embedder

OOS = "oos"
K_CANDIDATES = (1, 2, 3, 5)
ROUTED_ELSEWHERE = {"action", "human", "verify"}

# Bitext (27 intents) → the demo intents (agent.demo) that are right for it, the first being the natural one. Empty:
# the demo company has no such intent, and the right behaviour is the knowledge route (try the help centre, else offer
# a person), never an action. A knowledge intent and "out of scope" are the same route (both search the help centre),
# so besides intent accuracy the report gives route accuracy. complaint is left out of both (README 2.2: it flags for
# QA, it is not a request); where complaints went is reported apart.
BITEXT_TO_DEMO: dict[str, tuple[str, ...]] = {
    "track_order": ("where_is_my_order",),
    # "when will my parcel arrive" is an order lookup as much as a delivery-times question.
    "delivery_period": ("shipping_info", "where_is_my_order"),
    "delivery_options": ("shipping_info",),
    "change_shipping_address": ("change_address",),
    "set_up_shipping_address": ("change_address", "account_help"),
    "get_refund": ("refund_request",),
    "track_refund": ("returns_info",),
    "check_refund_policy": ("returns_info",),
    "check_invoice": ("billing_help",),
    "get_invoice": ("billing_help",),
    "check_payment_methods": ("billing_help",),
    "payment_issue": ("billing_help",),
    "check_cancellation_fee": ("billing_help", "subscription_help"),
    "create_account": ("account_help",),
    "delete_account": ("account_help",),
    "edit_account": ("account_help",),
    "recover_password": ("account_help",),
    "registration_problems": ("account_help",),
    "switch_account": ("account_help",),
    "contact_human_agent": ("talk_to_human",),
    "contact_customer_service": ("talk_to_human",),
    "cancel_order": ("order_changes",),
    "change_order": ("order_changes",),
    "place_order": ("order_changes",),
    "newsletter_subscription": (),
    "review": (),
}
BITEXT_APART = ("complaint",)


# --- Datasets ------------------------------------------------------------------------------------------------------


def load_clinc(path: Path) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
    data = _read_json(path)
    try:
        train = [(t, label) for t, label in data["train"]]
        splits = {
            "dev": [(t, label) for t, label in data["val"]] + [(t, OOS) for t, _ in data["oos_val"]],
            "test": [(t, label) for t, label in data["test"]] + [(t, OOS) for t, _ in data["oos_test"]],
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"{path} is not CLINC150's data_full.json ({exc})") from None
    return train, splits


def load_banking(folder: Path) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]]]:
    train = _read_csv(folder / "train.csv", "text", "category")
    test = _read_csv(folder / "test.csv", "text", "category")
    # DEV: 10% of each category's train rows (rounded, at least one), drawn with random.Random(0) from the rows in
    # file order, categories in sorted order; the rest of train is the example table.
    rng = random.Random(0)
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, (_, label) in enumerate(train):
        by_label[label].append(index)
    dev_rows: set[int] = set()
    for label in sorted(by_label):
        indices = list(by_label[label])
        rng.shuffle(indices)
        dev_rows.update(indices[: max(1, round(len(indices) * 0.1))])
    pool = [row for index, row in enumerate(train) if index not in dev_rows]
    dev = [row for index, row in enumerate(train) if index in dev_rows]
    return pool, {"dev": dev, "test": test}


def load_bitext(path: Path) -> dict[str, list[tuple[str, str]]]:
    rows = _read_csv(path, "instruction", "intent")
    return {"dev": rows[0::2], "test": rows[1::2]}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None


def _read_csv(path: Path, text: str, label: str) -> list[tuple[str, str]]:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return [(row[text], row[label]) for row in csv.DictReader(handle)]
    except (OSError, KeyError) as exc:
        raise CommandError(f"cannot read {path} (columns {text}, {label}): {exc}") from None


def table_specs(pool: list[tuple[str, str]], *, shots: int | None, seed: int) -> list[IntentSpec]:
    """Return one knowledge-route intent per label with its examples (``shots`` of them, sampled, when given)."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in pool:
        by_label[label].append(text)
    rng = random.Random(seed)
    specs = []
    for label in sorted(by_label):
        examples = by_label[label]
        if shots is not None and len(examples) > shots:
            examples = rng.sample(examples, shots)
        specs.append(IntentSpec(name=label, route="knowledge", examples=tuple(examples)))
    return specs


# --- Embedding (with an optional on-disk cache for repeated runs) --------------------------------------------------


class Embed:
    def __init__(self, cache: Path | None) -> None:
        self.embedder = get_embedder()
        self.cache = cache
        self.seconds = 0.0
        self.count = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256("\x1e".join([self.embedder.model_id, *texts]).encode()).hexdigest()[:24]
        file = self.cache / f"{key}.npy" if self.cache else None
        if file is not None and file.exists():
            return np.load(file)
        started = time.perf_counter()
        vectors = self.embedder.embed(texts)
        self.seconds += time.perf_counter() - started
        self.count += len(texts)
        if file is not None:
            np.save(file, vectors)
        return vectors


# --- Metrics (pure) -------------------------------------------------------------------------------------------------


def threshold_at_fpr(in_scope_scores: np.ndarray, target: float) -> float:
    """Return the highest threshold that rejects at most ``target`` of the in-scope scores."""
    ordered = np.sort(in_scope_scores)
    return float(ordered[int(np.floor(target * len(ordered)))])


def macro_f1(gold: list[str], predicted: list[str], labels: list[str]) -> float:
    """Macro-F1 over ``labels`` (an OOS prediction of an in-scope query is a miss for its label)."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    scores = []
    for label in labels:
        denominator = 2 * tp[label] + fp[label] + fn[label]
        scores.append(2 * tp[label] / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def fit_platt(features: np.ndarray, labels: np.ndarray, *, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method: weights for ``features`` (with a bias column appended) → P(label)."""
    x = np.hstack([features, np.ones((features.shape[0], 1))]).astype(np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - labels) + l2 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        mask = (probabilities >= low) & ((probabilities < high) | (high == 1.0))
        if mask.any():
            error += mask.mean() * abs(probabilities[mask].mean() - labels[mask].mean())
    return float(error)


def _sigmoid(weights: tuple[float, ...] | np.ndarray, score: np.ndarray, margin: np.ndarray) -> np.ndarray:
    a, b, c = weights
    return 1.0 / (1.0 + np.exp(-(a * score + b * margin + c)))


class Scored:
    """The router's view of a list of queries: best intent, its score and margin, under one TOP_K."""

    def __init__(self, table: IntentTable, vectors: np.ndarray, gold: list[str], top_k: int) -> None:
        scores = table.scores(vectors, top_k=top_k)
        order = np.argsort(-scores, axis=1)
        rows = np.arange(len(gold))
        self.best = scores[rows, order[:, 0]]
        self.margin = self.best - (scores[rows, order[:, 1]] if scores.shape[1] > 1 else 0.0)
        self.names = [table.intents[int(i)].name for i in order[:, 0]]
        self.thresholds = table.thresholds[order[:, 0]]
        self.gold = gold
        self.in_scope = np.array([g != OOS for g in gold])

    def predictions(self, threshold: float | None) -> list[str]:
        """Return the predicted labels, OOS where the score is under ``threshold`` (None: each intent's own)."""
        limits = self.thresholds if threshold is None else np.full(len(self.best), threshold)
        return [
            name if score >= limit else OOS for name, score, limit in zip(self.names, self.best, limits, strict=True)
        ]

    def report(self, threshold: float | None, labels: list[str]) -> dict[str, float]:
        predicted = self.predictions(threshold)
        gold_in = [g for g, i in zip(self.gold, self.in_scope, strict=True) if i]
        pred_in = [p for p, i in zip(predicted, self.in_scope, strict=True) if i]
        names_in = [n for n, i in zip(self.names, self.in_scope, strict=True) if i]
        out = {
            "in_scope_accuracy": _share(p == g for p, g in zip(pred_in, gold_in, strict=True)),
            "closed_set_accuracy": _share(n == g for n, g in zip(names_in, gold_in, strict=True)),
            "macro_f1": macro_f1(self.gold, predicted, labels),
            "in_scope_fpr": _share(p == OOS for p in pred_in),
        }
        if not self.in_scope.all():
            out["oos_recall"] = _share(p == OOS for p, i in zip(predicted, self.in_scope, strict=True) if not i)
        return out

    def correct(self) -> np.ndarray:
        """1 where routing to the best intent is right (an OOS query is never rightly routed to an intent)."""
        return np.array([float(n == g) for n, g in zip(self.names, self.gold, strict=True)])


def _share(flags: Any) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


# --- The command ------------------------------------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Measure the embedded intent router on CLINC150, BANKING77 or Bitext (docs/benchmarks.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, choices=["clinc150", "banking77", "bitext"])
        parser.add_argument("--path", required=True, type=Path, help="data_full.json, banking_data/ or the Bitext CSV")
        parser.add_argument("--split", choices=["dev", "test"], default="test", help="what to report on")
        parser.add_argument("--shots", type=int, default=None, help="examples per intent in the table (default: all)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the --shots sample")
        parser.add_argument("--top-k", type=int, default=None, help="fix TOP_K instead of choosing it on DEV")
        parser.add_argument("--target-fpr", type=float, default=0.05)
        parser.add_argument("--cache", type=Path, default=None, help="folder to keep embeddings in between runs")
        parser.add_argument("--errors", type=int, default=0, help="print this many misrouted queries (DEV only)")
        parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        for name in ("path", "cache", "json"):  # call_command passes keyword options as given, not through type=
            if options[name] is not None:
                options[name] = Path(options[name])
        if options["errors"] and options["split"] != "dev":
            raise CommandError("--errors shows DEV mistakes only: looking at TEST mistakes would be tuning on TEST.")
        if options["cache"]:
            options["cache"].mkdir(parents=True, exist_ok=True)
        embed = Embed(options["cache"])
        started = time.perf_counter()
        run = self._bitext if options["dataset"] == "bitext" else self._benchmark
        report = run(embed, options)
        report.update(
            embedding_model=embed.embedder.model_id,
            embedded_texts=embed.count,
            embedding_seconds=round(embed.seconds, 1),
            seconds=round(time.perf_counter() - started, 1),
            product_constants={
                "TOP_K": TOP_K,
                "THRESHOLD_BASE": THRESHOLD_BASE,
                "THRESHOLD_PER_DOUBLING": THRESHOLD_PER_DOUBLING,
                "CALIBRATION": CALIBRATION,
            },
        )
        self.stdout.write(json.dumps(report, indent=2))
        if options["json"]:
            options["json"].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    def _benchmark(self, embed: Embed, options: dict[str, Any]) -> dict[str, Any]:
        path = options["path"]
        pool, splits = load_clinc(path) if options["dataset"] == "clinc150" else load_banking(path)
        specs = table_specs(pool, shots=options["shots"], seed=options["seed"])
        table = IntentTable.build(specs, embed)
        labels = [spec.name for spec in specs]
        dev_gold = [label for _, label in splits["dev"]]
        dev_vectors = embed([text for text, _ in splits["dev"]])
        has_oos = OOS in dev_gold

        # DEV: choose TOP_K by closed-set accuracy plus, where there are OOS queries, OOS recall at the target FPR.
        choices = {}
        for k in K_CANDIDATES if options["top_k"] is None else (options["top_k"],):
            scored = Scored(table, dev_vectors, dev_gold, k)
            threshold = threshold_at_fpr(scored.best[scored.in_scope], options["target_fpr"])
            choices[k] = {"threshold": round(threshold, 4), **_rounded(scored.report(threshold, labels))}
        best_k = max(choices, key=lambda k: choices[k]["closed_set_accuracy"] + choices[k].get("oos_recall", 0.0))
        dev = Scored(table, dev_vectors, dev_gold, best_k)
        threshold = choices[best_k]["threshold"]
        weights = fit_platt(np.column_stack([dev.best, dev.margin]), dev.correct())

        split = options["split"]
        gold = [label for _, label in splits[split]]
        vectors = dev_vectors if split == "dev" else embed([text for text, _ in splits[split]])
        scored = Scored(table, vectors, gold, best_k)
        at_default = Scored(table, vectors, gold, TOP_K) if best_k != TOP_K else scored
        self._errors(dev, options["errors"], splits["dev"])
        correct = at_default.correct()
        return {
            "dataset": options["dataset"],
            "path": str(path),
            "split": split,
            "table": {"intents": len(table), "examples": int(table.vectors.shape[0]), "shots": options["shots"]},
            "queries": {"total": len(gold), "out_of_scope": int((~scored.in_scope).sum())},
            "dev_choices": {str(k): v for k, v in choices.items()},
            "chosen": {"top_k": best_k, "threshold": threshold, "calibration": [round(float(w), 3) for w in weights]},
            "at_dev_threshold": _rounded(scored.report(threshold, labels)),
            "at_product_default": {
                "top_k": TOP_K,
                "thresholds": sorted({round(float(t), 4) for t in table.thresholds})[:5],
                **_rounded(at_default.report(None, labels)),
                "calibration_ece": round(
                    expected_calibration_error(_sigmoid(CALIBRATION, at_default.best, at_default.margin), correct), 4
                ),
                "calibration_ece_dev_fit": round(
                    expected_calibration_error(_sigmoid(weights, at_default.best, at_default.margin), correct), 4
                ),
            },
            "has_out_of_scope": has_oos,
        }

    def _bitext(self, embed: Embed, options: dict[str, Any]) -> dict[str, Any]:
        from agent.demo import intent_specs

        rows = load_bitext(options["path"])[options["split"]]
        specs = intent_specs()
        table = IntentTable.build(specs, embed)
        routes = {spec.name: spec.route for spec in specs}
        unknown = {label for _, label in rows} - set(BITEXT_TO_DEMO) - set(BITEXT_APART)
        if unknown:
            raise CommandError(f"Bitext intents without a mapping: {', '.join(sorted(unknown))}")
        top_k = options["top_k"] or TOP_K
        gold = [(BITEXT_TO_DEMO.get(label) or (OOS,))[0] for _, label in rows]
        scored = Scored(table, embed([text for text, _ in rows]), gold, top_k)
        predicted = scored.predictions(None)

        def right(index: int) -> bool:
            return predicted[index] in BITEXT_TO_DEMO[rows[index][1]]

        def route(name: str) -> str:
            return routes.get(name, "knowledge")  # out of scope searches the help centre, as a knowledge intent does

        def right_route(index: int) -> bool:
            wanted = {route(name) for name in BITEXT_TO_DEMO[rows[index][1]]} or {"knowledge"}
            return route(predicted[index]) in wanted

        per_label: dict[str, Counter[str]] = defaultdict(Counter)
        for (_, label), p in zip(rows, predicted, strict=True):
            per_label[label][p] += 1
        scored_rows = [i for i, (_, label) in enumerate(rows) if label in BITEXT_TO_DEMO]
        mapped = [i for i in scored_rows if BITEXT_TO_DEMO[rows[i][1]]]
        unmapped = [i for i in scored_rows if not BITEXT_TO_DEMO[rows[i][1]]]

        def recall(label: str, target: str) -> float:
            counts = per_label[label]
            return counts[target] / sum(counts.values()) if counts else 0.0

        if options["errors"]:
            mistakes = [(rows[i][0], rows[i][1], predicted[i]) for i in scored_rows if not right_route(i)]
            for text, label, p in mistakes[: options["errors"]]:
                self.stderr.write(f"{label:>26} → {p:<20} {text}")
        return {
            "dataset": "bitext",
            "path": str(options["path"]),
            "split": options["split"],
            "table": {"intents": len(table), "examples": int(table.vectors.shape[0]), "source": "agent.demo"},
            "top_k": top_k,
            "rows": len(rows),
            "scored_rows": len(scored_rows),
            "route_accuracy": round(_share(right_route(i) for i in scored_rows), 4),
            "mapped_rows": len(mapped),
            "mapped_intent_accuracy": round(_share(right(i) for i in mapped), 4),
            "human_recall_contact_human_agent": round(recall("contact_human_agent", "talk_to_human"), 4),
            "human_recall_contact_customer_service": round(recall("contact_customer_service", "talk_to_human"), 4),
            "unmapped_rows": len(unmapped),
            "unmapped_sent_to_action_or_person": round(
                _share(routes.get(predicted[i]) in ROUTED_ELSEWHERE for i in unmapped), 4
            ),
            "sent_to_a_wrong_action_or_person": round(
                _share(not right(i) and routes.get(predicted[i]) in ROUTED_ELSEWHERE for i in scored_rows), 4
            ),
            "complaint_routes": dict(per_label["complaint"].most_common()),
            "per_bitext_intent": {
                label: {"n": sum(c.values()), "top": c.most_common(3)} for label, c in sorted(per_label.items())
            },
        }

    def _errors(self, dev: Scored, count: int, rows: list[tuple[str, str]]) -> None:
        if not count:
            return
        shown = 0
        for (text, label), name, score in zip(rows, dev.names, dev.best, strict=True):
            if name != label and shown < count:
                self.stderr.write(f"{label:>28} → {name:<28} {score:.3f} {text}")
                shown += 1


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in values.items()}
