"""The console's one rule on top of the ownership state machine (agent.services): only the person who has a
conversation hands it back to the AI."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from agent.models import Conversation, Owner
from agent.services import OwnershipConflict, conversation_hand_back


@transaction.atomic
def conversation_hand_back_by_assignee(*, conversation_id: Any, user: AbstractBaseUser) -> Conversation:
    """Hand the conversation back to the AI if ``user`` has it; raise OwnershipConflict otherwise.

    The row lock holds the conversation still between the check and the move, so a conversation someone else has
    just taken cannot be handed back by mistake.
    """
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.owner != Owner.HUMAN or conversation.assignee_id != user.pk:
        raise OwnershipConflict("Only the person who has taken the conversation over can hand it back to the AI.")
    return conversation_hand_back(conversation_id=conversation_id, user=user)
