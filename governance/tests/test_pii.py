"""PII masking: what each detector takes and leaves, placeholders kept per conversation, rehydration for tools."""

from __future__ import annotations

import pytest

from governance.pii import PlaceholderVault, mask

# (text, the masked text): one table per detector, each with the near misses it must leave alone.
EMAILS = [
    ("write to jane.doe@example.com please", "write to [EMAIL_1] please"),
    ("Mail: 'J.Doe+shop@Example.co.uk'.", "Mail: '[EMAIL_1]'."),
    ("jörg@bücher.example.de", "[EMAIL_1]"),
    ("root@localhost is down", "root@localhost is down"),
    ("we ship v2@3x speed", "we ship v2@3x speed"),
    ("follow @brewline on socials", "follow @brewline on socials"),
]
PHONES = [
    ("call me at 020 7946 0958", "call me at [PHONE_1]"),
    ("Handy: 0151 23456789", "Handy: [PHONE_1]"),
    ("mon portable +33 6 12 34 56 78", "mon portable [PHONE_1]"),
    ("bel 06 12345678 aub", "bel [PHONE_1] aub"),
    ("office (650) 253-0000 ext. 12", "office [PHONE_1]"),
    ("(456) 550-0485, an area code not yet in service", "[PHONE_1], an area code not yet in service"),
    ("+49 1511 0000000", "[PHONE_1]"),
    ("ticket 2024031512 is still open", "ticket 2024031512 is still open"),
    ("order ORD-2025-830166 is late", "order ORD-2025-830166 is late"),
    ("bestellt am 05.08.2024", "bestellt am 05.08.2024"),
    ("zip 94105-1234", "zip 94105-1234"),
    ("USPS 9400 7644 1685 0054 8769 60", "USPS 9400 7644 1685 0054 8769 60"),
]
CARDS = [
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD_1] exp 12/27"),
    ("card 4111 1111 1111 1111 12/27", "card [CARD_1] 12/27"),
    ("card 4111-1111-1111-1111", "card [CARD_1]"),
    ("amex 378282246310005", "amex [CARD_1]"),
    ("maestro 6304 0000 0000", "maestro [CARD_1]"),
    ("card 4111 1111 1111 1112", "card 4111 1111 1111 1112"),  # Luhn fails
    ("ref 1234567890128", "ref 1234567890128"),  # Luhn passes, but no network starts with 1
    ("USPS 9400 1118 9922 3397 8345 26", "USPS 9400 1118 9922 3397 8345 26"),
    ("tracking 4111111111111111", "tracking 4111111111111111"),  # named as something else
]
IBANS = [
    ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN_1]."),
    ("to GB82WEST12345698765432 please", "to [IBAN_1] please"),
    ("nl91abna0417164300", "[IBAN_1]"),
    ("IBAN GB82 WEST 1234 5698 7654 32 OK thanks", "IBAN [IBAN_1] OK thanks"),
    ("ref AB12 DE89 3704 0044 0532 0130 00", "ref AB12 [IBAN_1]"),
    ("DE89 3704 0044 0532 0130 01", "DE89 3704 0044 0532 0130 01"),  # check digits fail
]
NATIONAL_IDS = [
    ("SSN 536-90-4399", "SSN [NATIONAL_ID_1]"),
    ("it is 536 90 4399", "it is [NATIONAL_ID_1]"),
    ("my SSN is 536904399", "my SSN is [NATIONAL_ID_1]"),
    ("578-05-1120 and 219-09-9999", "[NATIONAL_ID_1] and 219-09-9999"),  # the second was used in an advert
    ("666-12-3456 923-45-6789 123-00-4567", "666-12-3456 923-45-6789 123-00-4567"),  # never issued
    ("NINO AB 12 34 56 C", "NINO [NATIONAL_ID_1]"),
    ("nino ab123456c", "nino [NATIONAL_ID_1]"),
    ("QQ 12 34 56 C and AB 12 34 56 E", "QQ 12 34 56 C and AB 12 34 56 E"),  # Q never leads, E never ends
    ("NIR 2 95 10 99 126 111 93", "NIR [NATIONAL_ID_1]"),
    ("mijn BSN is 1112.22.333", "mijn BSN is [NATIONAL_ID_1]"),
    ("Steuer-ID: 36 574 261 809", "Steuer-ID: [NATIONAL_ID_1]"),
    ("order 111222333 arrived", "order 111222333 arrived"),  # a valid BSN, but nothing says it is one
    ("536904399", "536904399"),
]
HARD_NEGATIVES = [
    "Where is my order BL-10042?",
    "UPS says 1Z999AA10123456784 is delayed",
    "DHL tracking 1234567890 shows nothing",
    "the FedEx number is 072086561748",
    "Royal Mail ref AB123456785GB",
    "It cost $1,299.00, I was charged € 1.299,00 and want 49.99 GBP back",
    "delivered on 2024-03-15, or 15.03.2024, or 03/15/2024, or 15 March 2024",
    "I ordered 3 x 250g and 12 boxes, only 2 arrived",
    "Do you deliver to SW1A 1AA, 10115, 75008 or 1017 AB?",
    "Invoice INV-2024-00042 is wrong",
    "between 14:30 and 17:00",
    "Order #1000042 still hasn't arrived",
]


