"""The embedded responder on the demo company: routing, slots, one clarifying question, cited answers, handover."""

from __future__ import annotations

import io
import json
import re
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from agent.demo import INTENTS, intent_specs, seed_intents
from agent.management.commands.eval_intents import (
    BITEXT_TO_DEMO,
    expected_calibration_error,
    fit_platt,
    macro_f1,
    threshold_at_fpr,
)
from agent.models import Intent
from agent.responders import RESPONDERS, get_responder, slots
from agent.responders.base import (
    TALK_TO_PERSON,
    VERIFY_EMAIL_ACTION,
    Answer,
    Clarify,
    Escalate,
    PendingClarification,
    ToolCall,
    TurnContext,
    audience_for,
)
from agent.responders.compose import ROW, Passage, Quote, compose, passage_units, render, select_passages
from agent.responders.embedded import EmbeddedResponder
from agent.responders.router import IntentSpec, IntentTable, default_threshold
from governance.roles import Verification
from knowledge.demo import CONTENT_DIR, parse_article
from knowledge.embeddings import get_embedder
from knowledge.ingestion import document_upsert
from knowledge.models import Chunk
from knowledge.tests.factories import KnowledgeSourceFactory

ARTICLES = [
    "shipping/uk-delivery-times.md",
    "shipping/eu-delivery-times.md",
    "shipping/tracking-your-order.md",
    "returns-and-refunds/return-policy.md",
    "returns-and-refunds/refund-timing.md",
    "subscriptions/pause-and-resume.md",
    "warranty-and-repairs/warranty-coverage.md",
]
ORDER_QUESTION = next(spec for spec in INTENTS if spec["name"] == "where_is_my_order")["slots"][0]["question"]


@pytest.fixture
def brewline(db):  # type: ignore[no-untyped-def]
    """The demo intents and a slice of the demo help centre (real articles, really embedded)."""
    seed_intents()
    source = KnowledgeSourceFactory(name="Brewline help centre")
    for path in ARTICLES:
        article = parse_article((CONTENT_DIR / path).read_text(encoding="utf-8"), path=path)
        document = document_upsert(
            source=source,
            external_id=path,
            title=article.title,
            content=article.body,
            content_type="markdown",
            url=article.url,
        )
        assert document.status == "ready", document.error
    return source


@pytest.fixture
def responder() -> EmbeddedResponder:
    return EmbeddedResponder()


def turn(*texts: str, **kwargs) -> TurnContext:  # type: ignore[no-untyped-def]
    return TurnContext.for_customer(
        conversation_id="c0ffee00-0000-4000-8000-000000000001",
        texts=texts,
        verification=kwargs.pop("verification", Verification.IDENTITY_VERIFIED),
        **kwargs,
    )


# --- Actions and slots ------------------------------------------------------------------------------------------------


def test_it_looks_up_the_order_named_in_the_message(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("where is my order BL-10042"))

    assert isinstance(proposal, ToolCall)
    assert proposal.action == "order_status_lookup"
    assert proposal.arguments == {"order_id": "BL-10042"}
    assert proposal.intent == "where_is_my_order"
    assert proposal.slots == {"order_id": "BL-10042"}
    assert proposal.config_version.startswith("intents:")


def test_it_asks_for_the_order_number_with_the_intents_question(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("where is my order"))

    assert isinstance(proposal, Clarify)
    assert (proposal.intent, proposal.slot, proposal.question) == ("where_is_my_order", "order_id", ORDER_QUESTION)


