"""What the agent is worth in money over a period: the value of its contained conversations and automated actions,
what it costs, the net saving and the payback, in total and per intent (docs/roi.md).

The counts come from analytics events with the definitions of ``analytics.metrics`` (a contained conversation was
closed in the period and never reached a person; the conversations the traffic share gave to a person are left
out); the money from ``CostSettings``. A figure that needs an input nobody configured, or traffic there was none
of, is *not computable* and says why: never an invented number. Test conversations never count: they leave no
events, and their ids are excluded here as well.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from agent.models import Conversation, Intent
from analytics.models import AnalyticsEvent, EventKind, MetricRollup
from analytics.slices import PERSON_REACHED
from dashboard.models import CostSettings
from governance.models import ChannelRollout

DAYS_PER_MONTH = Decimal("30.4375")  # 365.25 / 12: a month of the running cost, and the payback's month
# The reason an allowed tool call's action_executed event carries when an executor changed something without a person
# deciding it (agent.tools); read-only lookups carry "read-only lookup" and are part of answering.
EXECUTED_BY_AGENT = "executed"
NOT_CONFIGURED = "costs are not configured (admin: Dashboard and ROI › Cost settings)"
NO_TRAFFIC = "the agent answered no conversation in the period"


# --- The period and the counts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Events from ``start`` (included) to ``end`` (excluded), in one channel or every channel (``channel`` empty)."""

    start: datetime
    end: datetime
    days: int
    channel: str = ""

    @classmethod
    def of_days(cls, first: date, last: date, channel: str = "") -> Window:
        """Whole days ``first``..``last``, both included, in the current time zone."""
        start = timezone.make_aware(datetime.combine(first, time.min))
        end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))
        return cls(start, end, (last - first).days + 1, channel)

    @classmethod
    def last_days(cls, days: int, channel: str = "", until: datetime | None = None) -> Window:
        end = until or timezone.now()
        return cls(end - timedelta(days=days), end, days, channel)


@dataclass
class Counts:
    """What happened in a window: conversations the agent answered, closed ones and contained ones, automated
    actions executed (by action), and the channels the conversations came in on."""

    conversations: int = 0
    closed: int = 0
    contained: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    channels: set[str] = field(default_factory=set)

    @property
    def action_count(self) -> int:
        return sum(self.actions.values())

    @property
    def containment_rate(self) -> float | None:
        return self.contained / self.closed if self.closed else None


@dataclass
class Traffic:
    """Counts of a window in total (each conversation once) and per intent (a conversation counts under every intent
    it had a turn of), and the conversations of every channel (to apportion the running cost to one channel)."""

    window: Window
    total: Counts
    by_intent: dict[str, Counts]
    all_channels_conversations: int


def _test_conversation_ids() -> QuerySet[Conversation]:
    return Conversation.objects.filter(is_test=True).annotate(key=Cast("id", CharField())).values("key")


def _events(window: Window, *kinds: str, in_channel: bool = True) -> QuerySet[AnalyticsEvent]:
    events = AnalyticsEvent.objects.filter(kind__in=kinds, created_at__gte=window.start, created_at__lt=window.end)
    if window.channel and in_channel:
        events = events.filter(channel=window.channel)
    return events.exclude(conversation_id__in=_test_conversation_ids())


def _closed(window: Window) -> QuerySet[AnalyticsEvent]:
    """The window's closed events of conversations the AI took, each annotated with whether it reached a person."""
    reached = AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=PERSON_REACHED)
    held_back = AnalyticsEvent.objects.filter(
        conversation_id=OuterRef("conversation_id"), kind=EventKind.TRAFFIC_TO_PERSON
    )
    return _events(window, EventKind.CLOSED).exclude(Exists(held_back)).annotate(reached_person=Exists(reached))


def _closed_counts() -> dict[str, Count]:
    return {
        "closed": Count("conversation_id", distinct=True),
        "contained": Count("conversation_id", distinct=True, filter=Q(reached_person=False)),
    }


