"""What a responder sees (``TurnContext``) and what it may propose (``Proposal``): the seam between the turn loop and
whichever responder is configured.

A responder only proposes. The turn loop executes a ``ToolCall`` through governance (which may allow, draft, ask for
approval or deny it), sends an ``Answer`` or a ``Clarify`` as the agent's message, and hands the conversation over on
an ``Escalate``. Responders never see governance decisions and write nothing but the conversation's PII vault (the
``openai`` responder keeps its masking placeholders stable across turns there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from governance.roles import Verification


class Choice(TypedDict):
    """A button under the agent's message; pressing it sends ``value`` as the customer's next message."""

    label: str
    value: str


# The choice every "I don't know" answer offers. Its value is also one of the talk_to_human intent's examples
# (agent.demo), so a widget that simply sends the value as a message reaches a person too.
TALK_TO_PERSON: Choice = {"label": "Talk to a person", "value": "Talk to a person"}

# Not a governed action: a ToolCall with this name asks the turn loop to start e-mail verification (send a one-time
# code to ``arguments["email"]``, agent.models.EmailChallenge). Governance is never asked about it.
VERIFY_EMAIL_ACTION = "verify_email"

PUBLIC, VERIFIED = "public", "verified"  # knowledge.models.Audience values a customer may be served


def audience_for(verification: int) -> str:
    """Return the knowledge audience of a customer at ``verification``: anonymous visitors see public content only."""
    return VERIFIED if verification >= Verification.EMAIL_VERIFIED else PUBLIC


@dataclass(frozen=True)
class PendingClarification:
    """The question the agent asked last turn: which slot of which intent it is waiting for."""

    intent: str
    slot: str


@dataclass(frozen=True)
class TurnContext:
    """Everything a responder may use for one turn. Built by the turn loop; plain data, no model instances."""

    conversation_id: str
    texts: tuple[str, ...]  # the customer's new messages of this turn, oldest first
    verification: int = Verification.ANONYMOUS
    audience: str = PUBLIC
    # Recent transcript before this turn, oldest first: (author, text) with agent.models.Author values.
    transcript: tuple[tuple[str, str], ...] = ()
    # Slot values learnt in earlier turns (an order id the customer gave, their verified e-mail...).
    known_slots: Mapping[str, Any] = field(default_factory=dict)
    pending: PendingClarification | None = None
    account_tier: str = "standard"
    products: tuple[str, ...] = ()  # the customer's products, to narrow knowledge search (empty: no context)
    # A streaming responder calls this with each new piece of the reply's text, as the customer may see it, while the
    # model writes; the turn loop pushes it as a "delta" frame. Provisional: the stored reply is what counts.
    on_delta: Callable[[str], None] | None = None
    # The enabled intents' fingerprint (router.INTENTS_FINGERPRINT_SQL), read by the turn loop with its other reads;
    # None: a responder that routes by intents reads it itself.
    intents_fingerprint: str | None = None
    # The latest text's embedding as the configured embedder gives it, computed ahead by the web process
    # (agent/query_vectors.py): call it for the vector, or None (no vector: embed the text).
    query_vector: Callable[[], Any] | None = None

    @classmethod
    def for_customer(
        cls, *, conversation_id: str, texts: tuple[str, ...], verification: int, **kwargs: Any
    ) -> TurnContext:
        """Build a context whose audience follows from the customer's verification level."""
        return cls(
            conversation_id=conversation_id,
            texts=texts,
            verification=verification,
            audience=audience_for(verification),
            **kwargs,
        )

    @property
    def latest(self) -> str:
        return self.texts[-1] if self.texts else ""

    def previous_customer_text(self) -> str:
        """Return the customer's message before the latest one (this turn's or the transcript's), or ""."""
        if len(self.texts) > 1:
            return self.texts[-2]
        for author, text in reversed(self.transcript):
            if author == "customer":
                return text
        return ""


@dataclass(frozen=True, kw_only=True)
class Proposal:
    """What the responder proposes, with what the trace records about how it got there."""

    intent: str = ""  # the detected intent's name ("" when out of scope)
    intent_score: float | None = None  # the router's similarity score for it
    # Slot values found this turn (the turn loop remembers them for the next turns as known slots).
    slots: dict[str, Any] = field(default_factory=dict)
    # The passages considered: [{"chunk_id", "document_title", "score"}] for TurnTrace.retrieved.
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    # Which configuration produced it (TurnTrace.prompt_version): for the embedded responder, the intents' fingerprint.
    config_version: str = ""


@dataclass(frozen=True, kw_only=True)
class Answer(Proposal):
    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    confidence: float = 0.0
    choices: list[Choice] = field(default_factory=list)
    # "knowledge" (composed from cited passages), "smalltalk", "unknown" (the agent does not know), "info".
    kind: str = "knowledge"


@dataclass(frozen=True, kw_only=True)
class ToolCall(Proposal):
    action: str  # an ActionPolicy name, or VERIFY_EMAIL_ACTION
    arguments: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Clarify(Proposal):
    question: str
    slot: str
    choices: list[Choice] = field(default_factory=list)
    confidence: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Escalate(Proposal):
    reason: str
    confidence: float = 0.0


class Responder(Protocol):
    name: str
    version: str

    def propose(self, context: TurnContext) -> Proposal:
        """Return what the agent should do next for ``context``; never execute anything."""
        ...
