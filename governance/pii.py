"""PII masking: the model sees typed placeholders (``[EMAIL_1]``), tools get the real values back, server-side.

``mask`` finds personal data in a text and replaces each value with a placeholder; the ``PlaceholderVault`` keeps
placeholder -> real value for one conversation, so the same value gets the same placeholder on every turn, and
``vault.rehydrate`` puts the real values back into tool arguments before a tool runs. Everything here is pure: no
database, no network.

Detectors, each tuned to keep false positives low (order numbers, tracking numbers, prices, dates and quantities
must stay readable for the model, or it cannot help):

- ``email``: a practical subset of RFC 5322 with a letter top-level domain;
- ``phone``: libphonenumber's matcher over a list of default regions, valid numbers only;
- ``card``: 13-19 digit runs with a network's first digit and a Luhn check digit;
- ``iban``: ISO 13616 with its MOD 97-10 check and the country's registered layout;
- ``national_id``: US SSN, UK National Insurance number and French NIR by their shape and check; Dutch BSN, German
  tax id and undashed SSNs only next to a word that names them (their shape alone is any 9- or 11-digit number);
- ``name``, ``address`` (and ``email``): the customer's own values from the CRM, passed in by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.de import idnr
from stdnum.fr import nir
from stdnum.nl import bsn
from stdnum.us import ssn

# Kind -> placeholder label.
LABELS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "card": "CARD",
    "iban": "IBAN",
    "national_id": "NATIONAL_ID",
    "name": "NAME",
    "address": "ADDRESS",
}
KINDS = frozenset(LABELS)
_KIND_BY_LABEL = {label: kind for kind, label in LABELS.items()}
# Equally long overlapping detections: the strongest check wins (a French NIR's MOD 97 key beats a Luhn digit).
_PRIORITY = {
    kind: rank for rank, kind in enumerate(("iban", "national_id", "card", "email", "address", "name", "phone"))
}

# Regions whose national formats are tried for numbers written without "+" and a country code; numbers written with
# one are found whatever the list says. Override with the PII_PHONE_REGIONS setting, or per call.
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "NL")

# "not preceded / followed by a letter or digit" (\w minus the underscore), so identifiers are never cut in half.
_NOT_AFTER_ALNUM = r"(?<![^\W_])"
_NOT_BEFORE_ALNUM = r"(?![^\W_])"


@dataclass(frozen=True)
class Detection:
    kind: str
    start: int
    end: int
    value: str  # the text as written
    key: str  # the value normalised, so that one value written two ways gets one placeholder
    placeholder: str = ""


@dataclass(frozen=True)
class MaskResult:
    text: str
    detections: tuple[Detection, ...]
    vault: PlaceholderVault

    @property
    def kinds_found(self) -> set[str]:
        return {d.kind for d in self.detections}


# --- The vault ---------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\[(" + "|".join(sorted(_KIND_BY_LABEL, key=len, reverse=True)) + r")_([1-9][0-9]*)\]")


class PlaceholderVault:
    """Placeholder -> real value for one conversation. Stored by the caller as ``to_dict()``; it is personal data
    itself and falls under the transcripts' retention rule."""

    def __init__(self, values: Mapping[str, str] | None = None, *, phone_regions: Sequence[str] | None = None) -> None:
        self._regions = tuple(phone_regions or default_phone_regions())
        self._values: dict[str, str] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        for placeholder, value in (values or {}).items():
            match = _PLACEHOLDER.fullmatch(placeholder)
            if match is None or not isinstance(value, str):
                raise ValueError(f"Not a vault entry: {placeholder!r}: {value!r}.")
            kind, number = _KIND_BY_LABEL[match[1]], int(match[2])
            self._values[placeholder] = value
            self._by_key.setdefault((kind, _key(kind, value, self._regions)), placeholder)
            self._counts[kind] = max(self._counts.get(kind, 0), number)

    @classmethod
    def from_dict(cls, data: Mapping[str, str] | None) -> PlaceholderVault:
        return cls(data)

    def to_dict(self) -> dict[str, str]:
        return dict(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._values

    def value(self, placeholder: str) -> str | None:
        return self._values.get(placeholder)

    def placeholder_for(self, kind: str, value: str) -> str:
        """Return the placeholder of ``value``, giving it the next free one of its kind if it has none yet."""
        key = (kind, _key(kind, value, self._regions))
        placeholder = self._by_key.get(key)
        if placeholder is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            placeholder = f"[{LABELS[kind]}_{self._counts[kind]}]"
            self._by_key[key] = placeholder
            self._values[placeholder] = value
        return placeholder

    def rehydrate(self, value: Any) -> Any:
        """Return ``value`` with known placeholders replaced by their real values: in a string, and in the strings
        inside dicts, lists and tuples (tool arguments). Dict keys and unknown placeholders are left as they are."""
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: self._values.get(m[0], m[0]), value)
        if isinstance(value, Mapping):
            return {key: self.rehydrate(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.rehydrate(item) for item in value)
        return value


def default_phone_regions() -> tuple[str, ...]:
    """Return the PII_PHONE_REGIONS setting when Django is configured, else DEFAULT_PHONE_REGIONS."""
    from django.conf import settings

    if settings.configured:
        return tuple(getattr(settings, "PII_PHONE_REGIONS", DEFAULT_PHONE_REGIONS))
    return DEFAULT_PHONE_REGIONS


def _key(kind: str, value: str, regions: Sequence[str]) -> str:
    if kind == "phone":
        number = _parse_phone(value, regions)
        if number is not None:
            key = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return f"{key};ext={number.extension}" if number.extension else key
    if kind in ("phone", "card", "iban", "national_id"):
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return " ".join(re.split(r"[\s,]+", value.strip())).casefold()


def _parse_phone(value: str, regions: Sequence[str]) -> phonenumbers.PhoneNumber | None:
    for region in regions:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None


# --- Masking -----------------------------------------------------------------------------------------------------


def mask(
    text: str,
    *,
    known_values: Mapping[str, Iterable[str]] | None = None,
    vault: PlaceholderVault | None = None,
    kinds: set[str] | None = None,
    phone_regions: Sequence[str] | None = None,
) -> MaskResult:
    """Replace the personal data in ``text`` with placeholders recorded in ``vault`` (a new one when not given).

    ``known_values`` are the customer's own values from the CRM, by kind: ``{"name": [...], "address": [...],
    "email": [...]}``. ``kinds`` limits what is looked for (default: everything). Overlapping detections resolve to
    the longest span; on a tie, the detector with the strongest check (see ``_PRIORITY``).
    """
    wanted = KINDS if kinds is None else frozenset(kinds)
    if unknown := wanted - KINDS:
        raise ValueError(f"Unknown PII kinds: {', '.join(sorted(unknown))}.")
    regions = tuple(phone_regions or default_phone_regions())
    vault = vault if vault is not None else PlaceholderVault(phone_regions=regions)
    found = [d for d in detect(text, known_values=known_values, phone_regions=regions) if d.kind in wanted]
    chosen = _resolve_overlaps(found)
    pieces: list[str] = []
    detections: list[Detection] = []
    position = 0
    for detection in chosen:  # in text order, so placeholders are numbered as the text reads
        placeholder = vault.placeholder_for(detection.kind, detection.value)
        pieces += [text[position : detection.start], placeholder]
        detections.append(
            Detection(detection.kind, detection.start, detection.end, detection.value, detection.key, placeholder)
        )
        position = detection.end
    pieces.append(text[position:])
    return MaskResult("".join(pieces), tuple(detections), vault)


def detect(
    text: str,
    *,
    known_values: Mapping[str, Iterable[str]] | None = None,
    phone_regions: Sequence[str] | None = None,
) -> list[Detection]:
    """Return every detection in ``text``, overlapping ones included (``mask`` resolves them)."""
    regions = tuple(phone_regions or default_phone_regions())
    found: list[Detection] = []
    for detector in _DETECTORS:
        found.extend(detector(text, regions))
    found.extend(_known(text, known_values or {}, regions))
    return found


def _resolve_overlaps(found: list[Detection]) -> list[Detection]:
    chosen: list[Detection] = []
    for candidate in sorted(found, key=lambda d: (-(d.end - d.start), _PRIORITY[d.kind], d.start)):
        if all(candidate.end <= other.start or candidate.start >= other.end for other in chosen):
            chosen.append(candidate)
    return sorted(chosen, key=lambda d: d.start)


def _detection(kind: str, text: str, start: int, end: int, regions: Sequence[str]) -> Detection:
    value = text[start:end]
    return Detection(kind, start, end, value, _key(kind, value, regions))


# --- Detectors ---------------------------------------------------------------------------------------------------

# The WHATWG HTML "valid e-mail address" (a deliberate, practical subset of RFC 5322's addr-spec), narrowed twice
# for chat text: the local part starts and ends with a letter or digit (so quotes and brackets around an address
# stay outside the span), and the domain needs a dot and a letter-only top-level domain (RFC 1123 s. 2.1 keeps TLDs
# alphabetic), so "v2@3x" or "user@localhost" are left alone. Unicode letters are allowed (RFC 6531, EAI).
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w%+-](?:[\w.%+-]*[\w%+-])?"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}" + _NOT_BEFORE_ALNUM
)