@pytest.mark.parametrize(("text", "masked"), EMAILS + PHONES + CARDS + IBANS + NATIONAL_IDS)
def test_each_detector_masks_what_it_should_and_leaves_its_near_misses(text: str, masked: str) -> None:
    assert mask(text).text == masked


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_order_numbers_tracking_numbers_prices_dates_and_quantities_stay_readable(text: str) -> None:
    result = mask(text)
    assert result.text == text, result.detections


def test_placeholders_are_numbered_by_kind_in_reading_order() -> None:
    result = mask("jane@example.com, +44 20 7946 0958, bob@example.com, 0151 23456789")
    assert result.text == "[EMAIL_1], [PHONE_1], [EMAIL_2], [PHONE_2]"
    assert [(d.kind, d.placeholder, d.value) for d in result.detections][:2] == [
        ("email", "[EMAIL_1]", "jane@example.com"),
        ("phone", "[PHONE_1]", "+44 20 7946 0958"),
    ]


def test_one_vault_gives_the_same_value_the_same_placeholder_on_every_turn() -> None:
    vault = PlaceholderVault()
    first = mask("I'm jane@example.com, call 020 7946 0958", vault=vault)
    second = mask("again: JANE@example.com or +44 20 7946 0958, or bob@example.com", vault=vault)
    assert first.text == "I'm [EMAIL_1], call [PHONE_1]"
    assert second.text == "again: [EMAIL_1] or [PHONE_1], or [EMAIL_2]"
    assert vault.to_dict() == {
        "[EMAIL_1]": "jane@example.com",
        "[PHONE_1]": "020 7946 0958",
        "[EMAIL_2]": "bob@example.com",
    }


def test_a_stored_vault_continues_where_it_left_off() -> None:
    vault = PlaceholderVault()
    mask("jane@example.com and 4111 1111 1111 1111", vault=vault)
    restored = PlaceholderVault.from_dict(vault.to_dict())
    result = mask("bob@example.com, jane@example.com, 4111111111111111", vault=restored)
    assert result.text == "[EMAIL_2], [EMAIL_1], [CARD_1]"


def test_a_vault_refuses_entries_that_are_not_placeholders() -> None:
    with pytest.raises(ValueError, match="Not a vault entry"):
        PlaceholderVault.from_dict({"EMAIL_1": "jane@example.com"})
    with pytest.raises(ValueError, match="Not a vault entry"):
        PlaceholderVault.from_dict({"[EMAIL_1]": 42})  # type: ignore[dict-item]


