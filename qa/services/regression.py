"""From a failed review to a regression case: the conversation's customer turns become the script."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from agent.models import Author, Conversation, Message, TurnTrace
from governance.audit import audit_record
from governance.models import EventType
from governance.roles import Verification
from qa.exceptions import InvalidInput, NotPermitted
from qa.models import Review

ADD_CASE = "suites.add_regressioncase"


def customer_turns(conversation: Conversation) -> list[str]:
    """Return the customer's messages, oldest first: the script of a case made from this conversation."""
    return list(
        Message.objects.filter(conversation=conversation, author=Author.CUSTOMER)
        .order_by("seq")
        .values_list("text", flat=True)
    )


def starting_identity(conversation: Conversation) -> dict[str, str]:
    """Return the case identity closest to how the customer ended up known (a case cannot replay an e-mailed code)."""
    if conversation.verification >= Verification.IDENTITY_VERIFIED and conversation.customer_id:
        return {"identity": "signed_token", "identity_customer_id": conversation.customer_id}
    if conversation.verification >= Verification.EMAIL_VERIFIED and conversation.customer_email:
        return {"identity": "email_verified", "identity_email": conversation.customer_email}
    return {"identity": "anonymous"}


def main_intent(conversation: Conversation) -> str:
    intents = TurnTrace.objects.filter(conversation=conversation).exclude(intent="").values_list("intent", flat=True)
    return next(iter(intents.order_by("created_at")), "")


@transaction.atomic
def regression_case_from_review(
    *,
    review: Review,
    suite: Any,
    actor: AbstractBaseUser,
    expectations: Sequence[Sequence[dict[str, Any]]],
    name: str = "",
    identity: dict[str, str] | None = None,
) -> Any:
    """Create a case in ``suite`` whose turns are the reviewed conversation's customer messages, each with the
    reviewer's ``expectations`` (one list per customer turn); raise InvalidInput with the suite's reason otherwise."""
    # Imported here: the suites app is a sibling feature; QA works (and its tests run) without reaching into it.
    from suites.expectations import ScriptError
    from suites.services import regression_case_create

    if not (actor.is_active and actor.has_perm(ADD_CASE)):
        raise NotPermitted("You may not add regression cases.")
    conversation = review.item.conversation
    says = customer_turns(conversation)
    if not says:
        raise InvalidInput({"turns": "The conversation has no customer message to replay."})
    if len(expectations) > len(says):
        raise InvalidInput({"turns": f"The conversation has {len(says)} customer turns, not {len(expectations)}."})
    turns = [
        {"say": say, "expect": list(expectations[i]) if i < len(expectations) else []} for i, say in enumerate(says)
    ]
    if not any(turn["expect"] for turn in turns):
        raise InvalidInput({"turns": "Write at least one expectation: a case that checks nothing always passes."})
    name = (name or "").strip() or f"qa-{conversation.pk.hex[:8]}-review-{review.pk}"
    try:
        case = regression_case_create(
            suite=suite,
            name=name,
            turns=turns,
            intent=main_intent(conversation),
            source_conversation_id=str(conversation.pk),
            actor=actor,
            **(identity or starting_identity(conversation)),
        )
    except ScriptError as exc:
        raise InvalidInput({"turns": str(exc)}) from None
    audit_record(
        actor=actor,
        event_type=EventType.QA_REGRESSION_CASE,
        subject=review,
        conversation_id=str(conversation.pk),
        decision="qa.regression_case",
        reason=f"case {case.name!r} in suite {suite.name}",
        data={"case": case.pk, "suite": suite.pk},
    )
    return case