def _emails(text: str, regions: Sequence[str]) -> Iterator[Detection]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        yield _detection("email", text, match.start(), match.end(), regions)


# A bare run of digits right after a word naming an identifier is that identifier, even when it happens to be a
# valid phone number somewhere ("ticket 2024031512" is a valid Washington DC number).
_IDENTIFIER_LABEL = re.compile(
    r"\b(?:order|ticket|invoice|tracking|parcel|shipment|ref(?:erence)?|case|account|customer|item|sku|article|"
    r"fedex|ups|usps|dhl|dpd|gls|postnl|hermes|colissimo|"
    r"bestellung|auftrag|rechnung|sendung|commande|facture|colis|bestelling|factuur|pakket|zending)"
    r"(?:\s*(?:number|no\.?|nr\.?|num[eé]ro|n°|nummer|id))?(?:\s+(?:is|was|ist|est))?\s*[:#]?\s*$",
    re.IGNORECASE,
)
# Dates in the layouts libphonenumber does not exclude itself: 05.08.2024, 2024-08-05 (its own check covers slashes).
_DATE_LIKE = re.compile(r"\d{1,2}\.\d{1,2}\.(?:\d{2}|\d{4})|\d{4}-\d{1,2}-\d{1,2}")
# North American Numbering Plan layout (ATIS NANP: NPA-NXX-XXXX, both NPA and NXX start with 2-9), written with
# separators or a parenthesised area code and an optional extension. libphonenumber only accepts area codes in
# service in its metadata; to a reader "(456) 550-0485" is a phone number either way, and metadata lags new codes.
_NANP = re.compile(
    r"(?<![\w+-])(?:(?:\+?1|001)[-. ]?)?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[-. ])[2-9]\d{2}[-. ]\d{4}"
    r"(?:\s*(?:x|ext\.?)\s*\d{1,6})?(?![\w-])",
    re.IGNORECASE,
)


