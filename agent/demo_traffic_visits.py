"""One demo visit, step by step at its simulated times: a customer chatting through the live turn code, and the
people around the conversation — a support person in the console, a manager deciding approvals, the helpdesk ticket
worked to its outcome.

Every step calls what the product's own entry point calls: the chat API's start and identity services, the message
service and ``agent.turn.run_turn`` (as the regression suite runner drives turns), the console's ownership services,
governance's approval services, the customer's rating and thumbs (the websocket's ``csat`` and ``feedback`` frames)
and django-helpdesk's own ``update_ticket``. Nothing is written around them.

Each visit is a generator: it does one step, then yields how long until its next one. ``Run`` keeps the next step
of every visit in time order and moves the simulated clock (time-machine) to it before it runs, so every row a step
writes — conversation, messages, traces, analytics events, audit records, tickets — carries that moment.
"""

from __future__ import annotations

import heapq
import itertools
import random
import re
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import mail
from django.db import transaction
from django.utils import timezone
from helpdesk.models import Ticket
from helpdesk.update_ticket import update_ticket

from agent import identity
from agent.demo_traffic_cast import Cast, CastCustomer
from agent.demo_traffic_scripts import (
    APPROVAL_NOTES,
    CUSTOMER_REPLIES_TO_PERSON,
    GREETINGS,
    KNOWLEDGE,
    PERSON_CLOSERS,
    PERSON_OPENERS,
    REJECT,
    REJECTION_NOTES,
    THANKS,
    TICKET_REOPENED_NOTE,
    TICKET_SOLVED_NOTES,
    TOKEN,
    Kind,
    Needs,
    Script,
)
from agent.handoff import conversation_traffic_route
from agent.messages import conversation_start, message_store_customer
from agent.models import Author, Conversation, Message, Owner
from agent.services import (
    OwnershipConflict,
    ReplyNotRateable,
    conversation_close,
    conversation_rate,
    conversation_take_over,
    human_message_send,
    reply_feedback_record,
)
from agent.turn import run_turn
from governance.approvals import approval_request_approve, approval_request_reject
from governance.exceptions import ApprovalNotPending, NotPermitted
from governance.models import ApprovalRequest, ApprovalStatus

CHANNEL = "web_chat"
MAX_ANSWERS = 4  # questions of the agent a customer answers after one of their lines, at most
RETURN_AFTER_DAYS = (2.0, 4.5)  # a returning customer comes back this many days after their first visit
_CODE = re.compile(r"\b(\d{6})\b")
# How customers rate, by how the conversation went: weights of the scores 1..5.
SCORE_WEIGHTS = {
    "answered": (3, 4, 10, 30, 53),
    "unknown": (15, 25, 30, 20, 10),
    "person": (4, 6, 15, 35, 40),
    "rejected": (25, 30, 25, 15, 5),
}


@dataclass(frozen=True)
class Planned:
    """A visit as the plan drew it: when, which script, and how the customer and the people around it behave."""

    at: datetime
    script: Script
    greets: bool = False
    thanks: bool = False
    thumbs: bool = False
    rates: bool = False
    comes_back: bool = False  # a script with a return: the customer comes back (``Script.returns``)
    picked_up: bool = True  # when it ends waiting for a person, a person picks it up
    customer: CastCustomer | None = None  # a returning visit: the earlier visit's customer
    earlier_ticket: str = ""  # a returning visit that reopens: the earlier visit's ticket


@dataclass(frozen=True)
class Staff:
    person: AbstractBaseUser  # picks conversations up in the console and works their tickets
    manager: AbstractBaseUser  # decides approval requests


class Run:
    """The simulated clock and every visit's next step, in time order."""

    def __init__(self, *, traveller: Any, rng: random.Random, cast: Cast, staff: Staff, until: datetime) -> None:
        self.traveller, self.rng, self.cast, self.staff, self.until = traveller, rng, cast, staff, until
        self.tally: Counter[str] = Counter()
        self._queue: list[tuple[datetime, int, Iterator[timedelta]]] = []
        self._order = itertools.count()

    def schedule(self, at: datetime, steps: Iterator[timedelta]) -> None:
        """Run ``steps``' next step at ``at``; a step after ``until`` (the present) never happens."""
        if at > self.until:
            steps.close()
            self.tally["steps left for later"] += 1
            return
        heapq.heappush(self._queue, (at, next(self._order), steps))

    def play(self) -> None:
        while self._queue:
            at, _, steps = heapq.heappop(self._queue)
            self.traveller.move_to(at)
            wait = next(steps, None)
            if wait is not None:
                self.schedule(timezone.now() + wait, steps)

    def seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=self.rng.uniform(low, high))