def test_the_answer_to_the_question_fills_the_slot(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(
        turn(
            "BL-10042",
            transcript=(("customer", "where is my order"), ("agent", ORDER_QUESTION)),
            pending=PendingClarification(intent="where_is_my_order", slot="order_id"),
        )
    )

    assert isinstance(proposal, ToolCall)
    assert (proposal.action, proposal.arguments) == ("order_status_lookup", {"order_id": "BL-10042"})


def test_a_bare_number_answering_the_question_is_read_as_the_order_id(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(
        turn(
            "it's 10042",
            transcript=(("customer", "has my parcel shipped?"), ("agent", ORDER_QUESTION)),
            pending=PendingClarification(intent="where_is_my_order", slot="order_id"),
        )
    )

    assert isinstance(proposal, ToolCall)
    assert proposal.arguments == {"order_id": "BL-10042"}


def test_an_answer_that_does_not_fill_the_slot_hands_over_naming_the_gap(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(
        turn(
            "I don't remember it",
            transcript=(("customer", "where is my order"), ("agent", ORDER_QUESTION)),
            pending=PendingClarification(intent="where_is_my_order", slot="order_id"),
        )
    )

    assert isinstance(proposal, Escalate)
    assert "order number" in proposal.reason and "order_id" in proposal.reason
    assert proposal.intent == "where_is_my_order"


def test_a_customer_who_moves_on_is_not_held_to_the_question(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(
        turn(
            "actually, can I talk to a real person?",
            pending=PendingClarification(intent="where_is_my_order", slot="order_id"),
        )
    )

    assert isinstance(proposal, Escalate)
    assert proposal.reason == "customer asked for a person"


def test_an_optional_slot_is_asked_once_and_can_be_skipped(brewline, responder):  # type: ignore[no-untyped-def]
    asked = responder.propose(turn("when is my next coffee delivery?"))
    assert isinstance(asked, Clarify)
    assert (asked.intent, asked.slot) == ("subscription_status", "subscription_id")
    assert asked.choices == [{"label": "I don't have it", "value": "I don't have it"}]

    proposal = responder.propose(
        turn(
            "I don't have it",
            transcript=(("customer", "when is my next coffee delivery?"),),
            pending=PendingClarification(intent="subscription_status", slot="subscription_id"),
        )
    )

    assert isinstance(proposal, ToolCall)
    assert (proposal.action, proposal.arguments) == ("subscription_lookup", {})


def test_an_order_id_known_from_earlier_turns_is_used(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("has my order shipped yet?", known_slots={"order_id": "BL-20517"}))

    assert isinstance(proposal, ToolCall)
    assert proposal.arguments == {"order_id": "BL-20517"}
    assert proposal.slots == {}  # nothing new learnt this turn


def test_a_refund_takes_the_amount_and_the_order(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("refund £80 for BL-10042"))

    assert isinstance(proposal, ToolCall)
    assert proposal.action == "refund"
    assert proposal.arguments == {"order_id": "BL-10042", "amount": "80.00"}
    assert Decimal(proposal.arguments["amount"]) == Decimal("80.00")


def test_a_refund_without_an_amount_asks_for_it_and_keeps_the_order(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("I want a refund for BL-10042, the grinder arrived broken"))

    assert isinstance(proposal, Clarify)
    assert (proposal.intent, proposal.slot) == ("refund_request", "amount")
    assert proposal.slots == {"order_id": "BL-10042"}


def test_an_address_change_reads_the_address_from_the_answer(brewline, responder):  # type: ignore[no-untyped-def]
    first = responder.propose(turn("I need to change the delivery address on order BL-10042"))
    assert isinstance(first, Clarify) and first.slot == "address"

    proposal = responder.propose(
        turn(
            "14 Mill Lane, Bristol BS3 4DJ",
            transcript=(("customer", "I need to change the delivery address on order BL-10042"),),
            known_slots=first.slots,
            pending=PendingClarification(intent="change_address", slot="address"),
        )
    )

    assert isinstance(proposal, ToolCall)
    assert proposal.action == "address_change"
    assert proposal.arguments == {
        "order_id": "BL-10042",
        "address": {"line1": "14 Mill Lane", "line2": "", "city": "Bristol", "postcode": "BS3 4DJ", "country": "GB"},
    }


def test_an_anonymous_visitor_still_gets_the_tool_call_for_governance_to_judge(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("where is my order BL-10042", verification=Verification.ANONYMOUS))

    assert isinstance(proposal, ToolCall) and proposal.action == "order_status_lookup"


def test_verification_asks_for_the_email_then_proposes_sending_a_code(brewline, responder):  # type: ignore[no-untyped-def]
    asked = responder.propose(turn("I want to verify my account", verification=Verification.ANONYMOUS))
    assert isinstance(asked, Clarify) and asked.slot == "email"

    proposal = responder.propose(
        turn(
            "it's Jo.Bloggs@Example.COM",
            verification=Verification.ANONYMOUS,
            transcript=(("customer", "I want to verify my account"),),
            pending=PendingClarification(intent="verify_identity", slot="email"),
        )
    )

    assert isinstance(proposal, ToolCall)
    assert (proposal.action, proposal.arguments) == (VERIFY_EMAIL_ACTION, {"email": "Jo.Bloggs@example.com"})


# --- Knowledge, smalltalk, handover -----------------------------------------------------------------------------------


def test_a_delivery_question_is_answered_in_quotes_from_the_shipping_article(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("how long does UK delivery take"))

    assert isinstance(proposal, Answer)
    assert proposal.kind == "knowledge"
    assert proposal.citations, proposal
    assert proposal.citations[0]["document_title"] == "UK delivery times and costs"
    assert "business day" in proposal.text
    for citation in proposal.citations:
        chunk_text = Chunk.objects.get(pk=citation["chunk_id"]).text
        for quote in citation["quotes"]:
            assert quote in chunk_text  # quoted, never invented
            assert quote in proposal.text
    assert 0.5 < proposal.confidence <= 1.0
    assert proposal.retrieved[0]["document_title"] == "UK delivery times and costs"


def test_a_knowledge_question_is_embedded_once_for_routing_and_search(brewline, responder, monkeypatch):  # type: ignore[no-untyped-def]
    question = "how long does UK delivery take"
    embedder, embedded = get_embedder(), []
    embed = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts: embedded.extend(texts) or embed(texts))  # a spy, not a fake

    proposal = responder.propose(turn(question))

    assert isinstance(proposal, Answer) and proposal.kind == "knowledge" and proposal.citations
    assert embedded.count(question) == 1


def test_every_line_of_a_knowledge_answer_appears_in_a_retrieved_passage(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("can I return an espresso machine I've already used?"))

    assert isinstance(proposal, Answer) and proposal.kind == "knowledge"
    passages = " ".join(Chunk.objects.get(pk=c["chunk_id"]).text for c in proposal.citations)
    for line in proposal.text.split("\n"):
        for sentence in re.sub(r"^(?:- |\d+\. )", "", line).split(". "):
            assert sentence.strip().rstrip(".") in passages


def test_an_out_of_scope_question_gets_i_dont_know_and_the_offer_of_a_person(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("what's the weather in Paris"))

    assert isinstance(proposal, Answer)
    assert proposal.kind == "unknown"
    assert "don't know" in proposal.text
    assert proposal.choices == [TALK_TO_PERSON]
    assert proposal.citations == []


def test_asking_for_a_human_escalates(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("I want a human"))

    assert isinstance(proposal, Escalate)
    assert proposal.reason == "customer asked for a person"
    assert proposal.intent == "talk_to_human"


def test_the_talk_to_a_person_choice_routes_to_a_person(brewline, responder):  # type: ignore[no-untyped-def]
    assert isinstance(responder.propose(turn(TALK_TO_PERSON["value"])), Escalate)


def test_a_greeting_gets_a_short_reply_in_one_query(brewline, responder, django_assert_num_queries):  # type: ignore[no-untyped-def]
    responder.propose(turn("hello"))  # builds the intent table once

    with django_assert_num_queries(1):
        proposal = responder.propose(turn("hi there!"))

    assert isinstance(proposal, Answer)
    assert proposal.kind == "smalltalk" and proposal.intent == "greeting"


def test_a_greeting_in_front_of_a_question_does_not_hide_it(brewline, responder):  # type: ignore[no-untyped-def]
    proposal = responder.propose(turn("hi, where is my order BL-10042? it's been a week"))

    assert isinstance(proposal, ToolCall) and proposal.action == "order_status_lookup"


def test_an_admin_edit_to_the_intents_takes_effect_on_the_next_turn(brewline, responder):  # type: ignore[no-untyped-def]
    assert isinstance(responder.propose(turn("I want a human")), Escalate)

    Intent.objects.filter(name="talk_to_human").update(enabled=False)

    assert not isinstance(responder.propose(turn("I want a human")), Escalate)


# --- The demo intents and the registry ------------------------------------------------------------------------------


def test_seeding_the_demo_intents_twice_changes_nothing(db):  # type: ignore[no-untyped-def]
    assert seed_intents() == {"intents": len(INTENTS)}
    Intent.objects.filter(name="greeting").update(label="Edited by an admin")

    assert seed_intents() == {"intents": 0}
    assert Intent.objects.get(name="greeting").label == "Edited by an admin"


def test_every_demo_intent_has_eight_to_fifteen_examples_and_a_valid_route():
    for spec in intent_specs():
        assert 8 <= len(spec.examples) <= 15, spec.name
        assert (spec.route == "action") == bool(spec.action), spec.name
        for slot in spec.slots:
            assert slot.pattern in slots.PATTERNS and slot.question.endswith((".", "?"))


def test_every_mapped_bitext_intent_exists_among_the_demo_intents():
    names = {spec.name for spec in intent_specs()}
    assert {target for targets in BITEXT_TO_DEMO.values() for target in targets} <= names


def test_the_registry_builds_the_embedded_responder():
    responder = get_responder("embedded")
    assert isinstance(responder, RESPONDERS["embedded"])
    assert (responder.name, responder.version) == ("embedded", "1")
    with pytest.raises(KeyError, match="embedded"):
        get_responder("nope")


def test_the_audience_follows_verification():
    assert audience_for(Verification.ANONYMOUS) == "public"
    assert audience_for(Verification.EMAIL_VERIFIED) == "verified"
    assert turn("x", verification=Verification.ANONYMOUS).audience == "public"


# --- Slot patterns (pure) ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is BL-10042", "BL-10042"),
        ("order bl 10042 please", "BL-10042"),
        ("BL#20517", "BL-20517"),
        ("order 10042", None),  # a bare number only counts as an answer to the question
        ("SUB-2001", None),
    ],
)
def test_order_ids_are_read_and_normalised(text, expected):  # type: ignore[no-untyped-def]
    assert slots.order_id(text) == expected


@pytest.mark.parametrize(
    ("text", "answering", "expected"),
    [
        ("refund £80 for BL-10042", False, "80.00"),
        ("40.50", False, "40.50"),
        ("it was 40 GBP", False, "40.00"),
        ("about 12 pounds", False, "12.00"),
        ("€1,250.50 please", False, "1250.50"),
        ("40,50 EUR", False, "40.50"),
        ("refund BL-10042", False, None),  # the order id's digits are not an amount
        ("40", False, None),
        ("40", True, "40.00"),
        ("£0", False, None),
    ],
)
def test_amounts_are_read_with_two_decimals(text, answering, expected):  # type: ignore[no-untyped-def]
    assert slots.amount(text, answering=answering) == expected


def test_subscription_ids_and_emails_are_normalised():
    assert slots.subscription_id("pause sub 2001") == "SUB-2001"
    assert slots.subscription_id("2001", answering=True) == "SUB-2001"
    assert slots.email("mail me at Ann.Lee@Brewline.EXAMPLE.") == "Ann.Lee@brewline.example"
    assert slots.email("no address here @ all") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "12 High Street, Flat 2, Bristol BS1 4DJ",
            {"line1": "12 High Street", "line2": "Flat 2", "city": "Bristol", "postcode": "BS1 4DJ", "country": "GB"},
        ),
        (
            "my new address is 5 Elm Road, Leeds, ls6 2ab",
            {"line1": "5 Elm Road", "line2": "", "city": "Leeds", "postcode": "LS6 2AB", "country": "GB"},
        ),
        (
            "Keizersgracht 12, 1015 CX Amsterdam, Netherlands",
            {"line1": "Keizersgracht 12", "line2": "", "city": "Amsterdam", "postcode": "1015 CX", "country": "NL"},
        ),
        ("Bristol", None),
        ("somewhere near the station", None),
        ("12 High Street <script>, Bristol BS1 4DJ", None),
    ],
)
def test_addresses_are_read_only_when_certain(text, expected):  # type: ignore[no-untyped-def]
    assert slots.address(text, answering=True) == expected