def _phones(text: str, regions: Sequence[str]) -> Iterator[Detection]:
    # libphonenumber's matcher (Google's metadata: each region's E.164 numbering plan) at Leniency.VALID: the number
    # must be valid in the region's plan, and the matcher itself skips candidates glued to letters or currency signs,
    # slash dates and time stamps. One pass per region for numbers written in national format; a number valid in two
    # regions is kept once. Numbers written with "+" and a country code only need a possible length: the "+" says
    # "phone" on its own, and a number that is new or misdialled is still someone's.
    if sum(ch.isdigit() for ch in text) < 7:  # no plan has valid numbers shorter than that (bar short codes)
        return
    passes = [(region, phonenumbers.Leniency.VALID) for region in regions]
    if "+" in text:
        passes.append((regions[0] if regions else "US", phonenumbers.Leniency.POSSIBLE))
    seen: set[tuple[int, int]] = set()
    for region, leniency in passes:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
            span = (match.start, match.end)
            if span in seen or _not_a_phone(text, match.start, match.end, match.raw_string):
                continue
            if leniency == phonenumbers.Leniency.POSSIBLE and not match.raw_string.startswith("+"):
                continue
            seen.add(span)
            yield _detection("phone", text, match.start, match.end, regions)
    if "US" in regions or "CA" in regions:
        for match in _NANP.finditer(text):
            if not _not_a_phone(text, match.start(), match.end(), match[0]):
                yield _detection("phone", text, match.start(), match.end(), regions)


