"""Load the demo company (Brewline Coffee). Idempotent: running it again changes nothing that is already there.

``--traffic DAYS`` then plays DAYS days of demo customers through the real turn loop (agent/demo_traffic.py), marked as
demo traffic; ``--remove-traffic`` deletes it again (docs/agent/demo-traffic.md)."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agent.demo import seed_intents, seed_prompt_versions
from agent.demo_traffic import (
    DEFAULT_PER_DAY,
    DEFAULT_SEED,
    MAX_DAYS,
    MAX_PER_DAY,
    DemoTrafficError,
    TrafficReport,
    demo_traffic_exists,
    demo_traffic_remove,
    demo_traffic_seed,
)
from connectors.demo import DemoSeedError, seed_connectors
from connectors.helpdesk_schema import HelpdeskSetupError, ensure_helpdesk_schema, seed_helpdesk_connector
from dashboard.demo import seed_costs
from governance.demo import seed_governance
from knowledge.demo import DemoContentError, seed_knowledge
from qa.demo import seed_qa
from suites.demo import seed_suites

DEMO_COMPANY = "Brewline Coffee"


def _site() -> dict[str, int]:
    domain = urlsplit(settings.SITE_URL).netloc
    _, created = Site.objects.update_or_create(
        pk=settings.SITE_ID, defaults={"domain": domain, "name": f"Steward — {DEMO_COMPANY}"}
    )
    return {"site": int(created)}


def _helpdesk() -> dict[str, int]:
    return {**ensure_helpdesk_schema(), **seed_helpdesk_connector()}


# (label, step, in one transaction?) — in order: the owners seed_governance creates are used by every later step.
STEPS: list[tuple[str, Callable[[], dict[str, int]], bool]] = [
    ("Site", _site, True),
    ("Governance", seed_governance, True),
    ("QA", seed_qa, True),
    ("Intents", seed_intents, True),
    ("Prompts", seed_prompt_versions, True),
    # Own transactions: the connector rows, then Brewline's ~10,000 demo records (~2 s) without the audit-chain lock.
    ("Connectors", seed_connectors, False),
    ("Helpdesk", _helpdesk, True),
    # Not in a transaction: the first run embeds the articles (~20 s), and an open transaction would hold the
    # audit-chain lock all that time.
    ("Knowledge", seed_knowledge, False),
    ("Suites", seed_suites, True),
    ("Costs", seed_costs, True),
]


def _bounded(maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= maximum:
            raise ArgumentTypeError(f"must be 1 to {maximum}, not {value}")
        return value

    return parse


class Command(BaseCommand):
    help = (
        "Load the demo company's configuration and content (safe to run again); with --traffic, also days of demo "
        "conversations played through the real turn loop."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--traffic",
            type=_bounded(MAX_DAYS),
            metavar="DAYS",
            help="Then play DAYS days of demo traffic, ending yesterday (refused when demo traffic is loaded already).",
        )
        parser.add_argument(
            "--per-day",
            type=_bounded(MAX_PER_DAY),
            default=DEFAULT_PER_DAY,
            help=f"Demo conversations on an average weekday (default {DEFAULT_PER_DAY}).",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="The traffic's random seed: the same seed, the same plan."
        )
        parser.add_argument("--replace", action="store_true", help="With --traffic: remove loaded demo traffic first.")
        parser.add_argument(
            "--if-absent",
            action="store_true",
            help="With --traffic: do nothing when demo traffic is loaded already (make run's restarts).",
        )
        parser.add_argument(
            "--remove-traffic",
            action="store_true",
            help="Delete the demo traffic (conversations and what hangs off them; audit records stay) and nothing "
            "else, unless --traffic is given too.",
        )

    def handle(self, *args: object, **options: object) -> None:
        days, remove = options["traffic"], bool(options["remove_traffic"])
        if options["replace"] and options["if_absent"]:
            raise CommandError("--replace and --if-absent contradict each other.")
        if days is None and (options["replace"] or options["if_absent"]):
            raise CommandError("--replace and --if-absent go with --traffic DAYS.")
        asks_to_double = days is not None and not (remove or options["replace"] or options["if_absent"])
        if asks_to_double and demo_traffic_exists():  # before the configuration steps: refuse at once
            raise CommandError(
                "Demo traffic is already loaded; loading it again would double it. Remove it first "
                "(seed_demo --remove-traffic) or replace it (--replace)."
            )
        if remove:
            self._remove()
        if remove and days is None:
            return
        self._configuration()
        if days is not None:
            self._traffic(days, options)

    def _configuration(self) -> None:
        self.stdout.write(f"Demo company: {DEMO_COMPANY}")
        for label, step, atomic in STEPS:
            try:
                if atomic:
                    with transaction.atomic():
                        made = step()
                else:
                    made = step()
            except (DemoContentError, HelpdeskSetupError, DemoSeedError) as exc:
                raise CommandError(f"{label}: {exc}") from None
            summary = ", ".join(f"{count} {name}" for name, count in made.items() if count) or "nothing new"
            self.stdout.write(f"  {label}: {summary}.")

    def _traffic(self, days: int, options: dict[str, object]) -> None:
        if options["if_absent"] and demo_traffic_exists():
            self.stdout.write("  Demo traffic: loaded already, left as it is.")
            return
        self.stdout.write(f"  Demo traffic: playing {days} days through the turn loop…")
        try:
            report = demo_traffic_seed(
                days=days, per_day=int(options["per_day"]), seed=int(options["seed"]), replace=bool(options["replace"])
            )
        except DemoTrafficError as exc:
            raise CommandError(str(exc)) from None
        if report.removed:
            self.stdout.write(f"    Replaced: {_counts(report.removed)}.")
        self.stdout.write(_traffic_summary(report))

    def _remove(self) -> None:
        removed = demo_traffic_remove()
        if not removed:
            self.stdout.write("Demo traffic: none to remove.")
            return
        self.stdout.write(f"Demo traffic removed: {_counts(removed)}.")
        self.stdout.write(
            "  Their audit records stay: the audit log is append-only, tamper-evident evidence (the removal is "
            "recorded in it too)."
        )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count) or "nothing"


def _traffic_summary(report: TrafficReport) -> str:
    events, tally = report.events, report.tally
    figures = {
        "turns": report.turns,
        "escalated": events.get("escalated", 0),
        "picked up by a person": tally.get("picked up by a person", 0),
        "closed": events.get("closed", 0),
        "ratings": events.get("csat", 0),
        "thumbs": events.get("reply_feedback", 0),
        "approvals approved": tally.get("approvals approved", 0),
        "approvals rejected": tally.get("approvals rejected", 0),
        "tickets solved": tally.get("tickets solved", 0),
        "tickets reopened": tally.get("tickets reopened", 0),
        "returns on topic": events.get("returned_on_topic", 0),
        "left waiting": tally.get("left waiting for a person", 0),
    }
    return (
        f"    {report.conversations} demo conversations, {report.first} to {report.last} "
        f"(events on {report.days_with_events} days), in {report.seconds} s: {_counts(figures)}.\n"
        f"    Rolled up {report.first} to {report.last} ({report.rollup_rows} rows)."
    )