def traffic_measure(window: Window) -> Traffic:
    """Count a window's conversations, closed and contained ones and automated actions, in total and per intent.

    Five queries, however many intents: answered turns by channel and intent, answered conversations here and in
    every channel, closed and contained conversations in total and by intent, executed actions by intent."""
    by_intent: dict[str, Counts] = defaultdict(Counts)
    answered = _events(window, EventKind.TURN_ANSWERED)
    for row in answered.values("channel", "intent").annotate(n=Count("conversation_id", distinct=True)).order_by():
        if row["intent"]:
            by_intent[row["intent"]].conversations += row["n"]  # a conversation has one channel: the sum is exact
            by_intent[row["intent"]].channels.add(row["channel"])
    everywhere = _events(window, EventKind.TURN_ANSWERED, in_channel=False).aggregate(
        all_channels=Count("conversation_id", distinct=True),
        here=Count("conversation_id", distinct=True, filter=Q(channel=window.channel) if window.channel else Q()),
    )
    closed = _closed(window)
    total = Counts(conversations=everywhere["here"], **closed.aggregate(**_closed_counts()))
    reached = AnalyticsEvent.objects.filter(conversation_id=OuterRef("conversation_id"), kind__in=PERSON_REACHED)
    closed_ids = closed.values("conversation_id")
    about = (
        AnalyticsEvent.objects.filter(kind=EventKind.TURN_ANSWERED, conversation_id__in=closed_ids)
        .exclude(intent="")
        .annotate(reached_person=Exists(reached))
    )
    for row in about.values("intent").annotate(**_closed_counts()).order_by():
        by_intent[row["intent"]].closed, by_intent[row["intent"]].contained = row["closed"], row["contained"]
    executed = _events(window, EventKind.ACTION_EXECUTED).filter(data__reason=EXECUTED_BY_AGENT)
    for row in executed.values("intent", action=KT("data__action")).annotate(n=Count("pk")).order_by():
        total.actions[row["action"]] = total.actions.get(row["action"], 0) + row["n"]
        if row["intent"]:
            by_intent[row["intent"]].actions[row["action"]] = row["n"]
    return Traffic(window, total, dict(by_intent), everywhere["all_channels"])


def known_channels() -> list[str]:
    """Channels a lead may pick: those with a rollout row or a day of rolled-up metrics."""
    rolled_out = ChannelRollout.objects.values_list("channel", flat=True)
    rolled_up = MetricRollup.objects.exclude(channel="").values_list("channel", flat=True).distinct()
    return sorted({*rolled_out, *rolled_up})


# --- Money (pure) --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An amount in the configured currency, or None with the reason it is not computable."""

    amount: Decimal | None
    why: str = ""

    @property
    def known(self) -> bool:
        return self.amount is not None

    def text(self, currency: str) -> str:
        return f"{self.amount:,.2f} {currency}" if self.amount is not None else "not computable"


ZERO = Money(Decimal(0))


def money_sum(*parts: Money) -> Money:
    """Add amounts; unknown when any part is, with every part's reason."""
    if unknown := [part.why for part in parts if not part.known]:
        return Money(None, "; ".join(dict.fromkeys(why for why in unknown if why)))
    return Money(sum((part.amount for part in parts if part.amount is not None), Decimal(0)))


def money_minus(gain: Money, loss: Money) -> Money:
    """Subtract ``loss`` from ``gain``; unknown when either is."""
    return money_sum(gain, Money(-loss.amount) if loss.amount is not None else loss)


def contained_value(costs: CostSettings | None, contained: int) -> Money:
    """Contained conversations × the cost of a human-handled contact, or × minutes per contact × the minute cost
    when no contact cost is set (the contact cost wins when both are)."""
    if costs is None:
        return Money(None, NOT_CONFIGURED)
    if costs.human_contact_cost is not None:
        return Money(contained * costs.human_contact_cost)
    if costs.agent_minute_cost is not None and costs.minutes_per_human_contact is not None:
        return Money(contained * costs.minutes_per_human_contact * costs.agent_minute_cost)
    if contained == 0:
        return ZERO
    return Money(None, "set the cost of a human-handled contact, or the cost per agent minute and minutes per contact")