def _not_a_phone(text: str, start: int, end: int, raw: str) -> bool:
    """Tell whether a phone-shaped candidate is really part of a longer number, an identifier or a date."""
    if _DATE_LIKE.fullmatch(raw) or sum(ch.isdigit() for ch in raw) < 7:
        return True
    # Glued to an identifier by a hyphen or slash (the tail of ORD-2025-830166), or one stretch of a longer run of
    # digit groups (the middle of a tracking number printed in fours).
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    if len(before) == 2 and ((before[1] in "-/" and before[0].isalnum()) or (before[1] == " " and before[0].isdigit())):
        return True
    if len(after) == 2 and ((after[0] in "-/" and after[1].isalnum()) or (after[0] == " " and after[1].isdigit())):
        return True
    return raw.isdigit() and bool(_IDENTIFIER_LABEL.search(text, max(0, start - 40), start))


# Payment card numbers (PANs). ISO/IEC 7812-1: the networks issue 13 to 19 digits (Visa 13/16/19, Amex 15, Mastercard
# 16, ...), people write them unbroken or in groups separated by spaces or dashes, and the last digit is a Luhn check
# digit (ISO/IEC 7812-1 Annex B), which 9 in 10 random digit runs fail. The first digit, the Major Industry Identifier,
# is 2 to 6 for every network (2 and 5 Mastercard, 3 Amex/JCB/Diners, 4 Visa, 6 Discover/UnionPay/Maestro), which
# rules out most tracking numbers (USPS starts with 9); the exception kept is JCB's legacy 15-digit 1800 range.
# Maestro also issues 12-digit cards; 12 digits is a FedEx tracking number too, so those count only with one of
# Maestro's own IINs (5018 5020 5038 5893 6304 6759 6761 6762 6763). A card is the start of a digit run, whole groups,
# with at most a short group after it (the expiry or CVV in "4111 1111 1111 1111 12/27"): the middle of a longer run
# (a 22-digit USPS number in groups of four) is never taken for one.
_DIGIT_RUN = re.compile(_NOT_AFTER_ALNUM + r"\d+(?:[ -]\d+)*" + _NOT_BEFORE_ALNUM)
_GROUP = re.compile(r"\d+")
_MAESTRO_12 = ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763")


def _cards(text: str, regions: Sequence[str]) -> Iterator[Detection]:
    for run in _DIGIT_RUN.finditer(text):
        if run[0][0] not in "123456" or _card_context_says_otherwise(text, run.start()):
            continue
        groups = _GROUP.findall(run[0])
        digits = ""
        for count, group in enumerate(groups, start=1):
            digits += group
            rest = sum(len(g) for g in groups[count:])
            if len(digits) > 19 or rest > 4:
                continue
            if _is_card_number(digits):
                end = run.start() + len(" ".join(groups[:count]))  # separators are one character each
                yield _detection("card", text, run.start(), end, regions)
                break


def _card_context_says_otherwise(text: str, start: int) -> bool:
    """Tell whether the words before a digit run make it something else: named as an order or tracking number, or
    the tail of a grouped code that starts with letters ("DE89 3704 0044 ...", an IBAN that failed its check)."""
    before = text[max(0, start - 40) : start]
    return bool(_IDENTIFIER_LABEL.search(before) or _MIXED_GROUP_BEFORE.search(before))


_MIXED_GROUP_BEFORE = re.compile(r"(?<![^\W_])(?=[^\W_]*[^\W\d_])(?=[^\W_]*\d)[^\W_]+ $")


def _is_card_number(digits: str) -> bool:
    if len(digits) == 12:
        return digits.startswith(_MAESTRO_12) and luhn.is_valid(digits)
    if not 13 <= len(digits) <= 19 or (digits[0] == "1" and not digits.startswith("1800")):
        return False
    return luhn.is_valid(digits)