def test_an_address_in_a_request_is_read_after_to():
    assert slots.address("please send BL-10042 to 3 Park Row, York YO1 7HZ")["postcode"] == "YO1 7HZ"
    assert slots.address("I moved to York") is None


# --- Composition and routing (pure) ----------------------------------------------------------------------------------


def test_a_passage_is_cut_into_sentences_items_and_table_rows():
    text = (
        "UK orders ship from Bristol. Delivery takes two days.\n\n"
        "Delivery options\nOption | Cost\nStandard | £3.95\nExpress | £6.95\n\n"
        "What you can return\n- Coffee in unopened bags.\n- Gift cards are final."
    )
    units = passage_units(text, title="UK delivery", heading="")

    assert [u.text for u in units] == [
        "UK orders ship from Bristol.",
        "Delivery takes two days.",
        "Standard | £3.95",
        "Express | £6.95",
        "Coffee in unopened bags.",
        "Gift cards are final.",
    ]
    assert units[2].kind == ROW and units[2].header == "Option | Cost"
    assert units[2].context == "UK delivery › Delivery options\nOption: Standard. Cost: £3.95."


def test_table_rows_are_rendered_under_their_header_and_steps_with_their_numbers():
    units = passage_units("Option | Cost\nStandard | £3.95\nExpress | £6.95", title="", heading="")
    assert render([Quote(0, units)]) == "Option | Cost\nStandard | £3.95\nExpress | £6.95"

    steps = passage_units("1. Press 2-cup. Wait for the light.\n2. Open the steam knob now.", title="", heading="")
    assert render([Quote(0, steps)]) == "1. Press 2-cup. Wait for the light.\n2. Open the steam knob now."


