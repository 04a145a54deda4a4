"""The tools a chat model may call, as Chat Completions function definitions, and the checking of what it calls.

Tools are the governed actions the turn loop can carry out (an enabled ``ActionPolicy`` with a lookup or an executor
and an argument schema here) plus three of the turn's own: ``search_knowledge``, ``verify_email`` and ``escalate``.
A model's arguments are untrusted input: ``tool_call_parse`` reads them as JSON, refuses unknown names and arguments,
puts the real values back for PII placeholders and normalises identifiers and amounts with the same patterns the
embedded responder uses (``slots.py``), so governance sees exactly the shapes it sees from the embedded responder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.responders import slots
from agent.tools import LOOKUPS
from governance.executors import ACTION_EXECUTORS
from governance.models import ActionPolicy
from governance.pii import PlaceholderVault

SEARCH_KNOWLEDGE = "search_knowledge"
VERIFY_EMAIL = "verify_email"
ESCALATE = "escalate"
MAX_TEXT_ARGUMENT = 500  # a search query or an escalation reason longer than this is not a query or a reason


class InvalidToolCall(ValueError):
    """The model called a tool that does not exist, or with arguments that do not fit its schema."""


@dataclass(frozen=True)
class Argument:
    name: str
    schema: dict[str, Any]
    # Normalise (and validate) the rehydrated value; return None when it is not a valid value.
    read: Callable[[Any], Any]
    required: bool = True


def _pattern(extract: Callable[..., Any]) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        return extract(value, answering=True) if isinstance(value, str) else None

    return read


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and 0 < len(value.strip()) <= MAX_TEXT_ARGUMENT else None


_ADDRESS_FIELDS = ("line1", "line2", "city", "postcode", "country")


def _address(value: Any) -> dict[str, str] | None:
    """Return the connector's address object, or None unless every required part is a non-empty string."""
    if not isinstance(value, dict) or set(value) - set(_ADDRESS_FIELDS):
        return None
    address = {key: value.get(key, "") for key in _ADDRESS_FIELDS}
    if not all(isinstance(part, str) and len(part) <= 200 for part in address.values()):
        return None
    if not all(address[key].strip() for key in ("line1", "city", "postcode", "country")):
        return None
    return {key: part.strip() for key, part in address.items()}


ORDER_ID = Argument(
    "order_id",
    {"type": "string", "description": "The order number, like BL-10042."},
    _pattern(slots.order_id),
)
SUBSCRIPTION_ID = Argument(
    "subscription_id",
    {"type": "string", "description": "The subscription number, like SUB-2001."},
    _pattern(slots.subscription_id),
)
AMOUNT = Argument(
    "amount",
    {"type": "string", "description": 'The amount as a decimal string, like "40.00" (no currency sign).'},
    _pattern(slots.amount),
)
REASON = Argument(
    "reason", {"type": "string", "description": "Why, in the customer's words (short)."}, _text, required=False
)
ADDRESS = Argument(
    "address",
    {
        "type": "object",
        "description": "The new shipping address, exactly as the customer gave it.",
        "properties": {name: {"type": "string"} for name in _ADDRESS_FIELDS},
        "required": ["line1", "city", "postcode", "country"],
        "additionalProperties": False,
    },
    _address,
)

# The arguments of each governed action the model may propose. An action missing here is not offered to the model
# even when a policy enables it: ticket_create (the model escalates instead, and the turn loop builds the ticket) and
# crm_note (it needs the CRM's customer id, which the model never sees).
ACTION_ARGUMENTS: dict[str, tuple[Argument, ...]] = {
    "order_status_lookup": (ORDER_ID,),
    "subscription_lookup": (SUBSCRIPTION_ID,),
    "subscription_pause": (SUBSCRIPTION_ID,),
    "subscription_resume": (SUBSCRIPTION_ID,),
    "subscription_cancel": (SUBSCRIPTION_ID,),
    "address_change": (ORDER_ID, ADDRESS),
    "refund": (ORDER_ID, AMOUNT, REASON),
}