# IBAN (ISO 13616-1): a country code, two check digits, then the country's BBAN of up to 30 letters and digits;
# the "paper format" prints it in groups of four separated by spaces. stdnum checks the ISO 7064 MOD 97-10 check
# digits and the BBAN length and layout registered for the country (SWIFT's IBAN registry), so a random candidate
# passes far less than once in 97 tries and no context is needed. The candidate may run on into a following word
# ("... 7654 32 OK"), so it is cut back at spaces until it validates; case is ignored (people type "de89 ...").
_IBAN_START = re.compile(_NOT_AFTER_ALNUM + r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){10,32}")


def _ibans(text: str, regions: Sequence[str]) -> Iterator[Detection]:
    position = 0
    while match := _IBAN_START.search(text, position):
        candidate = match[0]
        ends = [len(candidate)] + [i for i in range(len(candidate) - 1, 0, -1) if candidate[i] == " "]
        for end in ends:
            after = match.start() + end
            if (after == len(text) or not text[after].isalnum()) and stdnum_iban.is_valid(candidate[:end]):
                yield _detection("iban", text, match.start(), after, regions)
                position = after
                break
        else:
            position = match.start() + 1  # a real IBAN may start inside a failed candidate ("ref AB12 DE89 ...")


# National identifiers whose shape is distinctive enough on its own.
# - US SSN (SSA): area-group-serial written 3-2-4 with dashes (or spaces); stdnum refuses what SSA never issues:
#   area 000, 666 and 900-999, group 00, serial 0000, and numbers made public (078-05-1120 from a wallet insert).
# - UK National Insurance number (HMRC NIM39110): two letters, six digits, a suffix A-D, often printed in pairs
#   ("AB 12 34 56 C"). The first letter is never D F I Q U V, the second never D F I O Q U V. HMRC does not allocate
#   the prefixes BG GB KN NK NT TN ZZ, but they still appear on temporary and test references that identify a
#   person; nothing else in a support chat has this shape, so they are masked too. python-stdnum has no NINO module.
# - French NIR (INSEE): 15 digits (sex, year, month, department incl. 2A/2B, commune, order, a 2-digit MOD 97 key),
#   often spaced "2 95 10 99 126 111 93"; validated by stdnum.fr.nir.
_NATIONAL_IDS: list[tuple[re.Pattern[str], Callable[[str], bool]]] = [
    (re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])"), lambda value: ssn.is_valid(_digits(value))),
    (
        re.compile(
            _NOT_AFTER_ALNUM + r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]" + _NOT_BEFORE_ALNUM,
            re.IGNORECASE,
        ),
        lambda _: True,
    ),
    (
        re.compile(
            _NOT_AFTER_ALNUM + r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}" + _NOT_BEFORE_ALNUM
        ),
        nir.is_valid,
    ),
]
# Identifiers that are just 9 or 11 digits with a weak check (1 in 11, 1 in 10): taken only when a word naming them
# comes shortly before, or every order number would risk being masked.
# - Dutch BSN (burgerservicenummer): 9 digits, "elfproef" (stdnum.nl.bsn);
# - German Steuer-IdNr: 11 digits, ISO 7064 MOD 11,10 and its repeated-digit rule (stdnum.de.idnr);
# - US SSN written without dashes.
_NAMED_IDS: list[tuple[re.Pattern[str], re.Pattern[str], Callable[[str], bool]]] = [
    (
        re.compile(r"\b(?:bsn|burgerservicenummer|sofi-?nummer|citizen service number)\b", re.IGNORECASE),
        re.compile(_NOT_AFTER_ALNUM + r"\d{4}[ .]?\d{2}[ .]?\d{3}" + _NOT_BEFORE_ALNUM),
        bsn.is_valid,
    ),
    (
        re.compile(
            r"\b(?:steuer-?id(?:entifikationsnummer)?|steuerliche identifikationsnummer|idnr|tax id)\b", re.IGNORECASE
        ),
        re.compile(_NOT_AFTER_ALNUM + r"\d{2} ?\d{3} ?\d{3} ?\d{3}" + _NOT_BEFORE_ALNUM),
        idnr.is_valid,
    ),
    (
        re.compile(r"\b(?:ssn|social security(?: number| no\.?)?)\b", re.IGNORECASE),
        re.compile(_NOT_AFTER_ALNUM + r"\d{9}" + _NOT_BEFORE_ALNUM),
        ssn.is_valid,
    ),
]
_NAMED_ID_REACH = 40  # characters between the naming word and the number ("my BSN is 1234.56.782")


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _national_ids(text: str, regions: Sequence[str]) -> Iterator[Detection]:
    for pattern, is_valid in _NATIONAL_IDS:
        for match in pattern.finditer(text):
            if is_valid(match[0]):
                yield _detection("national_id", text, match.start(), match.end(), regions)
    for word, pattern, is_valid in _NAMED_IDS:
        for match in pattern.finditer(text):
            if is_valid(match[0]) and word.search(text, max(0, match.start() - _NAMED_ID_REACH), match.start()):
                yield _detection("national_id", text, match.start(), match.end(), regions)