def once(action: Callable[[], None]) -> Iterator[timedelta]:
    """A one-step visit (``Run.schedule`` takes generators)."""
    action()
    yield from ()


# --- The customer -------------------------------------------------------------------------------------------------


@dataclass
class Chat:
    """A customer in one conversation: says things, and answers what the agent asks."""

    run: Run
    conversation_id: Any
    customer: CastCustomer | None
    decision: str = ""  # what the manager decides on this conversation's approval requests
    scheduled: set[int] = field(default_factory=set)  # approval requests whose decision is scheduled

    def conversation(self) -> Conversation:
        return Conversation.objects.get(pk=self.conversation_id)

    def with_ai(self) -> bool:
        return Conversation.objects.filter(pk=self.conversation_id, owner=Owner.AGENT).exists()

    def say(self, text: str) -> None:
        """Send ``text`` and run its turn in this process, as the suite runner does (suites/runner.py)."""
        message_store_customer(conversation_id=self.conversation_id, client_id=uuid.uuid4(), text=text)
        run_turn(str(self.conversation_id))
        self.run.tally["turns"] += 1
        self._schedule_decisions()

    def write(self, text: str) -> None:
        """Send ``text`` while a person has the conversation: stored, no turn (the AI is silent)."""
        message_store_customer(conversation_id=self.conversation_id, client_id=uuid.uuid4(), text=text)

    def answer(self) -> str | None:
        """What the customer replies to the agent's pending question; None when nothing is asked, or the customer
        does not have it (an anonymous visitor asked for their e-mail leaves)."""
        conversation = Conversation.objects.only("owner", "context").get(pk=self.conversation_id)
        slot = ((conversation.context or {}).get("pending") or {}).get("slot")
        if conversation.owner != Owner.AGENT or not slot or self.customer is None:
            return None
        if slot == "code":
            return _code_sent_to(self.customer.email)
        known = {
            "email": self.customer.email,
            "order_id": self.customer.order,
            "subscription_id": self.customer.subscription,
            "amount": self.customer.amount,
            "address": self.customer.address,
        }
        return known.get(str(slot)) or None

    def _schedule_decisions(self) -> None:
        """A manager decides each approval request the turn created, 40 minutes to 5 hours later (at the latest just
        before the present: a request is never left for the expiry sweep to find at the real time)."""
        pending = ApprovalRequest.objects.filter(
            conversation_id=str(self.conversation_id), status=ApprovalStatus.PENDING
        )
        for request_id in pending.values_list("pk", flat=True):
            if request_id not in self.scheduled:
                self.scheduled.add(request_id)
                decide = _decider(self.run, request_id, self.decision)
                at = min(timezone.now() + self.run.seconds(40 * 60, 5 * 3600), self.run.until)
                self.run.schedule(max(at, timezone.now()), once(decide))


def _code_sent_to(email: str) -> str | None:
    """The latest one-time code e-mailed to ``email`` (the traffic's inbox: the locmem e-mail backend)."""
    for message in reversed(getattr(mail, "outbox", [])):
        match = _CODE.search(message.subject)
        if match and email.lower() in (address.lower() for address in message.to):
            return match.group(1)
    return None


def _start(script: Script, customer: CastCustomer | None) -> Conversation:
    """Open the chat as the chat API does (conversation, the host site's identity token, the traffic share)."""
    with transaction.atomic():
        conversation = conversation_start(channel=CHANNEL, origin_url=f"{settings.SITE_URL.rstrip('/')}/")
        Conversation.objects.filter(pk=conversation.pk).update(is_demo=True)
    if script.identity == TOKEN and customer is not None:
        conversation = _identify(conversation, customer)
    return conversation_traffic_route(conversation)


