"""What Brewline's demo customers say in the demo traffic (``agent.demo_traffic`` plays it through the live turn code).

Some opening lines are the demo regression suite's own (suites/demo.py: its anonymous knowledge, small-talk and
escalation cases as they are, its order and subscription cases with the named customers' numbers replaced by the
demo customer's); the rest were written for Brewline here. Placeholders, filled from the customer's records
(``agent.demo_traffic_cast``): ``{order}``, ``{subscription}``, ``{amount}``, ``{address}``.

A customer also answers what the agent asks: their e-mail address, the code from the e-mail, the order or subscription
number, the amount or the address (``agent.demo_traffic_visits``). Pure data: no database. Seed code, like
``seed_demo``, which imports the suites' demo too: nothing of the agent's runtime imports this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

from suites import demo as suite


class Kind(StrEnum):
    """What a visit is about: the traffic's mix is drawn by kind (``WEIGHTS``)."""

    KNOWLEDGE = "knowledge"  # a question the help centre answers
    UNKNOWN = "unknown"  # a question it cannot answer
    ORDER = "order"  # an order lookup (verification first)
    ACTION = "action"  # an action the agent carries out (pause, resume, address change, small refund)
    APPROVAL = "approval"  # an action a manager approves or rejects (large refund, cancellation)
    ESCALATION = "escalation"  # the conversation goes to a person


class Needs(StrEnum):
    """The customer record a visit is about, picked from Brewline's demo system (``agent.demo_traffic_cast``)."""

    NOTHING = ""
    CUSTOMER = "customer"  # any customer: the visit is about none of their records
    ORDER_SHIPPED = "order_shipped"  # on its way (or delayed)
    ORDER_PROCESSING = "order_processing"  # not shipped yet, UK: its address can change
    ORDER_DELIVERED = "order_delivered"  # delivered and not refunded: a small refund (an item's price)
    ORDER_DELIVERED_LARGE = "order_delivered_large"  # delivered, over the automated refund limit: a full refund
    SUBSCRIPTION_ACTIVE = "subscription_active"
    SUBSCRIPTION_PAUSED = "subscription_paused"


ANONYMOUS, EMAIL, TOKEN = "anonymous", "email", "token"  # how the customer proves who they are
APPROVE, REJECT = "approve", "reject"


@dataclass(frozen=True)
class Script:
    """One customer's chat: what they say, who they are, and what the people around it decide."""

    name: str
    kind: Kind
    says: tuple[str, ...]
    # How they prove who they are: anonymous and email customers give their e-mail address and the code when the
    # agent asks (email: the visit is about their records, so it will ask); token: the host site vouched for them
    # with a signed token when the chat opened (identity verified).
    identity: str = ANONYMOUS
    needs: Needs = Needs.NOTHING
    decision: str = ""  # APPROVAL: what the manager decides
    returns: Script | None = None  # the same customer back about the same intent, days later
    reopens: bool = False  # a returning visit: the person who picks it up reopens the earlier visit's ticket


# --- From the demo regression suite -------------------------------------------------------------------------------

_ORDER_ID = re.compile(r"\bBL-\d+\b")
_SUBSCRIPTION_ID = re.compile(r"\bSUB-\d+\b")
_MONEY = re.compile(r"£\d+(?:\.\d\d)?")


def _templated(text: str) -> str:
    """A suite line with the named customer's numbers and amount turned into placeholders."""
    text = _ORDER_ID.sub("{order}", text)
    text = _SUBSCRIPTION_ID.sub("{subscription}", text)
    return _MONEY.sub("{amount}", text)


def _suite_lines(name: str) -> tuple[str, ...]:
    """The customer lines of the demo suite's case ``name`` that a customer types (not e-mails or codes)."""
    case = next(spec for spec in suite.CASES if spec["name"] == name)
    lines = [turn["say"] for turn in case["turns"]]
    typed = [line for line in lines if "@" not in line and "{code}" not in line and not line.isdigit()]
    return tuple(_templated(line) for line in typed)