def test_rehydrate_puts_real_values_back_into_nested_tool_arguments() -> None:
    vault = PlaceholderVault()
    mask("jane@example.com, 020 7946 0958, DE89 3704 0044 0532 0130 00", vault=vault)
    arguments = {
        "to": "[EMAIL_1]",
        "contacts": [{"phone": "[PHONE_1]", "note": "call [PHONE_1] first"}, ("[IBAN_1]", 3)],
        "amount": 12.5,
        "refund": True,
        "[EMAIL_1]": "keys are left alone",
        "unknown": "[EMAIL_9] and [CARD_1] stay as written",
    }
    assert vault.rehydrate(arguments) == {
        "to": "jane@example.com",
        "contacts": [
            {"phone": "020 7946 0958", "note": "call 020 7946 0958 first"},
            ("DE89 3704 0044 0532 0130 00", 3),
        ],
        "amount": 12.5,
        "refund": True,
        "[EMAIL_1]": "keys are left alone",
        "unknown": "[EMAIL_9] and [CARD_1] stay as written",
    }
    assert vault.rehydrate("Sent to [EMAIL_1].") == "Sent to jane@example.com."


def test_masking_masked_text_again_changes_nothing() -> None:
    vault = PlaceholderVault()
    once = mask("jane@example.com, card 4111 1111 1111 1111", vault=vault)
    assert mask(once.text, vault=vault).text == once.text


CUSTOMER = {
    "name": ["Dr. Jane van der Berg"],
    "address": ["221B Baker Street\nLondon NW1 6XE"],
    "email": ["jane.berg@example.com"],
}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Hi, this is Jane van der Berg.", "Hi, this is [NAME_1]."),
        ("this is jane   VAN der\nberg", "this is [NAME_1]"),
        ("Dr. Jane van der Berg here", "[NAME_1] here"),
        ("Jane here, quick question", "[NAME_1] here, quick question"),
        ("Mrs Berg called", "Mrs [NAME_1] called"),
        ("Janet and Bergen are not her", "Janet and Bergen are not her"),
        ("the van is in the garden", "the van is in the garden"),
        ("ship to 221b baker street, london nw1 6xe", "ship to [ADDRESS_1]"),
        ("ship to 221B Baker Street", "ship to [ADDRESS_1]"),
        ("my email is JANE.BERG@example.com", "my email is [EMAIL_1]"),
        ("Jane.Berg@example.com", "[EMAIL_1]"),  # the address wins over the name parts inside it
    ],
)
def test_the_customers_own_values_are_masked_case_and_spacing_aside(text: str, masked: str) -> None:
    assert mask(text, known_values=CUSTOMER).text == masked


def test_a_name_part_alone_needs_its_capital() -> None:
    known = {"name": ["Will Smith"]}
    assert mask("I will call, Will", known_values=known).text == "I will call, [NAME_1]"


def test_kinds_limit_what_is_masked() -> None:
    text = "jane@example.com, 020 7946 0958"
    assert mask(text, kinds={"email"}).text == "[EMAIL_1], 020 7946 0958"
    with pytest.raises(ValueError, match="Unknown PII kinds: passport"):
        mask(text, kinds={"passport"})


def test_the_longest_overlapping_detection_wins() -> None:
    # The customer's address holds a phone-shaped number; the address is longer, so it is one placeholder.
    known = {"address": ["Unit 020 7946 0958, Dock Road"]}
    assert mask("deliver to Unit 020 7946 0958, Dock Road", known_values=known).text == "deliver to [ADDRESS_1]"


def test_phone_regions_decide_which_national_formats_are_read() -> None:
    assert mask("bel 06 12345678", phone_regions=["US"]).text == "bel 06 12345678"
    assert mask("bel 06 12345678", phone_regions=["NL"]).text == "bel [PHONE_1]"
    assert mask("bel +31 6 12345678", phone_regions=["US"]).text == "bel [PHONE_1]"


def test_the_evaluation_is_deterministic_for_a_seed_and_writes_its_figures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    from io import StringIO

    from django.core.management import call_command

    runs = []
    for name in ("a.json", "b.json"):
        out = StringIO()
        call_command("eval_pii", n=60, seed=3, locale="en_GB,nl_NL", json_path=str(tmp_path / name), stdout=out)
        figures = json.loads((tmp_path / name).read_text())
        figures.pop("throughput")
        runs.append(figures)
        assert "overall" in out.getvalue() and "texts/s" in out.getvalue()
    assert runs[0] == runs[1]
    assert runs[0]["settings"] == {"n": 60, "seed": 3, "locales": ["en_GB", "nl_NL"], "match": "overlap"}
    assert runs[0]["overall"]["gold"] > 0
