"""The embedded intent router: a table of example utterances per intent, scored by cosine similarity.

An intent's score for a text is the mean of its ``TOP_K`` most similar examples (cosine of L2-normalised MiniLM
embeddings); the best intent wins if its score reaches its threshold (the intent's own, or ``default_threshold`` of
its number of examples), otherwise the text is out of scope. ``confidence`` turns the winner's score and its margin
over the runner-up into a probability that the routing is right, by logistic (Platt) calibration.

The constants were chosen on DEV splits only, with ``manage.py eval_intents`` (docs/benchmarks.md, "Intent routing
(embedded responder)"): TOP_K on the CLINC150 and BANKING77 DEV splits, the threshold line and CALIBRATION on
CLINC150 DEV (val + oos_val), CALIBRATION with a 10-example-per-intent table, the size of an intent an admin writes.

The table used by the responder is built from the enabled Intent rows and cached per process under a fingerprint of
those rows (one query per turn reads it), so an admin's edit takes effect on the next turn of every worker.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection

from agent.models import Intent

TOP_K = 2
# The threshold of an intent without its own grows with its number of examples: more examples put the nearest ones
# nearer, for in-scope and out-of-scope texts alike. On CLINC150 DEV, the threshold that rejects 5% of in-scope
# queries was 0.366, 0.406, 0.448 and 0.528 with 5, 10, 20 and 100 examples per intent; this line in log2(examples)
# fits all four within 0.004. 8 examples give 0.394, 15 give 0.428.
THRESHOLD_BASE = 0.282
THRESHOLD_PER_DOUBLING = 0.0373
# logit(P(routing right)) = a * score + b * margin + c
CALIBRATION = (3.61, 20.37, -2.45)
QUERY_BATCH = 512  # queries scored at once (the similarity matrix of a batch is QUERY_BATCH x examples floats)


@dataclass(frozen=True)
class SlotSpec:
    """One slot of an intent: where its value comes from (a slots.PATTERNS name) and the question that asks it."""

    name: str
    pattern: str
    question: str
    required: bool = True
    label: str = ""  # how the agent names it ("the order number"); the slot name when empty

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SlotSpec:
        name = str(raw["name"])
        return cls(
            name=name,
            pattern=str(raw.get("pattern") or name),
            question=str(raw.get("question") or f"Could you tell me the {name.replace('_', ' ')}?"),
            required=bool(raw.get("required", True)),
            label=str(raw.get("label") or name.replace("_", " ")),
        )


@dataclass(frozen=True)
class IntentSpec:
    name: str
    route: str
    examples: tuple[str, ...]
    label: str = ""
    action: str = ""
    slots: tuple[SlotSpec, ...] = ()
    threshold: float | None = None

    @property
    def effective_threshold(self) -> float:
        return default_threshold(len(self.examples)) if self.threshold is None else self.threshold

    def slot(self, name: str) -> SlotSpec | None:
        return next((slot for slot in self.slots if slot.name == name), None)


@dataclass(frozen=True)
class Routing:
    """Where a text was routed: ``intent`` is None when no intent reached its threshold (out of scope)."""

    intent: IntentSpec | None
    best: IntentSpec | None  # the best-scoring intent, in scope or not
    score: float
    margin: float  # best score minus the runner-up's
    confidence: float
    ranked: list[tuple[str, float]] = field(default_factory=list)  # the top intents and their scores, for the trace


def default_threshold(examples: int) -> float:
    """Return the routing threshold of an intent with this many examples and no threshold of its own."""
    return THRESHOLD_BASE + THRESHOLD_PER_DOUBLING * math.log2(max(examples, 1))


def confidence(score: float, margin: float) -> float:
    """Return the calibrated probability that routing to an intent with this score and margin is right."""
    a, b, c = CALIBRATION
    return 1.0 / (1.0 + math.exp(-(a * score + b * margin + c)))


class IntentTable:
    """Intents and the embeddings of their examples, grouped so that each intent's examples are one block."""

    def __init__(self, intents: Sequence[IntentSpec], vectors: np.ndarray, *, fingerprint: str = "") -> None:
        self.intents = [intent for intent in intents if intent.examples]
        sizes = [len(intent.examples) for intent in self.intents]
        if vectors.shape[0] != sum(sizes):
            raise ValueError(f"{vectors.shape[0]} vectors for {sum(sizes)} examples")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.bounds = np.cumsum([0, *sizes])
        self.fingerprint = fingerprint
        self.by_name = {intent.name: intent for intent in self.intents}
        self.thresholds = np.array([intent.effective_threshold for intent in self.intents], dtype=np.float32)

    @classmethod
    def build(cls, intents: Sequence[IntentSpec], embed: Any, *, fingerprint: str = "") -> IntentTable:
        """Embed every example with ``embed(texts) -> matrix`` (an Embedder's ``embed``)."""
        intents = [intent for intent in intents if intent.examples]
        texts = [example for intent in intents for example in intent.examples]
        vectors = embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        return cls(intents, vectors, fingerprint=fingerprint)

    def __len__(self) -> int:
        return len(self.intents)

    def scores(self, queries: np.ndarray, *, top_k: int = TOP_K) -> np.ndarray:
        """Return the queries x intents scores: the mean cosine of each intent's ``top_k`` nearest examples."""
        out = np.empty((queries.shape[0], len(self.intents)), dtype=np.float32)
        for start in range(0, queries.shape[0], QUERY_BATCH):
            similarity = queries[start : start + QUERY_BATCH] @ self.vectors.T
            for column, (low, high) in enumerate(zip(self.bounds[:-1], self.bounds[1:], strict=True)):
                block = similarity[:, low:high]
                k = min(top_k, high - low)
                if k == 1:
                    out[start : start + QUERY_BATCH, column] = block.max(axis=1)
                else:
                    out[start : start + QUERY_BATCH, column] = np.partition(block, -k, axis=1)[:, -k:].mean(axis=1)
        return out

    def route(self, query: np.ndarray, *, exclude: Sequence[str] = ()) -> Routing:
        """Route one embedded text; intents named in ``exclude`` are left out of the contest."""
        if not self.intents:
            return Routing(intent=None, best=None, score=0.0, margin=0.0, confidence=0.0)
        row = self.scores(query.reshape(1, -1))[0]
        if exclude:
            row = row.copy()
            for index, intent in enumerate(self.intents):
                if intent.name in exclude:
                    row[index] = -1.0
        order = np.argsort(-row)
        best = int(order[0])
        score = float(row[best])
        margin = score - float(row[order[1]]) if len(order) > 1 else score
        spec = self.intents[best]
        return Routing(
            intent=spec if score >= spec.effective_threshold else None,
            best=spec,
            score=score,
            margin=margin,
            confidence=confidence(score, margin),
            ranked=[(self.intents[int(i)].name, round(float(row[int(i)]), 4)) for i in order[:3]],
        )