def _suite_first(name: str) -> str:
    return _suite_lines(name)[0]


# --- Knowledge ------------------------------------------------------------------------------------------------------

SUITE_KNOWLEDGE = (
    "delivery time to the UK",
    "returns window",
    "changing an order after placing it",
    "payment methods",
    "password reset",
    "subscription options",
    "grinder troubleshooting",
    "warranty length",
    "staff procedures are never quoted to a customer",  # answered from the public refund article
)
OWN_KNOWLEDGE = (
    "How much does express delivery cost in the UK?",
    "Do you deliver to Germany, and how long does it take?",
    "How long does shipping to the US take?",
    "What time do I need to order by for it to go out today?",
    "My parcel says delivered but it isn't here",
    "Do I have to pay for the return postage?",
    "When will my refund reach my card?",
    "Can I return a bag of coffee I didn't like?",
    "I got the wrong item in my parcel, what should I do?",
    "How do charge dates work for subscriptions?",
    "How do I change the grind on my subscription?",
    "What plans do you have for the coffee subscription?",
    "How fresh is the coffee when it arrives?",
    "Can I get a VAT invoice for my order?",
    "How do I use a discount code?",
    "How do I update my card details?",
    "There's a charge on my statement I don't recognise",
    "How do I download a copy of my data?",
    "How do I set up two-step verification?",
    "How do I descale my Brewline Duo?",
    "The Brewline Classic has a flashing orange light, what does it mean?",
    "My espresso tastes sour, what am I doing wrong?",
    "Water is leaking around the group head of my machine",
    "My milk frother won't heat up",
    "How do I calibrate the Burr grinder?",
    "What does the warranty cover?",
    "How do I make a warranty claim?",
    "Where can I buy spare parts for my machine?",
)
FOLLOW_UPS = (
    "And how long do I have to send something back?",
    "Is there free shipping?",
    "Do you accept PayPal?",
    "Can I pause the subscription instead?",
)

# --- Questions the help centre cannot answer ----------------------------------------------------------------------

SUITE_UNKNOWN = ("a question the help centre cannot answer",)
OWN_UNKNOWN = (
    "Do you have a shop in Edinburgh I can visit?",
    "Are you hiring baristas at the moment?",
    "Can I book a coffee tasting workshop for my team?",
    "Do you sell gift cards for a wedding list?",
    "Is there a café where I can try your coffee before I buy?",
)


KNOWLEDGE: tuple[Script, ...] = (
    *(Script(f"suite: {name}", Kind.KNOWLEDGE, (_suite_first(name),)) for name in SUITE_KNOWLEDGE),
    *(Script(f"knowledge {n}", Kind.KNOWLEDGE, (text,)) for n, text in enumerate(OWN_KNOWLEDGE, start=1)),
    Script(
        "two questions",
        Kind.KNOWLEDGE,
        ("How long does delivery to the UK take?", "And how long do I have to send something back?"),
    ),
    Script(
        "a question and a follow-up",
        Kind.KNOWLEDGE,
        ("What plans do you have for the coffee subscription?", "Can I change how often my coffee arrives?"),
    ),
)
UNKNOWN: tuple[Script, ...] = (
    *(Script(f"suite: {name}", Kind.UNKNOWN, (_suite_first(name),)) for name in SUITE_UNKNOWN),
    *(Script(f"unknown {n}", Kind.UNKNOWN, (text,)) for n, text in enumerate(OWN_UNKNOWN, start=1)),
    Script(
        "unknown, then a person", Kind.UNKNOWN, ("Do you have a shop in Edinburgh I can visit?", "Talk to a person")
    ),
)

# --- Orders and actions -------------------------------------------------------------------------------------------

