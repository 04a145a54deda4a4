"""The ``openai`` responder: any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp server) proposes the next step by calling tools. It only proposes, like the embedded responder: the turn
loop runs a ``ToolCall`` through governance, sends an ``Answer``, hands over on an ``Escalate``.

One turn (docs/agent/openai-responder.md):

1. The active ``PromptVersion`` named "default" gives the system prompt and guidance (a built-in default when none is
   active); the trace records ``openai:<name>@v<version>:<model>``.
2. Every text that leaves for the endpoint is masked (``governance.pii``): the customer's messages, the transcript,
   known slots, help-centre passages. The conversation's placeholder vault keeps placeholders stable across turns;
   real values go back in only on our side — in tool arguments before governance sees them, and in the reply.
3. The model is asked with the tools of ``tool_schema.py``, streaming. Text deltas reach ``TurnContext.on_delta``.
4. Its tool calls become proposals: an action → ``ToolCall``; ``verify_email`` → the turn's verification;
   ``escalate`` → ``Escalate``; ``search_knowledge`` → a search whose numbered passages go back to the model as a
   ``tool`` message, and its next reply is an ``Answer`` citing only passages it was given. A call to an unknown tool
   or with invalid arguments goes back to the model as an error once; a second one hands over.
5. Any failure of the endpoint (unreachable, timeout, HTTP error, a reply that is not a chat completion, a cut-off
   reply) is an ``Escalate`` naming it; a rejected key is also logged as a configuration error.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from agent.models import Conversation, PromptVersion
from agent.responders.base import (
    TALK_TO_PERSON,
    VERIFY_EMAIL_ACTION,
    Answer,
    Escalate,
    Proposal,
    ToolCall,
    TurnContext,
)
from agent.responders.embedded import retrieval_confidence
from agent.responders.tool_schema import (
    ESCALATE,
    SEARCH_KNOWLEDGE,
    VERIFY_EMAIL,
    InvalidToolCall,
    Tool,
    available_tools,
    tool_call_parse,
    tool_definitions,
)
from governance.pii import PlaceholderVault, mask
from governance.roles import Verification
from knowledge.retrieval import Hit, search

logger = logging.getLogger(__name__)

PROMPT_NAME = "default"
# One retry: the client's backoff (about 0.5-1 s) on a connection error, a timeout, 408/409/429 or a 5xx. More would
# keep the customer waiting past the turn's time limit for an endpoint that is down.
MAX_RETRIES = 1
# Requests per turn: a search, the answer from its passages, and one more (a second search, or a corrected call).
MAX_REQUESTS = 3
SEARCH_K = 4
# Not measured: a model's tool call and its reply without a search carry no score. These constants sit above the
# low-confidence escalation rule (0.45 in the demo) so that a greeting or a question back is not handed over; an
# answer from the help centre carries the retrieval confidence of the passages it cites, like the embedded one.
TOOL_CALL_CONFIDENCE = 0.8
REPLY_CONFIDENCE = 0.6

DEFAULT_SYSTEM_PROMPT = """\
You are the customer-service assistant of Brewline Coffee, which sells coffee, coffee subscriptions and brewing \
equipment online. You help customers in this chat, politely and briefly.

You can only act through your tools. You never decide whether an action is allowed: our systems do, and they may ask \
the customer to verify their identity first. Personal data appears as placeholders such as [EMAIL_1] or [PHONE_1]; \
use a placeholder exactly as written when you need that value, and never guess what it stands for."""

DEFAULT_GUIDANCE = """\
- Questions about products, delivery, returns, billing, subscriptions or policies: call search_knowledge first, then \
answer only from the passages it returns, citing each passage you use as [1], [2] right after the sentence. If the \
passages do not answer the question, say you don't know and offer a person. Never answer such questions from memory.
- Orders and subscriptions: call the matching tool with the order number (BL-…) or subscription number (SUB-…). If \
the customer has not given the number, ask for it.
- Refunds: call refund with the order number and the amount as a decimal string.
- When the customer gives an e-mail address to confirm who they are, call verify_email with its placeholder.
- When the customer asks for a person, is upset, or you cannot help, call escalate with a short reason.
- Keep replies to a few sentences. Do not promise anything the tools did not do."""

ROLES = {"customer": "user", "agent": "assistant", "human": "assistant"}
# Citation markers the model writes ("[1]", "[1, 3]"), removed with the spaces before them from the text the customer
# reads; and the tail of a streamed text that may be an unfinished marker or placeholder ("… see [", "… at [EMAIL_"),
# held back until it is complete. Streamed text is also held back at trailing spaces (a marker may follow), so each
# visible text extends the one before and can be sent as a piece.
_MARKER = re.compile(r"[ \t]*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_UNFINISHED = re.compile(r"[ \t]*\[[A-Z0-9_,\s]*$")


class EndpointError(Exception):
    """The endpoint did not give a usable reply; the message says why, for the trace and the person who takes over."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system_prompt: str
    guidance: str

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"


