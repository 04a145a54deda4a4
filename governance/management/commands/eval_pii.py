"""Measure the PII detectors on a labelled, generated set of support-chat texts.

Each text is one to three fragments: personal data embedded in a sentence (labelled with its kind and span), or a
hard negative that must stay readable (order ids, tracking numbers, prices, dates, quantities, postcodes alone).
Names, addresses and the customer's email come from a generated CRM record and are passed to ``mask`` as known
values, as the agent does. A detection counts when it overlaps a labelled span of the same kind (``overlap``
match); the share of exact boundaries is reported next to it. Same seed, same set, same figures.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import phonenumbers
from django.core.management.base import BaseCommand, CommandError, CommandParser
from faker import Faker
from stdnum.de import idnr
from stdnum.iso7064 import mod_11_10

from governance.pii import LABELS, mask

REGIONS = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "nl_NL": "NL"}
NEGATIVE = "negative"


@dataclass
class Sample:
    locale: str
    text: str = ""
    # (kind, start, end, note): kind is a PII kind, or NEGATIVE with the hard-negative category as note.
    spans: list[tuple[str, int, int, str]] = field(default_factory=list)
    known: dict[str, list[str]] = field(default_factory=dict)

    def add(self, template: str, kind: str = "", value: str = "", note: str = "") -> None:
        """Append ``template`` (with one ``{}`` for ``value``) as a sentence, labelling the value's span."""
        before, _, after = template.partition("{}")
        if self.text:
            self.text += " "
        start = len(self.text) + len(before)
        self.text += before + value + after
        if kind:
            self.spans.append((kind, start, start + len(value), note))


