"""The embedded responder: no network, no key. Routes by example utterances, fills slots from validated patterns or
one clarifying question, and answers from the help centre only with quotes it can cite.

One turn:

1. Route. The latest customer text is embedded and scored against every enabled intent's examples (router.py). A
   bare answer ("BL-10042", "yes it's SUB-2001") is routed joined with the customer's previous message, so that it
   keeps the meaning of the question it answers.
2. A pending clarification comes first: if the agent asked for a slot last turn and this answer fills it, the asked
   intent goes on. If it does not, the customer either moved on (routed confidently to another intent) or the agent
   hands over, naming what it could not get: one question per slot, never a loop.
3. By route: smalltalk gets a short canned reply; human an Escalate; action and verify a ToolCall once the required
   slots are known (this turn's text first, then slots known from earlier turns), else a Clarify with the intent's
   question; knowledge, and anything out of scope, a search of the help centre composed into a cited answer
   (compose.py), or "I don't know" with the offer of a person.

It proposes a ToolCall whatever the customer's verification: governance decides, and the turn loop asks the customer
to verify when governance says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from redis.exceptions import RedisError

from agent.models import Route
from agent.responders import compose, slots
from agent.responders.base import (
    TALK_TO_PERSON,
    VERIFY_EMAIL_ACTION,
    Answer,
    Clarify,
    Escalate,
    Proposal,
    ToolCall,
    TurnContext,
)
from agent.responders.router import IntentSpec, IntentTable, Routing, configured_table, short_fingerprint
from governance.roles import Verification
from knowledge.embeddings import get_embedder
from knowledge.models import Chunk
from knowledge.retrieval import FAILED_BELOW, HYBRID, search

logger = logging.getLogger(__name__)

# A message is a bare answer when, without its identifiers, e-mails and amounts, this many words or fewer are left.
BARE_ANSWER_WORDS = 3
# A smalltalk route is only believed for short messages: "hi, where is my order BL-10042? it's been a week" is not
# a greeting.
SMALLTALK_MAX_WORDS = 6
SEARCH_K = 5
# Knowledge confidence: P(the passages answer the question) is 0.5 at the retrieval's failure threshold
# (knowledge.retrieval.FAILED_BELOW) and rises by this scale: +0.1 of hybrid score gives 0.73, +0.2 0.88. Anchored,
# not fitted: there is no labelled "answerable" set for the demo help centre (docs/agent/embedded-responder.md).
RETRIEVAL_SCALE = 0.1
# A confident knowledge intent is evidence that the question is on a topic the help centre covers: its routing
# log-odds are added, damped by this weight (the two signals are not independent).
INTENT_EVIDENCE = 0.5
ANSWER_THRESHOLD = 0.5  # below this knowledge confidence the agent says it does not know
SKIP_VALUE = "I don't have it"  # the choice under a question for an optional slot
ANSWERED_CONFIDENCE = 0.8  # floor of the confidence when a clarifying question was answered with a valid value

SMALLTALK = {
    "greeting": "Hello! How can I help you today?",
    "thanks": "You're welcome! Is there anything else I can help with?",
    "goodbye": "Thanks for getting in touch. Have a lovely day!",
}
SMALLTALK_FALLBACK = "Happy to help. What can I do for you?"
DONT_KNOW = (
    "I'm sorry, I don't know the answer to that, and I'd rather not guess. Would you like me to pass you to a person?"
)
ALREADY_VERIFIED = "You're already verified in this conversation, so I can look at your orders and subscription."
EMPTY = "How can I help you today?"


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def retrieval_confidence(best_score: float | None) -> float:
    """Return P(the best passage answers the question) from the hybrid search score (anchored, see RETRIEVAL_SCALE)."""
    if best_score is None:
        return 0.0
    return _sigmoid((best_score - FAILED_BELOW[HYBRID]) / RETRIEVAL_SCALE)


def knowledge_confidence(best_score: float | None, routing: Routing | None) -> float:
    """Combine the retrieval's confidence with the router's, when it routed to a knowledge intent (in log-odds)."""
    logit = _logit(retrieval_confidence(best_score))
    if routing is not None and routing.intent is not None and routing.intent.route == Route.KNOWLEDGE:
        logit += INTENT_EVIDENCE * _logit(routing.confidence)
    return round(_sigmoid(logit), 4)


# A plain index scan: the ORM's query would add Chunk's default ordering (two joins and a sort) and cost ~0.6 ms
# more of every knowledge turn (select_passages orders the rows itself).
_DOCUMENT_CHUNKS_SQL = f"SELECT id, position, text, heading_path FROM {Chunk._meta.db_table} WHERE document_id = %s"


def _document_chunks(document_id: int) -> list[tuple[int, int, str, str]]:
    """Return the (id, position, text, heading path) of a document's chunks: one query on (document, position)."""
    with connection.cursor() as cursor:
        cursor.execute(_DOCUMENT_CHUNKS_SQL, [document_id])
        return cursor.fetchall()