def active_prompt(name: str = PROMPT_NAME) -> Prompt:
    """Return the active prompt version called ``name``, or the built-in default (version "builtin")."""
    row = PromptVersion.objects.filter(name=name, active=True).first()
    if row is None:
        return Prompt(name, "builtin", DEFAULT_SYSTEM_PROMPT, DEFAULT_GUIDANCE)
    return Prompt(row.name, str(row.version), row.system_prompt, row.guidance)


def visible_text(raw: str, vault: PlaceholderVault, *, final: bool = True) -> str:
    """Return the model's text as the customer reads it: no citation markers, real values for placeholders.

    While streaming (``final=False``) an unfinished marker or placeholder at the end is held back.
    """
    if not final:
        raw = _UNFINISHED.sub("", raw)
    return vault.rehydrate(_MARKER.sub("", raw)).strip()


def cited_refs(raw: str) -> list[int]:
    """Return the passage numbers the text cites, in order of first citation."""
    refs: list[int] = []
    for match in _MARKER.finditer(raw):
        for ref in (int(part) for part in match[1].split(",")):
            if ref not in refs:
                refs.append(ref)
    return refs


# --- What the model was told and given in this turn ----------------------------------------------------------------


@dataclass
class Session:
    context: TurnContext
    vault: PlaceholderVault
    known_values: dict[str, list[str]]
    tools: dict[str, Tool]
    messages: list[dict[str, Any]] = field(default_factory=list)
    passages: dict[int, Hit] = field(default_factory=dict)  # ref -> the passage given to the model
    retrieved: list[dict[str, Any]] = field(default_factory=list)  # for TurnTrace.retrieved
    searched: bool = False
    mistakes: int = 0  # tool calls refused as unknown or invalid

    def mask(self, text: str) -> str:
        return mask(text, known_values=self.known_values, vault=self.vault).text

    def ref_for(self, hit: Hit) -> int:
        for ref, given in self.passages.items():
            if given.chunk_id == hit.chunk_id:
                return ref
        ref = len(self.passages) + 1
        self.passages[ref] = hit
        return ref


@dataclass
class _CallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RawToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: tuple[RawToolCall, ...]
    finish_reason: str


# --- The responder -------------------------------------------------------------------------------------------------