TURN_TOOLS: dict[str, tuple[str, tuple[Argument, ...]]] = {
    SEARCH_KNOWLEDGE: (
        "Search Brewline's help centre. Use it before answering any question about products, delivery, returns, "
        "billing, subscriptions or policies. Returns numbered passages to cite as [1], [2].",
        (Argument("query", {"type": "string", "description": "What to look for, in a few words."}, _text),),
    ),
    VERIFY_EMAIL: (
        "Send the customer a one-time code to confirm their identity. Only with the e-mail address the customer "
        "wrote in this conversation (its placeholder, like [EMAIL_1]).",
        (Argument("email", {"type": "string", "description": "The customer's e-mail placeholder."}, _text),),
    ),
    ESCALATE: (
        "Hand the conversation to a person from the support team: when the customer asks for one, when you cannot "
        "help, or when the request is outside what your tools allow.",
        (Argument("reason", {"type": "string", "description": "Why a person should take over (short)."}, _text),),
    ),
}


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: tuple[Argument, ...]

    def definition(self) -> dict[str, Any]:
        """Return the Chat Completions function definition (``tools=[{"type": "function", "function": ...}]``)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": {argument.name: argument.schema for argument in self.arguments},
                    "required": [argument.name for argument in self.arguments if argument.required],
                    "additionalProperties": False,
                },
            },
        }


def available_tools() -> dict[str, Tool]:
    """Return the tools the model may call this turn, by name: the turn's own and every enabled, runnable action.

    One query. Whether an action is allowed for this customer, at this stage, is still governance's decision when the
    model proposes it; the model is only spared actions that cannot run at all.
    """
    tools = {name: Tool(name, description, arguments) for name, (description, arguments) in TURN_TOOLS.items()}
    policies = ActionPolicy.objects.filter(enabled=True, action__in=list(ACTION_ARGUMENTS)).order_by("action")
    for policy in policies.only("action", "label", "description"):
        if policy.action in LOOKUPS or policy.action in ACTION_EXECUTORS:
            description = f"{policy.label}. {policy.description}".strip()
            tools[policy.action] = Tool(policy.action, description, ACTION_ARGUMENTS[policy.action])
    return tools


def tool_definitions(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    return [tool.definition() for tool in tools]


def tool_call_parse(tools: dict[str, Tool], name: str, raw_arguments: str, vault: PlaceholderVault) -> dict[str, Any]:
    """Return the checked arguments of a tool call, real values in place of placeholders; raise InvalidToolCall.

    ``verify_email`` only accepts an e-mail placeholder the vault knows: a code is only ever sent to an address the
    customer wrote, never to one the model made up.
    """
    tool = tools.get(name)
    if tool is None:
        raise InvalidToolCall(f"there is no tool named {name[:64]!r}")
    try:
        given = json.loads(raw_arguments or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidToolCall(f"the arguments of {name} are not valid JSON ({exc.msg})") from None
    if not isinstance(given, dict):
        raise InvalidToolCall(f"the arguments of {name} must be a JSON object")
    known = {argument.name for argument in tool.arguments}
    if unknown := sorted(set(given) - known):
        raise InvalidToolCall(f"{name} has no argument {', '.join(unknown)[:100]}")
    if name == VERIFY_EMAIL:
        placeholder = given.get("email")
        if not (isinstance(placeholder, str) and placeholder.startswith("[EMAIL_") and placeholder in vault):
            raise InvalidToolCall("verify_email needs the placeholder of an e-mail address the customer wrote")
    values: dict[str, Any] = {}
    for argument in tool.arguments:
        value = given.get(argument.name)
        if value in (None, ""):
            if argument.required:
                raise InvalidToolCall(f"{name} needs {argument.name}")
            continue
        # Real values go back in before checking; a search query keeps its placeholders (see openai_chat).
        read = argument.read(value if name == SEARCH_KNOWLEDGE else vault.rehydrate(value))
        if read is None:
            raise InvalidToolCall(f"{argument.name} of {name} is not valid: {json.dumps(value)[:80]}")
        values[argument.name] = read
    if name == VERIFY_EMAIL and slots.email(values["email"], answering=True) is None:
        raise InvalidToolCall("verify_email needs an e-mail address")
    return values
