"""Slot values from customer text: validated patterns for ids, e-mails and amounts, and a small reader for addresses.

Pure functions. Each pattern returns a normalised value or None; nothing is guessed. A bare number counts as an order
id, subscription id or amount only when the customer is answering the question that asked for it ("Which order?"
"10042"), and an address is only read from an answer to the address question or after an explicit "to ..." with a
postcode: a full address is not a pattern, so the agent asks for it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

ORDER_ID, SUBSCRIPTION_ID, EMAIL, AMOUNT, ADDRESS = "order_id", "subscription_id", "email", "amount", "address"
PATTERNS = (ORDER_ID, SUBSCRIPTION_ID, EMAIL, AMOUNT, ADDRESS)

_ORDER = re.compile(r"\bBL[\s#-]?(\d{4,8})\b", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"\bSUB[\s#-]?(\d{3,8})\b", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"(?<![\w.,£$€-])#?(\d{3,8})(?![\w.,])")
# RFC 5322 allows far more; this is the shape customers type, and what Django's EmailValidator accepts in practice.
_EMAIL = re.compile(
    r"(?<![\w.+-])([A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b"
)

_NUMBER = r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d{1,7}(?:[.,]\d{1,2})?)"
_SYMBOLS = {"£": "GBP", "$": "USD", "€": "EUR"}
_WORDS = {
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
}
_AMOUNT_SYMBOL = re.compile(r"(?P<cur>[£$€])\s?" + _NUMBER + r"(?![\d])")
_AMOUNT_WORD = re.compile(_NUMBER + r"\s?(?P<cur>" + "|".join(_WORDS) + r")\b", re.IGNORECASE)
_AMOUNT_DECIMAL = re.compile(r"(?<![\w.,])(?P<num>\d{1,7}\.\d{2})(?![\w.,])")
_AMOUNT_BARE = re.compile(r"(?<![\w.,])(?P<num>\d{1,7}(?:[.,]\d{1,2})?)(?![\w.,%])")
MAX_AMOUNT = Decimal("100000")

# UK postcodes (the outward and inward code; Royal Mail's format, without the special cases like GIR 0AA).
_UK_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b", re.IGNORECASE)
_US_ZIP = re.compile(r"\b([A-Z]{2})\s+(\d{5}(?:-\d{4})?)\b")
_OTHER_POSTCODE = re.compile(r"\b(\d{4,5}(?:\s?[A-Z]{2})?)\b")
_COUNTRIES = {
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "gb": "GB",
    "ireland": "IE",
    "france": "FR",
    "germany": "DE",
    "deutschland": "DE",
    "netherlands": "NL",
    "the netherlands": "NL",
    "belgium": "BE",
    "spain": "ES",
    "italy": "IT",
    "austria": "AT",
    "usa": "US",
    "us": "US",
    "united states": "US",
}
_ADDRESS_LEAD = re.compile(
    r"^(?:(?:my\s+)?(?:new\s+)?(?:delivery\s+|shipping\s+)?address\s+is|it'?s|it\s+is|please\s+send\s+it\s+to|send\s+it\s+to|to)[\s:,-]+",
    re.IGNORECASE,
)
_ADDRESS_AFTER = re.compile(r"(?:\bto\b|\baddress\s+is\b|\baddress:)\s*(?P<rest>[^\n]*)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[<>{}]")


def order_id(text: str, *, answering: bool = False) -> str | None:
    """Return the first Brewline order id in ``text`` as ``BL-<digits>`` (``bl 10042``, ``BL#10042`` too)."""
    match = _ORDER.search(text)
    if match:
        return f"BL-{match[1]}"
    if answering:
        bare = _BARE_NUMBER.search(text)
        if bare:
            return f"BL-{bare[1]}"
    return None


def subscription_id(text: str, *, answering: bool = False) -> str | None:
    """Return the first subscription id in ``text`` as ``SUB-<digits>``."""
    match = _SUBSCRIPTION.search(text)
    if match:
        return f"SUB-{match[1]}"
    if answering and not _ORDER.search(text):
        bare = _BARE_NUMBER.search(text)
        if bare:
            return f"SUB-{bare[1]}"
    return None


def email(text: str, *, answering: bool = False) -> str | None:
    """Return the first e-mail address in ``text``, its domain lower-cased (as Django's normalize_email does)."""
    match = _EMAIL.search(text)
    if not match:
        return None
    local, _, domain = match[1].rpartition("@")
    return f"{local}@{domain.lower()}"


def _decimal(raw: str) -> Decimal | None:
    # 1,250.00 has thousands separators; 40,50 a decimal comma.
    thousands = re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?", raw)
    raw = raw.replace(",", "") if thousands else raw.replace(",", ".")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value > MAX_AMOUNT:
        return None
    return value.quantize(Decimal("0.01"))


def _without_identifiers(text: str) -> str:
    """Blank out order and subscription ids and e-mails, whose digits are never amounts."""
    for pattern in (_ORDER, _SUBSCRIPTION, _EMAIL):
        text = pattern.sub(lambda m: " " * len(m[0]), text)
    return text


def money(text: str, *, answering: bool = False) -> tuple[Decimal, str] | None:
    """Return the first amount in ``text`` and its currency ("" when not said): £40, 40.50, 40 GBP, 40 pounds.

    A whole number without a currency (``40``) is an amount only in an answer to the amount question.
    """
    text = _without_identifiers(text)
    found: list[tuple[int, Decimal | None, str]] = []
    for match in _AMOUNT_SYMBOL.finditer(text):
        found.append((match.start(), _decimal(match["num"]), _SYMBOLS[match["cur"]]))
    for match in _AMOUNT_WORD.finditer(text):
        found.append((match.start(), _decimal(match["num"]), _WORDS[match["cur"].lower()]))
    if not found:
        for match in _AMOUNT_DECIMAL.finditer(text):
            found.append((match.start(), _decimal(match["num"]), ""))
    if not found and answering:
        for match in _AMOUNT_BARE.finditer(text):
            found.append((match.start(), _decimal(match["num"]), ""))
    for _, value, currency in sorted(found, key=lambda item: item[0]):
        if value is not None:
            return value, currency
    return None


def amount(text: str, *, answering: bool = False) -> str | None:
    """Return the first amount in ``text`` as a string with two decimals ("80.00"), what governance limits read."""
    found = money(text, answering=answering)
    return f"{found[0]:.2f}" if found else None


def _country(segment: str) -> str | None:
    return _COUNTRIES.get(segment.strip().strip(".").lower())


def parse_address(text: str) -> dict[str, str] | None:
    """Read ``line1[, line2], city POSTCODE[, country]`` into the address object the commerce connector takes.

    UK postcodes and US ``STATE ZIP`` are recognised; any other postcode needs the country named. Returns None when
    the text is not an address this can read with certainty (the agent then hands over rather than guess).
    """
    text = _ADDRESS_LEAD.sub("", text.strip()).strip().rstrip(".")
    if _UNSAFE.search(text) or not 8 <= len(text) <= 200:
        return None
    segments = [s.strip() for s in re.split(r"[,\n]+", text) if s.strip()]
    country = None
    if len(segments) > 1 and _country(segments[-1]):
        country = _country(segments.pop())
    postcode = None
    index = None
    for position in range(len(segments) - 1, -1, -1):
        segment = segments[position]
        for pattern, code_country in ((_UK_POSTCODE, "GB"), (_US_ZIP, "US"), (_OTHER_POSTCODE, None)):
            match = pattern.search(segment)
            if not match or (code_country == "GB" and country not in (None, "GB")):
                continue
            if code_country == "GB":
                postcode = f"{match[1]} {match[2]}".upper()
            elif code_country == "US":
                postcode = f"{match[1]} {match[2]}"
            else:
                postcode = match[1].upper()
            country = country or code_country
            segments[position] = (segment[: match.start()] + segment[match.end() :]).strip(" ,")
            index = position
            break
        if postcode:
            break
    if postcode is None or country is None or index is None:
        return None
    if not segments[index]:
        segments.pop(index)
        index -= 1
    if index < 1:  # no city apart from the street line
        return None
    line1, city = segments[0], segments[index]
    if not re.search(r"\d", line1) and len(line1.split()) < 2:
        return None
    return {
        "line1": line1,
        "line2": ", ".join(segments[1:index]),
        "city": city,
        "postcode": postcode,
        "country": country,
    }


def address(text: str, *, answering: bool = False) -> dict[str, str] | None:
    """Return the address in ``text``: the whole answer to the address question, or what follows "to" or "address
    is" in a message that ends with a postcode."""
    if answering:
        return parse_address(_without_identifiers(text))
    match = _ADDRESS_AFTER.search(text)
    if match and (_UK_POSTCODE.search(match["rest"]) or _US_ZIP.search(match["rest"])):
        return parse_address(match["rest"])
    return None


EXTRACTORS = {
    ORDER_ID: order_id,
    SUBSCRIPTION_ID: subscription_id,
    EMAIL: email,
    AMOUNT: amount,
    ADDRESS: address,
}


def extract(pattern: str, text: str, *, answering: bool = False) -> Any:
    """Return the value of ``pattern`` in ``text``, or None (an unknown pattern finds nothing)."""
    extractor = EXTRACTORS.get(pattern)
    return extractor(text, answering=answering) if extractor else None


def strip_values(text: str) -> str:
    """Return ``text`` without identifiers, e-mails and amounts (what is left says whether it is a bare answer)."""
    text = _without_identifiers(text)
    for pattern in (_AMOUNT_SYMBOL, _AMOUNT_WORD, _AMOUNT_DECIMAL, _BARE_NUMBER):
        text = pattern.sub(" ", text)
    return text