class Generator:
    """Support-chat texts from Faker, deterministic for a seed."""

    def __init__(self, seed: int, locales: list[str]) -> None:
        self.rng = random.Random(seed)
        self.locales = locales
        self.fakers: dict[str, Faker] = {}
        for offset, locale in enumerate(locales):
            faker = Faker(locale)
            faker.seed_instance(seed * 100 + offset)
            self.fakers[locale] = faker

    def sample(self, index: int) -> Sample:
        locale = self.locales[index % len(self.locales)]
        faker = self.fakers[locale]
        first, last = faker.first_name(), faker.last_name()
        customer = {"name": f"{first} {last}", "first": first, "address": faker.address(), "email": faker.email()}
        sample = Sample(locale, known={k: [customer[k]] for k in ("name", "address", "email")})
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.55:
                kind = self.rng.choice(list(LABELS))
                getattr(self, f"_{kind}")(sample, faker, customer)
            else:
                self._negative(sample, faker)
        return sample

    # --- Personal data ---

    def _email(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        value = customer["email"] if self.rng.random() < 0.5 else faker.free_email()
        template = self.rng.choice(
            ["You can reach me at {}.", "my email is {} btw", "Please send the invoice to {} instead.", "({})"]
        )
        sample.add(template, "email", value)

    def _phone(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        value = faker.phone_number()
        template = self.rng.choice(["Call me on {} after 5pm.", "My number is {}", "mobile: {}, thanks"])
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(value, REGIONS[sample.locale]))
        except phonenumbers.NumberParseException:
            valid = False
        sample.add(template, "phone", value, "valid" if valid else "not valid in its numbering plan")

    def _card(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        digits = faker.credit_card_number()
        layout = self.rng.choice(["compact", "space", "dash"])
        value = digits if layout == "compact" else {"space": " ", "dash": "-"}[layout].join(_groups(digits, 4))
        template = self.rng.choice(["I paid with card {}.", "card number {} exp 12/27", "it was charged to {} twice"])
        sample.add(template, "card", value)

    def _iban(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        compact = faker.iban()
        value = compact if self.rng.random() < 0.5 else " ".join(_groups(compact, 4))
        template = self.rng.choice(["Please refund to IBAN {}.", "my account is {}", "Bank details: {} - thanks!"])
        sample.add(template, "iban", value)

    def _national_id(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        value, label = self._national_id_value(sample.locale, faker)
        if self.rng.random() < 0.8:
            sample.add(f"my {label} is {{}}", "national_id", value, "named")
        else:
            sample.add("here it is: {}", "national_id", value, "unnamed")

    def _national_id_value(self, locale: str, faker: Faker) -> tuple[str, str]:
        if locale == "de_DE":  # Faker has no German tax id: draw one that stdnum accepts
            while True:
                body = str(self.rng.randint(1, 9)) + "".join(self.rng.choice(string.digits) for _ in range(9))
                number = body + mod_11_10.calc_check_digit(body)
                if idnr.is_valid(number):
                    return f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}", "Steuer-ID"
        if locale == "en_GB":  # Faker's en_GB ssn is no NINO (ZZ prefix, T suffix): draw one by HMRC's rules
            prefix = self.rng.choice("ABCEGHJKLMNOPRSTWXYZ") + self.rng.choice("ABCEGHJKLMNPRSTWXYZ")
            pairs = [f"{self.rng.randrange(100):02d}" for _ in range(3)]
            suffix = self.rng.choice("ABCD")
            layout = self.rng.choice([" ".join([prefix, *pairs, suffix]), prefix + "".join(pairs) + suffix])
            return layout, "National Insurance number"
        labels = {
            "en_US": "SSN",
            "en_GB": "National Insurance number",
            "fr_FR": "numéro de sécurité sociale",
            "nl_NL": "BSN",
        }
        return faker.ssn(), labels.get(locale, "SSN")

    def _name(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        name = customer["name"]
        choice = self.rng.randrange(4)
        if choice == 0:
            sample.add("Hi, this is {}.", "name", name)
        elif choice == 1:
            sample.add("{} here, quick question.", "name", customer["first"])
        elif choice == 2:
            sample.add("the account is under {}", "name", name.lower())
        else:
            sample.add("Regards,\n{}", "name", name.replace(" ", "  ", 1))

    def _address(self, sample: Sample, faker: Faker, customer: dict[str, str]) -> None:
        lines = customer["address"].splitlines()
        choice = self.rng.randrange(3)
        if choice == 0:
            sample.add("Please ship it to {}.", "address", ", ".join(lines))
        elif choice == 1:
            sample.add("My address is\n{}\nthanks", "address", customer["address"])
        else:
            sample.add("I moved to {} last month", "address", lines[0])

    # --- Hard negatives ---

    def _negative(self, sample: Sample, faker: Faker) -> None:
        category, template, value = self.rng.choice(self._negatives(faker))
        sample.add(template, NEGATIVE, value, category)

    def _negatives(self, faker: Faker) -> list[tuple[str, str, str]]:
        rng = self.rng
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(700))

        def digits(n: int) -> str:
            return "".join(rng.choice(string.digits) for _ in range(n))

        def upper(n: int) -> str:
            return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))

        return [
            ("order id", "Where is my order {}?", f"BL-{rng.randint(10000, 99999)}"),
            ("order id", "Order #{} still hasn't arrived.", digits(7)),
            ("order id", "order number {}", f"ORD-{day.year}-{digits(6)}"),
            ("tracking number", "UPS says {} is delayed", f"1Z{upper(6)}{digits(10)}"),
            ("tracking number", "USPS tracking {}", " ".join(_groups("9400" + digits(18), 4))),
            ("tracking number", "DHL tracking {} shows nothing", digits(10)),
            ("tracking number", "the FedEx number is {}", digits(12)),
            ("tracking number", "Royal Mail ref {}", f"{upper(2)}{digits(9)}GB"),
            ("price", "It cost {} in total.", f"${rng.randint(1, 2999)}.{rng.randint(0, 99):02d}"),
            ("price", "I was charged {}", f"€{rng.randint(1, 9)}.{rng.randint(100, 999)},{rng.randint(0, 99):02d}"),
            ("price", "refund of {} please", f"{rng.randint(1, 2000):,}.{rng.randint(0, 99):02d} GBP"),
            ("date", "It was delivered on {}.", day.isoformat()),
            ("date", "bestellt am {}", day.strftime("%d.%m.%Y")),
            ("date", "ordered {}", day.strftime("%m/%d/%Y")),
            ("date", "since {}", day.strftime("%d %B %Y")),
            ("quantity", "I ordered {} of the dark roast", f"{rng.randint(2, 24)} x {rng.choice([250, 500, 1000])}g"),
            ("quantity", "only {} arrived", f"{rng.randint(2, 99)} boxes"),
            ("postcode", "Do you deliver to {}?", faker.postcode()),
            ("invoice number", "Invoice {} is wrong", f"INV-{day.year}-{digits(5)}"),
            ("time", "between {} and 17:00", f"{rng.randint(8, 12)}:{rng.choice(['00', '15', '30', '45'])}"),
        ]


def _groups(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Command(BaseCommand):
    help = "Measure PII detection recall and precision per kind on a generated, labelled set of support chats."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--n", type=int, default=2000, help="Number of texts (default 2000).")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--locale", default=",".join(REGIONS), help="Comma-separated Faker locales.")
        parser.add_argument("--json", dest="json_path", default="", help="Also write the figures to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        locales = [loc.strip() for loc in options["locale"].split(",") if loc.strip()]
        if unknown := [loc for loc in locales if loc not in REGIONS]:
            raise CommandError(f"Unsupported locale(s): {', '.join(unknown)}; choose from {', '.join(REGIONS)}.")
        if options["n"] < 1:
            raise CommandError("--n must be at least 1.")
        generator = Generator(options["seed"], locales)
        samples = [generator.sample(i) for i in range(options["n"])]
        figures = evaluate(samples)
        figures["settings"] = {"n": options["n"], "seed": options["seed"], "locales": locales, "match": "overlap"}
        self.stdout.write(render(figures))
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(figures, indent=2) + "\n")


def evaluate(samples: list[Sample]) -> dict[str, Any]:
    """Run ``mask`` on every sample; return recall, precision and exact-boundary share per kind, and throughput."""
    gold: Counter[str] = Counter()
    recalled: Counter[str] = Counter()
    exact: Counter[str] = Counter()
    hidden: Counter[str] = Counter()  # gold spans overlapped by a detection of any kind: the value is masked
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    notes: dict[str, Counter[str]] = defaultdict(Counter)  # (kind, note) gold and recalled, for the breakdown rows
    negatives: Counter[str] = Counter()
    negatives_masked: Counter[str] = Counter()
    results = []
    started = time.perf_counter()
    for sample in samples:
        results.append(mask(sample.text, known_values=sample.known, phone_regions=tuple(REGIONS.values())))
    elapsed = time.perf_counter() - started
    for sample, result in zip(samples, results, strict=True):
        found = [(d.kind, (d.start, d.end)) for d in result.detections]
        for kind, start, end, note in sample.spans:
            hits = [span for found_kind, span in found if _overlaps(span, (start, end))]
            if kind == NEGATIVE:
                negatives[note] += 1
                negatives_masked[note] += bool(hits)
                continue
            same = [span for found_kind, span in found if found_kind == kind and _overlaps(span, (start, end))]
            gold[kind] += 1
            recalled[kind] += bool(same)
            exact[kind] += (start, end) in same
            hidden[kind] += bool(hits)
            if note:
                notes[f"{kind} ({note})"].update(gold=1, recalled=bool(same))
        for kind, span in found:
            predicted[kind] += 1
            correct[kind] += any(k == kind and _overlaps(span, (s, e)) for k, s, e, _ in sample.spans)
    per_kind = {
        kind: _rates(gold[kind], recalled[kind], exact[kind], hidden[kind], predicted[kind], correct[kind])
        for kind in LABELS
        if gold[kind] or predicted[kind]
    }
    total = [sum(c.values()) for c in (gold, recalled, exact, hidden, predicted, correct)]
    return {
        "per_kind": per_kind,
        "overall": _rates(*total),
        "breakdown": {
            name: {**counts, "recall": _ratio(counts["recalled"], counts["gold"])}
            for name, counts in sorted(notes.items())
        },
        "hard_negatives": {
            category: {"spans": count, "masked": negatives_masked[category]}
            for category, count in sorted(negatives.items())
        },
        "throughput": {
            "texts": len(samples),
            "seconds": round(elapsed, 3),
            "texts_per_second": round(len(samples) / elapsed, 1) if elapsed else None,
            "mean_chars": round(sum(len(s.text) for s in samples) / len(samples), 1),
        },
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rates(gold: int, recalled: int, exact: int, hidden: int, predicted: int, correct: int) -> dict[str, Any]:
    return {
        "gold": gold,
        "recalled": recalled,
        "recall": _ratio(recalled, gold),
        "masked_any_kind": _ratio(hidden, gold),
        "predicted": predicted,
        "correct": correct,
        "precision": _ratio(correct, predicted),
        "exact_boundaries": _ratio(exact, gold),
    }


def render(figures: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f}%"

    settings = figures["settings"]
    lines = [
        f"PII detection: {settings['n']} texts, seed {settings['seed']}, locales {','.join(settings['locales'])}; "
        "a detection counts when it overlaps a labelled span of the same kind.",
        "",
        f"{'kind':<14}{'gold':>7}{'found':>7}{'recall':>9}{'predicted':>11}{'correct':>9}{'precision':>11}"
        f"{'exact span':>12}{'masked':>9}",
    ]
    rows = [*figures["per_kind"].items(), ("overall", figures["overall"])]
    for kind, r in rows:
        lines.append(
            f"{kind:<14}{r['gold']:>7}{r['recalled']:>7}{pct(r['recall']):>9}{r['predicted']:>11}{r['correct']:>9}"
            f"{pct(r['precision']):>11}{pct(r['exact_boundaries']):>12}{pct(r['masked_any_kind']):>9}"
        )
    lines += [
        "",
        "recall and precision: same kind, overlapping span; exact span: share of labelled spans found with exact "
        "boundaries; masked: share of labelled spans hidden by a detection of any kind.",
        "",
        "Breakdown:",
    ]
    lines += [
        f"  {name:<52}{c['recalled']:>5} / {c['gold']:<5}{pct(c['recall']):>8}"
        for name, c in figures["breakdown"].items()
    ]
    lines += ["", "Hard negatives masked (any detection overlapping them):"]
    lines += [f"  {category:<20}{c['masked']:>5} / {c['spans']}" for category, c in figures["hard_negatives"].items()]
    t = figures["throughput"]
    lines += ["", f"Throughput: {t['texts_per_second']} texts/s ({t['texts']} texts, mean {t['mean_chars']} chars)."]
    return "\n".join(lines) + "\n"