def minutes_saved(costs: CostSettings, actions: dict[str, int]) -> tuple[Decimal, list[str]]:
    """Return the minutes ``actions`` (action → executions) saved, and the actions whose minutes nobody set."""
    total, missing = Decimal(0), []
    for action, executions in sorted(actions.items()):
        per_action = costs.minutes_saved(action)
        if per_action is None:
            missing.append(action)
        else:
            total += executions * per_action
    return total, missing


def actions_value(costs: CostSettings | None, actions: dict[str, int]) -> Money:
    """Automated actions executed × the minutes each saves × the cost per agent minute."""
    if costs is None:
        return Money(None, NOT_CONFIGURED)
    minutes, missing = minutes_saved(costs, actions)
    if missing:
        return Money(None, f"set the minutes saved by {', '.join(missing)}, or a default")
    if minutes == 0:
        return ZERO
    if costs.agent_minute_cost is None:
        return Money(None, "set the cost per agent minute to value the minutes automated actions save")
    return Money(minutes * costs.agent_minute_cost)


def model_cost(costs: CostSettings | None, conversations: int) -> Money:
    """Conversations the agent answered × the model cost per conversation."""
    if costs is None:
        return Money(None, NOT_CONFIGURED)
    if costs.model_cost_per_conversation is None:
        return ZERO if conversations == 0 else Money(None, "set the model cost per conversation (0 for a local model)")
    return Money(conversations * costs.model_cost_per_conversation)


def running_cost(costs: CostSettings | None, *, days: int, share: tuple[int, int] | None = None) -> Money:
    """The monthly running cost prorated to ``days``; for one channel, times its ``share`` (its conversations, all
    conversations) of the period's conversations."""
    if costs is None:
        return Money(None, NOT_CONFIGURED)
    if costs.monthly_running_cost is None:
        return Money(None, "set the monthly running cost")
    amount = costs.monthly_running_cost * days / DAYS_PER_MONTH
    if share is None:
        return Money(amount)
    part, whole = share
    if whole == 0:
        return Money(None, "no conversation in any channel to apportion the running cost by")
    return Money(amount * part / whole)


@dataclass(frozen=True)
class Payback:
    """Months until the net saving per month has recovered the one-off setup cost."""

    months: Decimal | None
    never: bool = False
    why: str = ""

    def text(self) -> str:
        if self.never:
            return "never at this rate"
        return f"{self.months:,.1f} months" if self.months is not None else "not computable"


def payback(costs: CostSettings | None, net_per_month: Money) -> Payback:
    """Setup cost ÷ net saving per month; never when the net saving per month is not above zero."""
    if not net_per_month.known:
        return Payback(None, why=net_per_month.why)
    if net_per_month.amount <= 0:  # type: ignore[operator]
        return Payback(None, never=True, why="the agent costs more than it saves over this period")
    if costs is None or costs.setup_cost is None:
        return Payback(None, why="set the one-off setup cost")
    return Payback(costs.setup_cost / net_per_month.amount)  # type: ignore[operator]


# --- The view's figures --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntentRoi:
    intent: str
    label: str
    counts: Counts
    value: Money
    model_cost: Money
    net: Money  # before the running cost, which no single intent causes


@dataclass(frozen=True)
class ActionRow:
    action: str
    executions: int
    minutes_each: Decimal | None


@dataclass(frozen=True)
class Roi:
    window: Window
    costs: CostSettings | None
    counts: Counts
    contained_value: Money
    actions_value: Money
    value: Money
    model_cost: Money
    running_cost: Money
    cost: Money
    net: Money
    net_per_month: Money
    payback: Payback
    actions: list[ActionRow]
    intents: list[IntentRoi]
    all_channels_conversations: int

    @property
    def currency(self) -> str:
        return self.costs.currency if self.costs else ""


def intent_roi(costs: CostSettings | None, intent: str, label: str, counts: Counts) -> IntentRoi:
    """Value, model cost and net of the conversations and actions of one intent."""
    value = money_sum(contained_value(costs, counts.contained), actions_value(costs, counts.actions))
    cost = model_cost(costs, counts.conversations)
    return IntentRoi(intent, label, counts, value, cost, money_minus(value, cost))