def test_a_step_of_a_short_procedure_brings_the_whole_procedure():
    steps = "1. Fill the tank with water.\n2. Press the descale button twice.\n3. Wait ten minutes for it."
    text = f"Before you start, empty the tank.\n\n{steps}"
    passage = Passage(chunk_id=1, text=text, heading_path="", score=0.8, citation={"document_title": "Descaling"})
    units = passage_units(text, title="Descaling", heading="")
    vectors = np.eye(len(units), dtype=np.float32)

    composition = compose(vectors[2], [passage], lambda texts: vectors, model_id="test-identity")  # step 2 is best

    assert composition is not None
    assert composition.text == steps


def test_a_step_quoted_beside_the_best_sentence_brings_its_whole_procedure_in_order():
    steps = "1. Fill the tank with water.\n2. Press the descale button twice.\n3. Wait ten minutes for it."
    text = f"It takes about twenty minutes in all.\n\n{steps}"
    passage = Passage(chunk_id=1, text=text, heading_path="", score=0.8, citation={"document_title": "Descaling"})
    units = passage_units(text, title="Descaling", heading="")
    # The sentence is the best unit; step 3 is close behind it, steps 1 and 2 are far off.
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.96, 0.28]], dtype=np.float32)
    assert len(units) == len(vectors)

    composition = compose(np.array([1.0, 0.0], dtype=np.float32), [passage], lambda texts: vectors, model_id="t-2")

    assert composition is not None
    assert composition.text == f"It takes about twenty minutes in all.\n{steps}"


