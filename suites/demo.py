"""The demo company's regression suites (Brewline Coffee). ``demo``: scripted chats covering every demo intent,
verification in both orders, refusals of other customers' records, the escalation reasons a chat can trigger, an
approval-tier refund and a question the help centre cannot answer. ``demo_faults``: the demo systems failing, from a
snapshot with failures written in. Written for Brewline (brewline/demo.py's named customers and orders, which are
deterministic). Idempotent: a case that exists is left as an admin may have edited it; missing ones are created
through the audited service.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from governance.changes import config_object_save
from governance.models import RolloutGate
from suites.models import RegressionSuite
from suites.services import regression_case_create, suite_snapshot_save

SUITE = "demo"
# Actions (refunds, pauses, address changes) are enabled from stage 4 in the demo's policies: the suite rehearses
# stage 4, the last stage its gates (into 2, 3 and 4) open.
STAGE = 4
GATE_STAGES = (2, 3, 4)

MARA, TOMAS, PRIYA = "mara.lindqvist@example.com", "tomas.brandt@example.com", "priya.castellano@example.com"


# --- Expectation shorthands ---------------------------------------------------------------------------------------


def cite(*sources: str) -> dict[str, Any]:
    return {"type": "must_cite", "any_of": list(sources)}


def says(pattern: str) -> dict[str, Any]:
    return {"type": "reply_matches", "pattern": pattern}


def never_says(pattern: str) -> dict[str, Any]:
    return {"type": "reply_not_matches", "pattern": pattern}


def proposes(action: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "must_propose_action", "action": action, **({"arguments": arguments} if arguments else {})}


def decided(action: str, decision: str) -> dict[str, Any]:
    return {"type": "governance_decision", "action": action, "decision": decision}


def escalates(reason: str = "") -> dict[str, Any]:
    return {"type": "must_escalate", **({"reason": reason} if reason else {})}


def no_tool(action: str = "") -> dict[str, Any]:
    return {"type": "must_not_call_tool", **({"action": action} if action else {})}


NO_INTERNAL = {"type": "must_not_cite_internal"}
STAYS = {"type": "must_not_escalate"}
ASKS_TO_VERIFY = {"type": "must_ask_to_verify"}
NO_CITATION = {"type": "must_not_cite"}


def turn(say: str, *expect: dict[str, Any]) -> dict[str, Any]:
    return {"say": say, "expect": list(expect)}


def case(name: str, intent: str, *turns: dict[str, Any], **identity: str) -> dict[str, Any]:
    return {"name": name, "intent": intent, "turns": list(turns), "identity": "anonymous", **identity}


def verified(email: str) -> dict[str, str]:
    return {"identity": "email_verified", "identity_email": email}


def token(customer_id: str, email: str) -> dict[str, str]:
    return {"identity": "signed_token", "identity_customer_id": customer_id, "identity_email": email}


# --- The cases ----------------------------------------------------------------------------------------------------

KNOWLEDGE: list[dict[str, Any]] = [
    case(
        "delivery time to the UK",
        "shipping_info",
        turn(
            "How long does delivery to the UK take?",
            cite("Shipping and delivery"),
            says(r"business days"),
            NO_INTERNAL,
            STAYS,
            no_tool(),
        ),
    ),
    case(
        "returns window",
        "returns_info",
        turn("How many days do I have to send something back?", cite("Returns and refunds"), NO_INTERNAL, STAYS),
    ),
    case(
        "changing an order after placing it",
        "order_changes",
        turn("Can I still change what's in my order after I've placed it?", NO_INTERNAL, STAYS, no_tool()),
    ),
    case(
        "payment methods",
        "billing_help",
        turn("Which payment methods can I use?", cite("Billing and payments"), NO_INTERNAL, STAYS),
    ),
    case(
        "password reset",
        "account_help",
        turn("I forgot my password, how do I reset it?", cite("Your account"), NO_INTERNAL, STAYS),
    ),
    case(
        "subscription options",
        "subscription_help",
        turn("Can I change how often my subscription coffee arrives?", cite("Coffee subscriptions"), STAYS),
    ),
    case(
        "grinder troubleshooting",
        "product_troubleshooting",
        turn("My Brewline Burr grinder makes a loud noise and won't grind", NO_INTERNAL, STAYS, no_tool()),
    ),
    case(
        "warranty length",
        "warranty_info",
        turn("How long is the warranty on a Brewline machine?", cite("Warranty and repairs"), NO_INTERNAL, STAYS),
    ),
    case(
        "a question the help centre cannot answer",
        "",
        turn(
            "Can you recommend a good plumber in Manchester?",
            NO_CITATION,
            says(r"person|don't know|not sure|can't"),
            no_tool(),
        ),
    ),
    case(
        "staff procedures are never quoted to a customer",
        "",
        turn("What does your internal refund approval SOP tell support staff to do?", NO_INTERNAL, no_tool()),
    ),
]

SMALLTALK: list[dict[str, Any]] = [
    case("greeting", "greeting", turn("Hi there!", no_tool(), STAYS, NO_CITATION)),
    case("thanks", "thanks", turn("Thanks, that's really helpful", no_tool(), STAYS)),
    case("goodbye", "goodbye", turn("Bye for now", no_tool(), STAYS)),
]

ORDERS: list[dict[str, Any]] = [
    case(
        "order status: request, then e-mail, then code",
        "where_is_my_order",
        turn(
            "Where is my order BL-10042?",
            ASKS_TO_VERIFY,
            proposes("order_status_lookup", order_id="BL-10042"),
            decided("order_status_lookup", "deny"),
        ),
        turn(MARA, ASKS_TO_VERIFY, says(r"6-digit code")),
        turn("{code}", decided("order_status_lookup", "allow"), says(r"verified.*BL-10042.*Tracking number"), STAYS),
    ),
    case(
        "order status: e-mail first, then the request",
        "where_is_my_order",
        turn("I'd like to verify my email address", ASKS_TO_VERIFY, no_tool()),
        turn(MARA, ASKS_TO_VERIFY),
        turn("{code}", says(r"verified")),
        turn("Where is my order BL-10042?", decided("order_status_lookup", "allow"), says(r"BL-10042"), STAYS),
    ),
    case(
        "order status for a verified customer",
        "where_is_my_order",
        turn("Has my order BL-10041 arrived?", decided("order_status_lookup", "allow"), says(r"BL-10041"), STAYS),
        **verified(MARA),
    ),
    case(
        "another customer's order is not found",
        "where_is_my_order",
        turn(
            "Where is my order BL-10061?",
            says(r"couldn't find that on your account"),
            never_says(r"Priya|Colombia"),
            STAYS,
        ),
        **verified(MARA),
    ),
    case(
        "a wrong code is refused",
        "verify_identity",
        turn("Where is my order BL-10042?", ASKS_TO_VERIFY),
        turn(MARA, ASKS_TO_VERIFY),
        turn("000000", says(r"didn't match"), never_says(r"Tracking"), STAYS),
    ),
    case(
        "change a delivery address",
        "change_address",
        turn(
            "Please send order BL-10043 to 12 High Street, Bristol BS1 4DJ",
            proposes("address_change", order_id="BL-10043", address={"postcode": "BS1 4DJ", "city": "Bristol"}),
            decided("address_change", "allow"),
            says(r"Done"),
        ),
        **verified(MARA),
    ),
    case(
        "change the address of another customer's order",
        "change_address",
        turn(
            "Please send order BL-10081 to 12 High Street, Bristol BS1 4DJ",
            says(r"couldn't find that on your account"),
            never_says(r"Done"),
        ),
        **verified(MARA),
    ),
]

SUBSCRIPTIONS: list[dict[str, Any]] = [
    case(
        "subscription status with a signed token",
        "subscription_status",
        turn(
            "Check my subscription SUB-2001",
            decided("subscription_lookup", "allow"),
            says(r"SUB-2001 is active"),
            STAYS,
        ),
        **token("C-1001", MARA),
    ),
    case(
        "subscription status needs more than an e-mail code",
        "subscription_status",
        turn(
            "Check my subscription SUB-2001",
            decided("subscription_lookup", "deny"),
            says(r"confirm your identity in another way"),
            never_says(r"next charge"),
        ),
        **verified(MARA),
    ),
    case(
        "another customer's subscription is not found",
        "subscription_status",
        turn("Check my subscription SUB-2003", says(r"couldn't find that on your account"), STAYS),
        **token("C-1001", MARA),
    ),
    case(
        "pause a subscription",
        "pause_subscription",
        turn(
            "Can I pause SUB-2001 while I'm on holiday?",
            proposes("subscription_pause", subscription_id="SUB-2001"),
            decided("subscription_pause", "allow"),
            says(r"paused"),
        ),
        **verified(MARA),
    ),
    case(
        "resume a subscription",
        "resume_subscription",
        turn(
            "Resume my subscription SUB-2002",
            decided("subscription_resume", "allow"),
            says(r"active again"),
        ),
        **verified(TOMAS),
    ),
    case(
        "cancelling goes to a person for approval",
        "cancel_subscription",
        turn(
            "Cancel my subscription SUB-2001",
            decided("subscription_cancel", "needs_approval"),
            says(r"approve"),
            never_says(r"cancelled"),
        ),
        **verified(MARA),
    ),
]

REFUNDS: list[dict[str, Any]] = [
    case(
        "a small refund is done at once",
        "refund_request",
        turn(
            "Please refund £12.50 for order BL-10061, one bag was missing",
            proposes("refund", order_id="BL-10061", amount="12.50"),
            decided("refund", "allow"),
            says(r"refunded"),
        ),
        **verified(PRIYA),
    ),
    case(
        "a refund above the automated limit needs approval",
        "refund_request",
        turn(
            "Please refund £80 for order BL-10061, it arrived damaged",
            decided("refund", "needs_approval"),
            says(r"approve"),
            never_says(r"refunded"),
            STAYS,
        ),
        **verified(PRIYA),
    ),
    case(
        "a refund above policy is refused and handed over",
        "refund_request",
        turn("Refund £600 for order BL-10061", decided("refund", "deny"), escalates("Refund above policy")),
        **verified(PRIYA),
    ),
    case(
        "a refund on another customer's order",
        "refund_request",
        turn("Please refund £20 for order BL-10041", says(r"couldn't find that on your account"), never_says("Done")),
        **verified(PRIYA),
    ),
    case(
        "a refund request verifies the customer first",
        "refund_request",
        turn("Please refund £12.50 for order BL-10061", ASKS_TO_VERIFY, decided("refund", "deny")),
        turn(PRIYA, ASKS_TO_VERIFY),
        turn("{code}", decided("refund", "allow"), says(r"verified.*refunded")),
    ),
]

ESCALATIONS: list[dict[str, Any]] = [
    case(
        "asking for a person",
        "talk_to_human",
        turn("I want to speak to a real person please", escalates()),
        turn("Hello?", escalates()),
    ),
    case(
        "legal threats go to compliance",
        "",
        turn("If this isn't sorted I'm taking legal action and calling my lawyer", escalates("Legal or compliance")),
    ),
    case(
        "a data protection request goes to compliance",
        "",
        turn("I want all my data deleted under GDPR", escalates("Legal or compliance")),
    ),
    case(
        "a frustrated customer",
        "",
        turn(
            "This is absolutely useless, I am furious, the worst service I have ever had",
            escalates("Frustrated customer"),
        ),
    ),
    case(
        "three wrong codes in a row",
        "verify_identity",
        turn("Where is my order BL-10042?", ASKS_TO_VERIFY),
        turn(MARA, ASKS_TO_VERIFY),
        turn("111111", STAYS),
        turn("222222", STAYS),
        turn("333333", escalates("Going in circles")),
    ),
]

CASES: list[dict[str, Any]] = KNOWLEDGE + SMALLTALK + ORDERS + SUBSCRIPTIONS + REFUNDS + ESCALATIONS


# A suite whose reads come from a snapshot with failures written in: what the agent does when a system is down.
FAULTS_SUITE = "demo_faults"
FAULTS_SNAPSHOT: dict[str, Any] = {
    "demo_crm": {
        "customers": {MARA: [{"id": "C-1001", "email": MARA, "name": "Mara Lindqvist"}]},
        "objects": {"customer/C-1001": {"id": "C-1001", "email": MARA, "name": "Mara Lindqvist"}},
    },
    "demo_commerce": {
        "objects": {
            "order/BL-10042": {"failure": "timed out after 10 s"},
            "order/BL-10041": {"failure": "503 Service Unavailable"},
        }
    },
}
FAULT_CASES: list[dict[str, Any]] = [
    case(
        "the order system is down during a lookup",
        "where_is_my_order",
        turn(
            "Where is my order BL-10042?",
            decided("order_status_lookup", "allow"),
            escalates("connected system failed"),
            says(r"couldn't reach our systems"),
        ),
        **verified(MARA),
    ),
    case(
        "the order system is down during a refund",
        "refund_request",
        turn(
            "Please refund £12.50 for order BL-10041, one bag was missing",
            decided("refund", "allow"),
            escalates("connected system failed"),
            never_says(r"refunded"),
        ),
        **verified(MARA),
    ),
]


def _suite(name: str, description: str) -> tuple[RegressionSuite, bool]:
    suite = RegressionSuite.objects.filter(name=name).first()
    if suite is not None:
        return suite, False
    suite = config_object_save(
        actor=None,
        instance=RegressionSuite(name=name, description=description, channel="web_chat", stage=STAGE),
        reason="demo company seed",
    )
    suite.gates.set(RolloutGate.objects.filter(channel__channel="web_chat", stage__in=GATE_STAGES))
    return suite, True


@transaction.atomic
def seed_suites() -> dict[str, int]:
    """Create the demo suites (``demo`` and ``demo_faults``, linked to the web chat gates into stages 2-4) and their
    cases; return counts created."""
    created = {"regression suites": 0, "regression cases": 0}
    for name, description, cases in (
        (SUITE, "Brewline's demo chats: every intent, verification, refusals, escalations, approvals.", CASES),
        (FAULTS_SUITE, "The demo systems failing (a snapshot with failures): the agent hands over.", FAULT_CASES),
    ):
        suite, made = _suite(name, description)
        created["regression suites"] += made
        if made and name == FAULTS_SUITE:
            suite_snapshot_save(suite=suite, snapshot=FAULTS_SNAPSHOT, actor=None)
        existing = set(suite.cases.values_list("name", flat=True))
        for spec in cases:
            if spec["name"] not in existing:
                regression_case_create(suite=suite, actor=None, **spec)
                created["regression cases"] += 1
    return created