class OpenAIChatResponder:
    name = "openai"
    version = "1"

    def __init__(self, *, search_function: Callable[..., Any] | None = None) -> None:
        self._search = search_function or search
        self._client: Any = None  # an openai.OpenAI, made on the first request of the turn

    def propose(self, context: TurnContext) -> Proposal:
        """Return the proposal for this turn (see the module docstring); never raise for an endpoint's failure."""
        prompt = active_prompt()
        vault, known_values = _conversation_pii(context.conversation_id)
        before = len(vault)
        session = Session(context=context, vault=vault, known_values=known_values, tools=available_tools())
        session.messages = _opening_messages(session, prompt)
        try:
            proposal = self._converse(session)
        except EndpointError as exc:
            logger.warning("openai responder: %s (conversation %s)", exc, context.conversation_id)
            proposal = Escalate(reason=str(exc))
        finally:
            if len(vault) != before:
                _store_vault(context.conversation_id, vault)
        config = f"openai:{prompt.label}:{settings.OPENAI_MODEL or ''}"
        return replace(proposal, retrieved=session.retrieved, config_version=config)

    def _converse(self, session: Session) -> Proposal:
        for _ in range(MAX_REQUESTS):
            completion = self._complete(session)
            if not completion.tool_calls:
                return _answer(session, completion.text)
            proposal = self._act(session, completion)
            if proposal is not None:
                return proposal
        return Escalate(reason=f"the model had not answered after {MAX_REQUESTS} requests")

    def _act(self, session: Session, completion: Completion) -> Proposal | None:
        """Turn the model's tool calls into a proposal, or answer them in the conversation and return None."""
        parsed: list[tuple[RawToolCall, dict[str, Any] | InvalidToolCall]] = []
        for call in completion.tool_calls:
            try:
                parsed.append((call, tool_call_parse(session.tools, call.name, call.arguments, session.vault)))
            except InvalidToolCall as exc:
                parsed.append((call, exc))
        valid = [(call, arguments) for call, arguments in parsed if isinstance(arguments, dict)]
        for call, arguments in valid:
            if call.name == ESCALATE:
                return Escalate(reason=f"the assistant handed over: {arguments['reason']}", intent=ESCALATE)
        for call, arguments in valid:
            if call.name != SEARCH_KNOWLEDGE:
                return _tool_call(call.name, arguments, others=len(valid) - 1)
        errors = [error for _, error in parsed if isinstance(error, InvalidToolCall)]
        if errors:
            session.mistakes += 1
            if session.mistakes > 1:
                return Escalate(reason=f"the model called a tool wrongly twice: {errors[0]}")
        session.messages.append(_assistant_message(completion))
        for call, arguments in parsed:
            result = self._run_search(session, arguments["query"]) if isinstance(arguments, dict) else None
            content = result if result is not None else {"error": f"{arguments}. Correct the call or reply instead."}
            session.messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(content, ensure_ascii=False)}
            )
        return None

    def _run_search(self, session: Session, query: str) -> dict[str, Any]:
        """Search the help centre for the customer's audience; return the tool result the model reads (masked)."""
        context = session.context
        # The query keeps its placeholders: the help centre needs no personal data, and failed searches are stored.
        result = self._search(
            query,
            audience=context.audience,
            products=list(context.products) or None,
            k=SEARCH_K,
            conversation_id=context.conversation_id,
        )
        session.searched = True
        passages = []
        for hit in result.hits:
            session.retrieved.append(
                {
                    "chunk_id": hit.chunk_id,
                    "document_title": hit.citation.get("document_title", ""),
                    "score": round(hit.score, 4),
                }
            )
            passages.append(
                {
                    "ref": session.ref_for(hit),
                    "title": hit.citation.get("document_title", ""),
                    "section": hit.citation.get("section", "") or hit.heading_path,
                    "url": hit.citation.get("url", ""),
                    "last_reviewed": hit.citation.get("last_reviewed", ""),
                    "text": session.mask(hit.text),
                }
            )
        payload: dict[str, Any] = {"query": query, "passages": passages}
        if not passages:
            payload["note"] = "Nothing in the help centre matches. Say you don't know and offer a person."
        elif result.failed:
            payload["note"] = "These passages match only weakly. Use them only if they clearly answer the question."
        return payload

    # --- The endpoint ----------------------------------------------------------------------------------------------

    def _complete(self, session: Session) -> Completion:
        """Send the conversation to the endpoint, streaming; raise EndpointError with a reason on any failure."""
        # Imported here: 0.6 s that processes running the embedded responder (and every manage.py call) need not pay.
        import openai

        base_url = settings.OPENAI_BASE_URL
        if not (base_url and settings.OPENAI_API_KEY and settings.OPENAI_MODEL):
            logger.error(
                "Configuration error: STEWARD_RESPONDER=openai needs OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL"
            )
            raise EndpointError("the language model endpoint is not configured (OPENAI_BASE_URL, _API_KEY, _MODEL)")
        try:
            if self._client is None:
                self._client = openai.OpenAI(
                    base_url=base_url,
                    api_key=settings.OPENAI_API_KEY,
                    timeout=settings.OPENAI_TIMEOUT,
                    max_retries=MAX_RETRIES,
                )
            stream = self._client.chat.completions.create(
                model=settings.OPENAI_MODEL,
                messages=session.messages,
                tools=tool_definitions(session.tools.values()),
                stream=True,
            )
            try:
                return _read_stream(stream, _delta_sender(session))
            finally:
                stream.close()
        except openai.AuthenticationError as exc:
            logger.error(
                "Configuration error: the language model endpoint %s rejected OPENAI_API_KEY (HTTP 401): %s",
                base_url,
                exc.message,
            )
            raise EndpointError(
                "the language model endpoint rejected the API key (HTTP 401, check OPENAI_API_KEY)"
            ) from None
        except openai.APITimeoutError:
            raise EndpointError(
                f"the language model endpoint did not answer within {settings.OPENAI_TIMEOUT:g} s"
            ) from None
        except openai.APIConnectionError:
            raise EndpointError(f"the language model endpoint could not be reached ({base_url})") from None
        except openai.APIStatusError as exc:
            if exc.status_code in (403, 404):
                logger.error(
                    "Configuration error: the language model endpoint %s answered HTTP %s for model %r: %s",
                    base_url,
                    exc.status_code,
                    settings.OPENAI_MODEL,
                    exc.message,
                )
            raise EndpointError(f"the language model endpoint answered HTTP {exc.status_code}") from None
        except (openai.OpenAIError, ValueError) as exc:
            # ValueError: a stream line that is not JSON (json.JSONDecodeError); OpenAIError: an error object inside
            # the stream, or another of the client's own checks.
            raise EndpointError(f"the language model endpoint sent an unusable reply ({exc})"[:300]) from None