def test_the_best_documents_neighbouring_chunks_may_be_quoted():
    class Hit:
        def __init__(self, chunk_id: int, score: float) -> None:
            self.chunk_id, self.score, self.text, self.heading_path = chunk_id, score, f"text {chunk_id}", ""
            self.citation = {"document_title": f"doc of {chunk_id}", "section": ""}

    rows = [(10, 0, "table", "Options"), (11, 1, "best paragraph", "Express"), (12, 2, "more", "Islands")]
    passages = select_passages([Hit(11, 0.8), Hit(20, 0.75), Hit(30, 0.5)], rows)

    assert [p.chunk_id for p in passages] == [10, 11, 12, 20]  # the third document is too far behind
    assert passages[0].citation == {"document_title": "doc of 11", "section": "Options"}


def test_the_router_scores_an_intent_by_its_nearest_examples():
    specs = [
        IntentSpec(name="a", route="knowledge", examples=("x1", "x2")),
        IntentSpec(name="b", route="knowledge", examples=("y1",), threshold=0.9),
    ]
    vectors = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    table = IntentTable(specs, vectors)

    scores = table.scores(np.array([[1, 0]], dtype=np.float32), top_k=2)
    assert scores.tolist() == [[pytest.approx(0.8), pytest.approx(0.0)]]
    assert table.route(np.array([0, 1], dtype=np.float32)).intent.name == "b"
    routing = table.route(np.array([0.5, 0.866], dtype=np.float32))  # a: (0.5 + 0.99) / 2, b: 0.866
    assert routing.best.name == "b" and routing.intent is None  # below b's own threshold
    assert routing.score == pytest.approx(0.866) and routing.margin == pytest.approx(0.866 - 0.746, abs=1e-3)