class CachedUnitVectors:
    """compose.SharedVectors on the Django cache (Redis): quoted passages' unit vectors, shared by every worker.

    A cache, not a record: when Redis cannot be reached the units are embedded again, and the turn goes on.
    """

    TIMEOUT = 30 * 24 * 3600

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        try:
            return cache.get_many(keys)
        except RedisError as exc:
            logger.warning("unit vectors: cache read failed (%s); embedding again", exc)
            return {}

    def set_many(self, values: dict[str, bytes]) -> None:
        try:
            cache.set_many(values, timeout=self.TIMEOUT)
        except RedisError as exc:
            logger.warning("unit vectors: cache write failed (%s)", exc)


class EmbeddedResponder:
    name = "embedded"
    version = "1"

    def __init__(self, *, embedder: Any = None, search_function: Any = None) -> None:
        self._embedder = embedder
        self._search = search_function or search

    @property
    def embedder(self) -> Any:
        return self._embedder or get_embedder()

    def propose(self, context: TurnContext) -> Proposal:
        """Return the proposal for this turn (see the module docstring)."""
        table = configured_table(self.embedder, context.intents_fingerprint)
        proposal = self._propose(context, table)
        return replace(proposal, config_version=short_fingerprint(table))

    def _propose(self, context: TurnContext, table: IntentTable) -> Proposal:
        latest = context.latest.strip()
        if not latest:
            return Answer(text=EMPTY, kind="info", confidence=1.0)
        text, vector, routing, search_vector = self._route(context, table, latest)
        pending = context.pending
        spec = table.by_name.get(pending.intent) if pending else None
        if pending is not None and spec is not None:
            proposal = self._continue(context, spec, pending.slot, routing)
            if proposal is not None:
                return proposal
        intent = routing.intent
        if intent is not None and intent.route == Route.SMALLTALK and len(latest.split()) > SMALLTALK_MAX_WORDS:
            rerouted = table.route(vector, exclude=[i.name for i in table.intents if i.route == Route.SMALLTALK])
            routing, intent = rerouted, rerouted.intent
        if intent is None or intent.route == Route.KNOWLEDGE:
            return self._knowledge(context, text, vector, routing, search_vector=search_vector)
        trace = {"intent": intent.name, "intent_score": round(routing.score, 4)}
        if intent.route == Route.SMALLTALK:
            reply = SMALLTALK.get(intent.name, SMALLTALK_FALLBACK)
            return Answer(text=reply, kind="smalltalk", confidence=round(routing.confidence, 4), **trace)
        if intent.route == Route.HUMAN:
            return Escalate(reason="customer asked for a person", confidence=round(routing.confidence, 4), **trace)
        return self._fulfil(context, intent, routing)

    # --- Routing ---------------------------------------------------------------------------------------------------

    def _route(
        self, context: TurnContext, table: IntentTable, latest: str
    ) -> tuple[str, np.ndarray, Routing, np.ndarray | None]:
        """Return the text routed, its embedding, where it routed (a bare answer joined with the message before),
        and that embedding again when search may use it as its own (else None)."""
        previous = context.previous_customer_text().strip()
        bare = len(slots.strip_values(latest).split()) <= BARE_ANSWER_WORDS
        has_value = any(slots.extract(p, latest) for p in (slots.ORDER_ID, slots.SUBSCRIPTION_ID, slots.AMOUNT))
        joinable = bool(previous) and bare and (context.pending is not None or has_value or len(context.texts) > 1)
        texts = [latest, f"{previous}\n{latest}"] if joinable else [latest]
        ahead = context.query_vector() if context.query_vector and not joinable and self._embedder is None else None
        vectors = [ahead] if ahead is not None else self.embedder.embed(texts)
        alone = table.route(vectors[0])
        if joinable and (alone.intent is None or has_value):
            return texts[1], vectors[1], table.route(vectors[1]), None
        # search() embeds its query with embed_query: the configured embedder on that text alone. The same call
        # here gives the same vector, so search takes it instead of embedding the question a second time (~9 ms a
        # turn). A vector from a batch of two, or from another embedder, is not passed on.
        reusable = vectors[0] if not joinable and self._embedder is None else None
        return latest, vectors[0], alone, reusable

    # --- Slots -------------------------------------------------------------------------------------------------------

    def _continue(self, context: TurnContext, spec: IntentSpec, slot_name: str, routing: Routing) -> Proposal | None:
        """Go on with the intent the agent asked a question for, or None when the customer moved on to another."""
        slot = spec.slot(slot_name)
        if slot is None:
            return None
        value = slots.extract(slot.pattern, context.latest, answering=True)
        if value is not None:
            return self._fulfil(context, spec, routing, answered={slot.name: value})
        skipped = context.latest.strip().lower() == SKIP_VALUE.lower()
        if not skipped and routing.intent is not None and routing.intent.name != spec.name:
            return None
        if not slot.required:
            return self._fulfil(context, spec, routing, skip={slot.name})
        return Escalate(
            reason=f"could not get {slot.label} ({slot.name}) for {spec.label or spec.name} after asking once",
            confidence=round(routing.confidence, 4),
            intent=spec.name,
            intent_score=round(routing.score, 4),
        )

    def _fulfil(
        self,
        context: TurnContext,
        spec: IntentSpec,
        routing: Routing,
        *,
        answered: dict[str, Any] | None = None,
        skip: set[str] | None = None,
    ) -> Proposal:
        """Propose the intent's action with its slots, or ask for the first one missing."""
        trace: dict[str, Any] = {"intent": spec.name, "intent_score": round(routing.score, 4)}
        confidence = routing.confidence
        if answered and (routing.best is None or routing.best.name != spec.name):
            # The message answered the question asked for this intent with a validated value: the intent was chosen
            # last turn, and the bare answer routes anywhere.
            confidence = max(confidence, ANSWERED_CONFIDENCE)
        confidence = round(confidence, 4)
        if spec.route == Route.VERIFY and context.verification >= Verification.EMAIL_VERIFIED:
            return Answer(text=ALREADY_VERIFIED, kind="info", confidence=confidence, **trace)
        found = {**self._found(context, spec), **(answered or {})}
        values: dict[str, Any] = {}
        for slot in spec.slots:
            value = found.get(slot.name, context.known_slots.get(slot.name))
            if value not in (None, ""):
                values[slot.name] = value
            elif slot.name not in (skip or set()):
                choices = [] if slot.required else [{"label": SKIP_VALUE, "value": SKIP_VALUE}]
                return Clarify(
                    question=slot.question, slot=slot.name, choices=choices, confidence=confidence, slots=found, **trace
                )
        if spec.route == Route.VERIFY:
            return ToolCall(action=VERIFY_EMAIL_ACTION, arguments=values, confidence=confidence, slots=found, **trace)
        return ToolCall(action=spec.action, arguments=values, confidence=confidence, slots=found, **trace)

    @staticmethod
    def _found(context: TurnContext, spec: IntentSpec) -> dict[str, Any]:
        """Return the slot values of ``spec`` in this turn's messages (the latest message wins)."""
        found: dict[str, Any] = {}
        for text in context.texts:
            for slot in spec.slots:
                value = slots.extract(slot.pattern, text)
                if value is not None:
                    found[slot.name] = value
        return found

    # --- Knowledge ---------------------------------------------------------------------------------------------------

    def _knowledge(
        self,
        context: TurnContext,
        text: str,
        vector: np.ndarray,
        routing: Routing,
        *,
        search_vector: np.ndarray | None = None,
    ) -> Proposal:
        """Search the help centre for ``text``; ``search_vector`` is its embedding as search would compute it."""
        trace: dict[str, Any] = {
            "intent": routing.intent.name if routing.intent else "",
            "intent_score": round(routing.score, 4),
        }
        result = self._search(
            text,
            audience=context.audience,
            products=list(context.products) or None,
            k=SEARCH_K,
            conversation_id=context.conversation_id,
            vector=search_vector,
        )
        retrieved = [
            {
                "chunk_id": hit.chunk_id,
                "document_title": hit.citation.get("document_title", ""),
                "score": round(hit.score, 4),
            }
            for hit in result.hits
        ]
        trace["retrieved"] = retrieved
        confidence = knowledge_confidence(result.best_score, routing)
        composition, passages = None, []
        if confidence >= ANSWER_THRESHOLD and result.hits:
            passages = compose.select_passages(result.hits, _document_chunks(result.hits[0].document_id))
            composition = compose.compose(
                vector, passages, self.embedder.embed, model_id=self.embedder.model_id, shared=CachedUnitVectors()
            )
        if composition is None:
            return Answer(
                text=DONT_KNOW,
                kind="unknown",
                confidence=round(1.0 - confidence, 4),
                choices=[TALK_TO_PERSON],
                **trace,
            )
        citations = []
        for quote in composition.quotes:
            passage = passages[quote.passage]
            quoted = [unit.text for unit in quote.units]
            citations.append({**passage.citation, "chunk_id": passage.chunk_id, "quotes": quoted})
        return Answer(text=composition.text, citations=citations, confidence=confidence, kind="knowledge", **trace)