def _identify(conversation: Conversation, customer: CastCustomer) -> Conversation:
    """The host site vouches for its signed-in customer with a signed token (agent/identity.py)."""
    try:
        secret = identity.identity_secret(
            purpose="demo traffic: the host site signs its customer's token", conversation_id=str(conversation.pk)
        )
    except identity.IdentityNotConfigured:
        return conversation  # no secret shared with a host site: the customer verifies by e-mail when asked
    token = identity.identity_token_issue(customer.customer_id, customer.email, secret=secret, ttl_seconds=600)
    verified = identity.identity_from_token(token, conversation_id=str(conversation.pk))
    return identity.conversation_identify(conversation=conversation, identity=verified)


def _lines(run: Run, planned: Planned, script: Script, customer: CastCustomer | None) -> list[str]:
    values = {
        "order": customer.order if customer else "",
        "subscription": customer.subscription if customer else "",
        "amount": customer.amount if customer else "",
        "address": customer.address if customer else "",
    }
    lines = [line.format_map(values) for line in script.says]
    return [run.rng.choice(GREETINGS), *lines] if planned.greets else lines


# --- A visit --------------------------------------------------------------------------------------------------------


def visit(run: Run, planned: Planned) -> Iterator[timedelta]:
    """The visit's steps: the chat, then what becomes of the conversation, then maybe the customer's return."""
    script = planned.script
    customer = planned.customer or run.cast.pick(script.needs)
    if script.needs != Needs.NOTHING and customer is None:
        script = run.rng.choice(KNOWLEDGE)  # Brewline has no record left in that state: a question instead
        run.tally["visits given a question instead"] += 1
    chat = Chat(run, _start(script, customer).pk, customer, decision=script.decision)
    run.tally["conversations"] += 1
    for line in _lines(run, planned, script, customer):
        yield run.seconds(8, 45)
        if not chat.with_ai():
            break  # handed over: the customer waits for the person
        chat.say(line)
        for _ in range(MAX_ANSWERS):
            answer = chat.answer()
            if answer is None:
                break
            yield run.seconds(15, 75)  # finding the order number, or the code in their inbox
            chat.say(answer)
    handled = yield from _ending(run, chat, planned, script)
    if handled is None:
        return
    ticket_id = chat.conversation().ticket_id
    if planned.rates:
        yield run.seconds(10, 120)
        _rate(run, chat, script, by_person=handled)
    solve = planned.comes_back and script.returns is not None and script.returns.reopens  # to be reopened
    if handled and ticket_id and (solve or run.rng.random() < 0.85):
        yield run.seconds(10 * 60, 3 * 3600)
        note = run.rng.choice(TICKET_SOLVED_NOTES)
        if _ticket_update(ticket_id, user=run.staff.person, status=Ticket.RESOLVED_STATUS, comment=note, public=True):
            run.tally["tickets solved"] += 1
    if planned.comes_back and script.returns is not None and customer is not None:
        back = Planned(
            at=planned.at + timedelta(days=run.rng.uniform(*RETURN_AFTER_DAYS)),
            script=script.returns,
            rates=True,
            customer=customer,
            earlier_ticket=ticket_id if script.returns.reopens else "",
        )
        run.schedule(back.at, visit(run, back))


def _ending(run: Run, chat: Chat, planned: Planned, script: Script) -> Generator[timedelta, None, bool | None]:
    """End the conversation: the AI's goes quiet and is closed as idle; one waiting for a person is picked up,
    answered and closed by the support person. Return whether a person closed it (False: the idle close; None: it
    stays open, waiting)."""
    owner = chat.conversation().owner
    if owner == Owner.AGENT:
        if planned.thumbs:
            yield run.seconds(5, 30)
            _thumbs(run, chat, script)
        if planned.thanks and script.kind != Kind.UNKNOWN:
            yield run.seconds(10, 40)
            chat.say(run.rng.choice(THANKS))
        yield timedelta(minutes=settings.STEWARD_IDLE_CLOSE_MINUTES) + run.seconds(30, 240)
        try:  # what the idle closer (beat, agent.services.conversations_close_idle) does for this conversation
            conversation_close(conversation_id=chat.conversation_id, actor=None, reason="inactive")
        except OwnershipConflict:
            return None
        return False
    if owner != Owner.WAITING:
        return None
    if not planned.picked_up:
        run.tally["left waiting for a person"] += 1
        return None
    yield run.seconds(3 * 60, 40 * 60)
    return (yield from _person_handles(run, chat, planned))