def _read_stream(stream: Iterable[Any], on_text: Callable[[str], None]) -> Completion:
    """Read a Chat Completions stream: text deltas joined (and passed on), tool-call deltas assembled by index.

    The endpoint sends a tool call's id and name in its first delta and its arguments in pieces
    (platform.openai.com/docs/guides/function-calling, "Streaming"). Ollama reuses index 0 for every call of a
    parallel batch and tells them apart by id only, so a new id at a known index starts a new call.
    """
    text: list[str] = []
    calls: list[_CallParts] = []
    slot_of_index: dict[int, int] = {}
    finish = ""
    for chunk in stream:
        choices = getattr(chunk, "choices", None)
        if not isinstance(choices, list):
            raise EndpointError("the language model endpoint sent a chunk without choices")
        if not choices:
            continue  # the usage chunk of stream_options.include_usage
        delta = getattr(choices[0], "delta", None)
        content = getattr(delta, "content", None)
        if isinstance(content, str) and content:
            text.append(content)
            on_text("".join(text))
        for part in getattr(delta, "tool_calls", None) or []:
            index = getattr(part, "index", None)
            index = index if isinstance(index, int) else 0
            call_id = getattr(part, "id", None) or ""
            slot = slot_of_index.get(index)
            if slot is None or (call_id and calls[slot].id and call_id != calls[slot].id):
                calls.append(_CallParts())
                slot = slot_of_index[index] = len(calls) - 1
            call = calls[slot]
            call.id = call_id or call.id
            function = getattr(part, "function", None)
            call.name = getattr(function, "name", None) or call.name
            call.arguments.append(getattr(function, "arguments", None) or "")
        finish = getattr(choices[0], "finish_reason", None) or finish
    if not finish:
        raise EndpointError("the model's reply ended before it was finished (no finish_reason)")
    if finish == "length":
        raise EndpointError("the model's reply was cut off (finish_reason length)")
    if finish == "content_filter":
        raise EndpointError("the endpoint's content filter stopped the model's reply")
    tool_calls = tuple(
        RawToolCall(id=call.id or f"call_{number}", name=call.name, arguments="".join(call.arguments))
        for number, call in enumerate(calls)
    )
    return Completion(text="".join(text), tool_calls=tool_calls, finish_reason=finish)


def _delta_sender(session: Session) -> Callable[[str], None]:
    """Return the callback passing each new piece of customer-visible text to ``on_delta``."""
    on_delta = session.context.on_delta
    shown = ""

    def send(raw: str) -> None:
        nonlocal shown
        text = visible_text(raw, session.vault, final=False)
        # A widget appends pieces and cannot take text back: a text that does not extend what was sent waits (the
        # stored reply replaces the streamed one in the end anyway).
        if on_delta is not None and len(text) > len(shown) and text.startswith(shown):
            piece, shown = text[len(shown) :], text
            on_delta(piece)

    return send


# --- Messages and proposals ----------------------------------------------------------------------------------------


