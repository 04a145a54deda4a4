"""Expectations on one customer turn of a regression case: strict validation of a script, and pure checks of what a
turn produced (``Observation``). No database: the runner builds the observation, these functions judge it.

An expectation is a dict with a ``type`` and that type's keys (docs/suites.md lists them); each check returns
whether it passed and a short "got" saying what the turn did instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

DECISIONS = ("allow", "deny", "needs_approval", "draft")
IDENTITIES = ("anonymous", "email_verified", "signed_token")
# What the agent waits for after a turn that asked the customer to prove who they are (agent/turn.py state).
VERIFY_SLOTS = ("email", "code")


class ScriptError(ValueError):
    """A case or one of its expectations is malformed; the message names the case and the turn."""


@dataclass
class Observation:
    """What one customer turn produced, as plain data."""

    reply: str = ""
    citations: list[dict[str, Any]] = field(default_factory=list)  # each may carry "internal": True
    intent: str = ""
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # action, arguments, decision, reason
    owner: str = "agent"  # the conversation's owner after the turn
    escalation_reason: str = ""
    verification: int = 0
    pending_slot: str = ""  # what the agent waits for after the turn ("email", "code", a slot name, "")


@dataclass(frozen=True)
class Result:
    passed: bool
    got: str


# type → (required keys, optional keys, check)
Check = Callable[[Mapping[str, Any], Observation], Result]


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cited(observation: Observation) -> str:
    names = [str(c.get("document_title") or c.get("source") or "?") for c in observation.citations]
    return "cited " + ", ".join(names) if names else "cited nothing"


def _calls(observation: Observation) -> str:
    if not observation.tool_calls:
        return "no tool call"
    return "; ".join(
        f"{c.get('action')}({_args(c.get('arguments') or {})}) → {c.get('decision')}" for c in observation.tool_calls
    )


def _args(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(arguments.items()) if not isinstance(v, dict))


def _citation_keys(citation: Mapping[str, Any]) -> set[str]:
    keys = {citation.get("source"), citation.get("document_title"), citation.get("title"), citation.get("url")}
    if citation.get("source_id") is not None:
        keys.add(str(citation["source_id"]))
    return {str(key).strip().lower() for key in keys if key}


def must_cite(spec: Mapping[str, Any], observation: Observation) -> Result:
    wanted = {str(item).strip().lower() for item in spec["any_of"]}
    hit = any(_citation_keys(c) & wanted for c in observation.citations)
    return Result(hit, _cited(observation))


def must_not_cite(spec: Mapping[str, Any], observation: Observation) -> Result:
    if "any_of" not in spec:
        return Result(not observation.citations, _cited(observation))
    unwanted = {str(item).strip().lower() for item in spec["any_of"]}
    return Result(not any(_citation_keys(c) & unwanted for c in observation.citations), _cited(observation))


def must_not_cite_internal(spec: Mapping[str, Any], observation: Observation) -> Result:
    internal = [c for c in observation.citations if c.get("internal")]
    return Result(not internal, _cited(observation) + (" (internal)" if internal else ""))


def must_ask_to_verify(spec: Mapping[str, Any], observation: Observation) -> Result:
    asked = observation.pending_slot in VERIFY_SLOTS
    waiting = f"waiting for {observation.pending_slot}" if observation.pending_slot else "not waiting for anything"
    return Result(asked, f"{waiting}; replied {_short(observation.reply, 100)!r}")


def _escalated(observation: Observation) -> bool:
    return observation.owner != "agent"


def must_escalate(spec: Mapping[str, Any], observation: Observation) -> Result:
    if not _escalated(observation):
        return Result(False, f"not escalated (owner {observation.owner})")
    reason = str(spec.get("reason") or "").lower()
    got = f"escalated: {_short(observation.escalation_reason, 120)}"
    return Result(not reason or reason in observation.escalation_reason.lower(), got)


def must_not_escalate(spec: Mapping[str, Any], observation: Observation) -> Result:
    if _escalated(observation):
        return Result(False, f"escalated: {_short(observation.escalation_reason, 120)}")
    return Result(True, "not escalated")


def _same_value(expected: Any, actual: Any) -> bool:
    try:
        return Decimal(str(expected)) == Decimal(str(actual))
    except (InvalidOperation, ValueError):
        pass
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return all(key in actual and _same_value(value, actual[key]) for key, value in expected.items())
    return str(expected).strip().lower() == str(actual).strip().lower()


def must_propose_action(spec: Mapping[str, Any], observation: Observation) -> Result:
    wanted = spec.get("arguments") or {}
    for call in observation.tool_calls:
        arguments = call.get("arguments") or {}
        if call.get("action") == spec["action"] and all(
            key in arguments and _same_value(value, arguments[key]) for key, value in wanted.items()
        ):
            return Result(True, _calls(observation))
    return Result(False, _calls(observation))


def must_not_call_tool(spec: Mapping[str, Any], observation: Observation) -> Result:
    action = spec.get("action")
    called = [c for c in observation.tool_calls if action is None or c.get("action") == action]
    return Result(not called, _calls(observation))


def _pattern(spec: Mapping[str, Any]) -> re.Pattern[str]:
    return re.compile(spec["pattern"], re.IGNORECASE)


def reply_matches(spec: Mapping[str, Any], observation: Observation) -> Result:
    return Result(bool(_pattern(spec).search(observation.reply)), f"replied {_short(observation.reply)!r}")


def reply_not_matches(spec: Mapping[str, Any], observation: Observation) -> Result:
    return Result(not _pattern(spec).search(observation.reply), f"replied {_short(observation.reply)!r}")


def governance_decision(spec: Mapping[str, Any], observation: Observation) -> Result:
    decisions = [c.get("decision") for c in observation.tool_calls if c.get("action") == spec["action"]]
    return Result(spec["decision"] in decisions, _calls(observation))


CHECKS: dict[str, tuple[frozenset[str], frozenset[str], Check]] = {
    "must_cite": (frozenset({"any_of"}), frozenset(), must_cite),
    "must_not_cite": (frozenset(), frozenset({"any_of"}), must_not_cite),
    "must_not_cite_internal": (frozenset(), frozenset(), must_not_cite_internal),
    "must_ask_to_verify": (frozenset(), frozenset(), must_ask_to_verify),
    "must_escalate": (frozenset(), frozenset({"reason"}), must_escalate),
    "must_not_escalate": (frozenset(), frozenset(), must_not_escalate),
    "must_propose_action": (frozenset({"action"}), frozenset({"arguments"}), must_propose_action),
    "must_not_call_tool": (frozenset(), frozenset({"action"}), must_not_call_tool),
    "reply_matches": (frozenset({"pattern"}), frozenset(), reply_matches),
    "reply_not_matches": (frozenset({"pattern"}), frozenset(), reply_not_matches),
    "governance_decision": (frozenset({"action", "decision"}), frozenset(), governance_decision),
}


def evaluate(expectation: Mapping[str, Any], observation: Observation) -> Result:
    """Judge one (validated) expectation against what the turn produced."""
    return CHECKS[expectation["type"]][2](expectation, observation)


def describe(expectation: Mapping[str, Any]) -> str:
    """One line naming an expectation: ``must_escalate(reason=legal)``."""
    details = ", ".join(f"{k}={v}" for k, v in expectation.items() if k != "type")
    return f"{expectation.get('type')}({details})"


# --- Validation ---------------------------------------------------------------------------------------------------


def validate_expectation(expectation: Any, where: str) -> None:
    """Raise ScriptError unless ``expectation`` is a known type with exactly its keys and well-typed values."""
    if not isinstance(expectation, Mapping):
        raise ScriptError(f"{where}: an expectation must be an object with a type, got {expectation!r}")
    kind = expectation.get("type")
    if kind not in CHECKS:
        raise ScriptError(f"{where}: unknown expectation type {kind!r}; known: {', '.join(CHECKS)}")
    required, optional, _ = CHECKS[kind]
    keys = set(expectation) - {"type"}
    if missing := required - keys:
        raise ScriptError(f"{where}: {kind} needs {', '.join(sorted(missing))}")
    if unknown := keys - required - optional:
        raise ScriptError(f"{where}: {kind} does not take {', '.join(sorted(unknown))}")
    _validate_values(kind, expectation, where)


def _validate_values(kind: str, spec: Mapping[str, Any], where: str) -> None:
    if "any_of" in spec:
        items = spec["any_of"]
        if not isinstance(items, list) or not items or not all(isinstance(i, str | int) and str(i) for i in items):
            raise ScriptError(f"{where}: {kind}.any_of must be a non-empty list of source or document names/ids")
    for key in ("action", "reason"):
        if key in spec and (not isinstance(spec[key], str) or not spec[key].strip()):
            raise ScriptError(f"{where}: {kind}.{key} must be non-empty text")
    if "arguments" in spec and not isinstance(spec["arguments"], Mapping):
        raise ScriptError(f"{where}: {kind}.arguments must be an object (a subset of the call's arguments)")
    if "decision" in spec and spec["decision"] not in DECISIONS:
        raise ScriptError(f"{where}: {kind}.decision must be one of {', '.join(DECISIONS)}")
    if "pattern" in spec:
        if not isinstance(spec["pattern"], str) or not spec["pattern"]:
            raise ScriptError(f"{where}: {kind}.pattern must be a non-empty regular expression")
        try:
            re.compile(spec["pattern"])
        except re.error as exc:
            raise ScriptError(f"{where}: {kind}.pattern is not a valid regular expression ({exc})") from None


TURN_KEYS = {"say", "expect"}


def validate_turns(turns: Any, case: str) -> None:
    """Raise ScriptError unless ``turns`` is a non-empty list of {"say": text, "expect": [expectation, ...]}."""
    if not isinstance(turns, list) or not turns:
        raise ScriptError(f"case {case!r}: turns must be a non-empty list")
    for number, turn in enumerate(turns, start=1):
        where = f"case {case!r}, turn {number}"
        if not isinstance(turn, Mapping):
            raise ScriptError(f"{where}: a turn must be an object with say and expect")
        if unknown := set(turn) - TURN_KEYS:
            raise ScriptError(f"{where}: unknown keys {', '.join(sorted(unknown))} (a turn has say and expect)")
        if not isinstance(turn.get("say"), str) or not turn["say"].strip():
            raise ScriptError(f"{where}: say must be the customer's message (non-empty text)")
        expect = turn.get("expect", [])
        if not isinstance(expect, list):
            raise ScriptError(f"{where}: expect must be a list of expectations")
        for expectation in expect:
            validate_expectation(expectation, where)


CASE_KEYS = {
    "name",
    "intent",
    "identity",
    "identity_email",
    "identity_customer_id",
    "turns",
    "enabled",
    "source_conversation_id",
}


def validate_case(data: Any) -> None:
    """Raise ScriptError unless ``data`` is a well-formed case (the JSON Lines shape, docs/suites.md)."""
    if not isinstance(data, Mapping):
        raise ScriptError("a case must be a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ScriptError("a case needs a name (1 to 200 characters)")
    if unknown := set(data) - CASE_KEYS:
        raise ScriptError(f"case {name!r}: unknown keys {', '.join(sorted(unknown))}")
    identity = data.get("identity", "anonymous")
    if identity not in IDENTITIES:
        raise ScriptError(f"case {name!r}: identity must be one of {', '.join(IDENTITIES)}")
    if identity == "email_verified" and not str(data.get("identity_email") or "").strip():
        raise ScriptError(f"case {name!r}: identity email_verified needs identity_email")
    if identity == "signed_token" and not str(data.get("identity_customer_id") or "").strip():
        raise ScriptError(f"case {name!r}: identity signed_token needs identity_customer_id")
    for key in ("intent", "identity_email", "identity_customer_id", "source_conversation_id"):
        if not isinstance(data.get(key, ""), str):
            raise ScriptError(f"case {name!r}: {key} must be text")
    if not isinstance(data.get("enabled", True), bool):
        raise ScriptError(f"case {name!r}: enabled must be true or false")
    validate_turns(data.get("turns"), name)
