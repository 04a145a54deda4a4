"""The agent's Celery tasks: thin, idempotent, time-limited; they take ids and call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="agent.run_turn", soft_time_limit=45, time_limit=60, acks_late=True)
def run_turn(conversation_id: str, embedded_ahead: str = "") -> str:
    """Answer the conversation's unhandled customer messages (a duplicate task finds nothing to do).

    ``embedded_ahead``: the client id of the message whose question the web process is embedding (query_vectors)."""
    from agent.turn import run_turn as run

    return run(conversation_id, embedded_ahead=embedded_ahead)


@shared_task(name="agent.escalate_conversation", soft_time_limit=45, time_limit=60, acks_late=True)
def escalate_conversation(conversation_id: str, reason: str) -> str:
    """Hand the conversation to a person with a complete ticket."""
    from agent.turn import escalate

    return escalate(conversation_id, reason)


@shared_task(name="agent.conversations_close_idle", soft_time_limit=240, time_limit=300)
def conversations_close_idle() -> int:
    """Close conversations with the AI that have been quiet for STEWARD_IDLE_CLOSE_MINUTES."""
    from agent.services import conversations_close_idle as close_idle

    return close_idle()