WHERE_IS_IT = Script(
    "suite: order status: request, then e-mail, then code",
    Kind.ORDER,
    _suite_lines("order status: request, then e-mail, then code"),
    needs=Needs.ORDER_SHIPPED,
)
STILL_NOT_HERE = Script(
    "back: the order still has not arrived",
    Kind.ORDER,
    ("My order {order} still hasn't arrived", "I want to speak to a real person please"),
    needs=Needs.ORDER_SHIPPED,
)
ORDERS: tuple[Script, ...] = (
    replace(WHERE_IS_IT, returns=STILL_NOT_HERE),
    Script(
        "suite: order status: e-mail first, then the request",
        Kind.ORDER,
        _suite_lines("order status: e-mail first, then the request"),
        needs=Needs.ORDER_SHIPPED,
    ),
    Script("order status, asked for the number", Kind.ORDER, ("Has my order shipped yet?",), needs=Needs.ORDER_SHIPPED),
    Script(
        "tracking number",
        Kind.ORDER,
        ("Can I have the tracking number for {order}?",),
        identity=TOKEN,
        needs=Needs.ORDER_SHIPPED,
    ),
)
ACTIONS: tuple[Script, ...] = (
    Script(
        "suite: pause a subscription",
        Kind.ACTION,
        _suite_lines("pause a subscription"),
        identity=EMAIL,
        needs=Needs.SUBSCRIPTION_ACTIVE,
    ),
    Script(
        "suite: resume a subscription",
        Kind.ACTION,
        _suite_lines("resume a subscription"),
        identity=EMAIL,
        needs=Needs.SUBSCRIPTION_PAUSED,
    ),
    Script(
        "change a delivery address",
        Kind.ACTION,
        ("Please change the delivery address of order {order} to {address}",),
        identity=EMAIL,
        needs=Needs.ORDER_PROCESSING,
    ),
    Script(
        "suite: a small refund is done at once",
        Kind.ACTION,
        _suite_lines("a small refund is done at once"),
        identity=EMAIL,
        needs=Needs.ORDER_DELIVERED,
    ),
    Script(
        "a refund, asked for the amount",
        Kind.ACTION,
        ("I'd like a partial refund on order {order}",),
        identity=TOKEN,
        needs=Needs.ORDER_DELIVERED,
    ),
    Script(
        "subscription status",
        Kind.ACTION,
        ("When is my next coffee delivery? My subscription is {subscription}",),
        identity=TOKEN,
        needs=Needs.SUBSCRIPTION_ACTIVE,
    ),
)
APPROVALS: tuple[Script, ...] = (
    Script(
        "suite: a refund above the automated limit needs approval",
        Kind.APPROVAL,
        _suite_lines("a refund above the automated limit needs approval"),
        identity=EMAIL,
        needs=Needs.ORDER_DELIVERED_LARGE,
        decision=APPROVE,
    ),
    Script(
        "a damaged machine, refund refused",
        Kind.APPROVAL,
        ("My order {order} arrived broken, please refund {amount}",),
        identity=TOKEN,
        needs=Needs.ORDER_DELIVERED_LARGE,
        decision=REJECT,
    ),
    Script(
        "suite: cancelling goes to a person for approval",
        Kind.APPROVAL,
        _suite_lines("cancelling goes to a person for approval"),
        identity=EMAIL,
        needs=Needs.SUBSCRIPTION_ACTIVE,
        decision=APPROVE,
    ),
)

# --- Escalations ----------------------------------------------------------------------------------------------------