# --- The table of the configured intents ---------------------------------------------------------------------------

INTENTS_FINGERPRINT_SQL = f"""
    SELECT md5(coalesce(string_agg(
        concat_ws(chr(31), name, route, action, slots::text, threshold, array_to_string(examples, chr(30))),
        chr(29) ORDER BY name), ''))
    FROM {Intent._meta.db_table} WHERE enabled
"""
_cache: dict[str, IntentTable] = {}
_lock = threading.Lock()


def intents_fingerprint() -> str:
    """Return a digest of every enabled intent's routing fields (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(INTENTS_FINGERPRINT_SQL)
        return cursor.fetchone()[0]


def spec_from_row(intent: Intent) -> IntentSpec:
    return IntentSpec(
        name=intent.name,
        label=intent.label,
        route=intent.route,
        action=intent.action,
        examples=tuple(example.strip() for example in intent.examples if example.strip()),
        slots=tuple(SlotSpec.from_json(raw) for raw in intent.slots or [] if isinstance(raw, dict) and raw.get("name")),
        threshold=intent.threshold,
    )


def configured_table(embedder: Any, fingerprint: str | None = None) -> IntentTable:
    """Return the table of the enabled intents, rebuilt only when their rows or the embedding model changed.

    ``fingerprint``: ``INTENTS_FINGERPRINT_SQL``'s result when the caller read it already (the turn loop does, with
    its other reads); else it is read here.
    """
    key = f"{embedder.model_id}:{fingerprint or intents_fingerprint()}"
    table = _cache.get(key)
    if table is not None:
        return table
    with _lock:
        table = _cache.get(key)
        if table is None:
            specs = [spec_from_row(intent) for intent in Intent.objects.filter(enabled=True).order_by("name")]
            table = IntentTable.build(specs, embedder.embed, fingerprint=key.rsplit(":", 1)[1])
            _cache.clear()  # one table per process: the old one is never asked for again
            _cache[key] = table
    return table


def short_fingerprint(table: IntentTable) -> str:
    return f"intents:{table.fingerprint[:12]}"