def test_the_evaluation_metrics():
    assert threshold_at_fpr(np.array([0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9]), 0.1) == 0.5
    assert macro_f1(["a", "a", "b", "oos"], ["a", "oos", "b", "b"], ["a", "b"]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    features = np.array([[0.9, 0.3], [0.8, 0.2], [0.4, 0.0], [0.3, 0.01]])
    labels = np.array([1.0, 1.0, 0.0, 0.0])
    weights = fit_platt(features, labels)
    assert weights[0] > 0
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0


def test_the_demo_content_paths_used_here_exist():
    for path in ARTICLES:
        assert Path(CONTENT_DIR / path).is_file()


def test_the_default_threshold_grows_with_the_number_of_examples():
    assert default_threshold(10) == pytest.approx(0.4055, abs=1e-3)
    assert default_threshold(100) == pytest.approx(0.530, abs=1e-3)
    assert IntentSpec(name="x", route="knowledge", examples=("a",) * 10).effective_threshold == default_threshold(10)
    assert IntentSpec(name="x", route="knowledge", examples=("a",), threshold=0.7).effective_threshold == 0.7


def test_eval_intents_reports_on_a_small_clinc_style_file(tmp_path):  # type: ignore[no-untyped-def]
    def rows(label: str, texts: list[str]) -> list[list[str]]:
        return [[text, label] for text in texts]

    data = {
        "train": rows("weather", ["what's the weather like", "will it rain today", "is it sunny outside"])
        + rows("balance", ["what's my bank balance", "how much money do I have", "show my account balance"]),
        "val": rows("weather", ["is it going to rain"]) + rows("balance", ["how much is in my account"]),
        "test": rows("weather", ["will it be cold tomorrow"]) + rows("balance", ["check my balance please"]),
        "oos_val": rows("oos", ["play some jazz music"]),
        "oos_test": rows("oos", ["book a table for two"]),
    }
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "report.json"

    call_command("eval_intents", dataset="clinc150", path=str(path), json=str(out), stdout=io.StringIO())

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["split"] == "test" and report["queries"] == {"total": 3, "out_of_scope": 1}
    assert report["table"] == {"intents": 2, "examples": 6, "shots": None}
    assert set(report["at_product_default"]) >= {"in_scope_accuracy", "macro_f1", "oos_recall", "in_scope_fpr"}


def test_eval_intents_refuses_to_show_test_mistakes(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="DEV"):
        call_command("eval_intents", dataset="clinc150", path=str(tmp_path / "x.json"), errors=5)


def _two_passages() -> list[Passage]:
    texts = (
        "Standard delivery to the UK takes two to three working days. Express arrives the next working day.",
        "Orders placed before 1 pm ship the same day. Orders after that ship the next working day.",
    )
    return [
        Passage(chunk_id=n, text=text, heading_path="", score=0.8, citation={"document_title": "Delivery"})
        for n, text in enumerate(texts, start=1)
    ]


def test_quoted_units_are_embedded_once_in_one_batch_and_then_shared_by_every_process():
    """The first quote of a passage embeds its units (all missing passages in one batch); a process that has not seen
    it reads the vectors other processes stored in the cache (Redis) instead of embedding them again."""
    from agent.responders import compose as compose_module
    from agent.responders.embedded import CachedUnitVectors

    model = get_embedder()
    model_id = f"test-shared-{uuid.uuid4().hex}"  # nothing stored under it yet
    calls: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return model.embed(texts)

    question = model.embed(["How long does UK delivery take?"])[0]
    first = compose(question, _two_passages(), embed, model_id=model_id, shared=CachedUnitVectors())
    compose_module._units_cache._items.clear()  # another worker process: nothing in its own memory
    second = compose(question, _two_passages(), embed, model_id=model_id, shared=CachedUnitVectors())

    assert first is not None and second is not None
    assert calls == [4]  # both passages' two sentences each, in one call; none the second time
    assert second.text == first.text and "two to three working days" in first.text


def test_an_unreachable_cache_only_costs_the_embedding_again(settings):  # type: ignore[no-untyped-def]
    from agent.responders import compose as compose_module
    from agent.responders.embedded import CachedUnitVectors

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    model = get_embedder()
    model_id = f"test-no-cache-{uuid.uuid4().hex}"
    calls: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return model.embed(texts)

    question = model.embed(["How long does UK delivery take?"])[0]
    for _ in range(2):
        compose_module._units_cache._items.clear()
        composition = compose(question, _two_passages(), embed, model_id=model_id, shared=CachedUnitVectors())
        assert composition is not None and "two to three working days" in composition.text

    assert calls == [4, 4]


def test_a_damaged_shared_entry_is_embedded_again_not_trusted():
    from django.core.cache import cache

    from agent.responders import compose as compose_module
    from agent.responders.compose import passage_units, units_key
    from agent.responders.embedded import CachedUnitVectors

    model = get_embedder()
    model_id = f"test-damaged-{uuid.uuid4().hex}"
    passages = _two_passages()
    for passage in passages:  # a truncated value and one that is not bytes
        units = passage_units(passage.text, title=passage.title, heading=passage.heading_path)
        cache.set(units_key(model_id, units), b"\x00" * 12 if passage.chunk_id == 1 else "not vectors", 60)
    calls: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return model.embed(texts)

    compose_module._units_cache._items.clear()
    question = model.embed(["How long does UK delivery take?"])[0]
    composition = compose(question, passages, embed, model_id=model_id, shared=CachedUnitVectors())

    assert composition is not None and "two to three working days" in composition.text
    assert calls == [4]