BROKEN_AGAIN = Script(
    "back: the grinder is broken again",
    Kind.ESCALATION,
    ("The grinder you sent is making the same grinding noise again", "Talk to a person"),
    identity=TOKEN,
    needs=Needs.CUSTOMER,
    reopens=True,
)
BROKEN_GRINDER = Script(
    "a broken grinder",
    Kind.ESCALATION,
    ("My new Burr grinder makes a horrible noise and stopped working", "Can I talk to a human please?"),
    identity=TOKEN,
    needs=Needs.CUSTOMER,
    returns=BROKEN_AGAIN,
)
ESCALATIONS: tuple[Script, ...] = (
    BROKEN_GRINDER,
    Script("suite: asking for a person", Kind.ESCALATION, _suite_lines("asking for a person")),
    Script("suite: legal threats go to compliance", Kind.ESCALATION, _suite_lines("legal threats go to compliance")),
    Script(
        "suite: a data protection request goes to compliance",
        Kind.ESCALATION,
        _suite_lines("a data protection request goes to compliance"),
    ),
    Script("suite: a frustrated customer", Kind.ESCALATION, _suite_lines("a frustrated customer")),
    Script(
        "a parcel marked delivered that never came",
        Kind.ESCALATION,
        ("My parcel {order} says delivered but nothing came", "I'd rather chat with a member of staff"),
        identity=EMAIL,
        needs=Needs.ORDER_DELIVERED,
    ),
)

SCRIPTS: dict[Kind, tuple[Script, ...]] = {
    Kind.KNOWLEDGE: KNOWLEDGE,
    Kind.UNKNOWN: UNKNOWN,
    Kind.ORDER: ORDERS,
    Kind.ACTION: ACTIONS,
    Kind.APPROVAL: APPROVALS,
    Kind.ESCALATION: ESCALATIONS,
}
# The traffic's mix: how often each kind starts a visit (returning visits come on top).
WEIGHTS: dict[Kind, int] = {
    Kind.KNOWLEDGE: 36,
    Kind.UNKNOWN: 8,
    Kind.ORDER: 14,
    Kind.ACTION: 13,
    Kind.APPROVAL: 9,
    Kind.ESCALATION: 20,
}
# The first visits of a run play these, in this order, so that even a short run shows every figure: an escalation a
# person handles (its customer comes back and has its ticket reopened), a knowledge answer, an approval approved, an
# order lookup (its customer comes back too), a question without an answer, an action, an approval rejected. They
# are rated. The mix is drawn after them.
FIRST_SCRIPTS: tuple[Script, ...] = (
    BROKEN_GRINDER,
    KNOWLEDGE[0],
    APPROVALS[0],
    ORDERS[0],
    UNKNOWN[0],
    ACTIONS[0],
    APPROVALS[1],
)
GREETINGS = (_suite_first("greeting"), "Hello", "Hi, quick question", "Good morning")
THANKS = (_suite_first("thanks"), "Perfect, thank you", "Brilliant, cheers", "Thanks, that's all I needed")

# What a person writes in the console: on picking a conversation up, and before closing it.
PERSON_OPENERS = (
    "Hi, I'm {name} from the Brewline team. I've read through your chat — let me look into this for you.",
    "Hello, {name} here from Brewline support. Thanks for waiting, I'm on it.",
    "Hi there, this is {name}. Sorry for the trouble — I can see the whole conversation, give me a moment.",
)
PERSON_CLOSERS = (
    "That's sorted now. I've noted everything on your account — anything else I can help with?",
    "All done. You'll get an e-mail confirmation shortly. Have a lovely day!",
    "I've passed this to our returns team and they'll be in touch within two working days.",
)
CUSTOMER_REPLIES_TO_PERSON = ("Thank you, that's great", "Ok, thanks for your help", "Great, cheers")
TICKET_SOLVED_NOTES = (
    "Resolved in chat; customer confirmed.",
    "Replacement arranged and customer informed.",
    "Answered in chat. No further action needed.",
)
TICKET_REOPENED_NOTE = "The customer came back in chat about the same problem; reopening."
REJECTION_NOTES = (
    "The order is outside our 30-day returns window; we've offered a repair under warranty instead",
    "A replacement is already on its way for this order",
)
APPROVAL_NOTES = ("Checked the photos: damaged in transit.", "Retention offer declined; fine to cancel.")