def _person_handles(run: Run, chat: Chat, planned: Planned) -> Generator[timedelta, None, bool | None]:
    """The support person takes the conversation in the console, writes, and closes it; return True when they did
    (None: someone moved it first)."""
    person = run.staff.person
    try:
        conversation_take_over(conversation_id=chat.conversation_id, user=person)
    except OwnershipConflict:
        return None
    run.tally["picked up by a person"] += 1
    if planned.earlier_ticket and _ticket_update(
        planned.earlier_ticket, user=person, status=Ticket.REOPENED_STATUS, comment=TICKET_REOPENED_NOTE, public=False
    ):
        run.tally["tickets reopened"] += 1
    yield run.seconds(30, 150)
    opener = run.rng.choice(PERSON_OPENERS).format(name=person.first_name or person.get_username())
    human_message_send(conversation_id=chat.conversation_id, user=person, text=opener)
    yield run.seconds(60, 400)
    human_message_send(conversation_id=chat.conversation_id, user=person, text=run.rng.choice(PERSON_CLOSERS))
    yield run.seconds(20, 120)
    chat.write(run.rng.choice(CUSTOMER_REPLIES_TO_PERSON))
    yield run.seconds(30, 180)
    try:
        conversation_close(
            conversation_id=chat.conversation_id, actor=person, reason=f"closed by {person.get_username()}"
        )
    except OwnershipConflict:
        return None
    return True


# --- What the customer and the people around them do ------------------------------------------------------------


def _thumbs(run: Run, chat: Chat, script: Script) -> None:
    """A thumbs up or down on the agent's last reply (the widget's feedback buttons)."""
    seq = (
        Message.objects.filter(conversation_id=chat.conversation_id, author=Author.AGENT)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if seq is None:
        return
    helpful = run.rng.random() < (0.25 if script.kind == Kind.UNKNOWN else 0.85)
    try:
        if reply_feedback_record(conversation_id=chat.conversation_id, seq=seq, helpful=helpful):
            run.tally["thumbs"] += 1
    except ReplyNotRateable:
        return


def _rate(run: Run, chat: Chat, script: Script, *, by_person: bool) -> None:
    """The customer answers the widget's rating question after the close (1-5)."""
    if by_person:
        mood = "person"
    elif script.kind == Kind.UNKNOWN:
        mood = "unknown"
    elif script.decision == REJECT:
        mood = "rejected"
    else:
        mood = "answered"
    score = run.rng.choices((1, 2, 3, 4, 5), weights=SCORE_WEIGHTS[mood])[0]
    conversation_rate(conversation_id=chat.conversation_id, score=score)
    run.tally["ratings"] += 1


def _decider(run: Run, request_id: int, decision: str) -> Callable[[], None]:
    def decide() -> None:
        """The manager approves or rejects the request through governance, as the console's buttons do; an approved
        one is executed right after (in this process: tasks run eagerly while the traffic plays)."""
        manager = run.staff.manager
        try:
            if decision == REJECT:
                approval_request_reject(request_id=request_id, actor=manager, note=run.rng.choice(REJECTION_NOTES))
            else:
                approval_request_approve(request_id=request_id, actor=manager, note=run.rng.choice(APPROVAL_NOTES))
        except (ApprovalNotPending, NotPermitted):
            run.tally["approval requests not decided"] += 1
            return
        run.tally["approvals rejected" if decision == REJECT else "approvals approved"] += 1

    return decide


def _ticket_update(ticket_id: str, *, user: AbstractBaseUser, status: int, comment: str, public: bool) -> bool:
    """Change a helpdesk ticket's status as a person does in /helpdesk/: django-helpdesk's own ``update_ticket``
    (its follow-up, ticket-change rows, notifications and signal), under the ticket's row lock. Return whether it
    changed."""
    if not ticket_id.isdigit():
        return False
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",)).select_related("queue").filter(pk=int(ticket_id)).first()
        )
        if ticket is None or ticket.status == status:
            return False
        update_ticket(user, ticket, comment=comment, public=public, new_status=status)
    return True
