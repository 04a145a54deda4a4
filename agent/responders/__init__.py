"""Responders: what proposes the agent's next step. ``RESPONDERS`` maps the STEWARD_RESPONDER setting to a class."""

from __future__ import annotations

from agent.responders.base import Responder
from agent.responders.embedded import EmbeddedResponder
from agent.responders.openai_chat import OpenAIChatResponder

RESPONDERS: dict[str, type[Responder]] = {
    "embedded": EmbeddedResponder,
    "openai": OpenAIChatResponder,
}


def get_responder(name: str) -> Responder:
    """Return a new responder of the configured kind; raise KeyError naming the known ones."""
    try:
        return RESPONDERS[name]()
    except KeyError:
        raise KeyError(f"unknown responder {name!r}; known: {', '.join(sorted(RESPONDERS))}") from None
