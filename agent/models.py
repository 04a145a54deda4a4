"""Conversations, their messages and turn traces; intents and prompt versions configured in admin; verification."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from governance.roles import Verification


class Owner(models.TextChoices):
    """Who answers the conversation now: one audited state machine (agent.ownership), never two at once."""

    AGENT = "agent", "AI agent"
    WAITING = "waiting", "Waiting for a person"
    HUMAN = "human", "A person"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.SlugField(max_length=64, default="web_chat")
    owner = models.CharField(max_length=16, choices=Owner.choices, default=Owner.AGENT)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person who took the conversation over.",
    )
    customer_id = models.CharField(max_length=100, blank=True, help_text="The customer's id in the CRM, once known.")
    customer_email = models.EmailField(blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    verification = models.PositiveSmallIntegerField(choices=Verification.choices, default=Verification.ANONYMOUS)
    verified_at = models.DateTimeField(null=True, blank=True)
    failed_verifications = models.PositiveSmallIntegerField(default=0)
    # The PII placeholder vault (governance.pii.PlaceholderVault.to_dict()): placeholders the model saw → real values.
    pii_vault = models.JSONField(default=dict, blank=True)
    # Highest sequence number given to a message; the next message takes last_seq + 1 (agent.messages).
    last_seq = models.PositiveIntegerField(default=0)
    # One turn at a time: a worker claims the conversation by setting this with a conditional update.
    turn_claimed_at = models.DateTimeField(null=True, blank=True)
    turn_claimed_by = models.CharField(max_length=100, blank=True)
    unresolved_turns = models.PositiveSmallIntegerField(default=0, help_text="Turns in a row without progress.")
    # What the agent carries between turns: known slots, the question it is waiting on, an action waiting for
    # verification ({"known_slots": {}, "pending": {"intent", "slot"}, "pending_action": {"action", "arguments"}}).
    context = models.JSONField(default=dict, blank=True)
    ticket_id = models.CharField(max_length=100, blank=True, help_text="The helpdesk ticket of its escalation.")
    escalation_reason = models.TextField(blank=True)
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True)
    csat_comment = models.TextField(blank=True)
    origin_url = models.URLField(max_length=1000, blank=True)
    # A regression suite's scripted conversation (suites/): dry-run connectors, no analytics, never in the console.
    is_test = models.BooleanField(default=False, editable=False)
    is_demo = models.BooleanField(
        "demo",
        default=False,
        editable=False,
        help_text="Demo traffic loaded by seed_demo --traffic (simulated customers); seed_demo --remove-traffic "
        "deletes it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(csat_score__isnull=True) | Q(csat_score__gte=1, csat_score__lte=5),
                name="conversation_csat_range",
            ),
            models.CheckConstraint(
                condition=~Q(owner="human") | Q(assignee__isnull=False), name="conversation_human_has_assignee"
            ),
        ]
        indexes = [
            # The handoff console: conversations waiting or with a person, newest activity first.
            models.Index(fields=["owner", "-updated_at"], name="conversation_owner_recent"),
            # A helpdesk outcome (webhook or embedded follow-up) finds the conversation of its ticket.
            models.Index(fields=["ticket_id"], name="conversation_ticket", condition=~Q(ticket_id="")),
            # A close looks for the same customer's earlier conversations (agent/returns.py), by id or e-mail.
            models.Index(
                fields=["customer_id", "closed_at"], name="conversation_customer", condition=~Q(customer_id="")
            ),
            models.Index(
                Upper("customer_email"),
                "closed_at",
                name="conversation_customer_email",
                condition=~Q(customer_email=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {str(self.id)[:8]} ({self.owner})"


class Author(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AGENT = "agent", "AI agent"
    HUMAN = "human", "Support agent"
    SYSTEM = "system", "System"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    author = models.CharField(max_length=16, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The widget's id for a customer message: a resend after a reconnect is the same message, not a second one.
    client_id = models.UUIDField(null=True, blank=True)
    text = models.TextField()
    citations = models.JSONField(default=list, blank=True)
    choices = models.JSONField(default=list, blank=True)
    # Customer messages: taken into a turn yet? (messages arriving during a turn are taken into the next one)
    handled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_client_id_unique",
            ),
        ]
        indexes = [
            # The turn loop: this conversation's customer messages not yet handled.
            models.Index(
                fields=["conversation", "handled"],
                condition=Q(author="customer", handled=False),
                name="message_unhandled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.author}"


class TurnTrace(models.Model):
    """Everything one turn did: what it read, decided and said, with timings. Shown in admin and the console."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    message_seqs = ArrayField(models.PositiveIntegerField(), default=list, help_text="Customer messages it answered.")
    intent = models.CharField(max_length=100, blank=True)
    intent_score = models.FloatField(null=True, blank=True)
    retrieved = models.JSONField(default=list, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    escalation = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    responder = models.CharField(max_length=32, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    # The rollout stage the turn was decided at (a regression suite's rehearsed stage in its dry run), and each stage
    # capability it asked for beyond knowledge answers, allowed or not: [{"capability", "stage", "allowed", "reason"}]
    # (governance.gates.CapabilityCheck; agent.turn).
    stage = models.PositiveSmallIntegerField(null=True, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    reply = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    error = models.TextField(blank=True)
    # When the pass began: the turn loop saves the trace with its reply, and sets this itself.
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["conversation", "created_at"]

    def __str__(self) -> str:
        return f"turn {self.pk} of {self.conversation_id}"


class Route(models.TextChoices):
    KNOWLEDGE = "knowledge", "Answer from knowledge"
    ACTION = "action", "Take an action"
    HUMAN = "human", "Hand over to a person"
    VERIFY = "verify", "Verify the customer"
    SMALLTALK = "smalltalk", "Greeting / thanks"


class Intent(models.Model):
    """What customers ask for, with example utterances the embedded responder routes by."""

    name = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    examples = ArrayField(models.TextField(), default=list, help_text="Example customer messages, one per line.")
    route = models.CharField(max_length=16, choices=Route.choices, default=Route.KNOWLEDGE)
    action = models.SlugField(max_length=64, blank=True, help_text="For 'take an action': the action policy's name.")
    slots = models.JSONField(
        default=list,
        blank=True,
        help_text='Required slots: [{"name": "order_id", "pattern": "order_id", '
        '"question": "Which order is it about?"}]',
    )
    threshold = models.FloatField(null=True, blank=True, help_text="Routing score needed; empty uses the default.")
    enabled = models.BooleanField(default=True)
    volume = models.PositiveSmallIntegerField(default=3, help_text="Launch scope: how often it comes up, 1-5.")
    complexity = models.PositiveSmallIntegerField(default=3, help_text="1 (simple) - 5 (complex).")
    policy_risk = models.PositiveSmallIntegerField(default=3, help_text="1 (none) - 5 (high).")
    business_value = models.PositiveSmallIntegerField(default=3, help_text="1 - 5.")
    # QA samples the first conversations after an intent is added or changed (qa/sampling.py).
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptVersion(models.Model):
    """A versioned system prompt and guidance for the OpenAI-compatible responder; every trace names its version."""

    name = models.SlugField(max_length=64, default="default")
    version = models.PositiveIntegerField()
    system_prompt = models.TextField()
    guidance = models.TextField(blank=True)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="prompt_version_unique"),
            models.UniqueConstraint(fields=["name"], condition=Q(active=True), name="prompt_one_active"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class EmailChallenge(models.Model):
    """A one-time code sent to an email address to verify a customer."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="email_challenges")
    email = models.EmailField()
    code_hash = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The per-address send limit (email__iexact, created_at ≥ an hour ago) across conversations.
            models.Index(Upper("email"), "created_at", name="email_challenge_address_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.conversation_id})"