_DETECTORS: list[Callable[[str, Sequence[str]], Iterable[Detection]]] = [
    _emails,
    _phones,
    _cards,
    _ibans,
    _national_ids,
]


# --- Known values ------------------------------------------------------------------------------------------------

# Titles and suffixes, dropped from a name to get the name as people write it ("Dr. Jane Doe" is "Jane Doe" too).
_NAME_TITLES = {
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau", "mme", "mlle", "dhr", "mevr",
    "jr", "sr", "md", "phd", "dds", "ii", "iii", "iv",
}  # fmt: skip
# Particles that are ordinary words alone ("De" opens a Dutch sentence): never matched as a part on their own.
_NAME_PARTICLES = {
    "van", "der", "den", "de", "del", "della", "di", "da", "do", "dos", "du", "la", "le", "von", "zu", "ten", "ter",
    "te", "het", "bin", "al", "el", "y", "e",
}  # fmt: skip


def _known(text: str, known_values: Mapping[str, Iterable[str]], regions: Sequence[str]) -> Iterator[Detection]:
    for kind, values in known_values.items():
        if kind not in KINDS:
            raise ValueError(f"Unknown PII kind for known values: {kind!r}.")
        pattern = _known_pattern(kind, tuple(sorted({v for v in values if v})))
        if pattern is None:
            continue
        for match in pattern.finditer(text):
            yield _detection(kind, text, match.start(), match.end(), regions)


@lru_cache(maxsize=512)
def _known_pattern(kind: str, values: tuple[str, ...]) -> re.Pattern[str] | None:
    """Compile one pattern for a customer's values of one kind.

    A value matches case-insensitively, on word boundaries, with any run of whitespace (a line break too) or a comma
    where the value has whitespace or a comma: "221B Baker Street, London" also matches "221b baker street london".
    A value with several lines (an address) also matches line by line. A name also matches by its parts ("Jane" of
    "Jane Doe"), but a part alone only when written with its capital ("Will" of "Will Smith", never "I will"), and
    titles and particles ("Dr.", "van", "der") never alone: a lower-case part alone is an ordinary word too often.
    """
    alternatives: list[str] = []
    for value in values:
        forms = [value, *(line for line in value.splitlines() if line.strip() != value.strip())]
        if kind == "name":
            parts = [part for part in value.split() if part.strip(".,").casefold() not in _NAME_TITLES]
            forms.append(" ".join(parts))
            if len(parts) > 1:
                alternatives += [p for p in map(_name_part, parts) if p]
        alternatives += sorted({p for p in map(_phrase, forms) if p})
    if not alternatives:
        return None
    alternatives.sort(key=len, reverse=True)  # longest first, so the whole value wins over its parts
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


def _name_part(part: str) -> str:
    core = part.strip(".,")
    if len(core) < 2 or not core[0].isupper() or core.casefold() in _NAME_PARTICLES:
        return ""
    return re.escape(core[0]) + "(?i:" + re.escape(core[1:]) + ")"


def _phrase(value: str) -> str | None:
    tokens = [t for t in re.split(r"[\s,]+", value) if t]
    if not tokens or sum(len(t) for t in tokens) < 2:
        return None
    return "(?i:" + r"(?:\s*,\s*|\s+)".join(re.escape(t) for t in tokens) + ")"