def _opening_messages(session: Session, prompt: Prompt) -> list[dict[str, Any]]:
    """Return the system message and the conversation so far, every text masked."""
    context = session.context
    situation = [f"Customer verification: {Verification(context.verification).label}."]
    if context.account_tier and context.account_tier != "standard":
        situation.append(f"Account tier: {context.account_tier}.")
    if context.products:
        situation.append(f"Products: {', '.join(context.products)}.")
    if context.known_slots:
        known = ", ".join(f"{name} {value}" for name, value in sorted(context.known_slots.items()))
        situation.append(f"Known from earlier in this conversation: {known}.")
    parts = [prompt.system_prompt.strip(), prompt.guidance.strip(), " ".join(situation)]
    messages: list[dict[str, Any]] = [{"role": "system", "content": session.mask("\n\n".join(p for p in parts if p))}]
    for author, text in context.transcript:
        role = ROLES.get(author)
        if role is None:
            continue
        if author == "human":
            text = f"(A person from the support team wrote:) {text}"
        messages.append({"role": role, "content": session.mask(text)})
    messages += [{"role": "user", "content": session.mask(text)} for text in context.texts]
    return messages


def _assistant_message(completion: Completion) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": completion.text or None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in completion.tool_calls
        ],
    }


def _tool_call(name: str, arguments: dict[str, Any], *, others: int) -> ToolCall:
    if others:
        # The turn loop carries out one action per turn; the model asks again for the rest next turn.
        logger.info("openai responder: the model called %s and %d other tools; only %s is proposed", name, others, name)
    if name == VERIFY_EMAIL:
        return ToolCall(action=VERIFY_EMAIL_ACTION, arguments=arguments, confidence=TOOL_CALL_CONFIDENCE, intent=name)
    remembered = {key: arguments[key] for key in ("order_id", "subscription_id") if key in arguments}
    return ToolCall(action=name, arguments=arguments, confidence=TOOL_CALL_CONFIDENCE, intent=name, slots=remembered)


def _answer(session: Session, raw: str) -> Proposal:
    """Return the model's reply as an Answer: cited passages only from this turn's searches, real values back in."""
    text = visible_text(raw, session.vault).strip()
    if not text:
        return Escalate(reason="the model sent an empty reply")
    if not session.searched:
        return Answer(text=text, kind="info", confidence=REPLY_CONFIDENCE)
    cited = [session.passages[ref] for ref in cited_refs(raw) if ref in session.passages]
    if not cited:
        # Searched, yet no passage cited: the answer is not grounded in the help centre. It is shown as the model
        # wrote it (often "I don't know"), as an "unknown" answer with the offer of a person.
        best = max((hit.score for hit in session.passages.values()), default=None)
        return Answer(
            text=text,
            kind="unknown",
            choices=[TALK_TO_PERSON],
            confidence=round(1.0 - retrieval_confidence(best), 4),
        )
    citations = [{**hit.citation, "chunk_id": hit.chunk_id} for hit in cited]
    confidence = round(retrieval_confidence(max(hit.score for hit in cited)), 4)
    return Answer(text=text, citations=citations, confidence=confidence, kind="knowledge")


# --- The conversation's placeholder vault --------------------------------------------------------------------------


def _conversation_pii(conversation_id: str) -> tuple[PlaceholderVault, dict[str, list[str]]]:
    """Return the conversation's placeholder vault and the customer's own values to mask (e-mail, name)."""
    try:
        uuid.UUID(conversation_id)
    except ValueError:
        return PlaceholderVault(), {}
    row = Conversation.objects.filter(pk=conversation_id).values("pii_vault", "customer_email", "customer_name").first()
    if row is None:
        return PlaceholderVault(), {}
    try:
        vault = PlaceholderVault.from_dict(row["pii_vault"] or {})
    except ValueError:
        logger.warning("conversation %s: unreadable PII vault, starting a new one", conversation_id)
        vault = PlaceholderVault()
    known = {"email": [row["customer_email"]], "name": [row["customer_name"]]}
    return vault, {kind: [v for v in values if v] for kind, values in known.items() if any(values)}


def _store_vault(conversation_id: str, vault: PlaceholderVault) -> None:
    """Keep the placeholders the model saw, so the same value gets the same placeholder next turn.

    A plain update: only the worker holding the conversation's turn claim (agent.turn) runs a responder for it.
    """
    try:
        uuid.UUID(conversation_id)
    except ValueError:
        return
    Conversation.objects.filter(pk=conversation_id).update(pii_vault=vault.to_dict())