def roi_compute(traffic: Traffic, costs: CostSettings | None, labels: dict[str, str]) -> Roi:
    """Value the traffic of a window with the configured costs. Pure."""
    window, counts = traffic.window, traffic.total
    contained, automated = contained_value(costs, counts.contained), actions_value(costs, counts.actions)
    value = money_sum(contained, automated)
    if counts.conversations == 0 and counts.action_count == 0:
        value = Money(None, NO_TRAFFIC)
    share = (counts.conversations, traffic.all_channels_conversations) if window.channel else None
    model, running = model_cost(costs, counts.conversations), running_cost(costs, days=window.days, share=share)
    cost = money_sum(model, running)
    net = money_minus(value, cost)
    per_month = Money(net.amount * DAYS_PER_MONTH / window.days) if net.known else net  # type: ignore[operator]
    actions = [
        ActionRow(action, n, costs.minutes_saved(action) if costs else None)
        for action, n in sorted(counts.actions.items())
    ]
    intents = [
        intent_roi(costs, name, labels.get(name, name), intent_counts)
        for name, intent_counts in traffic.by_intent.items()
    ]
    intents.sort(key=lambda row: (not row.net.known, -(row.net.amount or 0), -row.counts.conversations, row.intent))
    return Roi(
        window=window,
        costs=costs,
        counts=counts,
        contained_value=contained,
        actions_value=automated,
        value=value,
        model_cost=model,
        running_cost=running,
        cost=cost,
        net=net,
        net_per_month=per_month,
        payback=payback(costs, per_month),
        actions=actions,
        intents=intents,
        all_channels_conversations=traffic.all_channels_conversations,
    )


def roi_report(window: Window) -> Roi:
    """Measure a window's traffic and value it with the configured costs."""
    traffic = traffic_measure(window)
    labels = dict(Intent.objects.filter(name__in=list(traffic.by_intent)).values_list("name", "label"))
    return roi_compute(traffic, CostSettings.current(), labels)


# --- How each figure was reached, in words -------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One figure of the summary, with how it was computed (the inputs in words and numbers)."""

    label: str
    money: Money
    how: str
    total: bool = False


def _price(amount: Decimal | None, currency: str) -> str:
    return f"{amount.normalize():,f} {currency}" if amount is not None else "?"


def roi_lines(roi: Roi) -> list[Line]:
    """Return the summary's figures in order: value, cost, net, each with its formula filled in."""
    costs, counts, currency, days = roi.costs, roi.counts, roi.currency, roi.window.days
    minute = _price(costs.agent_minute_cost if costs else None, currency)
    if costs is not None and costs.human_contact_cost is None and costs.agent_minute_cost is not None:
        per_contact = f"{costs.minutes_per_human_contact or '?'} min × {minute} a minute"
    else:
        per_contact = _price(costs.human_contact_cost if costs else None, currency) + " per human-handled contact"
    minutes = minutes_saved(costs, counts.actions)[0] if costs else None
    running = f"{_price(costs.monthly_running_cost if costs else None, currency)} a month × {days} days ÷ 30.4375"
    if roi.window.channel:
        running += f" × {counts.conversations} of all {roi.all_channels_conversations} conversations answered"
    return [
        Line("Contained conversations", roi.contained_value, f"{counts.contained} contained × {per_contact}"),
        Line(
            "Automated actions",
            roi.actions_value,
            f"{counts.action_count} actions saving {minutes if minutes is not None else '?'} min × {minute} a minute",
        ),
        Line("Value", roi.value, "contained conversations + automated actions", total=True),
        Line(
            "Model",
            roi.model_cost,
            f"{counts.conversations} conversations answered × "
            f"{_price(costs.model_cost_per_conversation if costs else None, currency)} per conversation",
        ),
        Line("Running cost", roi.running_cost, running),
        Line("Cost", roi.cost, "model + running cost", total=True),
        Line("Net saving", roi.net, "value − cost", total=True),
        Line("Net saving per month", roi.net_per_month, f"net saving × 30.4375 ÷ {days} days"),
    ]
